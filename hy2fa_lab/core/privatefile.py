"""A small file of ours that others must not be able to plant or change: the remembered masters
(``remembered.py``) and the person's own cluster settings (``mine.py``).

It is read only when it is a regular file owned by us, reached without a symlink, and not
writable by others; it is written whole, through a temporary file of a unique name beside it
(``O_CREAT | O_EXCL | O_NOFOLLOW``, 0600), flushed to disk and renamed into place, so a reader
(or a crash) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat


class Refused(Exception):
    """The file is there but is not read: why, in words (``others can write it``)."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


def read(path: str, max_bytes: int) -> str | None:
    """The file's text; ``None`` when there is no file. :class:`Refused` says why a file that
    is there is not read: not ours, others can write it, a symlink, a FIFO, too large, not
    UTF-8, or an error of the system."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise Refused(error.strerror or str(error)) from None
    try:
        problem = untrusted(os.fstat(descriptor))
        if problem is not None:
            raise Refused(problem)
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise Refused(f"cannot read it: {error.strerror or error}") from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise Refused(f"it is larger than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("it is not UTF-8 text") from None


def untrusted(info: os.stat_result) -> str | None:
    """Why a file with this ``fstat`` is not ours to read, or ``None``."""
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if info.st_uid != os.geteuid():
        return "it belongs to another user"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "others can write it"
    return None


def write(path: str, text: str, *, durable: bool = True) -> None:
    """Replace ``path`` with ``text`` atomically (0600). ``durable`` flushes the file and the
    rename to disk (a person's settings); OS errors are raised, and ``path`` is then as it was."""
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if durable:
        with contextlib.suppress(OSError):  # the rename itself
            handle_dir = os.open(directory or ".", os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(handle_dir)
            finally:
                os.close(handle_dir)
