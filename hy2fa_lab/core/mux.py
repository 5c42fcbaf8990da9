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
import socket
import stat
import struct
import time
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


def status(path: str, timeout: float = TIMEOUT) -> Status:
    """Whether a master listens on ``path``: alive (with pid), absent, a stale file, a
    listener that does not answer (``unresponsive``), or a socket that is not ours."""
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
    try:
        reply_type, body = _request(path, MUX_C_ALIVE_CHECK, timeout)
    except ConnectionRefusedError:
        return Status(Liveness.STALE)
    except FileNotFoundError:
        return Status(Liveness.ABSENT)
    except _ClosedEarly:
        return Status(Liveness.STALE)  # a master on its way out
    except TimeoutError:
        return Status(
            Liveness.UNRESPONSIVE,
            message=f"The master on {path} does not answer (stopped, or hung) within {timeout:g} s",
        )
    except MuxError as error:
        return Status(
            Liveness.UNRESPONSIVE,
            message=f"Something listens on {path} but does not speak ssh's mux protocol: {error}",
        )
    except OSError as error:
        if error.errno not in (errno.ECONNRESET, errno.EPIPE):
            return Status(Liveness.UNRESPONSIVE, message=f"{path}: {error}")
        return Status(Liveness.STALE)
    if reply_type != MUX_S_ALIVE or len(body) < 4:
        return Status(
            Liveness.UNRESPONSIVE,
            message=f"The listener on {path} answered 0x{reply_type:08x}, not ALIVE",
        )
    return Status(Liveness.ALIVE, struct.unpack(">I", body[:4])[0])


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
