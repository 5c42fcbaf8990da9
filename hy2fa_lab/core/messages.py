"""What a connection's outcome means for the person, in one sentence or two: what the cluster
(or ssh) said, and what to try. The terminal, ``%hy2fa``, the notebook widget and ``ensure()``
all say it in these words; the Lab frontend has its own translated strings."""

from __future__ import annotations

from typing import Any

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
