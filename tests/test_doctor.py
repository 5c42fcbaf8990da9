"""``hy2fa doctor`` and ``GET hy2fa/doctor``: what a login needs, checked without logging in.

Real parts only: the ``hy2fa`` command as a subprocess (its own HOME and Jupyter config, ``ssh``
a wrapper that logs each call and runs the real client), the real sshd fixture, the asyncssh
prompt server as a jump host, a closed port on 127.0.0.1, a real Jupyter server (pytest-jupyter)
and the demo's own setup.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from hy2fa_lab.core import controlpath, platform
from hy2fa_lab.demo import sshserver

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd, free_port
except ImportError:
    from sshd_fixture import RealSshd, free_port  # type: ignore[no-redef]

HY2FA = str(Path(sys.executable).parent / "hy2fa")
SSH = "/usr/bin/ssh"
Fetch = Callable[..., Any]


class Doctor:
    """``hy2fa doctor`` with an isolated HOME and Jupyter config; ``ssh`` logs its calls."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.config = tmp / "ssh_config"
        self.config.write_text("")
        self.template = f"{tmp}/cm/%C"
        self.calls = tmp / "ssh-calls.log"
        home = tmp / "home"
        home.mkdir()
        jupyter = tmp / "jupyter"
        jupyter.mkdir()
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        wrapper = bin_dir / "ssh"
        wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{self.calls}"\nexec {SSH} "$@"\n')
        wrapper.chmod(0o755)
        self.env = {
            **os.environ,
            "HOME": str(home),
            "JUPYTER_CONFIG_DIR": str(jupyter),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        for name in ("SSH_AUTH_SOCK", "HY2FA_ASKPASS_SOCKET", "JUPYTER_CONFIG_PATH"):
            self.env.pop(name, None)

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [HY2FA, "doctor", *args],
            capture_output=True,
            text=True,
            timeout=120,  # a bound for a stuck run, not a timing: each step has its own
            check=False,
            stdin=subprocess.DEVNULL,  # nothing is asked: a question would read EOF and fail
            env=env or self.env,
        )

    def json(self, *args: str) -> tuple[int, dict[str, Any]]:
        done = self.run(*args, "-F", str(self.config), "--control-path", self.template, "--json")
        assert done.stdout, done.stderr
        return done.returncode, json.loads(done.stdout)

    def add(self, block: str) -> None:
        with self.config.open("a") as handle:
            handle.write(block)

    def ssh_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


def by_check(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    checks: dict[str, dict[str, str]] = {}
    for check in report["checks"]:
        assert set(check) == {"check", "status", "detail", "fix"}, check
        assert check["status"] in ("ok", "problem", "info"), check
        if check["status"] == "problem":
            assert check["fix"], f"a problem without what to do: {check}"
        assert check["check"] not in checks, f"two lines for {check['check']}"
        checks[check["check"]] = check
    return checks


@pytest.fixture
def doctor(short_tmp: Path) -> Doctor:
    return Doctor(short_tmp)


def add_sshd(doctor: Doctor, sshd: RealSshd, *, trusted: bool) -> Path:
    """A ``Host fixture`` for the real sshd; its known_hosts holds the key when ``trusted``."""
    known = doctor.tmp / "known_hosts"
    block = sshd.write_client_config(
        doctor.tmp / "fixture.conf", known_hosts=known, trust_host_key=trusted
    ).read_text()
    doctor.add(block)
    return known


def only_asked_ssh_never_logged_in(doctor: Doctor) -> None:
    """Every ssh the doctor ran was ``ssh -V`` or ``ssh -G``: no login was started."""
    calls = doctor.ssh_calls()
    assert calls, "the doctor ran no ssh at all"
    assert all(call.split()[0] in ("-V", "-G") for call in calls), calls


# ---- the CLI against the real sshd ----------------------------------------------------------


@pytest.mark.sshd
def test_cli_unknown_host_key_is_a_problem_then_ok_once_trusted(
    doctor: Doctor, real_sshd: RealSshd
) -> None:
    known = add_sshd(doctor, real_sshd, trusted=False)
    status, report = doctor.json("fixture")
    checks = by_check(report)
    assert report["cluster"] == "fixture"
    assert status == 1  # a problem was found
    key = checks["host_key"]
    assert key["status"] == "problem", key
    assert f"[127.0.0.1]:{real_sshd.port}" in key["detail"]
    assert str(known) in key["detail"]  # which files were looked in
    assert "Connect once" in key["fix"] and "fingerprint" in key["fix"] and "yes" in key["fix"]
    reach = checks["reachable"]
    assert reach["status"] == "ok", reach
    assert f"port {real_sshd.port}" in reach["detail"] and "SSH-2.0-OpenSSH" in reach["detail"]
    assert checks["cluster"]["status"] == "ok"
    assert f"{real_sshd.user}@127.0.0.1, port {real_sshd.port}" in checks["cluster"]["detail"]
    only_asked_ssh_never_logged_in(doctor)
    # sshd saw a connection that said nothing: no authentication of any kind was tried.
    log = real_sshd.log()
    for attempt in ("Accepted", "Failed", "Postponed", "keyboard-interactive/pam", "publickey for"):
        assert attempt not in log, log

    # Trusted (as a first connect that is answered yes leaves it): the same line is ok.
    known.write_text(real_sshd.known_hosts_line())
    status, report = doctor.json("fixture")
    checks = by_check(report)
    key = checks["host_key"]
    assert key["status"] == "ok", key
    assert f"{known}:1" in key["detail"] and "ssh-ed25519" in key["detail"]
    assert status == 0, [c for c in report["checks"] if c["status"] == "problem"]


@pytest.mark.sshd
def test_cli_hashed_known_hosts_entry_counts_as_known(doctor: Doctor, real_sshd: RealSshd) -> None:
    known = add_sshd(doctor, real_sshd, trusted=True)
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], capture_output=True, check=True)
    assert known.read_text().startswith("|1|")  # hashed: no host name to read
    _, report = doctor.json("fixture")
    assert by_check(report)["host_key"]["status"] == "ok"


@pytest.mark.sshd
def test_cli_terminal_output_says_each_line_and_what_to_do(
    doctor: Doctor, real_sshd: RealSshd
) -> None:
    add_sshd(doctor, real_sshd, trusted=False)
    done = doctor.run("fixture", "-F", str(doctor.config), "--control-path", doctor.template)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("problem  Host key: ") for line in lines), done.stdout
    assert any(line.strip().startswith("what to do: Connect once") for line in lines)
    assert any(line.startswith("ok       Answers on its port: 127.0.0.1") for line in lines)
    assert lines[-1] == "1 problem"


# ---- reachability ----------------------------------------------------------------------------


def test_cli_closed_port_is_a_problem_that_says_so(doctor: Doctor) -> None:
    port = free_port()  # bound once and closed: nothing listens there
    doctor.add(f"Host closed\n  HostName 127.0.0.1\n  Port {port}\n  User tester\n")
    status, report = doctor.json("closed")
    reach = by_check(report)["reachable"]
    assert status == 1
    assert reach["status"] == "problem", reach
    assert reach["detail"] == f"127.0.0.1 refuses connections on port {port}."
    assert f"port {port}" in reach["fix"]


def test_cli_a_port_that_is_not_ssh_is_a_problem(doctor: Doctor) -> None:
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        doctor.add(f"Host web\n  HostName 127.0.0.1\n  Port {port}\n")
        _, report = doctor.json("web")
    finally:
        server.close()
    reach = by_check(report)["reachable"]
    assert reach["status"] == "problem"
    assert "not as an SSH server (HTTP/1.1 400 Bad Request)" in reach["detail"]


def test_cli_through_proxyjump_checks_the_jump_host_not_the_target(
    doctor: Doctor, prompt_server: Callable[..., Any]
) -> None:
    bastion = prompt_server(
        sshserver.PromptScript([sshserver.PromptStep("Code: ", expected=lambda _: False)]),
        allow_commands=False,
    )
    doctor.add(
        f"Host bastion\n  HostName 127.0.0.1\n  Port {bastion.port}\n"
        "Host hidden\n  HostName login.hidden.invalid\n  ProxyJump bastion\n"
        "Host piped\n  HostName login.piped.invalid\n  ProxyCommand nc %h %p\n"
    )
    _, report = doctor.json("hidden")
    reach = by_check(report)["reachable"]
    assert reach["status"] == "ok", reach
    assert "through ProxyJump bastion: the direct check does not apply" in reach["detail"]
    assert f"the jump host 127.0.0.1 answers on port {bastion.port}" in reach["detail"]
    assert "login.hidden.invalid" not in reach["detail"].split("the jump host")[1]

    _, report = doctor.json("piped")
    reach = by_check(report)["reachable"]
    assert reach["status"] == "info", reach
    assert "ProxyCommand" in reach["detail"] and "does not run that command" in reach["detail"]
    assert "nc %h" not in reach["detail"]  # a ProxyCommand may hold a token: never shown
    only_asked_ssh_never_logged_in(doctor)


# ---- ssh config lines ------------------------------------------------------------------------


def test_cli_names_the_file_and_line_that_set_each_control_option(doctor: Doctor) -> None:
    included = doctor.tmp / "included.conf"
    included.write_text("# shared settings\nHost lab\n    ControlMaster yes\n")
    unused = doctor.tmp / "unused.conf"
    unused.write_text("ControlPersist 99\n")
    doctor.add(
        f"Include {included}\n"  # line 1
        "Host other\n"  # 2
        f"    Include {unused}\n"  # 3: parsed only (its block is not lab's)
        "    ControlPath /nowhere/%C\n"  # 4
        "Host lab\n"  # 5
        "    HostName 127.0.0.1\n"  # 6
        f"    ControlPath {doctor.tmp}/lab-%C\n"  # 7
        "Match all\n"  # 8
        "    ControlPersist 7m\n"  # 9
    )
    _, report = doctor.json("lab")
    checks = by_check(report)
    path = checks["ssh_config:ControlPath"]
    assert path["status"] == "ok", path
    assert f"Set at {doctor.config}:7 (ControlPath {doctor.tmp}/lab-%C)" in path["detail"]
    assert f"ssh -G gives {doctor.tmp}/lab-" in path["detail"]
    master = checks["ssh_config:ControlMaster"]
    assert master["status"] == "problem", master
    assert f"ControlMaster yes, set at {included}:3" in master["detail"]
    assert "ControlMaster auto" in master["fix"]
    persist = checks["ssh_config:ControlPersist"]
    assert persist["status"] == "info"
    assert f"Set at {doctor.config}:9 (ControlPersist 7m; ssh -G gives 420)" in persist["detail"]
    # The socket hy2fa uses is the config's.
    assert checks["control_path"]["detail"].startswith(f"{doctor.tmp}/lab-")


def test_cli_without_control_lines_says_how_to_share_the_socket(doctor: Doctor) -> None:
    doctor.add("Host plain\n  HostName 127.0.0.1\n")
    _, report = doctor.json("plain")
    checks = by_check(report)
    assert checks["ssh_config:ControlPath"]["status"] == "info"
    assert "hy2fa config-ssh plain" in checks["ssh_config:ControlPath"]["fix"]
    assert checks["ssh_config:ControlMaster"]["status"] == "ok"
    assert "the default" in checks["ssh_config:ControlMaster"]["detail"]
    assert checks["ssh_config:ControlPersist"]["status"] == "ok"


def test_cli_control_path_over_the_limit_is_a_problem_naming_the_line(doctor: Doctor) -> None:
    long_dir = doctor.tmp / ("d" * (controlpath.MAX_LENGTH - len(str(doctor.tmp))))
    doctor.add(f"Host far\n  HostName 127.0.0.1\n  ControlPath {long_dir}/%C\n")
    status, report = doctor.json("far")
    checks = by_check(report)
    assert status == 1
    path = checks["control_path"]
    assert path["status"] == "problem", path
    assert f"(set at {doctor.config}:3: ControlPath {long_dir}/%C)" in path["detail"]
    assert f"at most {controlpath.MAX_LENGTH} bytes" in path["detail"]
    assert "cm-%C" in path["fix"]
    assert checks["cluster"]["status"] == "ok"  # it resolves; only its socket cannot be made


def test_cli_socket_directory_that_others_can_write_is_a_problem(doctor: Doctor) -> None:
    shared = doctor.tmp / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    doctor.add(f"Host lab\n  HostName 127.0.0.1\n  ControlPath {shared}/%C\n")
    _, report = doctor.json("lab")
    socket_dir = by_check(report)["socket_dir"]
    assert socket_dir["status"] == "problem"
    assert "writable by others" in socket_dir["detail"]
    assert socket_dir["fix"].startswith(f"chmod 700 {shared}")
    shared.chmod(0o700)
    _, report = doctor.json("lab")
    socket_dir = by_check(report)["socket_dir"]
    assert socket_dir == {
        "check": "socket_dir",
        "status": "ok",
        "detail": f"{shared} is yours and private (mode 0700).",
        "fix": "",
    }


# ---- this machine, and bad input -------------------------------------------------------------


def test_cli_without_a_cluster_has_only_the_machine_lines(doctor: Doctor) -> None:
    status, report = doctor.json()
    checks = by_check(report)
    assert report["cluster"] is None
    assert checks["openssh"]["status"] == "ok"
    assert checks["openssh"]["detail"].startswith("OpenSSH ")
    assert "ControlMaster" in checks["openssh"]["detail"]
    assert str(controlpath.MAX_LENGTH) in checks["control_path"]["detail"]
    assert not {"cluster", "host_key", "reachable"} & set(checks)
    for capability in platform.capabilities():
        line = checks[f"platform:{capability.name}"]
        assert line["status"] == ("ok" if capability.available else "info")
        if not capability.available:
            assert capability.without in line["detail"]
    assert status == (1 if any(c["status"] == "problem" for c in report["checks"]) else 0)
    assert all(call.split()[0] == "-V" for call in doctor.ssh_calls())


def test_cli_askpass_line_follows_the_jupyter_config(doctor: Doctor) -> None:
    _, report = doctor.json()
    assert by_check(report)["askpass"]["status"] == "ok"  # installed here, OpenSSH >= 8.4
    (Path(doctor.env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json").write_text(
        json.dumps({"Hy2faLab": {"askpass": False}})
    )
    _, report = doctor.json()
    askpass = by_check(report)["askpass"]
    assert askpass["status"] == "info"
    assert "c.Hy2faLab.askpass = False" in askpass["detail"]
    assert "c.Hy2faLab.askpass = True" in askpass["fix"]


@pytest.mark.parametrize("name", ["-oProxyCommand=touch /tmp/pwned", "bad\u202ename", ""])
def test_cli_refuses_hostile_names_before_running_anything(doctor: Doctor, name: str) -> None:
    done = doctor.run("-F", str(doctor.config), "--", name)
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert done.stderr.startswith("hy2fa: ") and "host" in done.stderr
    assert "\u202e" not in done.stderr  # shown escaped
    assert doctor.ssh_calls() == []


def test_cli_broken_cluster_of_the_config_is_a_problem_line(doctor: Doctor) -> None:
    (Path(doctor.env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json").write_text(
        json.dumps({"Hy2faLab": {"clusters": {"lab": {"host": "127.0.0.1", "colour": "red"}}}})
    )
    status, report = doctor.json("lab")
    cluster = by_check(report)["cluster"]
    assert status == 1
    assert cluster["status"] == "problem"
    assert "colour" in cluster["detail"] and "c.Hy2faLab.clusters" in cluster["fix"]


# ---- the demo --------------------------------------------------------------------------------


def test_doctor_runs_in_the_demo(short_tmp: Path) -> None:
    """``hy2fa doctor demo`` with the demo's own private Jupyter config and its SSH server
    (the demo's setup as ``hy2fa demo`` makes it, without starting JupyterLab)."""
    pytest.importorskip("asyncssh")
    pytest.importorskip("pyotp")
    from hy2fa_lab.demo.app import Demo

    class NoLab(Demo):
        def _start_lab(self, config_dir: Path) -> None:
            self.config_dir = config_dir

    demo = NoLab(open_browser=False)
    try:
        demo.start()
        env = {
            **os.environ,
            "HOME": str(short_tmp),
            "JUPYTER_CONFIG_PATH": str(demo.config_dir),
            "JUPYTER_CONFIG_DIR": str(short_tmp / "jupyter"),
        }
        done = Doctor(short_tmp).run("demo", "--json", env=env)
        report = json.loads(done.stdout)
        checks = by_check(report)
        assert checks["cluster"]["status"] == "ok"
        assert checks["cluster"]["detail"].startswith("demo (from the Jupyter config) is ")
        assert checks["host_key"]["status"] == "ok"  # the demo writes its known_hosts
        assert checks["reachable"]["status"] == "ok"
        assert f"port {demo.server.port}" in checks["reachable"]["detail"]  # type: ignore[union-attr]
        assert checks["control_path"]["detail"].startswith(f"{demo.dir}/cm-")
        assert checks["socket_dir"]["status"] == "ok"
        assert done.returncode == 0, [c for c in report["checks"] if c["status"] == "problem"]
    finally:
        demo.stop()


# ---- over REST -------------------------------------------------------------------------------


async def doctor_get(fetch: Fetch, cluster: str | None = None) -> dict[str, Any]:
    params = {} if cluster is None else {"params": {"cluster": cluster}}
    response = await fetch("hy2fa", "doctor", method="GET", **params)
    data: dict[str, Any] = json.loads(response.body)
    return data


@pytest.mark.sshd
async def test_rest_against_the_real_sshd(
    jp_fetch: Fetch, client_config: Path, real_sshd: RealSshd
) -> None:
    known = client_config.parent / "fixture_known_hosts"
    block = real_sshd.write_client_config(
        client_config.parent / "fixture.conf", known_hosts=known, trust_host_key=False
    ).read_text()
    with client_config.open("a") as handle:
        handle.write(block)
    report = await doctor_get(jp_fetch, "fixture")
    checks = by_check(report)
    assert report["cluster"] == "fixture"
    assert checks["host_key"]["status"] == "problem"
    assert "Connect once" in checks["host_key"]["fix"]
    assert checks["reachable"]["status"] == "ok"
    assert "SSH-2.0-OpenSSH" in checks["reachable"]["detail"]
    # The askpass line is the server's own bridge, as GET hy2fa/asks says it.
    asks = json.loads((await jp_fetch("hy2fa", "asks", method="GET")).body)
    assert (checks["askpass"]["status"] == "ok") == asks["enabled"]
    if not asks["enabled"]:
        assert asks["message"] in checks["askpass"]["detail"]

    known.write_text(real_sshd.known_hosts_line())
    checks = by_check(await doctor_get(jp_fetch, "fixture"))
    assert checks["host_key"]["status"] == "ok"
    assert not real_sshd.log().count("Accepted")


async def test_rest_without_a_cluster_is_this_machine(jp_fetch: Fetch) -> None:
    report = await doctor_get(jp_fetch)
    checks = by_check(report)
    assert report["cluster"] is None
    assert {"openssh", "askpass", "control_path"} <= set(checks)
    assert {f"platform:{c.name}" for c in platform.capabilities()} <= set(checks)
    assert not {"cluster", "host_key", "reachable"} & set(checks)


@pytest.mark.parametrize(
    "name", ["nosuch", "../../etc/passwd", "-oProxyCommand=touch /tmp/x", "a\u202eb", "x" * 5000]
)
async def test_rest_unknown_or_hostile_cluster_is_404(jp_fetch: Fetch, name: str) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await doctor_get(jp_fetch, name)
    assert caught.value.code == 404
    assert caught.value.response is not None
    body = json.loads(caught.value.response.body)
    assert body["reason"] == "unknown_cluster"
    assert body["message"].startswith("No cluster named ")
    assert "\u202e" not in body["message"] and len(body["message"]) < 200


async def test_rest_closed_port_and_control_path_too_long(
    jp_fetch: Fetch, client_config: Path, short_tmp: Path
) -> None:
    port = free_port()
    long_dir = short_tmp / ("d" * (controlpath.MAX_LENGTH - len(str(short_tmp))))
    with client_config.open("a") as handle:
        handle.write(
            f"Host closed\n  HostName 127.0.0.1\n  Port {port}\n"
            f"Host far\n  HostName 127.0.0.1\n  Port {port}\n  ControlPath {long_dir}/%C\n"
        )
    checks = by_check(await doctor_get(jp_fetch, "closed"))
    assert checks["reachable"]["status"] == "problem"
    assert checks["reachable"]["detail"] == f"127.0.0.1 refuses connections on port {port}."
    checks = by_check(await doctor_get(jp_fetch, "far"))
    assert checks["control_path"]["status"] == "problem"
    assert f"{client_config}:7" in checks["control_path"]["detail"]
