"""Reading other processes of this user from Linux's /proc, and waiting for one to exit
(pidfd); elsewhere nothing is known yet. The fallbacks where there is no /proc or pidfd
(macOS): a parent from ``sysctl(KERN_PROC_PID)`` or ``ps -o ppid=``, an argv from
``sysctl(KERN_PROCARGS2)`` or ``ps -o args=``, an exit from kqueue's ``EVFILT_PROC``
``NOTE_EXIT``. ``hy2fa-askpass`` checks its own parent itself (it must stay light)."""

from __future__ import annotations

import asyncio
import os


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid``, or ``None`` when it is gone or unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> list[str]:
    """The argv of ``pid`` (empty when it is gone or unknown)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def process_exit(pid: int) -> asyncio.Future[None]:
    """A future done when ``pid`` exits (pidfd where the kernel has it; else never)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return future

    def done() -> None:
        if not future.done():
            future.set_result(None)

    loop.add_reader(fd, done)

    def cleanup(_: asyncio.Future[None]) -> None:
        loop.remove_reader(fd)
        os.close(fd)

    future.add_done_callback(cleanup)
    return future
