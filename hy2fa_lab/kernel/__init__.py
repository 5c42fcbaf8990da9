"""The notebook side: ``ensure()``, ``socket_path()``, the ``%hy2fa`` magic and its widget."""

from __future__ import annotations

from .api import ensure, socket_path

__all__ = ["ensure", "socket_path"]
