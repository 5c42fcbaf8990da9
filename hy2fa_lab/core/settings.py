"""Every ``Hy2faLab`` setting, declared once: its type, default, help and check.

The server builds its traitlets from these fields, the ``hy2fa`` command and kernels read
the same names from the Jupyter config, and the engine takes a :class:`Settings`. Adding a
setting is one field here. See docs/architecture.md, "Settings".
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Callable, Mapping
from typing import Any

from . import validate
from .errors import InvalidInput

Check = Callable[[Any], Any]


def _clusters(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput("clusters must be a mapping of name -> settings")
    if not value:
        return {}
    from .profiles import profile_from_config  # profiles use these defaults: import late

    for name, data in value.items():
        profile_from_config(name, data)
    return {name: dict(data) for name, data in value.items()}


def _between(low: float, high: float, unit: str) -> Check:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"must be a number of {unit}")
        if not low <= value <= high:
            raise InvalidInput(f"must be {low:g} to {high:g} {unit}")
        return value

    return check


def _optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


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


def _setting(default: Any, help: str, check: Check | None = None, **kwargs: Any) -> Any:
    """A config field: ``help`` is what ``jupyter server --help-all`` shows."""
    metadata = {"help": help, "check": check, "config": True}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=dict, metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


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
    )
    control_path: str | None = _setting(
        None,
        "ControlPath template when ~/.ssh/config sets none (default ~/.ssh/cm-%r@%h:%p).",
        _optional(validate.control_path_template),
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
        True, "List concrete Host aliases from ~/.ssh/config as clusters."
    )
    ssh_config: str | None = _setting(
        None, "ssh client config file (default ~/.ssh/config).", _optional(_config_file)
    )
    ssh: str = _setting("ssh", "The OpenSSH client to run.")
    askpass: bool = _setting(
        True,
        "Every ssh a kernel starts asks in JupyterLab (OpenSSH's SSH_ASKPASS with "
        "hy2fa-askpass): its host-key, code and password questions pop up in Lab; an ssh in a "
        "terminal still asks in that terminal.",
    )
    askpass_replace_own: bool = _setting(
        False, "Use the bridge even when SSH_ASKPASS is already set in the server's environment."
    )
    askpass_limit: int = _setting(
        8,
        "At most this many ssh questions wait in Lab at once; more are refused.",
        _between(1, 1000, "questions"),
    )
    # Not a setting a person makes: where masters made by other ssh processes (the askpass
    # bridge) are remembered, so a restarted server lists them again. Paths and hosts only.
    masters_file: str | None = None

    def __post_init__(self) -> None:
        for field in config_fields():
            setattr(self, field.name, check(field.name, getattr(self, field.name)))

    def to_json(self) -> dict[str, Any]:
        """The configurable values (what ``GET hy2fa/settings`` shows)."""
        return {field.name: getattr(self, field.name) for field in config_fields()}


def config_fields() -> list[dataclasses.Field[Any]]:
    """The fields a person sets in Jupyter config, in declaration order."""
    return [field for field in dataclasses.fields(Settings) if field.metadata.get("config")]


def check(name: str, value: Any) -> Any:
    """``value`` as setting ``name`` keeps it; :class:`InvalidInput` names the setting."""
    field = next((f for f in config_fields() if f.name == name), None)
    if field is None:
        raise InvalidInput(f"Hy2faLab has no setting {validate.shown(name)}")
    checker: Check | None = field.metadata["check"]
    if checker is None:
        return value
    try:
        return checker(value)
    except InvalidInput as error:
        raise InvalidInput(f"Hy2faLab.{name}: {error.message}") from None


DEFAULTS = Settings()
