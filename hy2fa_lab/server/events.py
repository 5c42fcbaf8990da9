"""Connection state changes, asks and changes of the person's cluster settings as
jupyter_events events (the frontend hears them on /api/events). Never an answer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..core.asks import Ask
from ..core.session import MasterSession

SCHEMA_ID = "https://events.hy2fa-lab.org/hy2fa_lab/connection/v2"
SCHEMA_PATH = Path(__file__).parent / "event_schemas" / "connection" / "v2.yaml"
ASK_SCHEMA_ID = "https://events.hy2fa-lab.org/hy2fa_lab/ask/v2"
ASK_SCHEMA_PATH = Path(__file__).parent / "event_schemas" / "ask" / "v2.yaml"
CLUSTER_SCHEMA_ID = "https://events.hy2fa-lab.org/hy2fa_lab/cluster/v1"
CLUSTER_SCHEMA_PATH = Path(__file__).parent / "event_schemas" / "cluster" / "v1.yaml"
CLUSTER_ACTIONS = ("added", "changed", "removed")


def event_data(session: MasterSession) -> dict[str, Any]:
    """The connection exactly as REST shows it: one shape for both, never an answer."""
    return session.to_json()


def ask_data(ask: Ask, action: str) -> dict[str, Any]:
    """The ask exactly as ``GET hy2fa/asks`` lists it, and what happened to it."""
    return {"action": action, **ask.to_json()}


def cluster_data(row: dict[str, Any], action: str) -> dict[str, Any]:
    """The cluster's row exactly as ``GET hy2fa/clusters/<name>`` shows it, and what changed."""
    assert action in CLUSTER_ACTIONS, action
    return {"action": action, **row}


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
        try:
            self.event_logger.emit(schema_id=ASK_SCHEMA_ID, data=ask_data(ask, action))
        except Exception:  # an event must never break a question
            self.log.exception("hy2fa_lab: could not emit an ask event")

    def cluster_changed(self, row: dict[str, Any], action: str) -> None:
        try:
            self.event_logger.emit(schema_id=CLUSTER_SCHEMA_ID, data=cluster_data(row, action))
        except Exception:  # an event must never fail a change that is made
            self.log.exception("hy2fa_lab: could not emit a cluster event")
