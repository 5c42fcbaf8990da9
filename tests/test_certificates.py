"""Certificate logins (issue 21): a profile's ``certificate``, the project's own certificate
service (``hy2fa_lab/demo/issuer.py``, as NERSC's sshproxy behaves; the demo's too) and a real
sshd that trusts only its CA (``TrustedUserCAKeys``, ``AuthorizedKeysFile none``)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cert_site import PASSWORD, CertSite
from procs import next_prompt, ssh_processes

from hy2fa_lab.core import certificates, mux
from hy2fa_lab.core.errors import InvalidInput
from hy2fa_lab.core.manager import Manager
from hy2fa_lab.core.profiles import certificate_spec, load_profiles
from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.types import PromptKind, Reason, State
from hy2fa_lab.demo.issuer import CertService

# ---- the profile key ---------------------------------------------------------------------


def spec_data(**over: Any) -> dict[str, Any]:
    data = {"issuer": "sshproxy", "url": "https://sshproxy.example.org", "key": "~/.ssh/nersc"}
    data.update(over)
    return data


def test_a_certificate_is_checked_and_a_bad_one_costs_that_cluster_alone() -> None:
    spec = certificate_spec(spec_data(scope="collab", login="ola", renew_before="20m"))
    assert spec.key == os.path.expanduser("~/.ssh/nersc")
    assert spec.certificate_file == spec.key + "-cert.pub"
    assert (spec.scope, spec.login, spec.renew_before) == ("collab", "ola", 1200)
    assert certificate_spec(spec_data(url="http://127.0.0.1:8080/")).url == "http://127.0.0.1:8080"
    for bad in (
        spec_data(url="http://sshproxy.example.org"),  # plain http off loopback
        spec_data(url="https://ola:pw@sshproxy.example.org"),
        spec_data(url="ftp://x"),
        spec_data(issuer="nope"),
        spec_data(key="relative/key"),
        spec_data(scope="../../x"),
        spec_data(renew_before="forever"),
        spec_data(unknown=1),
        "not a mapping",
    ):
        with pytest.raises(InvalidInput):
            certificate_spec(bad)
    profiles = load_profiles(
        {
            "good": {"host": "good.example.org", "certificate": spec_data()},
            "bad": {"host": "bad.example.org", "certificate": spec_data(url="http://x.org")},
        },
        include_ssh_config_hosts=False,
    )
    assert profiles["good"].certificate is not None and not profiles["good"].error
    assert "certificate" in profiles["bad"].error and profiles["bad"].certificate is None
    assert not profiles["saga"].error


def test_an_answer_that_is_not_a_pair_for_its_key_is_refused(tmp_path: Path) -> None:
    service = CertService(tmp_path / "svc", user="ola", password=PASSWORD).start()
    try:
        good = service._pair("ola", "+1h")
        other = service._pair("ola", "+1h")
    finally:
        service.stop()
    pair = certificates.parse_pair(good, "/k", "issuer")
    assert pair.described.principals == ("ola",) and pair.described.key_id == "user_ola"
    assert pair.described.valid_before is not None
    key_of_one = good.split("-----END RSA PRIVATE KEY-----")[0] + "-----END RSA PRIVATE KEY-----\n"
    cert_of_other = other.rsplit("\n", 1)[1]
    for body in ("", "<html>maintenance</html>", good + "\nextra line", key_of_one,
                 key_of_one + cert_of_other):  # fmt: skip
        with pytest.raises(certificates.IssuerError):
            certificates.parse_pair(body, "/k", "issuer")


# ---- against the service and a real sshd ----------------------------------------------------


def run_via(manager: Manager, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = manager.settings.ssh_config
    assert config is not None
    argv = ["ssh", "-F", config, "-S", path, "-o", "BatchMode=yes", "fixture", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)


async def login_with(site: CertSite, session: MasterSession, secret: str, after: int) -> Any:
    prompt = await next_prompt(session, after)
    assert prompt.kind is PromptKind.PASSWORD and prompt.secret
    assert prompt.text == f"Password + OTP for {site.sshd.user} at 127.0.0.1"
    await session.answer(secret)
    return prompt


@pytest.mark.sshd
async def test_wrong_code_then_right_connects_and_stores_the_pair(site: CertSite) -> None:
    manager = site.manager()
    session = await manager.connect("nersc")
    assert session.to_json()["certificate"]["valid_before"] is None  # none yet
    await login_with(site, session, PASSWORD + site.service.wrong_code(), 0)
    await next_prompt(session, 1)  # asked again, with the issuer's words
    assert session.message == (f"Authentication failed. Failed login: {site.sshd.user} — try again")
    assert not site.key.exists()
    await session.answer(PASSWORD + site.service.totp())
    assert await session.wait(30) is State.CONNECTED, session.message
    mode = stat.S_IMODE(site.key.stat().st_mode)
    assert mode == 0o600
    view = session.to_json()["certificate"]
    assert view["issuer"] == "sshproxy" and view["principals"] == [site.sshd.user]
    assert view["key"] == str(site.key) and view["valid_before"].endswith("+00:00")
    run = run_via(manager, session.target.control_path, "echo via-cert $(id -un)")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"via-cert {site.sshd.user}"
    assert "Accepted publickey" in site.sshd.log() and "CA ED25519" in site.sshd.log()
    # Only the Authorization header carried the secret, and only over the requests made.
    assert site.service.requests == 2
    await manager.disconnect(session.id)
    assert ssh_processes(session.target.control_path) == {}


@pytest.mark.sshd
async def test_a_valid_certificate_asks_nothing_and_an_expiring_one_asks_again(
    site: CertSite,
) -> None:
    manager = site.manager()
    session = await manager.connect("nersc")
    await login_with(site, session, PASSWORD + site.service.totp(), 0)
    assert await session.wait(30) is State.CONNECTED, session.message
    await manager.disconnect(session.id)
    before, asked = site.files(), session.prompt_id

    again = await manager.connect("nersc")
    assert await again.wait(30) is State.CONNECTED, again.message
    assert again.prompt_id == asked  # nothing asked
    assert site.service.requests == 1 and site.files() == before
    await manager.disconnect(again.id)

    # The short scope signs for 2 minutes: less than renew_before, so it is renewed.
    short = site.manager(scope="short", renew_before="1h")
    session = await short.connect("nersc")
    await login_with(site, session, PASSWORD + site.service.totp(), 0)
    assert await session.wait(30) is State.CONNECTED, session.message
    await short.disconnect(session.id)
    asked = session.prompt_id
    session = await short.connect("nersc")
    prompt = await next_prompt(session, asked)  # it runs out within renew_before: asked again
    assert prompt.kind is PromptKind.PASSWORD
    await session.cancel()
    assert session.state is State.FAILED and session.reason is Reason.CANCELLED


@pytest.mark.sshd
@pytest.mark.parametrize("mode", ["500", "garbage"])
async def test_a_bad_answer_of_the_issuer_leaves_the_files_as_they_were(
    site: CertSite, mode: str
) -> None:
    manager = site.manager(renew_before="2h")  # so the 1 h certificate is renewed each time
    session = await manager.connect("nersc")
    await login_with(site, session, PASSWORD + site.service.totp(), 0)
    assert await session.wait(30) is State.CONNECTED, session.message
    await manager.disconnect(session.id)
    before = site.files()
    assert len(before) == 3

    site.service.mode = mode
    session = await manager.connect("nersc")
    await login_with(site, session, PASSWORD + site.service.totp(), session.prompt_id)
    assert await session.wait(30) is State.FAILED
    assert session.reason is Reason.ERROR
    assert "127.0.0.1" in session.message
    assert site.files() == before
    assert [p for p in os.listdir(site.key.parent) if p.endswith(".tmp")] == []
    assert mux.alive(session.target.control_path) is None


@pytest.mark.sshd
async def test_a_lock_out_fails_plainly(site: CertSite) -> None:
    manager = site.manager()
    session = await manager.connect("nersc")
    for attempt in range(5):
        await login_with(site, session, PASSWORD + site.service.wrong_code(), attempt)
    await login_with(site, session, PASSWORD + site.service.totp(), 5)
    assert await session.wait(30) is State.FAILED
    assert session.reason is Reason.AUTH_FAILED
    assert "locked out" in session.message
    assert not site.key.exists()
