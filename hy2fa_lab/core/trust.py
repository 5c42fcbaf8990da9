"""Whether a control socket, and the directory it lives in, are ours to trust.

Anyone who can put a listener at the path we look at could pretend to be a live master
(and receive our commands), or swap the socket under us. So a socket is only used, stopped
or removed when it belongs to this user and its directory belongs to this user and nobody
else can write to it. A sticky, world-writable directory such as ``/tmp`` is not enough:
another user can still claim a name in it first.
"""

from __future__ import annotations

import os
import stat


def _uid() -> int:
    return os.geteuid()


def directory_problem(directory: str) -> str | None:
    """Why ``directory`` cannot hold our sockets, or ``None`` when it can."""
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        return None  # created 0700 by us when needed
    except OSError as error:
        return f"cannot inspect the socket directory {directory}: {error.strerror}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{directory} is not a directory"
    if info.st_uid != _uid():
        return f"the socket directory {directory} belongs to another user"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (
            f"the socket directory {directory} is writable by others "
            f"(chmod 700 it, or choose a ControlPath in a private directory such as ~/.ssh)"
        )
    return None


def socket_problem(path: str) -> str | None:
    """Why the socket at ``path`` must not be used, or ``None`` when it is ours (or absent)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot inspect {path}: {error.strerror}"
    problem = directory_problem(os.path.dirname(path) or ".")
    if problem is not None:
        return problem
    if info.st_uid != _uid():
        return f"the socket {path} belongs to another user"
    return None
