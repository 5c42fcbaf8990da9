"""What a connection's outcome means for the person, in one sentence or two: what the cluster
(or ssh) said, and what to try. The terminal, ``%hy2fa``, the notebook widget and ``ensure()``
all say it in these words; the Lab frontend has its own translated strings."""

from __future__ import annotations

import re
from typing import Any

from .types import PromptKind, Reason

_TRY = {
    "auth_failed": "Check the code (a new one comes every 30 s) and your password, "
    "then connect again.",
    "unreachable": "Check the host name, your network, or the VPN the cluster needs.",
    "timeout": "Connect again when you are ready to type the code.",
    "hostkey_changed": "If the cluster announced a new host key, remove the old one with "
    "ssh-keygen -R <host>; otherwise do not connect.",
    "ssh_missing": "Install the OpenSSH client (Debian/Ubuntu: apt install openssh-client).",
    "unresponsive": "The master may be stopped (SIGSTOP) or hung: end it, or disconnect.",
}
_SAID = {
    "cancelled": "Cancelled",
    "hostkey_rejected": "The host key was refused: nothing was connected",
}


def outcome(reason: str | None, message: str | None, state: str = "failed") -> str:
    """``reason``/``message`` of a view as a person reads them: "Cancelled", or what the cluster
    said followed by what to try. Never the reason's code word on its own."""
    said = _SAID.get(reason or "") or (message or "").strip() or _fallback(reason, state)
    advice = _TRY.get(reason or state)
    if advice and advice not in said:
        return f"{said.rstrip('.')}. {advice}"
    return said


def of_view(view: dict[str, Any]) -> str:
    """:func:`outcome` of a connection view (the REST and event shape)."""
    return outcome(view.get("reason"), view.get("message"), str(view.get("state") or "failed"))


def made_by(view: dict[str, Any]) -> str:
    """Who made a connection's master, when it was not this server's login: "made by ssh in
    Analysis.ipynb" (a notebook's own ssh, through the askpass bridge), else ""."""
    made = view.get("made_by") or {}
    if made.get("kind") == "ssh":
        where = made.get("notebook") or (made.get("kernel_id") and "a kernel")
        return f"made by ssh in {where}" if where else "made by ssh"
    if made.get("kind") == "found":
        return "running before the server started"
    return ""


def _fallback(reason: str | None, state: str) -> str:
    if reason:
        return f"The login failed ({reason.replace('_', ' ')})"
    return {"disconnected": "Disconnected", "unresponsive": "The master does not answer"}.get(
        state, "The login failed"
    )


# ---- how an ssh login ended, from what ssh printed -------------------------------------------

_HOSTKEY_CHANGED = re.compile(r"REMOTE HOST IDENTIFICATION HAS CHANGED|host key for .* has changed")
_HOSTKEY_FAILED = re.compile(r"Host key verification failed")
_DENIED = re.compile(r"Permission denied|Too many authentication failures|Authentication failed")
_UNREACHABLE = re.compile(
    r"Could not resolve hostname|Name or service not known|Connection refused|"
    r"Connection timed out|No route to host|Network is unreachable|"
    r"Connection closed by|Connection reset by|kex_exchange_identification|"
    r"Operation timed out|timed out during banner exchange",
    re.I,
)
_WRONG = {
    PromptKind.OTP: "Wrong code — try again",
    PromptKind.DUO: "Wrong passcode — try again",
    PromptKind.PASSWORD: "Wrong password — try again",
    PromptKind.PASSPHRASE: "Wrong passphrase — try again",
}


def wrong_answer(kind: PromptKind) -> str:
    """What a question asked again says: the answer to it was not accepted."""
    return _WRONG.get(kind, "Not accepted — try again")


def ssh_failure(
    output: str, lines: list[str], host: str, *, refused_hostkey: bool, status: int | None
) -> tuple[Reason, str]:
    """Why an ssh login that did not exit 0 failed, and its message: ``output`` is what ssh
    printed, ``lines`` its lines without prompts and noise (the message quotes their end)."""
    tail = last_lines(lines)
    if _HOSTKEY_CHANGED.search(output):
        return Reason.HOSTKEY_CHANGED, _hostkey_changed_message(host, lines)
    if _HOSTKEY_FAILED.search(output):
        return Reason.HOSTKEY_REJECTED, "Host key rejected" if refused_hostkey else tail
    if _DENIED.search(output):
        return Reason.AUTH_FAILED, f"Login refused by {host}: {tail}"
    if _UNREACHABLE.search(output):
        return Reason.UNREACHABLE, f"Cannot reach {host}: {tail}"
    return Reason.ERROR, tail or f"ssh exited with status {status}"


def last_lines(lines: list[str]) -> str:
    """The end of what ssh said, as a failure message quotes it."""
    return "\n".join(lines[-_TAIL_LINES:]).strip()


_TAIL_LINES = 6


def _hostkey_changed_message(host: str, lines: list[str]) -> str:
    """ssh's warning, kept to what a person needs: what changed, the new key, where the old is."""
    keep = [
        line.strip("@ ").strip()
        for line in lines
        if re.search(
            r"IDENTIFICATION HAS CHANGED|SHA256:|fingerprint for|Offending|"
            r"Host key verification failed",
            line,
        )
    ]
    return f"Host key changed for {host}: " + "\n".join(keep)
