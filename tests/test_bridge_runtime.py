"""Where the askpass bridge's socket lives (``server/bridge.py``): ``<runtime>/hy2fa-<pid>/``
while its server runs and not after, even after a SIGKILL; and one socket-path limit shared
with the control sockets (``core/controlpath.py``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hy2fa_lab.core import controlpath
from hy2fa_lab.core.asks import AskBridge
from hy2fa_lab.server import bridge

LISTENER = """\
import sys
from hy2fa_lab.core.asks import AskBridge
from hy2fa_lab.server.bridge import socket_path
listener = AskBridge(socket_path(sys.argv[1]), timeout=5)
listener.listen()
print(listener.path, flush=True)
sys.stdin.read()
"""


def killed_listener(runtime: Path) -> Path:
    """The directory a process that bound the bridge's socket as a server does leaves behind
    when it is SIGKILLed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LISTENER, str(runtime)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    path = Path(proc.stdout.readline().strip())
    proc.kill()
    proc.wait()
    assert path == runtime / f"hy2fa-{proc.pid}" / "askpass"
    assert path.is_socket()  # a SIGKILLed server cleans nothing
    return path.parent


def dead_pid() -> int:
    """The pid of a process that ran and was reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def left_by_a_killed_server(jp_runtime_dir: Path) -> Path:
    return killed_listener(jp_runtime_dir)


async def test_the_next_server_removes_what_a_killed_one_left(
    left_by_a_killed_server: Path, jp_serverapp: Any, jp_runtime_dir: Path
) -> None:
    assert not left_by_a_killed_server.exists()
    own = Path(jp_serverapp.web_app.settings["hy2fa_asks"].path)
    assert own.is_socket() and own.parent.name == f"hy2fa-{os.getpid()}"


def test_only_dirs_of_dead_servers_holding_nothing_else_are_removed(short_tmp: Path) -> None:
    runtime = short_tmp / "runtime"
    runtime.mkdir()
    killed = killed_listener(runtime)
    dead = dead_pid()
    empty = runtime / f"hy2fa-{dead}"
    empty.mkdir(mode=0o700)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        alive = runtime / f"hy2fa-{sleeper.pid}"  # a server that still runs
        alive.mkdir(mode=0o700)
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind(str(alive / "askpass"))
        busy = runtime / f"hy2fa-{dead_pid()}"  # holds something that is not the bridge's
        busy.mkdir(mode=0o700)
        (busy / "notes.txt").write_text("mine")
        listened = runtime / f"hy2fa-{dead_pid()}"  # a server of another pid namespace
        listened.mkdir(mode=0o700)
        listening_elsewhere = socket.socket(socket.AF_UNIX)
        listening_elsewhere.bind(str(listened / "askpass"))
        listening_elsewhere.listen()
        elsewhere = short_tmp / "elsewhere"
        elsewhere.mkdir()
        linked = runtime / f"hy2fa-{dead_pid()}"  # a link is never followed
        linked.symlink_to(elsewhere)
        named = runtime / "hy2fa-masters.json"
        named.write_text("[]")
        other = runtime / "hy2fa-x1"
        other.mkdir()
        kept = [alive, busy, listened, elsewhere, linked, named, other]

        path = bridge.socket_path(str(runtime))

        assert path == str(runtime / f"hy2fa-{os.getpid()}" / "askpass")
        assert not killed.exists() and not empty.exists()
        assert all(os.path.lexists(p) for p in kept)
        assert (busy / "notes.txt").read_text() == "mine"
        assert sorted(p.name for p in runtime.iterdir()) == sorted(
            p.name for p in kept if p.parent == runtime
        )
        listening_elsewhere.close()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_dir_of_another_user_is_left_alone(short_tmp: Path) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs the suite as root (chown of a test directory)")
        pytest.skip("needs root to give a directory to another user")
    runtime = short_tmp / "runtime"
    runtime.mkdir()
    theirs = runtime / f"hy2fa-{dead_pid()}"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    bridge.socket_path(str(runtime))
    assert theirs.is_dir()


def test_one_socket_path_limit_for_masters_and_the_bridge(short_tmp: Path) -> None:
    """The bridge binds its own path (room: ``sun_path`` less its NUL); a master binds
    ``<path>.<16 random characters>`` first (18 bytes less). Both come from one
    ``controlpath.SUN_PATH``, and the figure is the kernel's: such a path binds."""
    assert controlpath.MAX_LENGTH == controlpath.SUN_PATH - 18
    tail = f"/hy2fa-{os.getpid()}/askpass"
    room = controlpath.SUN_PATH - 1
    runtime = short_tmp / ("r" * (room - len(os.fsencode(f"{short_tmp}/{tail}"))))
    longest = str(runtime) + tail
    assert len(os.fsencode(longest)) == room
    runtime.mkdir()
    assert bridge.socket_path(str(runtime)) == longest  # used as it is
    listener = AskBridge(longest, timeout=1)
    listener.listen()  # the kernel takes it
    assert listener._sock is not None
    listener._sock.close()

    longer = short_tmp / ("r" * (len(runtime.name) + 1))
    longer.mkdir()
    fallback = bridge.socket_path(str(longer))
    assert fallback.startswith("/tmp/hy2fa-") and controlpath.fits(fallback)
    os.rmdir(os.path.dirname(fallback))
