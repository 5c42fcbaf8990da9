"""hy2fa-lab: 2FA SSH ControlMaster sockets opened and kept by the Jupyter server."""

from __future__ import annotations

try:
    from ._version import __version__
except ImportError:  # pragma: no cover - only in a tree that was never built
    import warnings

    warnings.warn("Importing 'hy2fa_lab' outside a proper installation.", stacklevel=2)
    __version__ = "dev"


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from .server import Hy2faLab

    return [{"module": "hy2fa_lab.server", "app": Hy2faLab}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "hy2fa-lab"}]
