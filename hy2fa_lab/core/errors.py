"""Exceptions of the engine. Messages are safe to show: they never hold a response."""

from __future__ import annotations


class Hy2faError(Exception):
    """Base class; ``reason`` is a short machine-readable word."""

    reason = "error"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidInput(Hy2faError):
    """Input refused before ssh sees it."""

    reason = "invalid"


class UnknownCluster(Hy2faError):
    reason = "unknown_cluster"


class NoPrompt(Hy2faError):
    """An answer arrived while no prompt was pending."""

    reason = "no_prompt"
