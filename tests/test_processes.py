"""``core/processes.py`` and ``core/platform.py`` against real processes: what the product
learns about other processes through psutil, and that it says "unknown" (never raises)
where it can learn nothing; pidfds where the kernel has them, ``None`` where not; and which
of these facts this machine has, with /proc and with /proc hidden."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from hy2fa_lab.core import platform, processes

ARCHITECTURE = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A Python child that says it runs, then waits for its stdin to close."""
    script = "import sys; print('up', flush=True); sys.stdin.read()"
    with subprocess.Popen(
        [sys.executable, "-c", script, "marker-arg"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        yield proc
        proc.kill()


def test_parent_ancestors_and_argv_of_a_real_process(child: subprocess.Popen[bytes]) -> None:
    assert processes.parent_pid(child.pid) == os.getpid()
    assert processes.ancestors(child.pid)[:2] == [os.getpid(), os.getppid()]
    assert processes.cmdline(child.pid)[-1] == "marker-arg"
    assert processes.information()


def test_a_process_that_is_gone_is_unknown(child: subprocess.Popen[bytes]) -> None:
    child.kill()
    child.wait()
    assert processes.parent_pid(child.pid) is None
    assert processes.ancestors(child.pid) == []
    assert processes.cmdline(child.pid) == []
    assert processes.closed_by_peer(child.pid) is False


def test_with_no_process_information_every_answer_is_unknown(
    child: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """psutil refusing everything (as in a sandbox) makes every fact unknown; none raises."""

    def refused(pid: int | None = None) -> Any:
        raise psutil.AccessDenied(pid)

    monkeypatch.setattr(psutil, "Process", refused)
    assert processes.parent_pid(child.pid) is None
    assert processes.ancestors(child.pid) == []
    assert processes.cmdline(child.pid) == []
    assert processes.closed_by_peer(child.pid) is False
    assert not processes.information() and not processes.connection_states()
    assert not platform.process_information().available


@pytest.mark.parametrize("system_wide", [True, False], ids=["shared-table", "per-process"])
def test_a_connection_the_server_closed_is_seen_in_close_wait(
    monkeypatch: pytest.MonkeyPatch, system_wide: bool
) -> None:
    """ssh waiting at a prompt does not notice that the server hung up; its socket in
    CLOSE_WAIT tells. Also where the system-wide table is refused (macOS, unless root), from
    the process's own connections."""
    if not system_wide:

        def refused(kind: str = "inet") -> Any:
            raise psutil.AccessDenied()

        monkeypatch.setattr(psutil, "net_connections", refused)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        script = (
            "import socket, sys\n"
            f"s = socket.create_connection(('127.0.0.1', {port}))\n"
            "print('connected', flush=True)\n"
            "print('eof' if s.recv(1) == b'' else 'data', flush=True)\n"
            "sys.stdin.read()\n"
        )
        with subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        ) as proc:
            assert proc.stdout is not None
            server_side, _ = listener.accept()
            assert proc.stdout.readline() == b"connected\n"
            assert processes.closed_by_peer(proc.pid) is False  # established
            server_side.close()
            assert proc.stdout.readline() == b"eof\n"  # the FIN has arrived
            assert processes.closed_by_peer(proc.pid) is True
            proc.kill()


def test_logins_waiting_at_once_share_one_read_of_the_tcp_table(
    monkeypatch: pytest.MonkeyPatch, child: subprocess.Popen[bytes]
) -> None:
    """Each waiting login looks at its ssh once a second: one system-wide read serves every
    pid for a moment, and a pid that looks again gets a read of its own (never the same)."""
    reads = []
    real = psutil.net_connections

    def counted(kind: str = "inet") -> Any:
        reads.append(kind)
        return real(kind)

    monkeypatch.setattr(psutil, "net_connections", counted)
    monkeypatch.setattr(processes, "_tcp_table", None)
    monkeypatch.setattr(processes, "_TCP_TABLE_AGE", 3600.0)  # a slow machine: still shared
    for pid in (child.pid, os.getpid(), 1):
        assert processes.closed_by_peer(pid) is False
    assert reads == ["tcp"]
    assert processes.closed_by_peer(child.pid) is False
    assert reads == ["tcp", "tcp"]


def test_a_process_without_tcp_connections_concludes_nothing(
    child: subprocess.Popen[bytes],
) -> None:
    """Through a ProxyJump or ProxyCommand ssh talks over a pipe: never "closed"."""
    assert processes.closed_by_peer(child.pid) is False
    assert processes.closed_by_peer(None) is False


async def test_an_exit_is_an_event_through_a_pidfd() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; sys.stdin.read()", stdin=subprocess.PIPE
    )
    exited = processes.process_exit(proc.pid)
    assert exited is not None and not exited.done()
    assert proc.stdin is not None
    proc.stdin.close()
    await asyncio.wait_for(exited, 30)
    await proc.wait()
    gone = processes.process_exit(proc.pid)  # reaped: no such process any more
    assert gone is not None and gone.done()


async def test_without_pidfds_there_is_no_exit_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "pidfd_open")
    assert processes.process_exit(os.getpid()) is None
    assert not processes.exit_events() and not platform.pidfd().available


async def test_a_sandbox_that_refuses_pidfds_gives_no_exit_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(pid: int, flags: int = 0) -> int:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "pidfd_open", refused)
    assert processes.process_exit(os.getpid()) is None
    assert not processes.exit_events()


def test_so_peercred_gives_the_peers_uid_and_pid() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert processes.peer_check() == "SO_PEERCRED"
        assert processes.peer_of(left) == processes.Peer(uid=os.getuid(), pid=os.getpid())


# ---- which facts this machine has ----------------------------------------------------------


def documented() -> list[str]:
    """The names of docs/architecture.md's "Linux-only, and what happens elsewhere" table."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Linux-only, and what happens elsewhere", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| \*\*([^*]+)\*\*", section, re.M)


def test_the_documented_list_is_what_capabilities_reports() -> None:
    assert documented() == [capability.name for capability in platform.capabilities()]


def test_this_linux_has_every_fact() -> None:
    found = {c.name: (c.available, c.how) for c in platform.capabilities()}
    assert found == {
        "peer check": (True, "SO_PEERCRED"),
        "process information": (True, "psutil"),
        "ssh parent check": (True, "/proc/<pid>/comm"),
        "connection states": (True, "psutil"),
        "exit notice": (True, "pidfd"),
    }
    assert all(c.without for c in platform.capabilities())
    json.dumps([c.to_json() for c in platform.capabilities()])


def test_with_proc_hidden_what_is_missing_is_said(hide_proc: list[str]) -> None:
    code = (
        "import json\nfrom hy2fa_lab.core.platform import capabilities\n"
        "print(json.dumps([c.to_json() for c in capabilities()]))\n"
    )
    out = subprocess.run(
        [*hide_proc, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    found = {c["name"]: (c["available"], c["how"]) for c in json.loads(out)}
    assert found == {
        "peer check": (True, "SO_PEERCRED"),  # a syscall, not /proc
        "process information": (False, ""),
        "ssh parent check": (False, ""),  # neither /proc nor ps
        "connection states": (False, ""),
        "exit notice": (True, "pidfd"),  # a syscall too
    }
