"""What the product may learn about other processes of this user, on every platform.

- A process's parent, ancestors, argv and TCP connection states come from ``psutil`` (which
  reads ``/proc`` on Linux and asks ``sysctl``/``libproc`` on macOS and the BSDs). Where it
  knows nothing (``/proc`` hidden, a sandbox), every function here says "unknown" (``None``,
  ``[]``, ``False``): none raises.
- A process's exit is an event through a pidfd where the kernel has pidfds (Linux 5.3+);
  elsewhere :func:`process_exit` returns ``None`` and the caller relies on a periodic check.
- The uid (and pid) of a Unix socket's peer: ``SO_PEERCRED`` on Linux, ``LOCAL_PEERCRED``
  (``struct xucred``) and ``LOCAL_PEERPID`` on macOS and the BSDs; where the system has
  neither, :func:`peer_check` is ``""`` and only the socket's 0700 directory keeps others out.

docs/architecture.md "Linux-only, and what happens elsewhere" lists each with its fallback;
``core/platform.py`` says which of them this machine has. ``hy2fa-askpass``
checks its own parent itself (it must stay light: no psutil there).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil

# What psutil raises for a process it cannot see or that is gone, and what its platform code
# may let through (a permission error reading a file, a malformed entry).
_UNKNOWN = (psutil.Error, OSError, ValueError)

# macOS and the BSDs: getsockopt(SOL_LOCAL = 0, LOCAL_PEERCRED = 1) gives ``struct xucred``
# (``u_int cr_version; uid_t cr_uid; short cr_ngroups; gid_t cr_groups[16]``), macOS
# getsockopt(SOL_LOCAL, LOCAL_PEERPID = 2) the peer's pid. Python's socket module may lack the
# names; the values are those of <sys/un.h> and <sys/ucred.h>.
_SOL_LOCAL = 0
_LOCAL_PEERCRED_OF = {"darwin": 1, "freebsd": 1, "dragonfly": 1}
_LOCAL_PEERPID_OF = {"darwin": 2}
_XUCRED = struct.Struct("IIh16I")
_XUCRED_VERSION = 0
_PEERCRED = struct.Struct("3i")  # Linux ``struct ucred``: pid, uid, gid


def _platform_key() -> str:
    return next((key for key in _LOCAL_PEERCRED_OF if sys.platform.startswith(key)), "")


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid``, or ``None`` when it is gone or unknown."""
    try:
        parent = int(psutil.Process(pid).ppid())
    except _UNKNOWN:
        return None
    return parent if parent > 0 else None


def ancestors(pid: int) -> list[int]:
    """The parent of ``pid``, its parent and so on up to init, nearest first (a pid reused
    in between ends the line); empty when unknown."""
    try:
        return [parent.pid for parent in psutil.Process(pid).parents()]
    except _UNKNOWN:
        return []


def cmdline(pid: int) -> list[str]:
    """The argv of ``pid`` (empty when it is gone or unknown)."""
    try:
        return [str(part) for part in psutil.Process(pid).cmdline()]
    except _UNKNOWN:
        return []


def closed_by_peer(pid: int | None) -> bool:
    """Whether the server closed ``pid``'s TCP connection: it holds TCP sockets and every
    one is in CLOSE_WAIT. False when unknown, and through a ProxyJump or ProxyCommand
    (ssh then talks over a pipe, and nothing is concluded)."""
    if pid is None:
        return False
    states = _tcp_states(pid)
    return bool(states) and all(state == psutil.CONN_CLOSE_WAIT for state in states)


# Every login waiting at a prompt asks for its ssh's TCP states once a second, and each
# read parses the whole TCP table: one system-wide read (psutil.net_connections) serves all
# of them for _TCP_TABLE_AGE seconds, and each pid once (a pid that asks again gets a newer
# read, so a CLOSE_WAIT is never hidden from a second look).
_TCP_TABLE_AGE = 0.5
_tcp_lock = threading.Lock()
_tcp_table: tuple[float, dict[int, list[str]], set[int]] | None = None  # read at, states, served


def _tcp_states(pid: int) -> list[str]:
    """The TCP states of ``pid``'s sockets (none when unknown)."""
    global _tcp_table
    with _tcp_lock:
        now = time.monotonic()
        if _tcp_table is None or now - _tcp_table[0] >= _TCP_TABLE_AGE or pid in _tcp_table[2]:
            try:
                links = psutil.net_connections(kind="tcp")
            except _UNKNOWN:  # refused system-wide (macOS, unless root): this pid alone
                _tcp_table = None
                try:
                    return [link.status for link in psutil.Process(pid).net_connections("tcp")]
                except _UNKNOWN:
                    return []
            by_pid: dict[int, list[str]] = {}
            for link in links:
                if link.pid is not None:
                    by_pid.setdefault(link.pid, []).append(link.status)
            _tcp_table = (now, by_pid, set())
        _tcp_table[2].add(pid)
        return _tcp_table[1].get(pid, [])


def information() -> bool:
    """Whether process facts can be had here at all: psutil tells this process's parent
    (``/proc`` hidden or a sandbox: it cannot)."""
    return parent_pid(os.getpid()) == os.getppid() and bool(cmdline(os.getpid()))


def connection_states() -> bool:
    """Whether a process's TCP connection states can be read here (this process's own)."""
    try:
        psutil.Process(os.getpid()).net_connections(kind="tcp")
    except _UNKNOWN:
        return False
    return True


# ---- exits ----------------------------------------------------------------------------


def exit_events() -> bool:
    """Whether a process's exit can be waited on here (a pidfd of this process)."""
    try:
        fd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):
        return False
    os.close(fd)
    return True


def process_exit(pid: int) -> asyncio.Future[None] | None:
    """A future done when ``pid`` exits (at once when it is gone already), through a pidfd;
    ``None`` where the kernel or Python has no pidfds (macOS, Linux before 5.3, a sandbox
    that refuses them): then nothing tells, and the caller looks again later."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        future.set_result(None)
        return future
    except (AttributeError, OSError):
        return None

    def done() -> None:
        if not future.done():
            future.set_result(None)

    loop.add_reader(fd, done)

    def cleanup(_: asyncio.Future[None]) -> None:
        loop.remove_reader(fd)
        os.close(fd)

    future.add_done_callback(cleanup)
    return future


# ---- a Unix socket's peer ---------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """Who is at the other end of a Unix socket: ``uid`` (``None``: this system cannot tell,
    see :func:`peer_check`) and ``pid`` (``None`` when not told)."""

    uid: int | None
    pid: int | None = None


def peer_check() -> str:
    """How this system tells a Unix socket peer's uid: ``"SO_PEERCRED"`` (Linux),
    ``"LOCAL_PEERCRED"`` (macOS, the BSDs), or ``""`` (neither)."""
    if hasattr(socket, "SO_PEERCRED"):
        return "SO_PEERCRED"
    if _local_peercred() is not None:
        return "LOCAL_PEERCRED"
    return ""


def _local_peercred() -> int | None:
    value = getattr(socket, "LOCAL_PEERCRED", None)
    return value if isinstance(value, int) else _LOCAL_PEERCRED_OF.get(_platform_key())


def peer_of(sock: Any) -> Peer:
    """The peer of the connected Unix socket ``sock``. Raises ``OSError`` when this system
    has a way to tell and it fails (the caller refuses the peer: fail closed); a
    ``Peer(uid=None)`` when the system has none (:func:`peer_check` is ``""``)."""
    how = peer_check()
    if how == "SO_PEERCRED":
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        if len(raw) != _PEERCRED.size:
            raise OSError("SO_PEERCRED gave a short answer")
        pid, uid, _gid = _PEERCRED.unpack(raw)
        return Peer(uid, pid if pid > 0 else None)
    if how == "LOCAL_PEERCRED":
        option = _local_peercred()
        assert option is not None
        raw = sock.getsockopt(_SOL_LOCAL, option, _XUCRED.size)
        if len(raw) < _XUCRED.size:
            raise OSError("LOCAL_PEERCRED gave a short answer")
        version, uid, *_groups = _XUCRED.unpack(raw[: _XUCRED.size])
        if version != _XUCRED_VERSION:
            raise OSError(f"LOCAL_PEERCRED gave struct xucred version {version}")
        return Peer(uid, _local_peer_pid(sock))
    return Peer(None)


def _local_peer_pid(sock: Any) -> int | None:
    """The peer's pid through ``LOCAL_PEERPID`` (macOS), else ``None``: a cross-check only."""
    option = getattr(socket, "LOCAL_PEERPID", None)
    if not isinstance(option, int):
        option = _LOCAL_PEERPID_OF.get(_platform_key())
    if option is None:
        return None
    try:
        raw = sock.getsockopt(_SOL_LOCAL, option, struct.calcsize("i"))
        (pid,) = struct.unpack("i", raw[: struct.calcsize("i")])
    except (OSError, struct.error):
        return None
    return pid if pid > 0 else None
