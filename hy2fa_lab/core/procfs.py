"""Reading other processes of this user from Linux's /proc (elsewhere: nothing is known)."""

from __future__ import annotations


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
