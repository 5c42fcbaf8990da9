"""The ``hy2fa`` command as a person runs it: a real pty (pexpect), the real OpenSSH client,
against the asyncssh prompt server and the real sshd with pam_google_authenticator.

Every run gets its own HOME and Jupyter config dir, ``-F`` for the ssh config and
``--control-path`` under the test's temp dir, so the machine's ``~/.ssh`` is never touched.
``ssh`` on the CLI's PATH is a wrapper that logs each call and execs the real client, which
proves when nothing was spawned at all.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pexpect
import psutil
import pytest
from helpers import SECRET, code, finish, otp_ok, shown
from listeners import SilentListener
from procs import ssh_processes

from hy2fa_lab.core import mux
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.demo import sshserver

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd
except ImportError:
    from sshd_fixture import RealSshd  # type: ignore[no-redef]

HY2FA = str(Path(sys.executable).parent / "hy2fa")
TIMEOUT = 30  # every pexpect wait is bounded by this
SSH = "/usr/bin/ssh"
PASSWORD = "correct horse battery staple"
ALIAS = "promptsrv"
FIXTURE = "fixture"
BUILTIN = {
    "saga": "saga.sigma2.no",
    "fram": "fram.sigma2.no",
    "betzy": "betzy.sigma2.no",
    "olivia": "olivia.sigma2.no",
    "narval": "narval.alliancecan.ca",
    "rorqual": "rorqual.alliancecan.ca",
    "fir": "fir.alliancecan.ca",
    "nibi": "nibi.alliancecan.ca",
    "trillium": "trillium.alliancecan.ca",
    "perlmutter": "perlmutter.nersc.gov",
}
CONNECTED = re.compile(r"(\S+): connected \(master pid (\d+), persist (\S+)\) (\S+)\r\n")


class Cli:
    """Runs ``hy2fa`` in a pty with an isolated environment; kills what it started."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sockets = tmp / "cm"
        self.template = f"{self.sockets}/%C"
        self.calls = tmp / "ssh-calls.log"
        self.home = home = tmp / "home"
        home.mkdir()
        self.jupyter = tmp / "jupyter"  # an empty Jupyter config dir: no user settings
        self.jupyter.mkdir()
        wrapper_dir = tmp / "bin"
        wrapper_dir.mkdir()
        wrapper = wrapper_dir / "ssh"
        wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{self.calls}"\nexec {SSH} "$@"\n')
        wrapper.chmod(0o755)
        self.env = {
            **os.environ,
            "HOME": str(home),
            "JUPYTER_CONFIG_DIR": str(self.jupyter),
            "PATH": f"{wrapper_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.env.pop("SSH_AUTH_SOCK", None)
        self.children: list[pexpect.spawn] = []

    def target_options(self, config: Path) -> list[str]:
        return ["-F", str(config), "--control-path", self.template]

    def spawn(self, *args: str) -> pexpect.spawn:
        child = pexpect.spawn(
            HY2FA, list(args), env=self.env, cwd=str(self.tmp), encoding="utf-8", timeout=TIMEOUT
        )
        child.logfile_read = io.StringIO()  # everything the terminal showed
        self.children.append(child)
        return child

    def run(self, *args: str) -> tuple[int, str]:
        """Run to the end; returns the exit status and the output (``\\n`` line ends)."""
        child = self.spawn(*args)
        return finish(child)

    def ssh_calls(self) -> list[str]:
        """Every ssh command line the CLI ran so far (``-G`` lookups and master logins)."""
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def master_logins(self) -> list[str]:
        return [line for line in self.ssh_calls() if line.startswith("-M ")]

    def cleanup(self) -> None:
        for child in self.children:
            if child.isalive():
                child.kill(9)
            child.close(force=True)

    def home_untouched(self) -> None:
        """With ``-F`` and ``--control-path`` given, nothing lands in HOME (no ``~/.ssh``)."""
        assert sorted(p.name for p in self.home.iterdir()) == []
        assert sorted(p.name for p in self.jupyter.iterdir()) == []


def stop_masters(directory: Path) -> None:
    for candidate in directory.rglob("*"):
        try:
            is_socket = stat.S_ISSOCK(candidate.lstat().st_mode)
        except OSError:
            continue
        if is_socket:
            with contextlib.suppress(OSError, mux.MuxError):
                mux.stop(str(candidate))


def assert_no_ssh_left(directory: Path, timeout: float = 5.0) -> None:
    """No ssh process of this test (its argv names the temp dir) is alive."""
    deadline = time.monotonic() + timeout
    left = ssh_processes(str(directory))
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = ssh_processes(str(directory))
    assert left == {}, left


def sockets_in(directory: Path) -> list[Path]:
    if not directory.exists():
        return []
    return [p for p in directory.iterdir() if stat.S_ISSOCK(p.lstat().st_mode)]


@pytest.fixture
def cli(short_tmp: Path) -> Iterator[Cli]:
    runner = Cli(short_tmp)
    try:
        yield runner
        runner.home_untouched()
    finally:
        runner.cleanup()
        stop_masters(short_tmp)
        assert_no_ssh_left(short_tmp)


def prompt_server_config(directory: Path, server: sshserver.ServerThread) -> Path:
    """``Host promptsrv`` for the asyncssh server, and defaults for any host (the old flags)."""
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    config = directory / "ssh_config"
    config.write_text(
        f"Host {ALIAS}\n"
        "  HostName 127.0.0.1\n"
        f"  Port {server.port}\n"
        "  User tester\n"
        "Host *\n"
        f"  UserKnownHostsFile {known_hosts}\n"
        "  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n"
        "  PreferredAuthentications keyboard-interactive\n"
        "  LogLevel ERROR\n"
    )
    return config


def engine_path(config: Path, template: str, target: str, **kwargs: Any) -> str:
    """Where the engine itself puts the socket for ``target``."""
    manager = Manager(Settings(ssh_config=str(config), control_path=template))
    return manager.resolve(target, **kwargs).control_path


def ssh_through(
    config: Path, path: str, alias: str, *command: str
) -> subprocess.CompletedProcess[str]:
    """Plain ssh over the socket; BatchMode proves nothing is asked."""
    argv = [SSH, "-S", path, "-F", str(config), "-o", "BatchMode=yes", alias, *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)


def expect_connected(child: pexpect.spawn, name: str) -> tuple[int, str, str]:
    """The final line of a login: returns (master pid, persist, socket path)."""
    child.expect(CONNECTED)
    match = child.match
    assert match.group(1) == name, shown(child)
    return int(match.group(2)), match.group(3), match.group(4)


def connecting(sshd: RealSshd) -> str:
    """The line ``hy2fa connect`` says first: who it logs in as, where."""
    who = code_prompt(sshd).split(")", 1)[0].lstrip("(")
    return f"Connecting to {who}…\n"


def code_prompt(sshd: RealSshd) -> str:
    return f"({sshd.user}@127.0.0.1) Verification code: "


# ---- the asyncssh prompt server ---------------------------------------------------------


def test_sigma2_connect_status_path_use_reconnect_disconnect(
    cli: Cli, prompt_server: Callable[..., sshserver.ServerThread]
) -> None:
    server = prompt_server(sshserver.sigma2(otp_ok, PASSWORD))
    config = prompt_server_config(cli.tmp, server)
    options = cli.target_options(config)
    otp_prompt = "(tester@127.0.0.1) One-time password (OATH) for `tester': "
    password_prompt = "(tester@127.0.0.1) Password: "

    child = cli.spawn("connect", ALIAS, *options)
    child.expect_exact(otp_prompt)
    # What is happening, then the cluster's own words, nothing else in front.
    assert child.before == "Connecting to tester@127.0.0.1…\r\n"
    otp = code()
    child.sendline(otp)
    child.expect_exact(password_prompt)
    child.sendline(PASSWORD)
    pid, persist, path = expect_connected(child, ALIAS)
    status, output = finish(child)
    assert status == 0, output
    # Each prompt verbatim on its own line, in order; neither answer echoed.
    assert output == (
        f"Connecting to tester@127.0.0.1…\n{otp_prompt}\n{password_prompt}\n"
        f"{ALIAS}: connected (master pid {pid}, persist {persist}) {path}\n"
    )
    assert otp not in output
    assert PASSWORD not in output
    assert all(otp not in line and PASSWORD not in line for line in cli.ssh_calls())

    assert path == engine_path(config, cli.template, ALIAS)
    assert path.startswith(f"{cli.sockets}/")
    assert mux.alive(path) == pid
    assert stat.S_IMODE(os.stat(cli.sockets).st_mode) == 0o700
    assert os.stat(path).st_mode & 0o077 == 0
    assert len(cli.master_logins()) == 1

    status, output = cli.run("status", ALIAS, *options)
    assert (status, output) == (0, f"{ALIAS}: connected (master pid {pid}) {path}\n")

    status, output = cli.run("path", ALIAS, *options)
    assert (status, output) == (0, f"{path}\n")

    status, output = cli.run("list", "--json", *options)
    assert status == 0, output
    rows = {row["name"]: row for row in json.loads(output)}
    assert rows[ALIAS]["state"] == "connected"
    assert rows[ALIAS]["master_pid"] == pid
    assert rows[ALIAS]["control_path"] == path

    used = ssh_through(config, path, ALIAS, "echo", "through-the-socket")
    assert used.returncode == 0, used.stderr
    assert used.stdout.strip() == "through-the-socket"
    assert ssh_through(config, path, ALIAS, "true").returncode == 0

    # Asked again: the live master is reported, nothing is asked and no ssh login starts.
    status, output = cli.run("connect", ALIAS, *options)
    assert (status, output) == (0, f"{ALIAS}: already connected (master pid {pid}) {path}\n")
    assert len(cli.master_logins()) == 1
    assert mux.alive(path) == pid

    status, output = cli.run("disconnect", ALIAS, *options)
    assert (status, output) == (0, f"{ALIAS}: disconnected\n")
    assert mux.alive(path) is None
    assert not os.path.exists(path)
    assert_no_ssh_left(cli.tmp)

    status, output = cli.run("status", ALIAS, *options)
    assert status == 1
    assert output == f"{ALIAS}: not connected {path}\n"

    status, output = cli.run("disconnect", ALIAS, *options)  # nothing to stop: as status says
    assert (status, output) == (1, f"{ALIAS}: not connected\n")


def test_old_create_ssh_socket_flags(
    cli: Cli, prompt_server: Callable[..., sshserver.ServerThread]
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    config = prompt_server_config(cli.tmp, server)
    port = str(server.port)
    old_flags = ["--host", "127.0.0.1", "--user", "tester", "--port", port, "--timeout", "600"]
    child = cli.spawn("connect", *old_flags, *cli.target_options(config))
    child.expect_exact("(tester@127.0.0.1) Verification code: ")
    otp = code()
    child.sendline(otp)
    pid, persist, path = expect_connected(child, "tester@127.0.0.1")
    status, output = finish(child)
    assert status == 0, output
    assert otp not in output
    assert persist == "600s"
    assert path == engine_path(config, cli.template, "127.0.0.1", user="tester", port=server.port)
    assert mux.alive(path) == pid
    assert "ControlPersist=600s" in psutil.Process(pid).cmdline()

    same_target = ["127.0.0.1", "-l", "tester", "-p", port, *cli.target_options(config)]
    status, output = cli.run("status", *same_target)
    assert (status, output) == (0, f"tester@127.0.0.1: connected (master pid {pid}) {path}\n")
    status, output = cli.run("disconnect", *same_target)
    assert (status, output) == (0, "tester@127.0.0.1: disconnected\n")
    assert mux.alive(path) is None
    assert_no_ssh_left(cli.tmp)


def test_list_json_has_builtin_clusters_and_the_ssh_config_alias(cli: Cli) -> None:
    config = cli.tmp / "ssh_config"
    config.write_text(f"Host {ALIAS}\n  HostName 127.0.0.1\n  Port 2222\n  User tester\n")
    status, output = cli.run("list", "--json", "-F", str(config), "--control-path", cli.template)
    assert status == 0, output
    rows = json.loads(output)  # nothing but JSON on the terminal
    by_name = {row["name"]: row for row in rows}
    for name, host in BUILTIN.items():
        assert by_name[name]["hostname"] == host
        assert by_name[name]["port"] == 22
        assert by_name[name]["source"] == "builtin"
        assert by_name[name]["state"] == "idle"
        assert by_name[name]["control_path"].startswith(f"{cli.sockets}/")
    alias = by_name[ALIAS]
    # The same row shape as GET hy2fa/clusters: host as configured, hostname as resolved.
    assert (alias["host"], alias["hostname"]) == (ALIAS, "127.0.0.1")
    assert (alias["port"], alias["user"]) == (2222, "tester")
    assert alias["source"] == "ssh_config"
    assert alias["control_path"] == engine_path(config, cli.template, ALIAS)
    assert cli.master_logins() == []

    status, output = cli.run("list", "-F", str(config), "--control-path", cli.template)
    assert status == 0, output
    assert re.search(rf"^{ALIAS}\s+idle\s+tester@127\.0\.0\.1:2222$", output, re.M), output
    assert re.search(r"^saga\s+idle\s+\S+@saga\.sigma2\.no:22$", output, re.M), output


BAD_USAGE = [
    pytest.param(["frobnicate"], "invalid choice: 'frobnicate'", id="unknown-subcommand"),
    pytest.param(["connect", "saga", "--persist", "banana"], "persist must be", id="persist"),
    pytest.param(["connect", "saga", "-p", "70000"], "port must be a number", id="port"),
    pytest.param(["status", "saga", "-p", "0"], "port must be a number", id="status-port"),
    pytest.param(
        ["connect", "--", "-oProxyCommand=touch {tmp}/pwned"],
        "must not start with '-'",
        id="connect-dash-target",
    ),
    pytest.param(["path", "--", "-oProxyCommand=x"], "must not start with '-'", id="path-dash"),
    pytest.param(["status", "--", "-evil"], "must not start with '-'", id="status-dash"),
    pytest.param(["disconnect", "--", "-evil"], "must not start with '-'", id="disconnect-dash"),
    pytest.param(["connect", "saga", "--user=-root"], "must not start with '-'", id="user-dash"),
    pytest.param(["connect", "two words"], "whitespace", id="space-in-target"),
    pytest.param(
        ["connect", "saga", "-o", "ControlPath=/x"], "cannot be set here", id="controlpath"
    ),
    pytest.param(
        ["connect", "saga", "-o", "ProxyCommand=touch {tmp}/pwned"],
        "cannot be set here",
        id="proxycommand",
    ),
    pytest.param(["connect", "saga", "-o", "NoEquals"], "expected KEY=VALUE", id="option"),
    pytest.param(
        ["connect", "saga", "-o", "PKCS11Provider={tmp}/lib.so"],
        "PKCS11Provider cannot be set here",
        id="pkcs11",
    ),
    pytest.param(
        ["connect", "saga", "-o", "SecurityKeyProvider={tmp}/lib.so"],
        "cannot be set here",
        id="security-key-provider",
    ),
    pytest.param(
        ["connect", "saga", "-o", "StrictHostKeyChecking=no"], "use yes or ask", id="strict-no"
    ),
    pytest.param(
        ["connect", "saga", "-o", "UserKnownHostsFile=/dev/null"],
        "cannot be set here",
        id="known-hosts-dev-null",
    ),
    pytest.param(
        ["connect", "saga", "--persist", "9999999999w"], "longer than ssh allows", id="persist-big"
    ),
    pytest.param(["connect", "saga", "-l", "%d"], "'%'", id="percent-user"),
    pytest.param(["connect"], "give a TARGET or --host", id="no-target"),
    pytest.param(["connect", "saga", "--host", "fram"], "not both", id="target-and-host"),
]


@pytest.mark.parametrize(("args", "message"), BAD_USAGE)
def test_bad_usage_exits_2_and_spawns_nothing(cli: Cli, args: list[str], message: str) -> None:
    config = cli.tmp / "ssh_config"
    config.write_text("Host saga\n  HostName 127.0.0.1\n  Port 9\n")
    argv = [arg.replace("{tmp}", str(cli.tmp)) for arg in args]
    if argv[0] != "frobnicate":  # options go before any "--"
        argv[1:1] = cli.target_options(config)
    status, output = cli.run(*argv)
    assert status == 2, output
    assert message in output
    assert "Traceback" not in output
    assert cli.ssh_calls() == []  # not even ``ssh -G``: refused before ssh sees anything
    assert not cli.sockets.exists()
    assert not (cli.tmp / "pwned").exists()
    assert_no_ssh_left(cli.tmp, timeout=0)


def test_a_socket_that_never_answers_is_one_line_on_every_command(cli: Cli) -> None:
    hung = cli.tmp / "hung.sock"
    config = cli.tmp / "ssh_config"
    config.write_text(f"Host hung\n  HostName 127.0.0.1\n  Port 9\n  ControlPath {hung}\n")
    listener = SilentListener(str(hung))
    try:
        options = ["-F", str(config)]
        status, output = cli.run("status", "hung", *options)
        assert status == 1 and "Traceback" not in output
        assert (
            output.startswith("hung: unresponsive (The master on ") and "does not answer" in output
        )
        status, output = cli.run("status", *options)  # every profile, the hung one among them
        assert status == 0 and "hung: unresponsive" in output and "Traceback" not in output
        status, output = cli.run("list", "--json", *options)
        rows = {row["name"]: row for row in json.loads(output)}
        assert (
            rows["hung"]["state"] == "unresponsive" and "does not answer" in rows["hung"]["message"]
        )
        status, output = cli.run("disconnect", "hung", *options)
        assert status == 1 and "Traceback" not in output
        assert output.strip().startswith("hy2fa: The master on ") and "left as it is" in output
        status, output = cli.run("connect", "hung", *options)
        assert status == 1 and "Traceback" not in output
        assert output.strip().split("\n")[-1].startswith("hy2fa: hung: The master on ")
        assert "does not answer" in output and "end it, or disconnect" in output
        assert cli.master_logins() == []  # never a second login over a socket that hangs
        assert hung.exists()
    finally:
        listener.close()


def test_a_socket_of_another_user_is_never_used(cli: Cli) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs the suite as root (chown of a test socket)")
        pytest.skip("needs root to give a socket to another user")
    theirs = cli.tmp / "theirs.sock"
    config = cli.tmp / "ssh_config"
    config.write_text(f"Host theirs\n  HostName 127.0.0.1\n  Port 9\n  ControlPath {theirs}\n")
    listener = SilentListener(str(theirs), says=b"")
    try:
        os.chown(theirs, 65534, 65534)
        options = ["-F", str(config)]
        status, output = cli.run("status", "theirs", *options)
        assert status == 1 and "belongs to another user" in output and "connected" not in output
        status, output = cli.run("connect", "theirs", *options)
        assert status == 1 and "Traceback" not in output
        assert "\nhy2fa: theirs: Refusing to use it" in output and "another user" in output
        status, output = cli.run("disconnect", "theirs", *options)
        assert status == 1 and "belongs to another user" in output
        assert cli.master_logins() == []
        assert listener.accepted == 0  # nobody spoke to it
        assert theirs.exists()
    finally:
        listener.close()


# ---- the real OpenSSH sshd with pam_google_authenticator --------------------------------


@pytest.mark.sshd
def test_real_sshd_connect_run_a_command_disconnect(cli: Cli, real_sshd: RealSshd) -> None:
    config = real_sshd.write_client_config(cli.tmp / "ssh_config")
    options = cli.target_options(config)
    child = cli.spawn("connect", FIXTURE, *options)
    child.expect_exact(code_prompt(real_sshd))
    otp = real_sshd.totp()
    child.sendline(otp)
    pid, _persist, path = expect_connected(child, FIXTURE)
    status, output = finish(child)
    assert status == 0, output
    assert otp not in output
    assert output.startswith(f"{connecting(real_sshd)}{code_prompt(real_sshd)}\n")
    assert path == engine_path(config, cli.template, FIXTURE)
    assert mux.alive(path) == pid

    run = ssh_through(config, path, FIXTURE, "echo via-socket $(id -un)")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"via-socket {real_sshd.user}"
    assert real_sshd.log().count("Accepted keyboard-interactive/pam") == 1  # one login only

    status, output = cli.run("disconnect", FIXTURE, *options)
    assert (status, output) == (0, f"{FIXTURE}: disconnected\n")
    assert mux.alive(path) is None
    assert not os.path.exists(path)
    assert_no_ssh_left(cli.tmp)


@pytest.mark.sshd
def test_real_sshd_wrong_code_then_right_code(cli: Cli, real_sshd: RealSshd) -> None:
    config = real_sshd.write_client_config(cli.tmp / "ssh_config")
    prompt = code_prompt(real_sshd)
    child = cli.spawn("connect", FIXTURE, *cli.target_options(config))
    child.expect_exact(prompt)
    wrong = real_sshd.wrong_code()
    child.sendline(wrong)
    child.expect_exact("Wrong code — try again")
    child.expect_exact(prompt)
    right = real_sshd.totp()
    child.sendline(right)
    _pid, _persist, path = expect_connected(child, FIXTURE)
    status, output = finish(child)
    assert status == 0, output
    assert output.startswith(
        f"{connecting(real_sshd)}{prompt}\nWrong code — try again\n{prompt}\n{FIXTURE}: connected"
    )
    assert wrong not in output
    assert right not in output
    assert mux.alive(path) is not None


@pytest.mark.sshd
def test_real_sshd_three_wrong_codes_fail_with_auth_failed(cli: Cli, real_sshd: RealSshd) -> None:
    config = real_sshd.write_client_config(cli.tmp / "ssh_config")
    child = cli.spawn("connect", FIXTURE, *cli.target_options(config))
    for _ in range(3):
        child.expect_exact(code_prompt(real_sshd))
        child.sendline(real_sshd.wrong_code())
    status, output = finish(child)
    assert status == 1, output
    assert output.count(code_prompt(real_sshd)) == 3
    assert output.count("Wrong code — try again") == 2
    failures = [line for line in output.splitlines() if line.startswith("hy2fa: ")]
    assert len(failures) == 1, output
    assert failures[0].startswith(f"hy2fa: {FIXTURE}: Login refused by ")
    assert "Permission denied" in failures[0] and "Check the code" in failures[0]
    assert sockets_in(cli.sockets) == []
    assert_no_ssh_left(cli.tmp)


@pytest.mark.sshd
def test_real_sshd_first_contact_host_key_no_then_yes(cli: Cli, real_sshd: RealSshd) -> None:
    config = real_sshd.write_client_config(
        cli.tmp / "ssh_config", trust_host_key=False, strict_host_key_checking="ask"
    )
    known_hosts = cli.tmp / "ssh_config.known_hosts"
    assert known_hosts.read_text() == ""
    question = "Are you sure you want to continue connecting (yes/no/[fingerprint])? "

    child = cli.spawn("connect", FIXTURE, *cli.target_options(config))
    child.expect_exact(question)
    assert f"The authenticity of host '[127.0.0.1]:{real_sshd.port}" in child.before
    assert f"ED25519 key fingerprint is {real_sshd.host_key_fingerprint}." in child.before
    child.sendline("no")
    status, output = finish(child)
    assert status == 1, output
    assert output.splitlines()[-1] == (
        f"hy2fa: {FIXTURE}: The host key was refused: nothing was connected"
    )
    assert sum("host key was refused" in line for line in output.splitlines()) == 1
    assert "Verification code" not in output
    assert known_hosts.read_text() == ""
    assert sockets_in(cli.sockets) == []
    assert_no_ssh_left(cli.tmp)

    child = cli.spawn("connect", FIXTURE, *cli.target_options(config))
    child.expect_exact(question)
    assert real_sshd.host_key_fingerprint in child.before
    child.sendline("yes")
    child.expect_exact(code_prompt(real_sshd))
    child.sendline(real_sshd.totp())
    _pid, _persist, path = expect_connected(child, FIXTURE)
    status, output = finish(child)
    assert status == 0, output
    assert mux.alive(path) is not None
    assert real_sshd.known_hosts_line().split()[2] in known_hosts.read_text()


@pytest.mark.sshd
def test_ctrl_c_at_the_prompt_exits_130_and_leaves_no_ssh(cli: Cli, real_sshd: RealSshd) -> None:
    config = real_sshd.write_client_config(cli.tmp / "ssh_config")
    child = cli.spawn("connect", FIXTURE, *cli.target_options(config))
    child.expect_exact(code_prompt(real_sshd))
    logins = [argv for argv in ssh_processes(str(cli.tmp)).values() if "-M" in argv]
    assert len(logins) == 1  # the login is under way
    child.sendintr()
    status, output = finish(child)
    assert status == 130, output
    assert output.rstrip("\n").splitlines()[-1] == "hy2fa: cancelled"
    assert "Traceback" not in output
    assert sockets_in(cli.sockets) == []
    assert_no_ssh_left(cli.tmp)


@pytest.mark.sshd
def test_ctrl_d_at_the_prompt_cancels(cli: Cli, real_sshd: RealSshd) -> None:
    config = real_sshd.write_client_config(cli.tmp / "ssh_config")
    child = cli.spawn("connect", FIXTURE, *cli.target_options(config))
    child.expect_exact(code_prompt(real_sshd))
    child.sendeof()
    status, output = finish(child)
    assert status == 1, output
    assert output.splitlines()[-1] == f"hy2fa: {FIXTURE}: Cancelled"
    assert output.startswith(
        f"{connecting(real_sshd)}{code_prompt(real_sshd)}\n"
    )  # the prompt's line was ended
    assert_no_ssh_left(cli.tmp)


@pytest.mark.sshd
def test_unanswered_prompt_times_out(cli: Cli, real_sshd: RealSshd) -> None:
    config = real_sshd.write_client_config(cli.tmp / "ssh_config")
    child = cli.spawn("connect", FIXTURE, "--prompt-timeout", "1", *cli.target_options(config))
    child.expect_exact(code_prompt(real_sshd))
    status, output = finish(child)
    assert status == 1, output
    assert output.splitlines()[-1].startswith(f"hy2fa: {FIXTURE}: Nobody answered the prompt")
    assert output.splitlines()[-1].endswith("ready to type the code.")
    assert output.startswith(f"{connecting(real_sshd)}{code_prompt(real_sshd)}\n")
    assert sockets_in(cli.sockets) == []
    assert_no_ssh_left(cli.tmp)
