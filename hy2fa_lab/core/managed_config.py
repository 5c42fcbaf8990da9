"""``hy2fa config-ssh``: a managed ``Host`` block in ``~/.ssh/config`` so every ssh client
(HSP, ``rsync``, plain ``ssh saga``) finds the same socket.

The block sits between marker comments; everything outside it is kept byte for byte. The
file is replaced atomically and the previous version is kept beside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass

from . import validate
from .controlpath import DEFAULT_TEMPLATE
from .errors import InvalidInput

BEGIN = "# >>> hy2fa-lab managed: {name} >>>"
END = "# <<< hy2fa-lab managed: {name} <<<"
BACKUP_SUFFIX = ".hy2fa-backup"


@dataclass(frozen=True)
class HostBlock:
    alias: str
    hostname: str
    persist: str
    control_path: str = DEFAULT_TEMPLATE
    user: str | None = None
    port: int | None = None

    def render(self) -> str:
        lines = [
            BEGIN.format(name=self.alias),
            f"# Written by `hy2fa config-ssh {self.alias}`; replaced on the next run.",
            f"Host {self.alias}",
            f"    HostName {self.hostname}",
        ]
        if self.user:
            lines.append(f"    User {self.user}")
        if self.port and self.port != 22:
            lines.append(f"    Port {self.port}")
        lines += [
            "    ControlMaster auto",
            f"    ControlPath {self.control_path}",
            f"    ControlPersist {self.persist}",
            "    ServerAliveInterval 30",
            END.format(name=self.alias),
        ]
        return "\n".join(lines) + "\n"


def _check(block: HostBlock) -> None:
    validate.cluster_name(block.alias)
    validate.host(block.hostname)
    validate.persist(block.persist)
    if block.user is not None:
        validate.user(block.user)
    if block.port is not None:
        validate.port(block.port)
    if re.search(r"[\s\"']", block.control_path) or not block.control_path.startswith(("/", "~/")):
        raise InvalidInput(f"control path must be absolute, without spaces: {block.control_path}")


def splice(original: str, block: HostBlock) -> str:
    """``original`` with ``block`` replacing its earlier version, or put first (ssh takes the
    first value it finds, so a block at the top wins over later ``Host *`` defaults)."""
    begin = BEGIN.format(name=block.alias)
    end = END.format(name=block.alias)
    start = original.find(begin)
    if start != -1:
        stop = original.find(end, start)
        if stop == -1:
            raise InvalidInput(f"The managed block for {block.alias} has no end marker ({end})")
        stop += len(end)
        if original[stop : stop + 1] == "\n":
            stop += 1
        return original[:start] + block.render() + original[stop:]
    separator = "\n" if original else ""
    return block.render() + separator + original


def write_block(block: HostBlock, config_file: str | None = None) -> tuple[str, str | None]:
    """Write ``block`` into the config; returns (config path, backup path or None)."""
    _check(block)
    path = os.path.realpath(os.path.expanduser(config_file or "~/.ssh/config"))
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            original = handle.read()
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        original, mode = "", 0o600
    updated = splice(original, block)
    backup = None
    if original:
        backup = path + BACKUP_SUFFIX
        shutil.copy2(path, backup)
    descriptor, temporary = tempfile.mkstemp(prefix=".config-", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(updated)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path, backup
