"""The Jupyter server extension (thin handlers over :mod:`hy2fa_lab.core`)."""

from __future__ import annotations

from .app import Hy2faLab

__all__ = ["Hy2faLab"]
