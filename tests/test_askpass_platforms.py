"""The askpass bridge where Linux's process facts are missing, simulated here two ways:

- *macOS-like*: the server has no ``SO_PEERCRED`` and no ``os.pidfd_open`` (taken away in
  this process, where pytest-jupyter runs the server), and learns about processes through
  psutil only, as on macOS;
- *no process information at all*: the server, its kernels and their ssh run in a mount
  namespace whose /proc is an empty tmpfs (``hide_proc``), against the real sshd outside.

Every askpass promise must hold in both: questions asked in Lab, answers getting through,
Cancel ending the ssh within seconds, no helper left, nothing raising."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import struct
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from helpers import code
from procs import cmdlines, environment_of
from server_process import Events, JupyterServer
from test_askpass import (
    ASKPASS,
    Asked,
    askpass_env,
    finished,
    helpers_of,
    known_target,
)
from test_askpass_server import ssh_code, start_kernel, stop_kernel

from hy2fa_lab import askwire
from hy2fa_lab.core import mux, platform, processes
from hy2fa_lab.core.asks import AskBridge
from hy2fa_lab.server import app as server_app

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd
except ImportError:
    from sshd_fixture import RealSshd  # type: ignore[no-redef]

Fetch = Callable[..., Any]


async def ended_or_asked_again(proc: asyncio.subprocess.Process, asked: Asked) -> tuple[int, str]:
    """Wait for ``proc`` (an ssh whose question was cancelled) to exit; fail at once if it
    asks again instead. Its exit status and stderr."""
    exited = asyncio.ensure_future(proc.communicate())
    again = asyncio.ensure_future(asked.next(timeout=3600))
    done, _ = await asyncio.wait({exited, again}, return_when=asyncio.FIRST_COMPLETED)
    again.cancel()
    if exited not in done:
        proc.kill()
        await exited
        raise AssertionError("the cancelled ssh asked again")
    _, err = exited.result()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


# ---- the bridge alone, with a real ssh ---------------------------------------------------


@pytest_asyncio.fixture
async def bridge(short_tmp: Path) -> AsyncIterator[AskBridge]:
    bridge = AskBridge(str(short_tmp / "run" / "ask"), timeout=60)
    await bridge.start()
    yield bridge
    await bridge.close()
    assert helpers_of(bridge.path) == []  # no helper outlives its question


async def test_without_process_information_a_cancel_refuses_that_sshs_further_questions(
    bridge: AskBridge, prompt_server: Callable[..., Any], short_tmp: Path, hide_proc: list[str]
) -> None:
    """The ssh (and so its helper) sees no /proc: the helper cannot tell that its parent is
    an ssh client and signals nobody. The bridge refuses every further question of that ssh
    at once, so ssh gives up (NumberOfPasswordPrompts) instead of asking again in Lab."""
    config = known_target(prompt_server, short_tmp)
    asked = Asked(bridge)
    proc = await asyncio.create_subprocess_exec(
        *hide_proc, "ssh", "-F", str(config), "target", "true",
        env=askpass_env(bridge), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    ask = await asked.next()
    assert ask.origin["pid"] == proc.pid  # the helper named its parent: this ssh
    bridge.cancel(ask.id)
    status, err = await ended_or_asked_again(proc, asked)
    assert status != 0
    assert err.count("hy2fa-askpass: Cancelled in JupyterLab") >= 2  # refused again
    assert [action for _, action in asked.events] == ["asked", "cancelled"]
    assert bridge.asks() == []


async def test_another_ssh_of_the_same_session_still_asks(
    bridge: AskBridge, prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    """Only the cancelled ssh is refused: the next one (another pid) asks as usual."""
    config = known_target(prompt_server, short_tmp)
    asked = Asked(bridge)
    env = askpass_env(bridge)
    argv = ["ssh", "-F", str(config), "-o", "ControlMaster=no", "target", "echo", "next"]
    first = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    bridge.cancel((await asked.next()).id)
    assert (await finished(first))[0] != 0
    second = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    ask = await asked.next()
    assert ask.origin["pid"] == second.pid
    bridge.answer(ask.id, code())
    assert (await finished(second))[:2] == (0, "next\n")


async def ask_raw(path: str, data: bytes) -> bytes:
    """What the bridge replies to ``data`` sent from this process."""
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_a_helper_that_names_another_parent_is_refused(bridge: AskBridge) -> None:
    """Where the peer's pid is known (SO_PEERCRED) and its parent too, they must agree."""
    asked = Asked(bridge)
    parent = os.getppid()  # this test is the "helper": its parent is not pid 1
    lying = await ask_raw(bridge.path, askwire.request("Password: ", False, 1, os.getsid(0)))
    assert askwire.parse_reply(lying) == (
        "refused",
        "hy2fa-askpass named another process than its parent",
    )
    assert asked.events == []
    honest = asyncio.ensure_future(
        ask_raw(bridge.path, askwire.request("Password: ", False, parent, os.getsid(0)))
    )
    ask = await asked.next()
    assert ask.origin["pid"] == parent
    bridge.answer(ask.id, "fine")
    assert askwire.parse_reply(await honest) == ("answer", "fine")


# ---- the peer check on every platform ----------------------------------------------------


class FakeLocalSocket:
    """A Unix socket as macOS's getsockopt(SOL_LOCAL, ...) answers for it."""

    def __init__(self, xucred: bytes, pid: int | None = None) -> None:
        self.xucred = xucred
        self.pid = pid
        self.asked: list[tuple[int, int, int]] = []

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        self.asked.append((level, option, size))
        if (level, option) == (0, 1):
            return self.xucred[:size]
        if (level, option) == (0, 2) and self.pid is not None:
            return struct.pack("i", self.pid)
        raise OSError(92, "Protocol not available")


def xucred(version: int, uid: int, groups: tuple[int, ...] = (20, 12)) -> bytes:
    padded = (*groups, *([0] * (16 - len(groups))))
    return struct.pack("IIh16I", version, uid, len(groups), *padded)


@pytest.fixture
def macos_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The socket module as on macOS: LOCAL_PEERCRED and LOCAL_PEERPID, no SO_PEERCRED."""
    monkeypatch.delattr(socket, "SO_PEERCRED")
    monkeypatch.setattr(socket, "LOCAL_PEERCRED", 1, raising=False)
    monkeypatch.setattr(socket, "LOCAL_PEERPID", 2, raising=False)


def test_local_peercred_gives_the_peers_uid_and_pid(macos_sockets: None) -> None:
    assert processes.peer_check() == "LOCAL_PEERCRED"
    sock = FakeLocalSocket(xucred(0, 501), pid=4321)
    assert processes.peer_of(sock) == processes.Peer(uid=501, pid=4321)
    assert (0, 1, struct.calcsize("IIh16I")) in sock.asked
    # FreeBSD: no LOCAL_PEERPID, so the uid alone
    assert processes.peer_of(FakeLocalSocket(xucred(0, 1001))) == processes.Peer(1001, None)


@pytest.mark.parametrize(
    "raw", [xucred(1, 501), xucred(0, 501)[:6], b""], ids=["other-version", "short", "empty"]
)
def test_a_local_peercred_answer_that_cannot_be_read_raises(
    macos_sockets: None, raw: bytes
) -> None:
    with pytest.raises(OSError):
        processes.peer_of(FakeLocalSocket(raw))


async def test_a_peer_check_that_fails_refuses_the_question(
    bridge: AskBridge, macos_sockets: None
) -> None:
    """The system has a peer check (LOCAL_PEERCRED here) and it fails (Linux refuses the
    option on this real socket): refused at once, fail closed, no exception, no ask."""
    asked = Asked(bridge)
    reply = await ask_raw(
        bridge.path, askwire.request("Password: ", False, os.getppid(), os.getsid(0))
    )
    assert askwire.parse_reply(reply) == ("refused", "the Jupyter server could not tell who asks")
    assert asked.events == []


async def test_without_any_peer_check_the_private_directory_is_what_keeps_others_out(
    bridge: AskBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(socket, "SO_PEERCRED")
    assert processes.peer_check() == "" and processes.peer_of(object()) == processes.Peer(None)
    assert not platform.peer_credentials().available
    assert os.stat(os.path.dirname(bridge.path)).st_mode & 0o777 == 0o700
    asked = Asked(bridge)
    helper = await asyncio.create_subprocess_exec(
        ASKPASS, "Password: ", env={**os.environ, askwire.SOCKET_ENV: bridge.path},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    bridge.answer((await asked.next()).id, "asked-without-a-peer-check")
    out, _ = await asyncio.wait_for(helper.communicate(), 20)
    assert (helper.returncode, out) == (0, b"asked-without-a-peer-check\n")


# ---- macOS-like: a real Jupyter server in this process without SO_PEERCRED and pidfd ----


class LabEvents:
    """The server's events as Lab hears them (its event logger), for a test to wait on."""

    def __init__(self, serverapp: Any) -> None:
        self.serverapp = serverapp
        self.seen: list[dict[str, Any]] = []
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        serverapp.event_logger.add_listener(listener=self._heard)

    async def _heard(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        event = {"schema_id": schema_id, **data}
        self.seen.append(event)
        self._queue.put_nowait(event)

    async def next(self, kind: str, **match: Any) -> dict[str, Any]:
        while True:
            event = await self._queue.get()
            if event["schema_id"].endswith(f"/{kind}/v2") and all(
                event.get(key) == value for key, value in match.items()
            ):
                return event

    def close(self) -> None:
        self.serverapp.event_logger.remove_listener(listener=self._heard)


@pytest.fixture
def macos_like(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as the server sees macOS: no SO_PEERCRED (nor LOCAL_PEERCRED, which
    Linux has not either), no pidfds, process facts from psutil only; and a periodic check
    the test need not wait 15 s for."""
    monkeypatch.delattr(socket, "SO_PEERCRED")
    monkeypatch.delattr(os, "pidfd_open")
    monkeypatch.setattr(server_app, "_REFRESH_SECONDS", 0.2)


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def extension_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[logging.LogRecord]]:
    """Every record of the extension's logger from the server's start on. (caplog cannot
    hear what it logs while the server initializes: the server's logging config is applied
    then, which takes the handlers of existing loggers away, and its logger does not
    propagate yet; so the handler goes on the logger the extension makes.)"""
    kept = Kept()
    made: list[logging.Logger] = []
    real = server_app.extension_logger

    def extension_logger(server_log: Any) -> logging.Logger:
        logger = real(server_log)
        logger.addHandler(kept)
        made.append(logger)
        return logger

    monkeypatch.setattr(server_app, "extension_logger", extension_logger)
    yield kept.records
    for logger in made:
        logger.removeHandler(kept)


@pytest.fixture
def jp_server_config(
    macos_like: None, extension_log: list[logging.LogRecord], short_tmp: Path
) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"hy2fa_lab": True}},
        "Hy2faLab": {"control_path": f"{short_tmp}/%C", "prompt_timeout": 60},
    }


@pytest.mark.sshd
async def test_macos_like_every_askpass_promise_holds(
    jp_fetch: Fetch,
    jp_ws_fetch: Fetch,
    jp_serverapp: Any,
    real_sshd: RealSshd,
    short_tmp: Path,
    extension_log: list[logging.LogRecord],
) -> None:
    # As `jupyter server` does once its loop runs (pytest-jupyter leaves it out): the
    # extension's start, with the periodic check.
    await jp_serverapp.extension_manager.start_all_extensions()
    assert [c.name for c in platform.capabilities() if not c.available] == [
        "peer check",
        "exit notice",
    ]
    config = real_sshd.write_client_config(short_tmp / "ssh_config")
    events = LabEvents(jp_serverapp)
    kernel = await start_kernel(jp_fetch, jp_ws_fetch, "Analysis.ipynb")
    made = short_tmp / "mac.sock"
    try:
        # A kernel's ssh asks in Lab, with the notebook named; the answer gets through.
        run = kernel.start(ssh_code(config, made, "echo on-a-mac"))
        ask = await events.next("ask", action="asked")
        listed = json.loads((await jp_fetch("hy2fa", "asks")).body)["asks"]
        assert [a["id"] for a in listed] == [ask["id"]]
        assert listed[0]["origin"]["notebook"] == "Analysis.ipynb"
        assert listed[0]["origin"]["kernel_id"] == kernel.kernel_id
        assert f"ControlPath={made}" in listed[0]["command"]
        await jp_fetch(
            "hy2fa", "asks", ask["id"], "answer", method="POST",
            body=json.dumps({"response": real_sshd.totp()}),
        )  # fmt: skip
        await kernel.finish(run, 60)
        assert "STATUS 0" in run.stdout and "OUT on-a-mac" in run.stdout, run.stdout

        # The master it left is adopted and listed, made by ssh in that notebook.
        adopted = await events.next("connection", control_path=str(made), state="connected")
        views = json.loads((await jp_fetch("hy2fa", "connections")).body)["connections"]
        view = next(v for v in views if v["id"] == adopted["id"])
        assert view["made_by"] == {"kind": "ssh", "notebook": "Analysis.ipynb",
                                   "kernel_id": kernel.kernel_id}  # fmt: skip
        assert view["master_pid"] == mux.alive(str(made))

        # Cancel ends the asking ssh (asked once only).
        run = kernel.start(ssh_code(config, short_tmp / "other.sock", "echo never"))
        ask = await events.next("ask", action="asked")
        await jp_fetch("hy2fa", "asks", ask["id"], method="DELETE")
        finish = asyncio.ensure_future(kernel.finish(run, 3600))
        again = asyncio.ensure_future(events.next("ask", action="asked"))
        await asyncio.wait({finish, again}, return_when=asyncio.FIRST_COMPLETED)
        assert not again.done(), "the cancelled ssh asked again"
        again.cancel()
        assert "STATUS 0" not in run.stdout and "Cancelled in JupyterLab" in run.stdout

        # No pidfd tells that the master went away: the periodic check does.
        os.kill(view["master_pid"], signal.SIGTERM)
        gone = await events.next("connection", id=adopted["id"], state="disconnected")
        assert gone["master_pid"] is None

        # Without a peer check, the server said so once, and nothing raised.
        said = [r for r in extension_log if "no peer check on this system" in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.WARNING
        assert "0700 directory" in said[0].getMessage()
        assert [r.getMessage() for r in extension_log if "on this system" in r.getMessage()] == [
            said[0].getMessage()
        ]  # psutil and the helper's parent check work as on macOS
        assert not [r for r in extension_log if r.exc_info or r.levelno >= logging.ERROR]
    finally:
        events.close()
        await stop_kernel(jp_fetch, kernel)


# ---- no process information at all: /proc hidden from the server, its kernels and ssh ---


@pytest.fixture
def hidden_proc_server(
    hide_proc: list[str], real_sshd: RealSshd, short_tmp: Path
) -> Iterator[JupyterServer]:
    """A real ``jupyter server`` with the extension, started in a mount namespace whose
    /proc is empty; the real sshd runs outside, as usual."""
    config = real_sshd.write_client_config(short_tmp / "ssh_config")
    server = JupyterServer(
        {"ssh_config": str(config), "control_path": f"{short_tmp}/%C", "prompt_timeout": 60},
        wrapper=hide_proc,
    )
    try:
        yield server.start()
    finally:
        server.stop()


async def follow(server: JupyterServer, connection: dict[str, Any], states: set[str]) -> Any:
    """The connection once it is in one of ``states``, following its changes."""
    view = connection
    while view["state"] not in states:
        view = await server.ok("GET", f"/hy2fa/connections/{view['id']}?after={view['version']}")
    return view


def askpass_helpers(server: JupyterServer) -> list[int]:
    """Live hy2fa-askpass processes of this server's kernels (seen from outside, where /proc
    is: by the socket in their environment)."""
    socket_dir = f"{server.runtime_dir}/"
    return [
        pid
        for pid, argv in cmdlines().items()
        if any(part.endswith("hy2fa-askpass") for part in argv[:2])
        and environment_of(pid).get(askwire.SOCKET_ENV, "").startswith(socket_dir)
    ]


@pytest.mark.sshd
async def test_with_no_process_information_at_all_the_bridge_still_asks_and_cancels(
    hidden_proc_server: JupyterServer, real_sshd: RealSshd, short_tmp: Path
) -> None:
    server = hidden_proc_server
    config = short_tmp / "ssh_config"
    events: Events = await server.events()
    kernel = await server.notebook_kernel("Analysis.ipynb")
    try:
        probe = await kernel.run("import os\nprint('PROC', os.listdir('/proc'))")
        assert "PROC []" in probe.stdout  # the kernel (and its ssh) see no process at all

        # A login over REST works as anywhere.
        started = await server.ok("POST", "/hy2fa/connections", {"cluster": "fixture"})
        asked = await follow(server, started, {"prompting", "failed"})
        assert asked["state"] == "prompting" and asked["prompt"]["kind"] == "otp", asked
        await server.ok(
            "POST", f"/hy2fa/connections/{asked['id']}/answer",
            {"response": real_sshd.totp(), "prompt_id": asked["prompt"]["id"]},
        )  # fmt: skip
        connected = await follow(server, asked, {"connected", "failed"})
        assert connected["state"] == "connected", connected
        assert connected["master_pid"] == mux.alive(connected["control_path"])

        # A notebook's ssh asks in Lab and gets through with the right code.
        run = kernel.start(ssh_code(config, short_tmp / "nb.sock", "echo through"))
        ask = await events.next("ask", action="asked")
        listed = (await server.ok("GET", "/hy2fa/asks"))["asks"]
        assert [a["id"] for a in listed] == [ask["id"]] and listed[0]["prompt"]["kind"] == "otp"
        await server.ok("POST", f"/hy2fa/asks/{ask['id']}/answer", {"response": real_sshd.totp()})
        await kernel.finish(run, 60)
        assert "STATUS 0" in run.stdout and "OUT through" in run.stdout, run.stdout

        # ``!ssh`` runs in IPython's pty, which nobody looks at: with nothing known of the
        # processes it cannot be told from a person's terminal, and is asked in Lab too.
        run = kernel.start(
            f"!ssh -F {config} -o ControlMaster=auto -o ControlPath={short_tmp}/bang.sock "
            "-o ControlPersist=60 fixture echo bang-$((20+3))"
        )
        ask = await events.next("ask", action="asked")
        await server.ok("POST", f"/hy2fa/asks/{ask['id']}/answer", {"response": real_sshd.totp()})
        await kernel.finish(run, 60)
        assert "bang-23" in run.stdout, run.stdout

        # Cancel ends that ssh: it is asked nothing more and gives up, long before the
        # cell's 60 s timeout.
        run = kernel.start(ssh_code(config, short_tmp / "cancel.sock", "echo never"))
        ask = await events.next("ask", action="asked")
        status, _ = await server.api("DELETE", f"/hy2fa/asks/{ask['id']}")
        assert status == 204
        finish = asyncio.ensure_future(kernel.finish(run, 3600))
        again = asyncio.ensure_future(events.next("ask", action="asked"))
        await asyncio.wait({finish, again}, return_when=asyncio.FIRST_COMPLETED)
        assert not again.done(), "the cancelled ssh asked again"
        again.cancel()
        assert not run.error, run.error  # not subprocess's TimeoutExpired: ssh itself ended
        assert "STATUS 255" in run.stdout and "Cancelled in JupyterLab" in run.stdout, run.stdout
        assert (await server.ok("GET", "/hy2fa/asks"))["asks"] == []
        assert askpass_helpers(server) == []

        log = server.log()
        assert "Traceback" not in log and "[E " not in log, log
        assert log.count("no process information on this system") == 1
        assert log.count("no ssh parent check on this system") == 1
    finally:
        events.close()
        await kernel.close()
