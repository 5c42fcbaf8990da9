"""The remembered-masters file: masters other ssh processes made (the askpass bridge's), kept
in the server's runtime dir so that a restarted server lists them again. Paths and hosts only.

What is read back is input like any other: a row becomes a :class:`Target` only when every
value passes the checks REST input passes (``validate``), and the file is read only when it
is ours and nobody else can write it. A bad row is dropped (one log line says which, and
why); nothing here raises. The file is written whole, through a temporary file of a unique
name opened with ``O_EXCL | O_NOFOLLOW`` (0600), and renamed into place (``privatefile.py``).

A remembered master is listed as what it is, a master some ssh made at its own socket: the
manager marks its session ``made_by: ssh``, and a cluster's row shows only a login of that
cluster or the master on the cluster's own socket, so a row of this file never takes a
cluster's row or socket path.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence

from . import controlpath, privatefile, validate
from .errors import InvalidInput
from .types import Target

MAX_BYTES = 1 << 20  # a file of masters paths is a few kB; more is not ours to parse
MAX_ROWS = 256
_SHOWN_PROBLEMS = 3
_FIELDS = {field.name for field in dataclasses.fields(Target)}
_REQUIRED = {"name", "destination", "hostname", "user", "port", "control_path", "persist"}
_log = logging.getLogger("hy2fa_lab")


def load(path: str | None, log: logging.Logger | None = None) -> list[Target]:
    """The masters remembered in ``path``, every row checked; bad rows are dropped, with one
    log line that says which and why."""
    log = log or _log
    if not path:
        return []
    text = _read(path, log)
    if text is None:
        return []
    try:
        rows = json.loads(text)
    except ValueError:
        log.warning("hy2fa_lab: %s is not JSON; no master is remembered from it", path)
        return []
    if not isinstance(rows, list):
        log.warning("hy2fa_lab: %s is not a list of masters; none is remembered", path)
        return []
    targets: list[Target] = []
    dropped: list[str] = []
    for index, row in enumerate(rows):
        if index >= MAX_ROWS:
            dropped.append(f"rows past the first {MAX_ROWS}")
            break
        try:
            targets.append(target_of(row))
        except InvalidInput as error:
            dropped.append(f"row {index + 1}: {error.message}")
    if dropped:
        more = len(dropped) - _SHOWN_PROBLEMS
        log.warning(
            "hy2fa_lab: %s: %d remembered master(s) dropped: %s%s",
            path,
            len(dropped),
            "; ".join(dropped[:_SHOWN_PROBLEMS]),
            f"; and {more} more" if more > 0 else "",
        )
    return targets


def save(
    path: str | None,
    targets: Sequence[Target],
    *,
    replace: bool = False,
    log: logging.Logger | None = None,
) -> None:
    """Keep ``targets`` in ``path`` (added to the rows there, unless ``replace``), written
    whole and atomically; a failure is logged, never raised (nothing more is remembered)."""
    log = log or _log
    if not path:
        return
    rows: dict[str, Target] = {}
    if not replace:
        rows = {t.control_path: t for t in load(path, log)}
    rows.update({target.control_path: target for target in targets})
    data = json.dumps([dataclasses.asdict(target) for target in rows.values()])
    try:
        privatefile.write(path, data, durable=False)
    except OSError as error:
        log.warning("hy2fa_lab: cannot remember masters in %s: %s", path, error.strerror)


def target_of(row: object) -> Target:
    """A :class:`Target` from one row of the file, every value checked as REST input is;
    :class:`InvalidInput` says what is wrong."""
    if not isinstance(row, dict):
        raise InvalidInput(f"not an object: {validate.shown(row)}")
    unknown = [str(key) for key in row if key not in _FIELDS]
    if unknown:
        raise InvalidInput(f"unknown fields {validate.shown(sorted(unknown))}")
    missing = sorted(_REQUIRED - set(row))
    if missing:
        raise InvalidInput(f"missing {', '.join(missing)}")
    port, explicit_port = row["port"], row.get("explicit_port")
    for value in (port, explicit_port):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidInput(
                f"port must be a number from 1 to 65535, not {validate.shown(value)}"
            )
    user = row["user"]
    explicit_user = row.get("explicit_user")
    options = row.get("ssh_options", [])
    if not isinstance(options, list) or not all(
        isinstance(pair, list) and len(pair) == 2 for pair in options
    ):
        raise InvalidInput(f"ssh_options must be [key, value] pairs, not {validate.shown(options)}")
    cluster = row.get("cluster", "")
    persist = row["persist"]
    if not isinstance(persist, str):
        raise InvalidInput(f"persist must be a string, not {validate.shown(persist)}")
    return Target(
        name=validate.host(row["name"]),
        destination=validate.host(row["destination"]),
        hostname=validate.host(row["hostname"]),
        user=validate.user(user) if user != "" else "",
        port=validate.port(port),
        control_path=_socket_path(row["control_path"]),
        persist=_persist(persist),
        ssh_options=tuple(validate.ssh_option(key, value) for key, value in options),
        explicit_user=None if explicit_user is None else validate.user(explicit_user),
        explicit_port=None if explicit_port is None else validate.port(explicit_port),
        cluster=validate.host(cluster) if cluster != "" else "",
    )


def _persist(value: str) -> str:
    """A ControlPersist as ssh -G says it (``no`` too: the master ends with its first
    session), kept as written."""
    if value != "no":
        validate.duration_seconds(value)
    return value


def _socket_path(value: object) -> str:
    """A socket path as ssh leaves it: absolute, one file name (no NUL), no literal ``%``,
    short enough to bind."""
    path = validate.control_path_template(value)
    if not os.path.isabs(path) or any(ch in path for ch in "\n\r"):
        raise InvalidInput(f"control_path must be an absolute path, not {validate.shown(path)}")
    if not controlpath.fits(path):
        raise InvalidInput(f"control_path is too long for a Unix socket: {validate.shown(path)}")
    return controlpath.checked(path)


def _read(path: str, log: logging.Logger) -> str | None:
    """The file's text, if it is ours (a regular file owned by us, not writable by others,
    reached without a symlink); ``None`` when absent or refused (refusal is logged)."""
    try:
        return privatefile.read(path, MAX_BYTES)
    except privatefile.Refused as refused:
        log.warning("hy2fa_lab: not reading remembered masters from %s: %s", path, refused.message)
        return None
