"""The askpass bridge with the real OpenSSH client: ``hy2fa-askpass`` as ``SSH_ASKPASS``, its
questions arriving at :class:`AskBridge`, answered or cancelled as a person in Lab would."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from helpers import SECRET, code, otp_ok
from procs import cmdlines, process_alive

from hy2fa_lab.core.asks import Ask, AskBridge
from hy2fa_lab.core.types import PromptKind
from hy2fa_lab.demo import sshserver

PASSWORD = "pw-" + os.urandom(6).hex()
ASKPASS = str(Path(sys.executable).parent / "hy2fa-askpass")


class Asked:
    """The bridge's asks as they arrive, for a test to wait on."""

    def __init__(self, bridge: AskBridge) -> None:
        self.events: list[tuple[str, str]] = []
        self._arrived: asyncio.Queue[Ask] = asyncio.Queue()
        bridge.subscribe(self._heard)

    def _heard(self, ask: Ask, action: str) -> None:
        self.events.append((ask.id, action))
        if action == "asked":
            self._arrived.put_nowait(ask)

    async def next(self, timeout: float = 20) -> Ask:
        return await asyncio.wait_for(self._arrived.get(), timeout)


def helpers_of(socket_path: str) -> list[int]:
    """Live hy2fa-askpass processes that talk to ``socket_path`` (from their environment)."""
    needle = f"HY2FA_ASKPASS_SOCKET={socket_path}".encode()
    found = []
    for pid, argv in cmdlines().items():
        if len(argv) > 1 and argv[1].endswith("hy2fa-askpass"):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if needle in environ:
                found.append(pid)
    return found


@pytest_asyncio.fixture
async def bridge(short_tmp: Path) -> AsyncIterator[AskBridge]:
    bridge = AskBridge(str(short_tmp / "run" / "ask"), timeout=20, limit=3)
    await bridge.start()
    yield bridge
    await bridge.close()
    deadline = time.monotonic() + 5
    while helpers_of(bridge.path) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert helpers_of(bridge.path) == []  # no helper outlives its question


def ssh_config(directory: Path, port: int) -> Path:
    """A Host alias with an empty known_hosts: the first question is the host key."""
    config = directory / "ssh_config"
    config.write_text(
        "Host target\n  HostName 127.0.0.1\n"
        f"  Port {port}\n  User tester\n"
        f"  UserKnownHostsFile {directory}/known_hosts\n  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking ask\n  PreferredAuthentications keyboard-interactive\n"
        f"  ControlMaster auto\n  ControlPath {directory}/hsp.sock\n  ControlPersist 60\n"
    )
    return config


def askpass_env(bridge: AskBridge) -> dict[str, str]:
    return {
        **os.environ,
        "SSH_ASKPASS": ASKPASS,
        "SSH_ASKPASS_REQUIRE": "force",
        "HY2FA_ASKPASS_SOCKET": bridge.path,
    }


async def run_ssh(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    """ssh as a kernel runs it: a session of its own, no terminal, stdin from /dev/null."""
    return await asyncio.create_subprocess_exec(
        "ssh",
        *args,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


async def finished(proc: asyncio.subprocess.Process, timeout: float = 20) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def stop_master(config: Path) -> None:
    subprocess.run(
        ["ssh", "-F", str(config), "-O", "exit", "target"], capture_output=True, timeout=10
    )


async def test_host_key_code_and_password_are_asked_in_order_and_the_command_runs(
    bridge: AskBridge, prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    server = prompt_server(sshserver.sigma2(otp_ok, PASSWORD))
    config = ssh_config(short_tmp, server.port)
    asked = Asked(bridge)
    proc = await run_ssh(askpass_env(bridge), "-F", str(config), "target", "echo", "ran-here")
    try:
        hostkey = await asked.next()
        assert hostkey.prompt.kind is PromptKind.HOSTKEY
        assert server.host_key_fingerprint in hostkey.prompt.text
        assert hostkey.host is not None and "127.0.0.1" in hostkey.host
        assert hostkey.command[0].endswith("ssh") and "target" in hostkey.command
        assert hostkey.origin["pid"] == proc.pid
        assert [a.id for a in bridge.asks()] == [hostkey.id]
        bridge.answer(hostkey.id, "yes")

        otp = await asked.next()
        assert otp.prompt.kind is PromptKind.OTP
        assert otp.prompt.text.startswith("(tester@127.0.0.1) One-time password (OATH)")
        assert otp.host == "127.0.0.1"
        bridge.answer(otp.id, code())

        password = await asked.next()
        assert password.prompt.kind is PromptKind.PASSWORD
        bridge.answer(password.id, PASSWORD)

        status, out, err = await finished(proc)
        assert (status, out) == (0, "ran-here\n"), err
        assert bridge.asks() == []
        assert [action for _, action in asked.events] == ["asked", "answered"] * 3

        # The master ssh left behind is used without a single question.
        again = await run_ssh(askpass_env(bridge), "-F", str(config), "target", "echo", "again")
        status, out, err = await finished(again)
        assert (status, out) == (0, "again\n"), err
        assert len(asked.events) == 6
    finally:
        if proc.returncode is None:
            proc.kill()
        stop_master(config)


async def test_cancel_ends_the_ssh_at_once_instead_of_asking_again(
    bridge: AskBridge, prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    config = ssh_config(short_tmp, server.port)
    (short_tmp / "known_hosts").write_text(server.known_hosts_line())
    asked = Asked(bridge)
    proc = await run_ssh(askpass_env(bridge), "-F", str(config), "target", "true")
    ask = await asked.next()
    assert ask.prompt.kind is PromptKind.OTP
    started = time.monotonic()
    bridge.cancel(ask.id)
    status, _, err = await finished(proc, timeout=5)
    assert status != 0
    assert time.monotonic() - started < 2
    assert "Cancelled in JupyterLab" in err
    assert [action for _, action in asked.events] == ["asked", "cancelled"]  # asked once only
    assert bridge.asks() == []


async def test_an_ask_vanishes_when_its_ssh_exits(
    bridge: AskBridge, prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    config = ssh_config(short_tmp, server.port)
    (short_tmp / "known_hosts").write_text(server.known_hosts_line())
    asked = Asked(bridge)
    proc = await run_ssh(askpass_env(bridge), "-F", str(config), "target", "true")
    ask = await asked.next()
    proc.kill()
    await proc.wait()
    deadline = time.monotonic() + 5
    while bridge.asks() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert bridge.asks() == []
    assert (ask.id, "withdrawn") in asked.events


async def test_nobody_answering_expires_the_ask_and_ends_the_ssh(
    prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    bridge = AskBridge(str(short_tmp / "run" / "ask"), timeout=1)
    await bridge.start()
    try:
        server = prompt_server(sshserver.totp(SECRET))
        config = ssh_config(short_tmp, server.port)
        (short_tmp / "known_hosts").write_text(server.known_hosts_line())
        asked = Asked(bridge)
        proc = await run_ssh(askpass_env(bridge), "-F", str(config), "target", "true")
        status, _, err = await finished(proc, timeout=10)
        assert status != 0 and "nobody answered in JupyterLab within 1 s" in err
        assert [action for _, action in asked.events] == ["asked", "expired"]
    finally:
        await bridge.close()


async def test_a_bounded_number_of_asks_wait_further_ones_are_refused_at_once(
    bridge: AskBridge, prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    config = ssh_config(short_tmp, server.port)
    (short_tmp / "known_hosts").write_text(server.known_hosts_line())
    asked = Asked(bridge)
    env = askpass_env(bridge)
    waiting = []
    try:
        for index in range(bridge.limit):
            path = f"ControlPath={short_tmp}/m{index}"
            waiting.append(await run_ssh(env, "-F", str(config), "-o", path, "target", "true"))
            await asked.next()
        extra = await run_ssh(env, "-F", str(config), "-o", "ControlMaster=no", "target", "true")
        status, _, err = await finished(extra, timeout=10)
        assert status != 0 and "too many ssh questions are waiting" in err
        assert len(bridge.asks()) == bridge.limit
    finally:
        for proc in waiting:
            proc.kill()
            await proc.wait()


async def test_without_a_server_the_helper_says_so_within_a_second(short_tmp: Path) -> None:
    env = {**os.environ, "HY2FA_ASKPASS_SOCKET": str(short_tmp / "nobody-listens")}
    started = time.monotonic()
    result = await asyncio.to_thread(
        subprocess.run,
        [ASKPASS, "(tester@host) Password: "],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        start_new_session=True,
    )
    assert time.monotonic() - started < 3  # a second, plus the interpreter's start-up
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.startswith("hy2fa-askpass: cannot reach the Jupyter server")
    assert result.stderr.count("\n") == 1


async def test_another_user_is_refused(bridge: AskBridge, short_tmp: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with setpriv (util-linux)")
        pytest.skip("needs root and setpriv to ask as another user")
    # Let another user reach the socket at all, so that SO_PEERCRED is what refuses them.
    os.chmod(short_tmp, 0o711)
    os.chmod(os.path.dirname(bridge.path), 0o711)
    os.chmod(bridge.path, 0o666)
    asked = Asked(bridge)
    script = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        f"s.connect({bridge.path!r})\n"
        "sys.stdout.write(s.recv(200).decode())\n"  # refused before it even asks
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.stdout.startswith("Eonly the user running Jupyter can ask"), result.stderr
    assert asked.events == []


async def test_a_terminal_is_asked_in_the_terminal(short_tmp: Path) -> None:
    """An ssh in a terminal a person looks at asks there, exactly as before."""
    import pexpect

    env = {**os.environ, "HY2FA_ASKPASS_SOCKET": str(short_tmp / "nobody-listens")}
    child = pexpect.spawn(ASKPASS, ["(tester@host) Password: "], env=env, encoding="utf-8")
    try:
        child.expect_exact("(tester@host) Password: ", timeout=10)
        child.sendline("typed-at-the-terminal")
        child.expect(pexpect.EOF, timeout=10)
        assert "typed-at-the-terminal" in (child.before or "")  # its stdout, not an echo
        child.close()
        assert child.exitstatus == 0
    finally:
        if child.isalive():
            child.kill(9)


def test_the_socket_is_private(bridge: AskBridge) -> None:
    info = os.stat(bridge.path)
    assert oct(info.st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(bridge.path)).st_mode & 0o777) == "0o700"
    with socket.socket(socket.AF_UNIX) as probe:
        probe.connect(bridge.path)  # ours: accepted
    assert process_alive(os.getpid())


async def test_a_cancel_signals_only_an_ssh_parent(bridge: AskBridge, short_tmp: Path) -> None:
    """Run by hand (its parent a shell or this test), a cancelled helper signals nobody."""
    asked = Asked(bridge)
    env = {**os.environ, "HY2FA_ASKPASS_SOCKET": bridge.path}
    helper = await asyncio.create_subprocess_exec(
        ASKPASS, "Password: ", env=env, stderr=subprocess.PIPE, start_new_session=True
    )
    ask = await asked.next()
    assert ask.origin["pid"] == os.getpid()  # the helper's parent: this test, not an ssh
    bridge.cancel(ask.id)
    _, err = await asyncio.wait_for(helper.communicate(), 10)
    assert helper.returncode == 1 and b"Cancelled in JupyterLab" in err
    assert process_alive(os.getpid())  # still here: no SIGTERM reached the parent


async def test_a_terminal_outside_any_kernel_is_told_to_ask_there(
    bridge: AskBridge, short_tmp: Path
) -> None:
    """With a server but no kernel above it (a shell, a Lab terminal), the helper asks on its
    terminal, and Lab is not bothered."""
    import pexpect

    asked = Asked(bridge)
    env = {**os.environ, "HY2FA_ASKPASS_SOCKET": bridge.path}
    child = await asyncio.to_thread(
        pexpect.spawn, ASKPASS, ["(tester@host) Password: "], env=env, encoding="utf-8"
    )
    try:
        await asyncio.to_thread(child.expect_exact, "(tester@host) Password: ", timeout=10)
        child.sendline("typed-at-the-terminal")
        await asyncio.to_thread(child.expect, pexpect.EOF, timeout=10)
        assert "typed-at-the-terminal" in (child.before or "")
        assert asked.events == []
    finally:
        if child.isalive():
            child.kill(9)
        child.close()
