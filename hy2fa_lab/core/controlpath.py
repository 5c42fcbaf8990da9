"""ControlPath templates expanded the way ssh expands them, and kept short enough to bind.

The one definition of how long a Unix socket's path may be: :data:`SUN_PATH`, the size of
``sockaddr_un.sun_path`` (108 bytes on Linux, 104 on macOS and the BSDs), with room for its
NUL. A master binds ``<path>.<16 random characters>`` before linking it into place, so a
control path has 18 bytes less (:data:`MAX_LENGTH`: 90 on Linux, 86 on macOS); a socket bound
at its own path (the askpass bridge's listener) has one less (:func:`bindable`).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import socket
import sys
from dataclasses import dataclass

from . import trust, validate
from .errors import InvalidInput
from .sshconfig import passwd_home

DEFAULT_TEMPLATE = "~/.ssh/cm-%r@%h:%p"
FALLBACK_NAME = "cm-%C"
SUN_PATH = 108 if sys.platform == "linux" else 104
_MASTER_TEMP_NAME = len(".") + 16 + 1  # ssh's ".<16 random characters>" and the NUL
MAX_LENGTH = SUN_PATH - _MASTER_TEMP_NAME


@dataclass(frozen=True)
class Tokens:
    """The values behind each ``%`` token, as ``ssh -G`` resolved them."""

    host: str  # %h: HostName after the config is applied
    port: int  # %p
    remote_user: str  # %r
    original_host: str  # %n: the destination as typed
    jump: str = ""  # %j: ProxyJump, when ssh hashes it into %C
    host_key_alias: str = ""  # %k (falls back to %n)


def local_hostname() -> str:
    return socket.gethostname()


def connection_hash(tokens: Tokens, local_host: str | None = None) -> str:
    """ssh's ``%C``: SHA-1 of ``%l%h%p%r`` (and ``%j`` when a jump host is set)."""
    local = local_host if local_host is not None else local_hostname()
    text = f"{local}{tokens.host}{tokens.port}{tokens.remote_user}{tokens.jump}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def expand(template: str, tokens: Tokens, *, local_host: str | None = None) -> str:
    """Expand ``~`` and ``%r %h %p %C %u %L %l %n %d %i %k %%``; unknown tokens are an error.

    ``~`` and ``%d`` are the passwd entry's home, as ssh has them (it ignores ``$HOME``)."""
    local = local_host if local_host is not None else local_hostname()
    home = passwd_home()
    values = {
        "%": "%",
        "C": connection_hash(tokens, local),
        "d": home,
        "h": tokens.host,
        "i": str(os.getuid()),
        "k": tokens.host_key_alias or tokens.original_host,
        "L": local.split(".", 1)[0],
        "l": local,
        "n": tokens.original_host,
        "p": str(tokens.port),
        "r": tokens.remote_user,
        "u": getpass.getuser(),
    }
    out: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        if char != "%":
            out.append(char)
            index += 1
            continue
        token = template[index + 1 : index + 2]
        if token not in values:
            raise InvalidInput(
                f"control path template has an unknown token {validate.shown('%' + token)[1:-1]}: "
                f"{validate.shown(template)}"
            )
        out.append(values[token])
        index += 2
    path = "".join(out)
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    if not os.path.isabs(path):
        raise InvalidInput(
            f"control path must be absolute (or start with ~/): {validate.shown(template)}"
        )
    return path


def fits(path: str) -> bool:
    """Whether an ssh master can bind a control socket at ``path``."""
    return len(os.fsencode(path)) <= MAX_LENGTH


def bindable(path: str) -> bool:
    """Whether a socket can be bound at ``path`` itself (a listener of ours)."""
    return len(os.fsencode(path)) < SUN_PATH


def shortened(path: str, tokens: Tokens, *, local_host: str | None = None) -> str:
    """``path`` if it fits, else a ``cm-%C`` name in the same directory, ``~/.ssh``, or /tmp."""
    if fits(path):
        return path
    name = expand(f"/{FALLBACK_NAME}", tokens, local_host=local_host)[1:]
    for directory in (
        os.path.dirname(path),
        os.path.join(passwd_home(), ".ssh"),
        f"/tmp/hy2fa-{os.getuid()}",  # noqa: S108 - made 0700 by ensure_dir, refused if not ours
    ):
        candidate = os.path.join(directory, name)
        if fits(candidate):
            return candidate
    raise InvalidInput(f"control path is too long for a Unix socket ({len(path)} bytes): {path}")


def ensure_dir(path: str) -> None:
    """Create the socket's directory 0700; refuse one that is not ours or others can write,
    and a path with a ``..`` component before anything is made."""
    _no_parent_steps(path)
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o700)
    problem = trust.directory_problem(directory)
    if problem is not None:
        raise InvalidInput(f"Refusing to put a control socket there: {problem}")


def _no_parent_steps(path: str) -> None:
    """Refuse a ``..`` component: ``a/missing/../b`` would make ``a/missing`` on the way to
    ``a/b``, and a path that climbs is no place a person meant for a socket."""
    if ".." in path.split("/"):
        raise InvalidInput(
            f"the control path {validate.shown(path)} has a '..' component; name its "
            "directory without one"
        )


def checked(path: str) -> str:
    """``path`` if ssh will take it literally (ssh expands ``%`` tokens in ``-S`` again)
    and it names its directory plainly (no ``..``)."""
    _no_parent_steps(path)
    if "%" in path:
        raise InvalidInput(
            f"the control path {validate.shown(path)} holds a literal '%', which ssh would "
            "expand again; choose a ControlPath template (and home directory) whose "
            "expansion has no '%'"
        )
    return path
