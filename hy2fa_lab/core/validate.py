"""Checks applied to every value before it reaches ssh's argv (design §10)."""

from __future__ import annotations

import re

from .errors import InvalidInput

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_NAME = re.compile(r"^[A-Za-z0-9_.@%+:\[\]-]+$")
_OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$", re.IGNORECASE)
_UNITS = (7 * 86400, 86400, 3600, 60, 1)
# Options that would break the master's socket handling or run local commands.
_RESERVED_OPTIONS = frozenset(
    {
        "controlpath",
        "controlmaster",
        "controlpersist",
        "proxycommand",
        "localcommand",
        "permitlocalcommand",
        "knownhostscommand",
        "remotecommand",
    }
)


def _plain(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} must be a non-empty string")
    if value.startswith("-"):
        raise InvalidInput(f"{what} must not start with '-': {value!r}")
    if _CONTROL.search(value):
        raise InvalidInput(f"{what} must not contain whitespace or control characters: {value!r}")
    if len(value) > 255:
        raise InvalidInput(f"{what} is longer than 255 characters")
    return value


def host(value: object) -> str:
    """A host name, ssh alias or IP literal."""
    text = _plain(value, "host")
    if not _NAME.match(text):
        raise InvalidInput(f"host contains characters ssh does not accept: {text!r}")
    return text


def user(value: object) -> str:
    text = _plain(value, "user")
    if "@" in text or ":" in text or "/" in text:
        raise InvalidInput(f"user must not contain '@', ':' or '/': {text!r}")
    return text


def cluster_name(value: object) -> str:
    text = _plain(value, "cluster name")
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", text):
        raise InvalidInput(
            f"cluster name may hold letters, digits, '.', '_' and '-' only: {text!r}"
        )
    return text


def port(value: object) -> int:
    if isinstance(value, bool):
        raise InvalidInput("port must be a number from 1 to 65535")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise InvalidInput(f"port must be a number from 1 to 65535, not {value!r}") from None
    if not 1 <= number <= 65535:
        raise InvalidInput(f"port must be a number from 1 to 65535, not {number}")
    return number


def duration_seconds(value: object) -> int | None:
    """Seconds of a ControlPersist value; ``None`` means forever (``yes``/``0``)."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput("persist must be seconds, a duration like 10m, 2h or 1h40m, or 'yes'")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise InvalidInput(f"persist must be a string or a number, not {value!r}")
    if text.lower() in ("yes", "0"):
        return None
    match = _DURATION.match(text)
    if not text or not match or not any(match.groups()):
        raise InvalidInput(
            f"persist must be seconds, a duration like 10m, 2h or 1h40m, or 'yes', not {text!r}"
        )
    total = sum(int(part) * unit for part, unit in zip(match.groups(), _UNITS, strict=True) if part)
    if total <= 0:
        return None
    return total


def persist(value: object) -> str:
    """Normalise a persist value to what ssh's ControlPersist takes."""
    seconds = duration_seconds(value)
    return "yes" if seconds is None else f"{seconds}s"


def ssh_option(key: object, value: object) -> tuple[str, str]:
    if not isinstance(key, str) or not _OPTION_KEY.match(key):
        raise InvalidInput(f"ssh option name must be a word like ServerAliveInterval, not {key!r}")
    if key.lower() in _RESERVED_OPTIONS:
        raise InvalidInput(f"ssh option {key} cannot be set here")
    text = str(value)
    if _CONTROL.sub("", text.replace(" ", "")) != text.replace(" ", "") or "\n" in text:
        raise InvalidInput(f"ssh option {key} has control characters in its value")
    if not text:
        raise InvalidInput(f"ssh option {key} needs a value")
    return key, text
