"""Value types shared by every part of the engine (no I/O here)."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .validate import visible


class State(str, enum.Enum):
    """Life cycle of one ControlMaster session (see docs/architecture.md)."""

    IDLE = "idle"
    STARTING = "starting"
    PROMPTING = "prompting"
    VERIFYING = "verifying"
    CONNECTED = "connected"
    FAILED = "failed"
    DISCONNECTED = "disconnected"
    UNRESPONSIVE = "unresponsive"  # a socket whose master does not answer (SIGSTOP, hung)


def iso_time(timestamp: float | None) -> str | None:
    """An epoch time as the views show times: ISO 8601 in UTC (None stays None)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


# No login is under way in these states: a waiter can stop waiting.
SETTLED_STATES = frozenset({State.CONNECTED, State.FAILED, State.DISCONNECTED, State.UNRESPONSIVE})


class PromptKind(str, enum.Enum):
    OTP = "otp"
    PASSWORD = "password"  # noqa: S105 - a prompt kind, not a secret
    PASSPHRASE = "passphrase"  # noqa: S105 - a prompt kind, not a secret
    DUO = "duo"
    HOSTKEY = "hostkey"
    OTHER = "other"


class Reason(str, enum.Enum):
    """Why a session ended in ``failed``."""

    AUTH_FAILED = "auth_failed"
    HOSTKEY_CHANGED = "hostkey_changed"
    HOSTKEY_REJECTED = "hostkey_rejected"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    SSH_MISSING = "ssh_missing"
    UNSAFE_SOCKET = "unsafe_socket"  # another user's socket, or a directory others can write
    ERROR = "error"


@dataclass(frozen=True)
class Prompt:
    """A question ssh is waiting on. ``text`` is ssh's own words, verbatim, except that
    characters that reorder or hide text (U+202E, ...) are shown escaped
    (:func:`validate.visible`): a connection's prompt and an ask's question are both made
    here, and every surface (Lab, the CLI, the widget) shows this text."""

    kind: PromptKind
    text: str
    options: tuple[str, ...] = ()
    secret: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", visible(self.text))
        object.__setattr__(self, "options", tuple(visible(option) for option in self.options))

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "text": self.text,
            "options": list(self.options),
            "secret": self.secret,
        }


@dataclass(frozen=True)
class CertificateSpec:
    """Where a cluster's certificate comes from (the profile key ``certificate``), checked
    (``profiles.certificate_spec``): ``issuer`` ``sshproxy`` (NERSC's service at ``url``,
    ``scope``) or ``command`` (the site's own tool, ``argv``, run by ``issuer_command.py``;
    from the person's Jupyter config only), the private key's path ``key`` (the certificate
    is ``key + "-cert.pub"``), the name at the issuer ``login`` (``None``: the ssh user) and
    ``renew_before`` seconds."""

    issuer: str
    key: str
    url: str = ""
    scope: str = "default"
    login: str | None = None
    renew_before: int = 600
    argv: tuple[str, ...] = ()

    @property
    def certificate_file(self) -> str:
        return self.key + "-cert.pub"

    @property
    def issuer_name(self) -> str:
        """Where the certificate comes from, as a person knows it: the issuer's host name
        (``sshproxy.nersc.gov``), or the site's tool (``step``)."""
        if self.issuer == "command":
            return os.path.basename(self.argv[0]) if self.argv else self.issuer
        from urllib.parse import urlsplit

        return urlsplit(self.url).hostname or self.url


@dataclass(frozen=True)
class Target:
    """Everything needed to start or find one master, fully resolved.

    ``destination`` is what is passed to ssh after ``--`` (an alias or a host name);
    ``hostname``/``user``/``port`` are what ``ssh -G`` says they resolve to.
    """

    name: str
    destination: str
    hostname: str
    user: str
    port: int
    control_path: str
    persist: str
    ssh_options: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    explicit_user: str | None = None
    explicit_port: int | None = None
    cluster: str = ""  # the profile it came from; ``name`` may add ``user@``
    certificate: CertificateSpec | None = None  # the profile's; its login method is then that

    @property
    def profile(self) -> str:
        return self.cluster or self.name
