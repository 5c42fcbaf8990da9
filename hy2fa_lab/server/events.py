"""Connection state changes and asks as jupyter_events events (the frontend hears them on
/api/events). Never an answer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..core.asks import Ask
from ..core.session import MasterSession

SCHEMA_ID = "https://events.hy2fa-lab.org/hy2fa_lab/connection/v1"
SCHEMA_PATH = Path(__file__).parent / "event_schemas" / "connection" / "v1.yaml"
ASK_SCHEMA_ID = "https://events.hy2fa-lab.org/hy2fa_lab/ask/v1"
ASK_SCHEMA_PATH = Path(__file__).parent / "event_schemas" / "ask" / "v1.yaml"


def event_data(session: MasterSession) -> dict[str, Any]:
    """What an event says about a session: state and prompt, never an answer."""
    view = session.to_json()
    prompt = view["prompt"] or {}
    return {
        "name": view["name"],
        "cluster": view["cluster"],
        "state": view["state"],
        "prompt_id": session.prompt_id,
        "prompt_kind": prompt.get("kind"),
        "prompt_text": prompt.get("text"),
        "prompt_options": list(prompt.get("options", [])),
        "prompt_secret": bool(prompt.get("secret", False)),
        "reason": view["reason"],
        "message": view["message"],
        "control_path": view["control_path"],
        "master_pid": view["master_pid"],
        "updated": view["updated"],
        "version": view["version"],
    }


class EventEmitter:
    def __init__(self, event_logger: Any, log: logging.Logger) -> None:
        self.event_logger = event_logger
        self.log = log

    def connection_changed(self, session: MasterSession) -> None:
        if session.state.value == "idle":
            return
        try:
            self.event_logger.emit(schema_id=SCHEMA_ID, data=event_data(session))
        except Exception:  # an event must never break a login
            self.log.exception("hy2fa_lab: could not emit a connection event")

    def ask_changed(self, ask: Ask, action: str) -> None:
        data = {
            "id": ask.id,
            "action": action,
            "prompt_kind": ask.prompt.kind.value,
            "prompt_text": ask.prompt.text,
            "host": ask.host,
            "kernel_id": ask.origin.get("kernel_id"),
            "notebook": ask.origin.get("notebook"),
        }
        try:
            self.event_logger.emit(schema_id=ASK_SCHEMA_ID, data=data)
        except Exception:  # an event must never break a question
            self.log.exception("hy2fa_lab: could not emit an ask event")
