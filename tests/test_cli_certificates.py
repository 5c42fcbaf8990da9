"""``hy2fa connect``, ``status`` and ``list`` for a certificate cluster (issue 21), in a real
pty against the project's own issuer and a real sshd that trusts only its CA."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cert_site import CertSite
from test_cli import Cli, assert_no_ssh_left, expect_connected, finish, stop_masters

from hy2fa_lab.core import mux

pytestmark = pytest.mark.sshd
NAME = "nersc"


@pytest.fixture
def cli(short_tmp: Path, site: CertSite) -> Iterator[Cli]:
    """``hy2fa`` with a Jupyter config that has the certificate cluster ``nersc``."""
    runner = Cli(short_tmp)
    config_dir = short_tmp / "jupyter-config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"Hy2faLab": {"clusters": {NAME: site.profile()}}})
    )
    runner.env["JUPYTER_CONFIG_DIR"] = str(config_dir)
    try:
        yield runner
    finally:
        runner.cleanup()
        stop_masters(short_tmp)
        assert_no_ssh_left(short_tmp)


def test_connect_asks_once_then_status_and_list_say_the_certificate(
    cli: Cli, site: CertSite
) -> None:
    config = cli.tmp / "ssh_config"
    config.write_text("")
    site.add_host(config)
    options = cli.target_options(config)
    question = f"Password + OTP for {site.sshd.user} at 127.0.0.1"

    # Before any certificate is on disk: where the first login gets one.
    status, output = cli.run("status", NAME, *options)
    assert status == 1 and re.fullmatch(  # 1: not connected, as ssh -O check says it
        rf"{NAME}: not connected \(no certificate yet: a login gets one from 127\.0\.0\.1\) "
        r"\S+\n",
        output,
    ), output
    status, output = cli.run("list", "--json", *options)
    rows = {row["name"]: row for row in json.loads(output)}
    assert rows[NAME]["certificate_from"] == "127.0.0.1" and "certificate" not in rows[NAME]
    assert rows["perlmutter"]["certificate_from"] == "sshproxy.nersc.gov"
    assert "certificate_from" not in rows["saga"]

    child = cli.spawn("connect", NAME, *options)
    child.expect_exact(question)
    wrong = site.wrong()
    child.sendline(wrong)
    child.expect_exact(f"Authentication failed. Failed login: {site.sshd.user} — try again")
    child.expect_exact(question)
    right = site.secret()
    child.sendline(right)
    pid, _persist, path = expect_connected(child, NAME)
    status, output = finish(child)
    assert status == 0, output
    assert output.startswith(f"Connecting to {site.sshd.user}@127.0.0.1…\n{question}\n")
    assert re.search(rf"\n{NAME}: certificate valid for 59 min\n$", output), output
    for secret in (wrong, right, site.password):
        assert secret not in output
    assert mux.alive(path) == pid
    assert site.files().keys() == {"nersc", "nersc.pub", "nersc-cert.pub"}

    status, output = cli.run("status", NAME, *options)
    assert (status, output) == (
        0,
        f"{NAME}: connected (master pid {pid}; certificate valid for 59 min) {path}\n",
    )
    status, output = cli.run("status", "--json", *options)
    row = {row["name"]: row for row in json.loads(output)}[NAME]  # also: the alias "fixture"
    assert row["state"] == "connected"
    certificate = row["certificate"]
    assert certificate["issuer"] == "sshproxy" and certificate["key"] == str(site.key)
    assert certificate["principals"] == [site.sshd.user]
    assert certificate["valid_before"].endswith("+00:00")
    assert certificate["renew_before"] == 600  # the profile's (the default): Lab warns then
    status, output = cli.run("list", *options)
    [line] = [line for line in output.splitlines() if line.startswith(NAME)]
    assert re.fullmatch(
        rf"{NAME}\s+connected\s+{site.sshd.user}@127\.0\.0\.1:{site.sshd.port}"
        r"  \(certificate valid for 59 min\)",
        line,
    ), line
    rows = {row["name"]: row for row in json.loads(cli.run("list", "--json", *options)[1])}
    assert rows[NAME]["certificate"] == certificate
    assert "certificate" not in rows["saga"]  # a cluster without one

    # The certificate runs out under the live master: both are said.
    site.service.lifetimes["default"] = "-2h:-1m"
    site.issue()
    status, output = cli.run("status", NAME, *options)
    expired = "certificate expired 1 min ago"
    assert (status, output) == (
        0,
        f"{NAME}: connected (master pid {pid}; {expired}; the master still runs) {path}\n",
    )
    assert cli.run("disconnect", NAME, *options)[0] == 0
    status, output = cli.run("status", NAME, *options)
    assert (status, output) == (1, f"{NAME}: not connected ({expired}) {path}\n")
    [line] = [line for line in cli.run("list", *options)[1].splitlines() if line.startswith(NAME)]
    assert line.endswith(f"  ({expired})"), line
