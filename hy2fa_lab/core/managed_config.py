"""``hy2fa config-ssh``: a managed ``Host`` block in ``~/.ssh/config`` so every ssh client
(HSP, ``rsync``, plain ``ssh saga``) finds the same socket.

The block sits between marker comments; everything outside it is kept byte for byte. It goes
just before the first ``Host`` or ``Match`` line: options and ``Include`` lines above that
line apply to every host, and a block above them would turn them into options of the alias
alone. The file is replaced atomically and the previous version is kept beside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from . import validate
from .controlpath import DEFAULT_TEMPLATE
from .errors import Hy2faError, InvalidInput
from .sshconfig import ssh_g, user_config_file

BEGIN = "# >>> hy2fa-lab managed: {name} >>>"
END = "# <<< hy2fa-lab managed: {name} <<<"
BACKUP_SUFFIX = ".hy2fa-backup"

# ssh's keywords are case-insensitive and may be followed by "=" instead of a blank.
_SECTION = re.compile(r"[ \t]*(?:host|match)(?:[ \t]*=|[ \t]|\r?\n|$)", re.IGNORECASE)
_ANY_BEGIN = re.compile(r"# >>> hy2fa-lab managed: \S+ >>>[ \t]*\r?\n?$")


@dataclass(frozen=True)
class HostBlock:
    alias: str
    hostname: str
    persist: str
    control_path: str = DEFAULT_TEMPLATE
    user: str | None = None
    port: int | None = None

    def render(self, eol: str = "\n") -> str:
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
        return eol.join(lines) + eol

    def options(self) -> list[tuple[str, str]]:
        """The options of the block whose effective value ``overridden`` checks."""
        pairs = [("HostName", self.hostname)]
        if self.user:
            pairs.append(("User", self.user))
        if self.port and self.port != 22:
            pairs.append(("Port", str(self.port)))
        pairs += [
            ("ControlMaster", "auto"),
            ("ControlPath", self.control_path),
            ("ControlPersist", self.persist),
        ]
        return pairs


def _check(block: HostBlock) -> None:
    validate.cluster_name(block.alias)
    validate.host(block.hostname)
    validate.persist(block.persist)
    if block.user is not None:
        validate.user(block.user)
    if block.port is not None:
        validate.port(block.port)
    if re.search(r"[\s\"']", block.control_path) or not block.control_path.startswith(("/", "~/")):
        raise InvalidInput(
            f"control path must be absolute, without spaces: {validate.shown(block.control_path)}"
        )


def _lines(text: str) -> list[str]:
    """Lines with their endings, split on ``\\n`` only, as ssh reads them."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _eol(text: str) -> str:
    """The file's line ending: CRLF when most lines end so."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf > text.count("\n") - crlf else "\n"


def _blank(line: str) -> bool:
    return line in ("\n", "\r\n")


def _cut(original: str, alias: str) -> tuple[str, bool]:
    """``original`` without the block for ``alias`` (and the blank line that went with it)."""
    lines = _lines(original)
    begin, end = BEGIN.format(name=alias), END.format(name=alias)
    start = next((i for i, line in enumerate(lines) if line.strip() == begin), None)
    if start is None:
        return original, False
    stop = next((i for i in range(start, len(lines)) if lines[i].strip() == end), None)
    if stop is None:
        raise InvalidInput(f"The managed block for {alias} has no end marker ({end})")
    stop += 1
    if stop < len(lines) and _blank(lines[stop]):
        stop += 1  # inserted as block + blank line before a Host/Match line
    elif stop == len(lines) and start > 0 and _blank(lines[start - 1]):
        start -= 1  # appended as blank line + block at the end
    return "".join(lines[:start] + lines[stop:]), True


def _insertion_line(lines: list[str]) -> int | None:
    """Index of the first ``Host``/``Match`` line (or of another managed block, which starts
    with one), moved up over the comment lines directly above it; None when there is none."""
    for index, line in enumerate(lines):
        if _SECTION.match(line) or _ANY_BEGIN.match(line):
            while (
                index > 0
                and lines[index - 1].lstrip().startswith("#")
                and not lines[index - 1].startswith("# <<< hy2fa-lab managed:")
            ):
                index -= 1
            return index
    return None


def splice(original: str, block: HostBlock) -> str:
    """``original`` with ``block`` (any earlier version of it removed) just before the first
    ``Host``/``Match`` line, or at the end when there is none.

    Lines above the first ``Host``/``Match`` apply to every host, so the block must not come
    before them. Removing the block again (``unsplice``) gives ``original`` back.
    """
    rest, _ = _cut(original, block.alias)
    eol = _eol(rest)
    rendered = block.render(eol)
    lines = _lines(rest)
    index = _insertion_line(lines)
    if index is not None:
        return "".join(lines[:index]) + rendered + eol + "".join(lines[index:])
    if not rest:
        return rendered
    ending = "" if rest.endswith("\n") else eol
    return rest + ending + eol + rendered


def unsplice(original: str, alias: str) -> str | None:
    """``original`` without the managed block for ``alias``; None when it has none."""
    rest, found = _cut(original, alias)
    return rest if found else None


def check_config_path(config_file: str | None) -> str:
    """The real path a config is written to; refuses what is not (or cannot be) a file."""
    if config_file is not None and config_file.lower() == "none":
        raise InvalidInput("-F none means no ssh config file: there is nothing to write to")
    path = os.path.realpath(os.path.expanduser(config_file or user_config_file()))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:  # e.g. a path under a regular file
        raise Hy2faError(f"cannot write {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise InvalidInput(f"{path} is a directory, not an ssh config file")
    if not stat.S_ISREG(mode):
        raise InvalidInput(f"{path} is not a regular file; refusing to replace it")
    return path


def _rewrite(
    config_file: str | None, change: Callable[[str], str | None], missing: str
) -> tuple[str, str | None]:
    """Apply ``change`` to the config and replace it atomically (mode, owner and the target of
    a symlink kept, previous version saved as a backup). ``change`` returning None means there
    is nothing to do: ``Hy2faError(missing)``. OS failures become ``Hy2faError`` naming the
    file; the config is then unchanged."""
    path = check_config_path(config_file)
    directory = os.path.dirname(path) or "."
    try:
        try:
            # surrogateescape and newline="": bytes that are not UTF-8, and every line
            # ending, come back out exactly as they went in.
            with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
                original = handle.read()
            info: os.stat_result | None = os.stat(path)
        except FileNotFoundError:
            original, info = "", None
    except OSError as exc:
        raise Hy2faError(f"cannot read {path}: {exc.strerror or exc}") from None
    updated = change(original)
    if updated is None:
        raise Hy2faError(missing.format(path=path), reason="not_found")
    backup = None
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700, exist_ok=True)
        if info is not None:
            backup = path + BACKUP_SUFFIX
            shutil.copy2(path, backup)
        _replace(path, directory, updated, info)
    except OSError as exc:
        raise Hy2faError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path, backup


def _replace(path: str, directory: str, text: str, info: os.stat_result | None) -> None:
    """Write a temporary file beside ``path`` and rename it over ``path``: a reader (or a
    crash) sees the old file or the new one, never half of one."""
    descriptor, temporary = tempfile.mkstemp(prefix=".config-", dir=directory)
    try:
        with os.fdopen(
            descriptor, "w", encoding="utf-8", errors="surrogateescape", newline=""
        ) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, stat.S_IMODE(info.st_mode) if info else 0o600)
        if info is not None and (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(OSError):  # ssh refuses a config with a foreign owner
                os.chown(temporary, info.st_uid, info.st_gid)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        handle_dir = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle_dir)
        finally:
            os.close(handle_dir)


def write_block(block: HostBlock, config_file: str | None = None) -> tuple[str, str | None]:
    """Write ``block`` into the config (default: the user's, where ssh reads it); returns
    (config path, backup path or None)."""
    _check(block)
    return _rewrite(config_file, lambda text: splice(text, block), "")


def has_block(alias: str, config_file: str | None = None) -> bool:
    """Whether the config holds a managed block for ``alias`` (reads the file, runs nothing)."""
    path = check_config_path(config_file)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
            return unsplice(handle.read(), alias) is not None
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise Hy2faError(f"cannot read {path}: {exc.strerror or exc}") from None


def update_block(block: HostBlock, config_file: str | None = None) -> tuple[str, str | None] | None:
    """Write ``block`` again where the config already holds one for its alias (the person
    asked for it once: it follows their values since); None, and nothing written, when it
    holds none."""
    _check(block)

    def change(text: str) -> str | None:
        return splice(text, block) if unsplice(text, block.alias) is not None else None

    try:
        return _rewrite(config_file, change, "")
    except Hy2faError as error:
        if error.reason == "not_found":
            return None
        raise


def remove_block(alias: str, config_file: str | None = None) -> tuple[str, str | None]:
    """Take the managed block for ``alias`` out of the config; returns (config path, backup
    path). ``Hy2faError`` when the config has no such block."""
    validate.cluster_name(alias)
    return _rewrite(
        config_file,
        lambda text: unsplice(text, alias),
        f"{{path}} has no block managed by hy2fa for {alias}",
    )


def overridden(block: HostBlock, config_file: str | None = None) -> list[str]:
    """Options of ``block`` that ssh does not take from it, because a line it reads earlier
    (a global option, an included file) sets them first.

    Compared with ``ssh -G`` given the block's values on the command line, which win over
    any file: that way ``~`` and ``%`` tokens are expanded by ssh in both.
    """
    found = ssh_g(block.alias, config_file=config_file)
    wanted = ssh_g(block.alias, config_file=config_file, options=block.options())
    return [key for key, _ in block.options() if found.get(key.lower()) != wanted.get(key.lower())]
