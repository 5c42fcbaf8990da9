"""The session registry (hy2fa_lab/core/manager.py) on its own: one session per control path,
sessions found by name, listeners, refresh, discovery, the remembered-masters file, and a
login cancelled while under way.

The real OpenSSH client against the asyncssh prompt server (conftest's ``prompt_server``); every
test ends with no ssh process of its own left (``no_ssh_left``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from helpers import SECRET, code
from listeners import SilentListener
from procs import next_prompt, process_alive, ssh_processes
from test_faults import gone
from test_server_api import add_prompt_host

from hy2fa_lab.core import mux, processes
from hy2fa_lab.core.errors import NoPrompt, UnknownCluster
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.types import Reason, State, Target
from hy2fa_lab.demo import sshserver
from hy2fa_lab.demo.sshserver import ServerThread

pytestmark = pytest.mark.timeout(60)

StartServer = Callable[..., ServerThread]
ALIAS = "promptsrv"
TWIN = "twin"  # another alias of the same host, port and user: the same %C, the same socket
OTHER = "other"  # the same server as another user: a socket of its own
HUNG = "hung"  # its ControlPath is a listener that never answers


@pytest.fixture(autouse=True)
def no_ssh_left(short_tmp: Path) -> Iterator[None]:
    """After the test (before ``short_tmp`` stops what is left): no ssh of this test runs."""
    yield
    deadline = time.monotonic() + 5
    while (left := ssh_processes(str(short_tmp))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == {}, f"ssh processes left behind: {left}"


def settings(
    client_config: Path, port: int, *, twin: bool = False, masters_file: str | None = None
) -> Settings:
    """ALIAS and OTHER (and TWIN if asked) on the prompt server at ``port``; HUNG with a
    ControlPath of its own; sockets in the config's directory."""
    hosts = [(ALIAS, "tester"), (OTHER, "someone-else")] + ([(TWIN, "tester")] if twin else [])
    for alias, user in hosts:
        add_prompt_host(client_config, alias, port, user=user)
    hung = client_config.parent / "hung.sock"
    with client_config.open("a") as handle:
        handle.write(f"Host {HUNG}\n  HostName 127.0.0.1\n  ControlPath {hung}\n")
    return Settings(
        ssh_config=str(client_config),
        control_path=f"{client_config.parent}/%C",
        masters_file=masters_file,
    )


async def log_in(manager: Manager, name: str) -> MasterSession:
    session = await manager.connect(name)
    await next_prompt(session, 0)
    await session.answer(code())
    assert await session.wait(20) is State.CONNECTED, session.message
    return session


def target(name: str, control_path: str) -> Target:
    return Target(
        name=name,
        destination=name,
        hostname=f"{name}.example.org",
        user="u",
        port=22,
        control_path=control_path,
        persist="1h",
        ssh_options=(("ServerAliveInterval", "30"),),
        cluster=name,
    )


# ---- one session per control path -------------------------------------------------------


async def test_concurrent_connects_to_one_control_path_make_one_session_and_one_ssh(
    prompt_server: StartServer, client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    manager = Manager(settings(client_config, server.port, twin=True))
    one, twin = await asyncio.gather(manager.resolve_async(ALIAS), manager.resolve_async(TWIN))
    assert one.name != twin.name and one.control_path == twin.control_path  # the premise
    path = one.control_path

    asked = await asyncio.gather(*(manager.connect(name) for name in [ALIAS, TWIN] * 3))
    session = asked[0]
    assert all(each is session for each in asked)
    assert manager.sessions() == [session]
    await next_prompt(session, 0)
    assert list(ssh_processes(path)) == [session.child_pid]  # one login, not six

    await session.answer(code())
    assert await session.wait(20) is State.CONNECTED, session.message
    master = session.master_pid
    assert master is not None and mux.alive(path) == master

    # Asked again once live, under either name: the master is joined, no ssh is started.
    again = await asyncio.gather(manager.connect(session.name), manager.connect(session.name))
    assert again[0] is session and again[1] is session
    joined = await manager.connect(TWIN if session.name == ALIAS else ALIAS)
    assert await joined.wait(20) is State.CONNECTED
    assert joined.master_pid == master
    assert manager.sessions() == [joined]
    assert list(ssh_processes(path)) == [master]

    await manager.disconnect_session(joined)
    assert joined.state is State.DISCONNECTED
    assert mux.alive(path) is None


async def test_get_finds_a_session_by_name_and_an_unknown_name_raises(
    prompt_server: StartServer, client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    manager = Manager(settings(client_config, server.port))
    with pytest.raises(UnknownCluster) as caught:
        manager.get(ALIAS)  # nothing started yet
    assert caught.value.reason == "unknown_cluster"
    assert "No connection named" in str(caught.value)

    session = await manager.connect(ALIAS)
    assert manager.get(ALIAS) is session
    for name in (TWIN, OTHER, "nope", "", f"tester@{ALIAS}"):  # TWIN: by name, not by socket
        with pytest.raises(UnknownCluster):
            manager.get(name)
    with pytest.raises(UnknownCluster):
        await manager.answer("nope", "123456")
    assert session.state in (State.STARTING, State.PROMPTING)  # untouched by any of that
    await manager.disconnect_session(session)


# ---- listeners --------------------------------------------------------------------------


async def test_listeners_hear_every_change_until_they_unsubscribe(
    prompt_server: StartServer, client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    manager = Manager(settings(client_config, server.port))
    heard: list[tuple[str, State]] = []
    kept: list[State] = []
    unsubscribe = manager.subscribe(lambda session: heard.append((session.name, session.state)))
    manager.subscribe(lambda session: kept.append(session.state))

    session = await manager.connect(ALIAS)
    await next_prompt(session, 0)
    assert heard[0] == (ALIAS, State.STARTING)
    assert heard[-1] == (ALIAS, State.PROMPTING)
    assert [state for _, state in heard] == kept

    unsubscribe()
    unsubscribe()  # a second time is harmless
    before = len(kept)
    await session.answer(code())
    assert await session.wait(20) is State.CONNECTED
    await manager.disconnect_session(session)
    assert len(heard) == before  # nothing more reached the one that left
    assert State.VERIFYING in kept[before:]
    assert kept[-2:] == [State.CONNECTED, State.DISCONNECTED]  # the other still hears all


async def test_a_disconnect_asked_for_is_one_change_never_a_master_that_went_away(
    prompt_server: StartServer, client_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The master's pidfd tells its exit while the stop is under way: that exit is the one
    asked for, so Lab hears one change, "Disconnected", and never first "the master exited"
    (which reads as a connection lost)."""
    server = prompt_server(sshserver.totp(SECRET))
    manager = Manager(settings(client_config, server.port))
    real_stop = mux.stop

    def slow_stop(path: str) -> bool:
        """The stop as on a loaded machine: its thread comes back after the master exited
        (and so after its pidfd told the event loop)."""
        pid = mux.alive(path)
        accepted = real_stop(path)
        if pid is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).wait(10)
        return accepted

    monkeypatch.setattr(mux, "stop", slow_stop)
    heard: list[tuple[str, str]] = []
    manager.subscribe(lambda changed: heard.append((changed.state.value, changed.message)))
    for _ in range(3):
        session = await log_in(manager, ALIAS)
        heard.clear()
        await manager.disconnect_session(session)
        await asyncio.sleep(0)  # a watcher woken by the exit runs now, if it is to run
        assert heard == [("disconnected", "Disconnected")]
    await manager.shutdown()


# ---- refresh ----------------------------------------------------------------------------


async def test_a_master_that_exits_is_noticed_at_once(
    prompt_server: StartServer, client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    manager = Manager(settings(client_config, server.port))
    session = await log_in(manager, ALIAS)
    heard: list[str] = []
    manager.subscribe(lambda changed: heard.append(changed.state.value))
    assert session.master_pid is not None
    os.kill(session.master_pid, signal.SIGTERM)  # as ControlPersist running out ends it
    await asyncio.wait_for(session.changed(), 5)  # no refresh, no request: its pidfd tells
    assert session.state is State.DISCONNECTED and heard == ["disconnected"]
    assert "exited" in session.message
    await manager.shutdown()


async def test_refresh_marks_a_master_that_went_away_disconnected_and_keeps_the_live_one(
    prompt_server: StartServer, client_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where no pidfd tells (another kernel, or a master of another host's server), the
    # refresh is what looks.
    monkeypatch.setattr(processes, "process_exit", lambda pid: None)  # no pidfds here
    server = prompt_server(sshserver.totp(SECRET))
    manager = Manager(settings(client_config, server.port))
    doomed = await log_in(manager, ALIAS)
    live = await log_in(manager, OTHER)
    assert doomed.target.control_path != live.target.control_path
    pid, live_pid = doomed.master_pid, live.master_pid
    assert pid is not None and live_pid is not None

    os.kill(pid, signal.SIGKILL)  # no clean exit: its socket file stays behind
    await gone(pid)
    assert doomed.to_json()["state"] == "connected"  # not noticed yet: refresh is what looks
    await manager.refresh()
    assert doomed.state is State.DISCONNECTED
    assert doomed.master_pid is None
    assert doomed.message != ""
    assert live.state is State.CONNECTED and live.master_pid == live_pid
    assert mux.alive(live.target.control_path) == live_pid

    assert (await manager.disconnect_session(live)).state is State.DISCONNECTED


# ---- discovery and the remembered masters -----------------------------------------------


async def test_discover_adopts_a_running_master_and_lists_an_unresponsive_socket(
    prompt_server: StartServer, client_config: Path, short_tmp: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    config = settings(client_config, server.port)
    session = await log_in(Manager(config), ALIAS)
    path = session.target.control_path
    listener = SilentListener(str(short_tmp / "hung.sock"))
    try:
        later = Manager(config)  # e.g. the Jupyter server restarted
        found = await later.discover()
        by_name = {each.name: each for each in found}
        assert sorted(by_name) == sorted([ALIAS, HUNG])  # no other alias has a socket
        adopted = by_name[ALIAS]
        assert adopted is not session
        assert adopted.state is State.CONNECTED and adopted.master_pid == session.master_pid
        assert adopted.target.control_path == path
        hung = by_name[HUNG]
        assert hung.state is State.UNRESPONSIVE
        assert "does not answer" in hung.message
        assert listener.accepted >= 1
        assert sorted(s.name for s in later.sessions()) == sorted(by_name)
        assert list(ssh_processes(path)) == [session.master_pid]  # adopted, nothing started
        assert later.get(ALIAS) is adopted
    finally:
        listener.close()
    await later.disconnect(ALIAS)
    assert mux.alive(path) is None


async def test_discover_keeps_one_connection_for_two_aliases_of_one_socket(
    prompt_server: StartServer, client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    config = settings(client_config, server.port, twin=True)
    session = await log_in(Manager(config), ALIAS)
    later = Manager(config)
    found = await later.discover()
    assert [s.target.control_path for s in found].count(session.target.control_path) == 1
    (shared,) = [s for s in found if s.target.control_path == session.target.control_path]
    assert later.get(shared.name) is shared  # the connection listed can be found by its name
    assert len(later.sessions()) == len(found)
    rows = {row.name: row for row in await later.clusters([ALIAS, TWIN])}
    assert rows[ALIAS].state is rows[TWIN].state is State.CONNECTED  # both aliases show it
    await later.disconnect(shared.name)
    assert mux.alive(session.target.control_path) is None


async def test_discover_finds_remembered_masters_and_forgets_those_gone(
    prompt_server: StartServer, client_config: Path, short_tmp: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    masters = short_tmp / "masters.json"
    config = settings(client_config, server.port, masters_file=str(masters))
    first = Manager(config)
    elsewhere = str(short_tmp / "elsewhere.sock")  # not where the template puts it
    session = await first.connect(ALIAS, control_path=elsewhere)
    await next_prompt(session, 0)
    await session.answer(code())
    assert await session.wait(20) is State.CONNECTED
    dead = target("dead", str(short_tmp / "dead.sock"))
    first._remember([session.target, dead])
    assert first._remembered() == [session.target, dead]

    later = Manager(config)
    found = await later.discover()
    assert [(s.name, s.target.control_path, s.state) for s in found] == [
        (ALIAS, elsewhere, State.CONNECTED)
    ]
    assert found[0].master_pid == session.master_pid
    assert later._remembered() == [session.target]  # the dead one is dropped from the file
    assert stat.S_IMODE(masters.stat().st_mode) == 0o600
    await later.disconnect_session(found[0])
    assert mux.alive(elsewhere) is None


def test_the_remembered_masters_file_is_0600_and_survives_garbage(
    client_config: Path, short_tmp: Path
) -> None:
    masters = short_tmp / "masters.json"
    masters.write_text("{not json")
    masters.chmod(0o644)
    manager = Manager(Settings(ssh_config=str(client_config), masters_file=str(masters)))
    assert manager._remembered() == []

    first = target("first", str(short_tmp / "first.sock"))
    previous = os.umask(0)  # the mode is the file's own, not the umask's
    try:
        manager._remember([first])
    finally:
        os.umask(previous)
    assert stat.S_IMODE(masters.stat().st_mode) == 0o600
    assert manager._remembered() == [first]  # ssh_options come back as tuples
    assert sorted(p.name for p in short_tmp.iterdir() if p.name.startswith("masters")) == [
        "masters.json"
    ]  # no temporary file left

    second = target("second", str(short_tmp / "second.sock"))
    manager._remember([second])
    assert manager._remembered() == [first, second]  # added to what was there
    manager._remember([second], replace=True)
    assert manager._remembered() == [second]

    row = dataclasses.asdict(first)
    for garbage in (
        b"",
        b"null",
        b'{"control_path": "/x"}',
        b"\xff\xfe\x00",
        json.dumps([{**row, "from_a_newer_version": 1}]).encode(),
    ):
        masters.write_bytes(garbage)
        assert manager._remembered() == [], garbage
    masters.write_text(json.dumps(["junk", None, {"control_path": 5}, row]))
    assert manager._remembered() == [first]  # rows of another shape are skipped

    masters.write_bytes(b"\x00garbage")
    manager._remember([second])
    assert [row["name"] for row in json.loads(masters.read_text())] == ["second"]
    assert manager._remembered() == [second]
    assert stat.S_IMODE(masters.stat().st_mode) == 0o600

    nowhere = Manager(Settings(masters_file=str(short_tmp / "no-such-dir" / "masters.json")))
    nowhere._remember([first])  # cannot be written: no error, nothing remembered
    assert nowhere._remembered() == []


# ---- cancelling a login -----------------------------------------------------------------


@pytest.mark.parametrize(
    "when",
    [
        "prompting",
        "just-started",  # before the login task ran at all: once left STARTING for ever
    ],
)
async def test_disconnecting_a_login_under_way_cancels_it_and_leaves_no_ssh(
    when: str, prompt_server: StartServer, client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    manager = Manager(settings(client_config, server.port))
    session = await manager.connect(ALIAS)
    path = session.target.control_path
    if when == "prompting":
        await next_prompt(session, 0)
        assert session.child_pid is not None
    child = session.child_pid
    assert session.pending

    assert await manager.disconnect_session(session) is session
    assert not session.pending
    assert session.state is State.FAILED and session.reason is Reason.CANCELLED
    if child is not None:
        assert not process_alive(child)
    assert ssh_processes(path) == {}
    assert mux.alive(path) is None
    with pytest.raises(NoPrompt):
        await session.answer(code())

    again = await manager.connect(ALIAS)  # a new login on the same session
    assert again is session
    await next_prompt(session, session.prompt_id)
    await manager.disconnect_session(session)
    assert session.state is State.FAILED and ssh_processes(path) == {}
