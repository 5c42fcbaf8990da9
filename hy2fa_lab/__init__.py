"""hy2fa-lab: 2FA SSH ControlMaster sockets opened and kept by the Jupyter server."""

from __future__ import annotations

try:
    from ._version import __version__
except ImportError:  # pragma: no cover - only in a tree that was never built
    import warnings

    warnings.warn("Importing 'hy2fa_lab' outside a proper installation.", stacklevel=2)
    __version__ = "dev"


TYPE_CHECKING = False  # not typing's: importing typing costs hy2fa-askpass milliseconds
if TYPE_CHECKING:
    from typing import Any

    from .core.errors import Hy2faError
    from .kernel import ensure, socket_path

__all__ = ["Hy2faError", "__version__", "ensure", "load_ipython_extension", "socket_path"]


def __getattr__(name: str) -> Any:
    """Import the kernel side on first use: ``hy2fa-askpass`` and the CLI, which only
    import this package to reach a submodule, must not pay for it."""
    if name in ("ensure", "socket_path"):
        from . import kernel

        return getattr(kernel, name)
    if name == "Hy2faError":
        from .core.errors import Hy2faError

        return Hy2faError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext hy2fa_lab`` registers the ``%hy2fa`` magic."""
    from .kernel.magic import load_ipython_extension as load

    load(ipython)


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from .server import Hy2faLab

    return [{"module": "hy2fa_lab.server", "app": Hy2faLab}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "hy2fa-lab"}]
