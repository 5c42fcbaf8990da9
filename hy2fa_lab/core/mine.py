"""The person's own cluster settings: their user name, port, persist time, label and ssh
options for any cluster, and clusters of their own, kept in one file across server restarts.

The file is ``<Jupyter data dir>/hy2fa_lab/clusters.json`` (``config.clusters_file()``;
``JUPYTER_DATA_DIR`` moves it, as it moves every Jupyter data file). It lies on top of what
the site gives: built-in < ssh config aliases < Jupyter config < these settings
(``profiles.load_profiles``). It holds names, hosts and the values below, never a secret::

    {"version": 1, "clusters": {"saga": {"user": "olan"},
                                "mylab": {"host": "login.lab.example.org", "port": 2222}}}

An entry with a ``host`` is a cluster of the person's own; one without sets their values
for a cluster the site gives. What is read back is input like any other: every value is
checked as REST input is (``validate``, the ssh option allow-list), a bad entry costs that
entry alone (its cluster is listed with an error that names the file and the key), and the
file is read only when it is ours and others cannot write it (``privatefile``). A change is
made under a lock on the directory (so two writers do not lose each other's change), to a
whole new file renamed into place; a change that is refused writes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import stat
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from . import privatefile, validate
from .errors import Hy2faError, InvalidInput, UnknownCluster

VERSION = 1
MAX_BYTES = 1 << 20
MAX_CLUSTERS = 500
MAX_LABEL = 100
# What a person may set for any cluster, and what a cluster of their own has besides.
OVERRIDES = ("user", "port", "persist", "label", "ssh_options")
FIELDS = ("host", *OVERRIDES)

T = TypeVar("T")


class ClusterExists(Hy2faError):
    """A cluster of one's own cannot take a name that is in use (409)."""

    reason = "cluster_exists"


class FileProblem(Hy2faError):
    """The file of the person's settings cannot be read as theirs, or written: nothing is
    changed (the server answers 502, the ``hy2fa`` command exits 1)."""

    reason = "clusters_file"


# ---- values ----------------------------------------------------------------------------------


def label(value: object) -> str:
    """A label to show instead of the name: one line of visible text, at most 100 characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"label must be text, not {validate.shown(value)}")
    text = value.strip()
    if not text:
        raise InvalidInput("label must not be empty")
    if len(text) > MAX_LABEL:
        raise InvalidInput(f"label is longer than {MAX_LABEL} characters: {validate.shown(text)}")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") for char in text):
        raise InvalidInput(
            f"label must be one line without control, invisible or direction characters: "
            f"{validate.shown(text)}"
        )
    return text


def ssh_options(value: object) -> dict[str, str]:
    """ssh ``-o`` options, each from the allow-list (``validate.ssh_option``)."""
    if not isinstance(value, Mapping):
        raise InvalidInput(f"ssh_options must be a mapping, not {validate.shown(value)}")
    checked: dict[str, str] = {}
    for key, option in value.items():
        try:
            name, text = validate.ssh_option(key, option)
        except InvalidInput as error:
            raise InvalidInput(f"ssh_options: {error.message}") from None
        checked[name] = text
    return checked


_CHECKS: dict[str, Callable[[object], Any]] = {
    "host": validate.host,
    "user": validate.user,
    "port": validate.port,
    "persist": validate.persist,
    "label": label,
    "ssh_options": ssh_options,
}


def value(key: str, given: object) -> Any:
    """``given`` as the setting ``key`` keeps it (a port as a number, persist as ssh takes
    it: ``2h`` is ``7200s``); :class:`InvalidInput` names the setting."""
    if key not in _CHECKS:
        raise InvalidInput(f"unknown setting {validate.shown(key)} (a cluster takes {_TAKES})")
    if given is None:
        raise InvalidInput(f"{key} must have a value")
    return _CHECKS[key](given)


_TAKES = ", ".join(FIELDS)


def entry(data: object) -> dict[str, Any]:
    """One cluster's settings, every value checked (what the file holds for a name)."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"must be a mapping of settings, not {validate.shown(data)}")
    unknown = sorted(str(key) for key in data if key not in _CHECKS)
    if unknown:
        raise InvalidInput(
            f"unknown settings: {validate.shown(', '.join(unknown))[1:-1]} (a cluster takes "
            f"{_TAKES})"
        )
    return {key: value(key, data[key]) for key in FIELDS if key in data}


# ---- reading -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mine:
    """What the file says: the good entries, the bad ones (name -> why, naming the file and
    the key) and what of the file is not used at all (``problems``)."""

    path: str | None = None
    clusters: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    broken: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # The names a bad entry sets (so a listed error can offer to forget them).
    broken_keys: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "problems": list(self.problems)}


def signature(path: str | None) -> tuple[int, ...] | None:
    """What changes whenever the file is replaced (a new file is renamed over it): a cheap
    test of whether it must be read again."""
    if not path:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def load(path: str | None) -> Mine:
    """The person's settings in ``path``; never raises. A file that cannot be used is one
    problem (and no entry of it is used); a bad entry costs itself alone."""
    if not path:
        return Mine(path)
    try:
        raw = _raw(path)
    except FileProblem as problem:
        return Mine(path, problems=(f"{problem.message}; none of your cluster settings is used",))
    clusters: dict[str, dict[str, Any]] = {}
    broken: dict[str, str] = {}
    keys: dict[str, tuple[str, ...]] = {}
    problems: list[str] = []
    for name, data in raw.items():
        try:
            validate.cluster_name(name)
        except InvalidInput as error:
            problems.append(f"{path}: an entry is not used: {error.message}")
            continue
        try:
            clusters[name] = entry(data)
        except InvalidInput as error:
            broken[name] = f"{path}: {validate.shown(name)}: {error.message}"
            keys[name] = tuple(k for k in FIELDS if isinstance(data, Mapping) and k in data)
    return Mine(path, clusters, broken, keys, tuple(problems))


def _raw(path: str) -> dict[str, Any]:
    """The entries of the file as written (unchecked), ``{}`` when there is none;
    :class:`FileProblem` when it is there but cannot be used."""
    try:
        text = privatefile.read(path, MAX_BYTES)
    except privatefile.Refused as refused:
        raise FileProblem(f"{path} is not read: {refused.message}") from None
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise FileProblem(f"{path} is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("clusters"), dict):
        raise FileProblem(f'{path} is not {{"version": {VERSION}, "clusters": {{...}}}}')
    if data.get("version") != VERSION:
        raise FileProblem(
            f"{path} is version {validate.shown(data.get('version'))}, "
            f"not {VERSION} (written by another version of hy2fa-lab?)"
        )
    clusters: dict[str, Any] = data["clusters"]
    return clusters


# ---- changing ------------------------------------------------------------------------------


def change(path: str | None, edit: Callable[[dict[str, Any]], T]) -> T:
    """Apply ``edit`` to the entries of the file (as written) and write the result, under a
    lock on its directory. ``edit`` checks what it changes and raises to refuse: nothing is
    written then. A file that cannot be read as ours is never overwritten
    (:class:`FileProblem`): the person's settings in it would be lost."""
    if not path:
        raise FileProblem("There is no file for your cluster settings here")
    directory = os.path.dirname(path) or "."
    with _locked(directory):
        raw = _raw(path)
        before = json.dumps(raw, sort_keys=True)
        result = edit(raw)
        if len(raw) > MAX_CLUSTERS:
            raise InvalidInput(f"at most {MAX_CLUSTERS} clusters can have your settings")
        if json.dumps(raw, sort_keys=True) != before:
            text = json.dumps({"version": VERSION, "clusters": raw}, indent=2, sort_keys=True)
            try:
                privatefile.write(path, text + "\n")
            except OSError as error:
                raise FileProblem(f"cannot write {path}: {error.strerror or error}") from None
    return result


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    """The directory, made 0700 when missing and refused when not ours or writable by
    others, locked (``flock``) while a change is made."""
    try:
        parent = os.path.dirname(directory)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o700)
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise FileProblem(f"cannot use {directory}: {error.strerror or error}") from None
    try:
        info = os.fstat(descriptor)
        if info.st_uid != os.geteuid():
            raise FileProblem(f"{directory} belongs to another user")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise FileProblem(f"{directory} is writable by others (chmod 700 it)")
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # and the lock with it


def set_values(
    raw: dict[str, Any], name: str, changes: Mapping[str, Any], *, site: Mapping[str, object]
) -> None:
    """The person's values of ``changes`` for ``name`` (``None`` removes one): any cluster of
    the site (``site``: the names it gives) or of their own; ``host`` only for their own."""
    validate.cluster_name(name)
    current = raw.get(name)
    own = isinstance(current, Mapping) and "host" in current
    if current is None and name not in site:
        raise UnknownCluster(f"No cluster named {validate.shown(name)}")
    if "host" in changes and not own:
        raise InvalidInput(
            f"the host of {name} is the site's: add a cluster of your own for another host"
        )
    if changes.get("host", "") is None:
        raise InvalidInput(f"{name} is a cluster of your own: it needs a host (or forget it)")
    updated = dict(current) if isinstance(current, Mapping) else {}
    for key, given in changes.items():
        if given is None:
            updated.pop(key, None)
        else:
            updated[key] = value(key, given)
    try:
        checked = entry(updated)  # a bad value of an earlier version refuses the change too
    except InvalidInput as error:
        raise InvalidInput(f"your settings for {name}: {error.message}") from None
    if checked:
        raw[name] = checked
    else:
        raw.pop(name, None)


def add(
    raw: dict[str, Any], name: str, values: Mapping[str, Any], *, site: Mapping[str, object]
) -> None:
    """A cluster of the person's own: a ``host`` and any of the other values."""
    validate.cluster_name(name)
    if name in site or name in raw:
        raise ClusterExists(
            f"There is a cluster named {validate.shown(name)} already: set your values for it, "
            "or choose another name"
        )
    if values.get("host") is None:
        raise InvalidInput("a cluster of your own needs a host")
    raw[name] = entry({key: given for key, given in values.items() if given is not None})


def forget(raw: dict[str, Any], name: str) -> bool:
    """Remove the person's settings for ``name``; whether it was a cluster of their own.
    :class:`UnknownCluster` when they have none."""
    validate.cluster_name(name)
    if name not in raw:
        raise UnknownCluster(f"You have no settings for {validate.shown(name)}")
    gone = raw.pop(name)
    return isinstance(gone, Mapping) and "host" in gone
