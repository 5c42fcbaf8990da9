"""The extension's logger, a child of the Jupyter server's (``ServerApp.hy2fa_lab``), and
what it says about every connection and ask: state changes with their reasons, never an
answer (the engine never holds one past writing it to ssh)."""

from __future__ import annotations

import logging

from ..core.asks import Ask
from ..core.session import MasterSession
from ..core.types import State


def extension_logger(
    server_log: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> logging.Logger:
    """``<server>.hy2fa_lab``: the server's level and handlers apply, and a person can turn
    this extension up alone (``c.Application.logging_config``)."""
    return logging.getLogger(f"{server_log.name}.hy2fa_lab")


_LEVELS = {
    State.STARTING: logging.INFO,
    State.PROMPTING: logging.INFO,
    State.VERIFYING: logging.DEBUG,
    State.CONNECTED: logging.INFO,
    State.FAILED: logging.WARNING,
    State.DISCONNECTED: logging.INFO,
    State.UNRESPONSIVE: logging.WARNING,
}


class ChangeLog:
    """Listens to the manager and the ask bridge, and writes one line per change."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log

    def connection_changed(self, session: MasterSession) -> None:
        if session.superseded_by is not None:
            self.log.debug(
                "hy2fa_lab: %s: connection %s gave way to %s",
                session.name,
                session.id,
                session.superseded_by,
            )
            return
        level = _LEVELS.get(session.state)
        if level is None or not self.log.isEnabledFor(level):
            return
        target = session.target
        if session.state is State.STARTING:
            where = f"{target.user}@{target.hostname}:{target.port}"
            detail = f"ssh to {where}, socket {target.control_path}"
        elif session.state is State.PROMPTING and session.prompt is not None:
            detail = f"ssh asks ({session.prompt.kind.value}, prompt {session.prompt_id})"
        elif session.state is State.CONNECTED:
            detail = f"master pid {session.master_pid}, persist {target.persist}"
        else:
            detail = session.message
        reason = f" [{session.reason.value}]" if session.reason else ""
        self.log.log(
            level, "hy2fa_lab: %s: %s%s: %s", session.name, session.state.value, reason, detail
        )

    def ask_changed(self, ask: Ask, action: str) -> None:
        origin = ask.origin.get("notebook") or ask.origin.get("kernel_id") or "no kernel"
        self.log.info(
            "hy2fa_lab: ask %s %s: %s question for %s (ssh pid %s, %s)",
            ask.id,
            action,
            ask.prompt.kind.value,
            ask.host or "an unnamed host",
            ask.origin.get("pid"),
            origin,
        )
