"""The askpass bridge with the real OpenSSH client: ``hy2fa-askpass`` as ``SSH_ASKPASS``, its
questions arriving at :class:`AskBridge`, answered or cancelled as a person in Lab would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio
from helpers import SECRET, code, otp_ok
from procs import cmdlines, environment_of, process_alive

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
    return [
        pid
        for pid, argv in cmdlines().items()
        if len(argv) > 1
        and argv[1].endswith("hy2fa-askpass")
        and environment_of(pid).get("HY2FA_ASKPASS_SOCKET") == socket_path
    ]


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


def known_target(prompt_server: Callable[..., Any], directory: Path) -> Path:
    """``ssh_config`` of a one-time-code server whose host key is already known: the first
    question is the code."""
    server = prompt_server(sshserver.totp(SECRET))
    config = ssh_config(directory, server.port)
    (directory / "known_hosts").write_text(server.known_hosts_line())
    return config


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
    config = known_target(prompt_server, short_tmp)
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
    config = known_target(prompt_server, short_tmp)
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
        config = known_target(prompt_server, short_tmp)
        asked = Asked(bridge)
        proc = await run_ssh(askpass_env(bridge), "-F", str(config), "target", "true")
        ask = await asked.next()
        # The view says when it stops waiting, as a connection's prompt does (Lab counts down).
        expires = ask.to_json()["prompt"]["expires"]
        assert datetime.fromisoformat(expires).timestamp() == pytest.approx(ask.since + 1)
        status, _, err = await finished(proc, timeout=10)
        assert status != 0 and "nobody answered in JupyterLab within 1 s" in err
        assert [action for _, action in asked.events] == ["asked", "expired"]
    finally:
        await bridge.close()


async def test_a_bounded_number_of_asks_wait_further_ones_are_refused_at_once(
    bridge: AskBridge, prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    config = known_target(prompt_server, short_tmp)
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


async def test_cancelling_an_agents_confirmation_leaves_the_agent_and_its_keys(
    bridge: AskBridge, short_tmp: Path
) -> None:
    """``ssh-add -c``: a kernel's ssh-agent asks through the bridge before each use of the
    key. Cancel refuses that use; the agent (the helper's parent) keeps running, keys and all."""
    key = short_tmp / "id_agent"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "agent-test", "-f", str(key)],
        check=True,
        timeout=20,
    )
    agent_socket = short_tmp / "agent.sock"
    agent = await asyncio.create_subprocess_exec(
        "ssh-agent", "-D", "-a", str(agent_socket),
        env=askpass_env(bridge), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        assert agent.stdout is not None
        await asyncio.wait_for(agent.stdout.readline(), 10)  # SSH_AUTH_SOCK=...: listening
        env = {**os.environ, "SSH_AUTH_SOCK": str(agent_socket)}
        subprocess.run(["ssh-add", "-q", "-c", str(key)], env=env, check=True, timeout=20)
        key.unlink()  # only the agent can sign now
        data = short_tmp / "data"
        data.write_text("sign me\n")
        asked = Asked(bridge)
        signer = await asyncio.create_subprocess_exec(
            "ssh-keygen", "-Y", "sign", "-f", f"{key}.pub", "-n", "file", str(data),
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        ask = await asked.next()
        assert "Allow use of key" in ask.prompt.text and ask.origin["pid"] == agent.pid
        bridge.cancel(ask.id)
        status, _, err = await finished(signer)
        assert status != 0 and "agent refused operation" in err
        assert agent.returncode is None and process_alive(agent.pid)
        listed = subprocess.run(
            ["ssh-add", "-l"], env=env, capture_output=True, text=True, timeout=20
        )
        assert listed.returncode == 0 and "agent-test" in listed.stdout
    finally:
        if agent.returncode is None:
            agent.kill()
        await agent.wait()


# The helper as the Python of these tests runs it, with pidfds taken away (as on macOS).
NO_PIDFD_HELPER = [
    sys.executable,
    "-c",
    "import os, sys\ndel os.pidfd_open\nfrom hy2fa_lab.askpass import main\nsys.exit(main())\n",
]


def named_program(directory: Path, name: str) -> Path:
    """This Python under the name ``name``: the kernel's comm of what it runs is ``name``."""
    program = directory / name
    program.symlink_to(sys.executable)
    return program


async def cancel_under(
    bridge: AskBridge, program: Path, helper: list[str]
) -> tuple[int | None, bytes]:
    """Run ``helper`` (asking "Password: ") as the child of ``program``, cancel its question:
    how ``program`` ended and what it printed."""
    parent = (
        "import subprocess, sys\n"
        f"helper = subprocess.run({[*helper, 'Password: ']!r}, stderr=subprocess.DEVNULL)\n"
        "print('helper exited', helper.returncode, flush=True)\n"
    )
    asked = Asked(bridge)
    proc = await asyncio.create_subprocess_exec(
        str(program), "-c", parent, env={**os.environ, "HY2FA_ASKPASS_SOCKET": bridge.path},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    ask = await asked.next()
    assert ask.origin["pid"] == proc.pid
    assert psutil.Process(proc.pid).name() == program.name
    bridge.cancel(ask.id)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode, out


@pytest.mark.parametrize(
    ("name", "ended"),
    [
        ("ssh", True),
        ("ssh-agent", False),
        ("ssh-add", False),
        ("sshd", False),
        ("ssh-keygen", False),
        ("sshpass", False),
        ("ssh2", False),
    ],
)
async def test_a_cancel_ends_only_an_ssh_client(
    bridge: AskBridge, short_tmp: Path, name: str, ended: bool
) -> None:
    """The helper's parent is a program called ``name``: only the ssh client is ended."""
    status, out = await cancel_under(bridge, named_program(short_tmp, name), [ASKPASS])
    if ended:
        assert status == -signal.SIGTERM
    else:
        assert (status, out) == (0, b"helper exited 1\n")


@pytest.mark.parametrize(("name", "ended"), [("ssh", True), ("ssh-agent", False)])
async def test_without_pidfds_a_cancel_still_ends_only_an_ssh_client(
    bridge: AskBridge, short_tmp: Path, name: str, ended: bool
) -> None:
    """The fallback where there are no pidfds (macOS, older Linux): ``os.kill``."""
    program = named_program(short_tmp, name)
    status, out = await cancel_under(bridge, program, NO_PIDFD_HELPER)
    if ended:
        assert status == -signal.SIGTERM
    else:
        assert (status, out) == (0, b"helper exited 1\n")


@pytest.mark.parametrize(("name", "client"), [("ssh", True), ("ssh-agent", False)])
def test_without_proc_the_parent_is_known_by_ps(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch, name: str, client: bool
) -> None:
    """The fallback where there is no /proc (macOS): ``ps -o comm=``."""
    from hy2fa_lab import askpass

    program = named_program(short_tmp, name)
    script = "import sys; print('up', flush=True); sys.stdin.read()"
    with subprocess.Popen(
        [str(program), "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()  # running as ``name`` (the kernel names it late in exec)
        assert askpass._is_ssh_client(proc.pid) is client  # from /proc
        real_open = open

        def no_proc(path: Any, *args: Any, **kwargs: Any) -> Any:
            if str(path).startswith("/proc/"):
                raise FileNotFoundError(path)
            return real_open(path, *args, **kwargs)

        with monkeypatch.context() as patched:
            patched.setattr("builtins.open", no_proc)
            patched.setattr(os.path, "isdir", lambda path: not str(path).startswith("/proc"))
            assert askpass._is_ssh_client(proc.pid) is client  # from ps
            proc.kill()
            proc.wait()
            assert askpass._is_ssh_client(proc.pid) is False  # gone


def sockets_of(pid: int) -> set[str]:
    """The sockets ``pid`` holds open (``socket:[inode]``)."""
    found = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:"):
                    found.add(target)
    return found


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"),
    reason="tells the helper's sockets apart by their inodes in /proc/<pid>/fd (Linux)",
)
async def test_a_full_backlog_is_waited_out_within_the_helpers_deadline(short_tmp: Path) -> None:
    """Many questions at once (a parallel rsync): a helper that finds the listener's backlog
    full tries again, on a new socket, until its connect deadline, instead of giving up."""
    bridge = AskBridge(str(short_tmp / "run" / "ask"), timeout=20)
    bridge.listen()
    assert bridge._sock is not None
    bridge._sock.listen(0)  # the smallest backlog, so that the test can fill it
    fillers = []
    try:
        while True:
            filler = socket.socket(socket.AF_UNIX)
            filler.setblocking(False)
            try:
                filler.connect(bridge.path)
            except BlockingIOError:
                filler.close()
                break
            fillers.append(filler)
        asked = Asked(bridge)
        helper = await asyncio.create_subprocess_exec(
            ASKPASS, "(tester@host) Password: ",
            env={**os.environ, "HY2FA_ASKPASS_SOCKET": bridge.path},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        tried: set[str] = set()
        deadline = time.monotonic() + 20
        while len(tried) < 2 and helper.returncode is None and time.monotonic() < deadline:
            tried |= sockets_of(helper.pid)
            await asyncio.sleep(0.002)
        assert len(tried) >= 2, "the helper did not try again"  # a refused try, then another
        for filler in fillers:
            filler.close()
        fillers.clear()
        await bridge.serve()
        ask = await asked.next()
        bridge.answer(ask.id, "through-at-last")
        out, err = await asyncio.wait_for(helper.communicate(), 20)
        assert (helper.returncode, out) == (0, b"through-at-last\n"), err
    finally:
        for filler in fillers:
            filler.close()
        await bridge.close()


async def test_the_listener_holds_many_helpers_before_it_serves(short_tmp: Path) -> None:
    """The backlog is the system's (SOMAXCONN), not 64: questions that arrive while the server
    is busy wait in it."""
    bridge = AskBridge(str(short_tmp / "run" / "ask"), timeout=20)
    bridge.listen()
    waiting = []
    try:
        for _ in range(200):
            client = socket.socket(socket.AF_UNIX)
            client.setblocking(False)
            waiting.append(client)
            client.connect(bridge.path)  # BlockingIOError once the backlog is full
    finally:
        for client in waiting:
            client.close()
        await bridge.close()
