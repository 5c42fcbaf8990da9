"""What this machine's OS lets the product know, and what it does without it.

Linux has /proc (process parents, argv, TCP states), pidfd (a process's exit as an event)
and ``SO_PEERCRED`` (a Unix socket peer's uid); macOS has none of the three, and a Linux
whose /proc is hidden (a sandbox, a container) has no process information at all. Each fact
here is a :class:`Capability`: whether it is there, what is used, and what happens without
it, in words a person reads in ``hy2fa doctor`` and Lab's "Check my setup". The names are
those of docs/architecture.md "Linux-only, and what happens elsewhere".
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import processes


@dataclass(frozen=True)
class Capability:
    name: str  # what it is for, for a person: "process information"
    available: bool
    how: str  # what is used when available: "psutil", "SO_PEERCRED", "pidfd"
    without: str  # what the product does without it, for a person

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "available": self.available,
            "how": self.how,
            "without": self.without,
        }


def process_information() -> Capability:
    available = processes.information()
    return Capability(
        "process information",
        available,
        "psutil" if available else "",
        "a question from a kernel's ssh shows no notebook or command line, and is asked in "
        "JupyterLab even when that ssh has a terminal; the master such an ssh leaves is not "
        "listed with the connections",
    )


def connection_states() -> Capability:
    available = processes.connection_states()
    return Capability(
        "connection states",
        available,
        "psutil" if available else "",
        "a login whose cluster closes the connection while a prompt waits fails when the "
        "prompt times out, not at once",
    )


def pidfd() -> Capability:
    available = processes.exit_events()
    return Capability(
        "exit notice",
        available,
        "pidfd" if available else "",
        "a master that exits is noticed by the periodic check (every 15 s), not at once; a "
        "question whose ssh was killed stays in JupyterLab until it times out",
    )


def peer_credentials() -> Capability:
    how = processes.peer_check()
    return Capability(
        "peer check",
        bool(how),
        how,
        "only the askpass socket's 0700 directory keeps other users out",
    )


def ssh_parent_check() -> Capability:
    from .. import askpass  # what hy2fa-askpass itself runs (stdlib only)

    available = askpass.command_name(os.getpid()) is not None
    if not available:
        how = ""
    elif os.path.isdir("/proc/self"):
        how = "/proc/<pid>/comm"
    else:
        how = "ps -o comm="
    return Capability(
        "ssh parent check",
        available,
        how,
        "Cancel cannot signal the ssh that asks: its further questions are refused at once, "
        "and it gives up after its NumberOfPasswordPrompts",
    )


def bridge_capabilities() -> list[Capability]:
    """What the askpass bridge relies on."""
    return [peer_credentials(), process_information(), ssh_parent_check()]


def capabilities() -> list[Capability]:
    """Every Linux-only fact the product uses, as this machine has it."""
    return [*bridge_capabilities(), connection_states(), pidfd()]
