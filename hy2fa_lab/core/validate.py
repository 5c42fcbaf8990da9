"""Checks applied to every value before it reaches ssh's argv (see SECURITY.md)."""

from __future__ import annotations

import os
import re
import unicodedata

from .errors import InvalidInput

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_NAME = re.compile(r"^[A-Za-z0-9_.@%+:\[\]-]+$")
_OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$", re.IGNORECASE)
_UNITS = (7 * 86400, 86400, 3600, 60, 1)
# ssh reads ControlPersist into an int of seconds and refuses more.
_MAX_PERSIST_SECONDS = 2**31 - 1
_SHOWN = 60  # characters of a refused value quoted back in a message

# The ssh options a cluster profile or ``hy2fa -o`` may set: an allow-list, because the
# dangerous ones keep growing (a command to run, a library to load, a known_hosts file
# to ignore). The person's own ~/.ssh/config is not limited by this: ssh reads it anyway.
SAFE_SSH_OPTIONS = frozenset(
    name.lower()
    for name in (
        "AddKeysToAgent",
        "AddressFamily",
        "BatchMode",
        "BindAddress",
        "BindInterface",
        "CanonicalDomains",
        "CanonicalizeFallbackLocal",
        "CanonicalizeHostname",
        "CanonicalizeMaxDots",
        "CanonicalizePermittedCNAMEs",
        "CASignatureAlgorithms",
        "CertificateFile",
        "CheckHostIP",
        "Ciphers",
        "Compression",
        "ConnectionAttempts",
        "ConnectTimeout",
        "FingerprintHash",
        "GSSAPIAuthentication",
        "GSSAPIDelegateCredentials",
        "HashKnownHosts",
        "HostbasedAcceptedAlgorithms",
        "HostKeyAlgorithms",
        "HostKeyAlias",
        "HostName",
        "IdentitiesOnly",
        "IdentityAgent",
        "IdentityFile",
        "IPQoS",
        "KbdInteractiveAuthentication",
        "KbdInteractiveDevices",
        "KexAlgorithms",
        "LogLevel",
        "MACs",
        "NumberOfPasswordPrompts",
        "PasswordAuthentication",
        "PreferredAuthentications",
        "ProxyJump",
        "PubkeyAcceptedAlgorithms",
        "PubkeyAuthentication",
        "RekeyLimit",
        "RequiredRSASize",
        "ServerAliveCountMax",
        "ServerAliveInterval",
        "StrictHostKeyChecking",
        "TCPKeepAlive",
        "UpdateHostKeys",
        "User",
        "VerifyHostKeyDNS",
    )
)
# ssh turns ProxyJump into a command line for a shell: each hop is [user@]host[:port].
_JUMP_HOP = re.compile(
    r"^(?:[A-Za-z0-9_.+][A-Za-z0-9_.+-]*@)?[A-Za-z0-9_.\[\]:][A-Za-z0-9_.\[\]:-]*$"
)


# Letters and marks that print as nothing (Hangul fillers, the combining grapheme joiner, Khmer
# inherent vowels): str.isprintable() passes them, but they hide that something is there.
_BLANK_PRINTABLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` as it is, except that every character that could reorder or hide what is shown
    is written as its escape, the way ``repr()`` writes it: U+202E (right-to-left override)
    becomes ``\\u202e``. That is every character ``str.isprintable()`` refuses (terminal
    controls, bidi and other format characters such as U+2066-U+2069, U+200B-U+200F and
    U+FEFF, line separators, surrogates) and the blank letters of ``_BLANK_PRINTABLE``; line
    breaks, tabs and spaces stay. A cluster's question is shown through this: its own words,
    but never words that read as others. Escaping twice changes nothing."""
    return "".join(
        char
        if char in "\n\t"
        or (char.isprintable() and char not in _BLANK_PRINTABLE)
        or unicodedata.category(char) == "Zs"
        else _escaped(char)
        for char in text
    )


def shown(value: object) -> str:
    """``repr(value)`` (through :func:`visible`), cut short: a refused 5 MB input is not
    echoed back whole."""
    text = visible(repr(value))
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8: no lone surrogates (bytes that were not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} must be a non-empty string")
    if len(value) > 255:
        raise InvalidInput(f"{what} is longer than 255 characters: {shown(value)}")
    if value.startswith("-"):
        raise InvalidInput(f"{what} must not start with '-': {shown(value)}")
    if _CONTROL.search(value):
        raise InvalidInput(
            f"{what} must not contain whitespace or control characters: {shown(value)}"
        )
    if not _utf8(value):
        raise InvalidInput(f"{what} must be UTF-8 text: {shown(value)}")
    if any(unicodedata.category(char) == "Cf" for char in value):
        # Right-to-left overrides and zero-width characters make a name read as another.
        raise InvalidInput(f"{what} must not contain invisible or direction characters")
    return value


def host(value: object) -> str:
    """A host name, ssh alias or IP literal."""
    text = _plain(value, "host")
    if not _NAME.match(text):
        raise InvalidInput(f"host contains characters ssh does not accept: {shown(text)}")
    return text


def user(value: object) -> str:
    text = _plain(value, "user")
    if any(char in text for char in "@:/%"):
        raise InvalidInput(f"user must not contain '@', ':', '/' or '%': {shown(text)}")
    # What OpenSSH 9.6+ refuses in a user name (%r reaches shells in Match exec and
    # ProxyCommand): refused here too, whatever ssh runs and whichever option would win.
    if any(char in text for char in "'`\";&<>|(){}") or text.endswith("\\"):
        raise InvalidInput(f"user must not contain shell metacharacters: {shown(text)}")
    return text


def control_path_template(value: object) -> str:
    """A ControlPath template that can name a file: no NUL, no character a path cannot hold."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"control path template must be a non-empty string, not {shown(value)}")
    try:
        os.fsencode(value)
    except UnicodeEncodeError:
        raise InvalidInput(f"control path template is not a file name: {shown(value)}") from None
    if "\x00" in value:
        raise InvalidInput(f"control path template is not a file name: {shown(value)}")
    return value


def cluster_name(value: object) -> str:
    text = _plain(value, "cluster name")
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", text):
        raise InvalidInput(
            f"cluster name may hold letters, digits, '.', '_' and '-' only: {shown(text)}"
        )
    return text


def port(value: object) -> int:
    if isinstance(value, bool):
        raise InvalidInput("port must be a number from 1 to 65535")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidInput(f"port must be a whole number from 1 to 65535, not {shown(value)}")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"port must be a number from 1 to 65535, not {shown(value)}") from None
    if not 1 <= number <= 65535:
        raise InvalidInput(f"port must be a number from 1 to 65535, not {shown(number)}")
    return number


_DURATION_HELP = "persist must be seconds, a duration like 10m, 2h or 1h40m, or 'yes'"


def duration_seconds(value: object) -> int | None:
    """Seconds of a ControlPersist value; ``None`` means forever (``yes``/``0``)."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput(_DURATION_HELP)
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise InvalidInput(f"persist must be a string or a number, not {shown(value)}")
    if text.lower() in ("yes", "0"):
        return None
    match = _DURATION.match(text) if len(text) <= 40 else None
    if not text or not match or not any(match.groups()):
        raise InvalidInput(f"{_DURATION_HELP}, not {shown(text)}")
    total = sum(int(part) * unit for part, unit in zip(match.groups(), _UNITS, strict=True) if part)
    if total > _MAX_PERSIST_SECONDS:
        raise InvalidInput(
            f"persist {shown(text)} is longer than ssh allows ({_MAX_PERSIST_SECONDS} s); "
            "use 'yes' to keep the master until it is stopped"
        )
    if total <= 0:
        return None
    return total


def persist(value: object) -> str:
    """Normalise a persist value to what ssh's ControlPersist takes."""
    seconds = duration_seconds(value)
    return "yes" if seconds is None else f"{seconds}s"


def _option_value(key: str, text: str) -> None:
    """Values that would defeat a promise even for an allowed option."""
    name = key.lower()
    if name == "stricthostkeychecking" and text.lower() not in ("yes", "ask"):
        # "no" and "accept-new" would take a new host key without asking the person.
        raise InvalidInput(f"ssh option {key}={shown(text)[1:-1]} is refused: use yes or ask")
    if name == "proxyjump" and text.lower() != "none":
        for hop in text.split(","):
            if not _JUMP_HOP.match(hop):
                raise InvalidInput(f"ProxyJump hop must be [user@]host[:port], not {shown(hop)}")
    if name in ("hostname", "hostkeyalias"):
        host(text)
    if name == "user":
        user(text)


def ssh_option(key: object, value: object) -> tuple[str, str]:
    """An ssh ``-o`` option from the allow-list, with a one-line value."""
    if not isinstance(key, str) or not _OPTION_KEY.match(key):
        raise InvalidInput(
            f"ssh option name must be a word like ServerAliveInterval, not {shown(key)}"
        )
    if key.lower() not in SAFE_SSH_OPTIONS:
        raise InvalidInput(
            f"ssh option {shown(key)[1:-1]} cannot be set here (only options that run no "
            "command, load no code and keep host keys checked; put others in ~/.ssh/config)"
        )
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidInput(f"ssh option {key} needs a text value, not {shown(value)}")
    text = str(value).strip()
    if not text:
        raise InvalidInput(f"ssh option {key} needs a value")
    if len(text) > 1024 or re.search(r"[\x00-\x1f\x7f]", text) or not _utf8(text):
        raise InvalidInput(f"ssh option {key} must be one line of printable text")
    _option_value(key, text)
    return key, text
