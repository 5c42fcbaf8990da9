"""The mux client against a scripted peer (the real master is tested in test_session_sshd)."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from listeners import SilentListener

from hy2fa_lab.core import mux

Reply = Callable[[int, int], bytes]


def _frame(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", len(body)) + body


def _u32(value: int) -> bytes:
    return struct.pack(">I", value)


def _string(value: bytes) -> bytes:
    return _u32(len(value)) + value


class FakeMaster:
    """Speaks the master's side of PROTOCOL.mux for one scripted reply per request."""

    def __init__(self, path: str, reply: Reply, hello_extension: bool = True) -> None:
        self.path = path
        self.reply = reply
        self.hello_extension = hello_extension
        self.requests: list[int] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read(self, conn: socket.socket) -> bytes:
        header = conn.recv(4, socket.MSG_WAITALL)
        (length,) = struct.unpack(">I", header)
        return conn.recv(length, socket.MSG_WAITALL)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                hello = _u32(mux.MUX_MSG_HELLO) + _u32(4)
                if self.hello_extension:  # recent masters append an "info" extension
                    hello += _string(b"info") + _string(b"OpenSSH_9.9")
                conn.sendall(_frame(hello))
                client_hello = self._read(conn)
                assert struct.unpack(">II", client_hello[:8]) == (mux.MUX_MSG_HELLO, 4)
                request = self._read(conn)
                msg_type, request_id = struct.unpack(">II", request[:8])
                self.requests.append(msg_type)
                answer = self.reply(msg_type, request_id)
                if answer:
                    conn.sendall(answer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sock_path(short_tmp: Path) -> Iterator[str]:
    yield str(short_tmp / "m")


def _alive(pid: int) -> Reply:
    def reply(msg_type: int, request_id: int) -> bytes:
        if msg_type == mux.MUX_C_ALIVE_CHECK:
            return _frame(_u32(mux.MUX_S_ALIVE), _u32(request_id), _u32(pid))
        if msg_type == mux.MUX_C_TERMINATE:
            return _frame(_u32(mux.MUX_S_OK), _u32(request_id))
        return b""

    return reply


@pytest.mark.parametrize("extension", [True, False])
def test_alive_reports_the_masters_pid(sock_path: str, extension: bool) -> None:
    master = FakeMaster(sock_path, _alive(4242), hello_extension=extension)
    try:
        assert mux.alive(sock_path) == 4242
        assert mux.status(sock_path) == mux.Status(mux.Liveness.ALIVE, 4242)
        assert master.requests == [mux.MUX_C_ALIVE_CHECK, mux.MUX_C_ALIVE_CHECK]
    finally:
        master.close()


def test_stop_sends_terminate(sock_path: str) -> None:
    master = FakeMaster(sock_path, _alive(1))
    try:
        assert mux.stop(sock_path) is True
        assert master.requests == [mux.MUX_C_TERMINATE]
    finally:
        master.close()


def test_permission_denied_is_an_error(sock_path: str) -> None:
    def deny(msg_type: int, request_id: int) -> bytes:
        return _frame(
            _u32(mux.MUX_S_PERMISSION_DENIED), _u32(request_id), _string(b"confirmation refused")
        )

    master = FakeMaster(sock_path, deny)
    try:
        with pytest.raises(mux.MuxError, match="refused"):
            mux.stop(sock_path)
    finally:
        master.close()


def test_wrong_request_id_is_rejected(sock_path: str) -> None:
    def confused(msg_type: int, request_id: int) -> bytes:
        return _frame(_u32(mux.MUX_S_ALIVE), _u32(request_id ^ 1), _u32(7))

    master = FakeMaster(sock_path, confused)
    try:
        found = mux.status(sock_path)
        assert found.liveness is mux.Liveness.UNRESPONSIVE
        assert "request id" in found.message
        assert mux.alive(sock_path) is None
    finally:
        master.close()


def test_stale_socket_is_detected_and_removed(sock_path: str) -> None:
    # A master killed with SIGKILL leaves its socket file with nobody listening.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(sock_path)
    dead.close()
    assert os.path.exists(sock_path)
    assert mux.status(sock_path).liveness is mux.Liveness.STALE
    assert mux.alive(sock_path) is None
    assert mux.remove_stale(sock_path) is True
    assert not os.path.exists(sock_path)
    assert mux.status(sock_path).liveness is mux.Liveness.ABSENT


def test_plain_files_are_never_touched(sock_path: str) -> None:
    Path(sock_path).write_text("not a socket")
    assert mux.status(sock_path).liveness is mux.Liveness.ABSENT
    assert mux.remove_stale(sock_path) is False
    assert Path(sock_path).read_text() == "not a socket"


def test_missing_path_is_absent(sock_path: str) -> None:
    assert mux.status(sock_path).liveness is mux.Liveness.ABSENT
    assert mux.stop(sock_path) is False


@pytest.mark.parametrize(
    "says",
    [b"", b"SSH-2.0-OpenSSH_9.2\r\n", b"HTTP/1.1 400 Bad Request\r\n\r\n", b"\x00\x00"],
    ids=["silent", "ssh-banner", "http", "half-frame"],
)
def test_a_listener_that_does_not_answer_is_unresponsive_within_the_bound(
    sock_path: str, says: bytes
) -> None:
    listener = SilentListener(sock_path, says)
    try:
        started = time.monotonic()
        found = mux.status(sock_path, timeout=0.3)
        assert found.liveness is mux.Liveness.UNRESPONSIVE
        assert sock_path in found.message
        assert mux.alive(sock_path, timeout=0.3) is None
        assert mux.remove_stale(sock_path, timeout=0.3) is False
        assert os.path.exists(sock_path)  # not ours to delete: something listens there
        with pytest.raises(mux.MuxError):
            mux.stop(sock_path, timeout=0.3)
        assert time.monotonic() - started < 5  # four bounded calls, not a hang
    finally:
        listener.close()


def _as_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs the suite as root (chown of a test socket)")
        pytest.skip("needs root to give a socket to another user")


def test_a_socket_owned_by_another_user_is_never_spoken_to(sock_path: str) -> None:
    _as_root()
    master = FakeMaster(sock_path, _alive(4242))
    try:
        os.chown(sock_path, 65534, 65534)
        found = mux.status(sock_path)
        assert found.liveness is mux.Liveness.UNTRUSTED
        assert "belongs to another user" in found.message
        assert mux.alive(sock_path) is None
        with pytest.raises(mux.UntrustedSocket):
            mux.stop(sock_path)
        assert mux.remove_stale(sock_path) is False
        assert master.requests == []  # nothing was sent to it
    finally:
        master.close()


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770], ids=["world", "sticky-tmp", "group"])
def test_a_socket_in_a_directory_others_can_write_is_not_trusted(
    short_tmp: Path, mode: int
) -> None:
    shared = short_tmp / "shared"
    shared.mkdir()
    path = str(shared / "m")
    master = FakeMaster(path, _alive(4242))
    try:
        shared.chmod(mode)
        found = mux.status(path)
        assert found.liveness is mux.Liveness.UNTRUSTED
        assert "writable by others" in found.message
        assert master.requests == []
        shared.chmod(0o700)
        assert mux.alive(path) == 4242  # the same socket, once the directory is private
    finally:
        master.close()


def test_a_directory_owned_by_another_user_is_not_trusted(short_tmp: Path) -> None:
    _as_root()
    theirs = short_tmp / "theirs"
    theirs.mkdir(mode=0o700)
    path = str(theirs / "m")
    master = FakeMaster(path, _alive(4242))
    try:
        os.chown(theirs, 65534, 65534)
        found = mux.status(path)
        assert found.liveness is mux.Liveness.UNTRUSTED
        assert "belongs to another user" in found.message
        assert master.requests == []
    finally:
        master.close()


def test_many_sockets_at_once_say_what_each_says_alone(short_tmp: Path) -> None:
    """statuses() (all in flight together, for the connection listing) agrees with status()
    on every kind of socket: alive, stale, absent, a plain file, silent, another protocol,
    a wrong request id, and a directory others can write to."""
    paths = {name: str(short_tmp / name) for name in ("alive", "stale", "absent", "file")}
    masters = [FakeMaster(paths["alive"], _alive(4242))]
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(paths["stale"])
    dead.close()
    Path(paths["file"]).write_text("not a socket")
    paths["silent"] = str(short_tmp / "silent")
    paths["banner"] = str(short_tmp / "banner")
    listeners = [
        SilentListener(paths["silent"]),
        SilentListener(paths["banner"], b"SSH-2.0-OpenSSH_9.2\r\n"),
    ]
    paths["confused"] = str(short_tmp / "confused")
    masters.append(
        FakeMaster(
            paths["confused"],
            lambda t, rid: _frame(_u32(mux.MUX_S_ALIVE), _u32(rid ^ 1), _u32(7)),
        )
    )
    shared = short_tmp / "shared"
    shared.mkdir()
    paths["shared"] = str(shared / "m")
    masters.append(FakeMaster(paths["shared"], _alive(99)))
    shared.chmod(0o777)
    try:
        together = mux.statuses(list(paths.values()), timeout=0.3)
        alone = {path: mux.status(path, timeout=0.3) for path in paths.values()}
        assert together == alone
        assert together[paths["alive"]] == mux.Status(mux.Liveness.ALIVE, 4242)
        assert {name: together[path].liveness.value for name, path in paths.items()} == {
            "alive": "alive",
            "stale": "stale",
            "absent": "absent",
            "file": "absent",
            "silent": "unresponsive",
            "banner": "unresponsive",
            "confused": "unresponsive",
            "shared": "untrusted",
        }
    finally:
        for master in masters:
            master.close()
        for listener in listeners:
            listener.close()
