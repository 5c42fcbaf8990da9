"""A client for OpenSSH's multiplexing protocol (PROTOCOL.mux, version 4).

Speaking it directly on the control socket tells whether a master is alive, and
its pid, in well under a millisecond, where ``ssh -O check`` costs a process spawn.

Every call is bounded (a master stopped with SIGSTOP, or a listener that speaks something
else, accepts the connection and then says nothing), and a socket is only spoken to when it
is ours (:mod:`.trust`): such sockets are states to report, never exceptions.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import selectors
import socket
import stat
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from . import trust

MUX_MSG_HELLO = 0x00000001
MUX_C_ALIVE_CHECK = 0x10000004
MUX_C_TERMINATE = 0x10000005
MUX_S_OK = 0x80000001
MUX_S_PERMISSION_DENIED = 0x80000002
MUX_S_FAILURE = 0x80000003
MUX_S_ALIVE = 0x80000005
PROTOCOL_VERSION = 4
_MAX_FRAME = 256 * 1024
# A live master answers in well under a millisecond; this only bounds a hung one.
TIMEOUT = 1.0
_BATCH = 256  # checks in flight at once in statuses(): one fd each


class MuxError(Exception):
    """The peer did not speak the protocol we expect."""


class _ClosedEarly(MuxError):
    """The master hung up before it replied."""


class UntrustedSocket(MuxError):
    """The socket or its directory is not ours (see :mod:`.trust`)."""


class Liveness(str, enum.Enum):
    ALIVE = "alive"
    ABSENT = "absent"
    STALE = "stale"
    UNRESPONSIVE = "unresponsive"  # a listener that does not answer as a master, in time
    UNTRUSTED = "untrusted"  # another user's socket, or a directory others can write to


@dataclass(frozen=True)
class Status:
    liveness: Liveness
    pid: int | None = None
    message: str = ""


def _frame(msg_type: int, *words: int) -> bytes:
    body = struct.pack(f">{1 + len(words)}I", msg_type, *words)
    return struct.pack(">I", len(body)) + body


def _recv_exact(sock: socket.socket, size: int, deadline: float) -> bytes:
    """``size`` bytes, within the whole call's deadline (a trickling peer cannot stretch it)."""
    chunks = bytearray()
    while len(chunks) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the peer is too slow")
        sock.settimeout(remaining)
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise _ClosedEarly("master closed the connection")
        chunks.extend(chunk)
    return bytes(chunks)


def _read_frame(sock: socket.socket, deadline: float) -> tuple[int, bytes]:
    (length,) = struct.unpack(">I", _recv_exact(sock, 4, deadline))
    if not 4 <= length <= _MAX_FRAME:
        raise MuxError(f"implausible frame length {length}")
    payload = _recv_exact(sock, length, deadline)
    (msg_type,) = struct.unpack(">I", payload[:4])
    return msg_type, payload[4:]


def _open(path: str, deadline: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(max(deadline - time.monotonic(), 0.001))
    try:
        sock.connect(path)
        sock.sendall(_frame(MUX_MSG_HELLO, PROTOCOL_VERSION))
        msg_type, body = _read_frame(sock, deadline)
        if msg_type != MUX_MSG_HELLO or len(body) < 4:
            raise MuxError(f"expected HELLO, got message 0x{msg_type:08x}")
        (version,) = struct.unpack(">I", body[:4])
        if version != PROTOCOL_VERSION:
            raise MuxError(f"master speaks mux protocol {version}, not {PROTOCOL_VERSION}")
    except BaseException:
        sock.close()
        raise
    return sock


def _request(path: str, msg_type: int, timeout: float) -> tuple[int, bytes]:
    request_id = int.from_bytes(os.urandom(4), "big")
    deadline = time.monotonic() + timeout
    with contextlib.closing(_open(path, deadline)) as sock:
        sock.sendall(_frame(msg_type, request_id))
        reply_type, body = _read_frame(sock, deadline)
    if len(body) < 4 or struct.unpack(">I", body[:4])[0] != request_id:
        raise MuxError("reply does not match the request id")
    return reply_type, body[4:]


def _unasked(path: str) -> Status | None:
    """What ``path`` is without speaking to it (absent, not a socket, not ours), or ``None``."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return Status(Liveness.ABSENT)
    except OSError as error:
        return Status(Liveness.UNTRUSTED, message=f"cannot inspect {path}: {error.strerror}")
    if not stat.S_ISSOCK(mode):
        return Status(Liveness.ABSENT)
    problem = trust.socket_problem(path)
    if problem is not None:
        return Status(Liveness.UNTRUSTED, message=f"Refusing to use it: {problem}")
    return None


def _failed(path: str, error: OSError | MuxError, timeout: float) -> Status:
    """What an ALIVE_CHECK on ``path`` that raised ``error`` says about the socket."""
    if isinstance(error, ConnectionRefusedError):
        return Status(Liveness.STALE)
    if isinstance(error, FileNotFoundError):
        return Status(Liveness.ABSENT)
    if isinstance(error, _ClosedEarly):
        return Status(Liveness.STALE)  # a master on its way out
    if isinstance(error, TimeoutError):
        return Status(
            Liveness.UNRESPONSIVE,
            message=f"The master on {path} does not answer (stopped, or hung) within {timeout:g} s",
        )
    if isinstance(error, MuxError):
        return Status(
            Liveness.UNRESPONSIVE,
            message=f"Something listens on {path} but does not speak ssh's mux protocol: {error}",
        )
    if error.errno not in (errno.ECONNRESET, errno.EPIPE):
        return Status(Liveness.UNRESPONSIVE, message=f"{path}: {error}")
    return Status(Liveness.STALE)


def _alive_reply(path: str, reply_type: int, body: bytes) -> Status:
    if reply_type != MUX_S_ALIVE or len(body) < 4:
        return Status(
            Liveness.UNRESPONSIVE,
            message=f"The listener on {path} answered 0x{reply_type:08x}, not ALIVE",
        )
    return Status(Liveness.ALIVE, struct.unpack(">I", body[:4])[0])


def status(path: str, timeout: float = TIMEOUT) -> Status:
    """Whether a master listens on ``path``: alive (with pid), absent, a stale file, a
    listener that does not answer (``unresponsive``), or a socket that is not ours."""
    found = _unasked(path)
    if found is not None:
        return found
    try:
        reply_type, body = _request(path, MUX_C_ALIVE_CHECK, timeout)
    except (OSError, MuxError) as error:
        return _failed(path, error, timeout)
    return _alive_reply(path, reply_type, body)


class _Check:
    """One ALIVE_CHECK in flight on a non-blocking socket: hello, then the check, as _request."""

    def __init__(self, path: str, sock: socket.socket) -> None:
        self.path = path
        self.sock = sock
        self.request_id = int.from_bytes(os.urandom(4), "big")
        self.hello_seen = False
        self.buffer = bytearray()

    def _send(self, data: bytes) -> None:
        # A few bytes on a fresh socket: the kernel takes them whole or the peer is broken.
        if self.sock.send(data) != len(data):
            raise MuxError("the master does not take a 16-byte request")

    def readable(self) -> Status | None:
        """Read what arrived; the answer once the reply is complete, else ``None``."""
        try:
            chunk = self.sock.recv(65536)
        except BlockingIOError:
            return None
        if not chunk:
            raise _ClosedEarly("master closed the connection")
        self.buffer += chunk
        while len(self.buffer) >= 4:
            (length,) = struct.unpack(">I", self.buffer[:4])
            if not 4 <= length <= _MAX_FRAME:
                raise MuxError(f"implausible frame length {length}")
            if len(self.buffer) < 4 + length:
                return None
            payload = bytes(self.buffer[4 : 4 + length])
            del self.buffer[: 4 + length]
            (msg_type,) = struct.unpack(">I", payload[:4])
            body = payload[4:]
            if not self.hello_seen:
                if msg_type != MUX_MSG_HELLO or len(body) < 4:
                    raise MuxError(f"expected HELLO, got message 0x{msg_type:08x}")
                (version,) = struct.unpack(">I", body[:4])
                if version != PROTOCOL_VERSION:
                    raise MuxError(f"master speaks mux protocol {version}, not {PROTOCOL_VERSION}")
                self.hello_seen = True
                self._send(_frame(MUX_C_ALIVE_CHECK, self.request_id))
                continue
            if len(body) < 4 or struct.unpack(">I", body[:4])[0] != self.request_id:
                raise MuxError("reply does not match the request id")
            return _alive_reply(self.path, msg_type, body[4:])
        return None


def statuses(paths: Sequence[str], timeout: float = TIMEOUT) -> dict[str, Status]:
    """:func:`status` of every path (by path), with up to ``_BATCH`` checks in flight at once.

    One thread and non-blocking sockets: N masters cost about one round trip plus N small
    sends and reads, where N ``status()`` calls cost N round trips (and N threads, on a
    machine with few cores, mostly wait for the GIL). Each answer is classified exactly as
    :func:`status` does; each batch is bounded by ``timeout``.
    """
    found: dict[str, Status] = {}
    asked: list[str] = []
    for path in dict.fromkeys(paths):
        unasked = _unasked(path)
        if unasked is not None:
            found[path] = unasked
        else:
            asked.append(path)
    for start in range(0, len(asked), _BATCH):
        found.update(_check_batch(asked[start : start + _BATCH], timeout))
    return found


def _check_batch(paths: Sequence[str], timeout: float) -> dict[str, Status]:
    found: dict[str, Status] = {}
    queue_full: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        try:
            for path in paths:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.setblocking(False)
                check = _Check(path, sock)
                try:
                    sock.connect(path)
                    check._send(_frame(MUX_MSG_HELLO, PROTOCOL_VERSION))
                except BlockingIOError:  # the master's listen queue is full: ask it alone
                    sock.close()
                    queue_full.append(path)
                    continue
                except (OSError, MuxError) as error:
                    sock.close()
                    found[path] = _failed(path, error, timeout)
                    continue
                selector.register(sock, selectors.EVENT_READ, check)
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                for key, _events in selector.select(remaining):
                    check = key.data
                    try:
                        answer = check.readable()
                    except (OSError, MuxError) as error:
                        answer = _failed(check.path, error, timeout)
                    if answer is not None:
                        selector.unregister(check.sock)
                        check.sock.close()
                        found[check.path] = answer
        finally:
            for key in list(selector.get_map().values()):
                selector.unregister(key.fileobj)
                key.data.sock.close()
                found.setdefault(key.data.path, _failed(key.data.path, TimeoutError(), timeout))
    for path in queue_full:
        found[path] = status(path, timeout)
    return found


def alive(path: str, timeout: float = TIMEOUT) -> int | None:
    """The master's pid when one answers on ``path``, else ``None``."""
    result = status(path, timeout)
    return result.pid if result.liveness is Liveness.ALIVE else None


def remove_stale(path: str, timeout: float = TIMEOUT) -> bool:
    """Delete a socket file no master listens on (left by a killed master).

    A stale file makes a new master silently run without multiplexing, so it must go.
    Only our own sockets in our own directories are removed; anything else is left alone.
    """
    if status(path, timeout).liveness is not Liveness.STALE:
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return True


def stop(path: str, timeout: float = TIMEOUT) -> bool:
    """Ask the master on ``path`` to exit. True when it accepted, False when none was there.

    Raises :class:`MuxError` when the socket is not ours, the master refuses, or it does not
    answer within ``timeout``.
    """
    problem = trust.socket_problem(path)
    if problem is not None:
        raise UntrustedSocket(f"Refusing to use it: {problem}")
    try:
        reply_type, _body = _request(path, MUX_C_TERMINATE, timeout)
    except (FileNotFoundError, ConnectionRefusedError):
        if os.path.exists(path):
            remove_stale(path, timeout)
        return False
    except _ClosedEarly:
        # OpenSSH often exits before its MUX_S_OK reaches us (mux.c says so itself).
        return True
    except TimeoutError:
        raise MuxError(f"The master on {path} does not answer (stopped, or hung)") from None
    if reply_type == MUX_S_OK:
        return True
    if reply_type == MUX_S_PERMISSION_DENIED:
        raise MuxError("the master refused to terminate (permission denied)")
    raise MuxError(f"unexpected reply 0x{reply_type:08x} to terminate")
