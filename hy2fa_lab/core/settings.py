"""Every ``Hy2faLab`` setting, declared once: its type, default, help, check and fallback.

The server builds its traitlets from these fields, the ``hy2fa`` command and kernels read
the same names from the Jupyter config, and the engine takes a :class:`Settings`. Adding a
setting is one field here. See docs/architecture.md, "Settings".

A bad value in a config file costs that value alone (:meth:`Settings.from_config`): the
setting takes its fallback, which for a setting that turns something on is *off*, and a
:class:`Problem` says so; a bad cluster entry costs that cluster alone, which is still listed
with its error. ``Settings(**values)`` itself stays strict: it is what code passes.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Callable, Mapping
from typing import Any

from . import validate
from .errors import InvalidInput

Check = Callable[[Any], Any]
_CLUSTERS_HELP = "must be a mapping of name -> settings"


@dataclasses.dataclass(frozen=True)
class Problem:
    """A value of the Jupyter config that is not used, and what is used instead, in words.

    ``cluster`` names the entry of ``clusters`` it is about (that cluster is listed with this
    message as its error); ``None`` for any other setting, and for an entry whose name is not
    a cluster name (it cannot be listed).
    """

    setting: str
    message: str
    cluster: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"setting": self.setting, "cluster": self.cluster, "message": self.message}

    @classmethod
    def of(cls, value: Any) -> Problem:
        """A problem, or its JSON (what ``GET hy2fa/settings`` gave a kernel)."""
        if isinstance(value, Problem):
            return value
        if not isinstance(value, Mapping) or set(value) - {"setting", "cluster", "message"}:
            raise InvalidInput(
                f"a problem is {{setting, cluster, message}}, not {validate.shown(value)}"
            )
        setting, message, cluster = (value.get(k) for k in ("setting", "message", "cluster"))
        if setting not in {field.name for field in config_fields()}:
            raise InvalidInput(f"a problem names no setting: {validate.shown(setting)}")
        if not isinstance(message, str) or not message:
            raise InvalidInput("a problem needs a message")
        if cluster is not None:
            validate.cluster_name(cluster)
        return cls(setting, message, cluster)


def _clusters(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{_CLUSTERS_HELP}, not {validate.shown(value)}")
    if not value:
        return {}
    from .profiles import profile_from_config  # profiles use these defaults: import late

    for name, data in value.items():
        profile_from_config(name, data)
    return {name: dict(data) for name, data in value.items()}


def _accept_clusters(value: Any) -> tuple[dict[str, Any], tuple[Problem, ...]]:
    """The good entries of ``clusters``; a problem for each bad one, which costs it alone."""
    if not isinstance(value, Mapping):
        message = f"Hy2faLab.clusters: {_CLUSTERS_HELP}, not {validate.shown(value)}"
        return {}, (Problem("clusters", f"{message}; no configured cluster is used"),)
    from .profiles import profile_from_config

    good: dict[str, Any] = {}
    problems = []
    for name, data in value.items():
        try:
            profile_from_config(name, data)
        except InvalidInput as error:
            try:
                listed: str | None = validate.cluster_name(name)
            except InvalidInput:
                listed = None  # no row can be called that: the problem alone says it
            problems.append(Problem("clusters", error.message, listed))
        else:
            good[name] = dict(data)
    return good, tuple(problems)


def _bool(value: Any) -> bool:
    """``True`` or ``False`` (``1`` and ``0`` too, as traitlets takes them); a string such as
    ``"no"`` is refused, and the setting's fallback applies (off, for a switch)."""
    if value is True or value is False:
        return bool(value)
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise InvalidInput(f"must be True or False, not {validate.shown(value)}")


def _program(value: Any) -> str:
    if not isinstance(value, str) or not value or _LINE_BREAK.search(value):
        raise InvalidInput(f"must be the name or path of a program, not {validate.shown(value)}")
    return value


def _whole(check: Check) -> Check:
    def whole(value: Any) -> Any:
        if isinstance(value, float):
            raise InvalidInput(f"must be a whole number, not {validate.shown(value)}")
        return check(value)

    return whole


def _between(low: float, high: float, unit: str) -> Check:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"must be a number of {unit}, not {validate.shown(value)}")
        if not low <= value <= high:
            raise InvalidInput(f"must be {low:g} to {high:g} {unit}, not {validate.shown(value)}")
        return value

    return check


def _optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


_LINE_BREAK = re.compile(r"[\x00\n\r]")
_DEFAULT: Any = object()  # a setting's fallback is its default unless it names another


def _config_file(value: Any) -> str:
    """An ssh config file, or ``/dev/null`` (ssh -F /dev/null); not a FIFO, which would block
    every reader, nor a directory or socket."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("must be a path to a file")
    try:
        mode = os.stat(value).st_mode
    except OSError:
        return value  # missing: ssh says so when it reads it
    if stat.S_ISFIFO(mode) or stat.S_ISDIR(mode) or stat.S_ISSOCK(mode):
        raise InvalidInput(f"is not a regular file: {validate.shown(value)}")
    return value


def _persist(value: Any) -> str:
    validate.persist(value)
    return str(value)


def _setting(
    default: Any, help: str, check: Check, *, fallback: Any = _DEFAULT, instead: str = ""
) -> Any:
    """A config field: ``help`` is what ``jupyter server --help-all`` shows; ``check`` refuses
    a bad value. A bad value in a config file is replaced by ``fallback`` (the default unless
    given: a switch that turns something on falls back to off), and ``instead`` says in words
    what is used then."""
    fallback = default if fallback is _DEFAULT else fallback
    metadata = {
        "help": help,
        "check": check,
        "config": True,
        "fallback": fallback,
        "instead": instead or f"the default, {default!r}, is used",
    }
    if isinstance(default, dict):
        return dataclasses.field(default_factory=dict, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class Settings:
    """What Jupyter config (``c.Hy2faLab.<name>``), the CLI's flags or ``ensure()`` set."""

    clusters: Mapping[str, Mapping[str, Any]] = _setting(
        {},
        "Clusters beside the built-in ones: name -> {host, port, user, persist, ssh_options, "
        "label, asks, docs}. "
        "Example: c.Hy2faLab.clusters = "
        "{'mylab': {'host': 'login.lab.example.org', 'persist': '2h'}}",
        _clusters,
        instead="no configured cluster is used",
    )
    control_path: str | None = _setting(
        None,
        "ControlPath template when ~/.ssh/config sets none (default ~/.ssh/cm-%r@%h:%p).",
        _optional(validate.control_path_template),
        instead="the default, ~/.ssh/cm-%r@%h:%p, is used",
    )
    default_persist: str = _setting(
        "1h",
        "How long an idle master stays (ControlPersist): seconds, 10m, 2h, 1h40m or yes.",
        _persist,
    )
    prompt_timeout: float = _setting(
        120.0,
        "Seconds a prompt waits for an answer before the login fails.",
        _between(1, 86400, "seconds"),
    )
    connect_timeout: float = _setting(
        60.0,
        "Seconds without any output from ssh before the login fails.",
        _between(1, 86400, "seconds"),
    )
    include_ssh_config_hosts: bool = _setting(
        True,
        "List concrete Host aliases from ~/.ssh/config as clusters.",
        _bool,
        fallback=False,
        instead="it is off: no Host alias of the ssh config is listed",
    )
    ssh_config: str | None = _setting(
        None,
        "ssh client config file (default ~/.ssh/config).",
        _optional(_config_file),
        instead="the default, ~/.ssh/config, is used",
    )
    ssh: str = _setting("ssh", "The OpenSSH client to run.", _program)
    askpass: bool = _setting(
        True,
        "Every ssh a kernel starts asks in JupyterLab (OpenSSH's SSH_ASKPASS with "
        "hy2fa-askpass): its host-key, code and password questions pop up in Lab; an ssh in a "
        "terminal still asks in that terminal.",
        _bool,
        fallback=False,
        instead="it is off: the askpass bridge is not started",
    )
    askpass_replace_own: bool = _setting(
        False,
        "Use the bridge even when SSH_ASKPASS is already set in the server's environment.",
        _bool,
        instead="it is off: an SSH_ASKPASS of the server's own is kept",
    )
    askpass_limit: int = _setting(
        8,
        "At most this many ssh questions wait in Lab at once; more are refused.",
        _whole(_between(1, 1000, "questions")),
    )
    # Not a setting a person makes: where masters made by other ssh processes (the askpass
    # bridge) are remembered, so a restarted server lists them again. Paths and hosts only.
    masters_file: str | None = None
    # Not a setting either: the file of the person's own cluster settings (``mine.py``), in
    # their Jupyter data dir (``config.clusters_file()``); None: none is read or written.
    clusters_file: str | None = None
    # Not a setting either: what of the Jupyter config is not used, and why (from_config).
    problems: tuple[Problem, ...] = ()

    def __post_init__(self) -> None:
        for field in config_fields():
            setattr(self, field.name, check(field.name, getattr(self, field.name)))
        self.problems = tuple(Problem.of(problem) for problem in self.problems)
        path = self.clusters_file
        if path is not None and (not isinstance(path, str) or not os.path.isabs(path)):
            raise InvalidInput(f"clusters_file must be an absolute path: {validate.shown(path)}")

    @classmethod
    def from_config(cls, values: Mapping[str, Any], **others: Any) -> Settings:
        """Settings from the Jupyter config, where a bad value costs that value alone: it is
        replaced by its fallback (off, for a switch), a bad cluster entry is left out and
        listed with its error, and each is one :class:`Problem`. ``values`` may hold other
        keys (a config section has more); ``others`` are fields no config sets."""
        kwargs: dict[str, Any] = {}
        problems: list[Problem] = []
        for field in config_fields():
            if field.name in values:
                kwargs[field.name], found = accept(field.name, values[field.name])
                problems += found
        return cls(**kwargs, **others, problems=tuple(problems))

    @property
    def broken_clusters(self) -> dict[str, str]:
        """The clusters of the config that cannot be used: name -> why."""
        return {p.cluster: p.message for p in self.problems if p.cluster is not None}

    def to_json(self) -> dict[str, Any]:
        """The configurable values, the config's problems and where the person's own cluster
        settings are (``GET hy2fa/settings``: a kernel reads the file its server uses)."""
        values = {field.name: getattr(self, field.name) for field in config_fields()}
        problems = [problem.to_json() for problem in self.problems]
        return {**values, "problems": problems, "clusters_file": self.clusters_file}


def config_fields() -> list[dataclasses.Field[Any]]:
    """The fields a person sets in Jupyter config, in declaration order."""
    return [field for field in dataclasses.fields(Settings) if field.metadata.get("config")]


def check(name: str, value: Any) -> Any:
    """``value`` as setting ``name`` keeps it; :class:`InvalidInput` names the setting."""
    field = next((f for f in config_fields() if f.name == name), None)
    if field is None:
        raise InvalidInput(f"Hy2faLab has no setting {validate.shown(name)}")
    checker: Check = field.metadata["check"]
    try:
        return checker(value)
    except InvalidInput as error:
        if error.message.startswith(f"Hy2faLab.{name}"):
            raise  # a cluster's message names its entry: Hy2faLab.clusters['x']: ...
        raise InvalidInput(f"Hy2faLab.{name}: {error.message}") from None


def accept(name: str, value: Any) -> tuple[Any, tuple[Problem, ...]]:
    """``value`` as setting ``name`` keeps it, or its fallback and the problem, in words that
    name the setting and say what is used instead (a config file's value: never raises for a
    bad one). Only the bad entries of ``clusters`` are left out."""
    if name == "clusters":
        return _accept_clusters(value)
    try:
        return check(name, value), ()
    except InvalidInput as error:
        field = next(f for f in config_fields() if f.name == name)
        problem = Problem(name, f"{error.message}; {field.metadata['instead']}")
        return field.metadata["fallback"], (problem,)


DEFAULTS = Settings()
