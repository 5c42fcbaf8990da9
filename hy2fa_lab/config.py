"""The ``Hy2faLab`` settings as the Jupyter server reads them, for the ``hy2fa`` command and
for kernels that cannot ask their server (so ``hy2fa path saga`` gives the server's answer).

The files are read by jupyter_core's and traitlets' own loader, in the server's order: the
extension's ``jupyter_hy2fa_lab_config``, then ``jupyter_config`` and
``jupyter_server_config`` on top, in every directory of ``jupyter --paths``. Settings given
only on the server's command line (``--Hy2faLab.*``) cannot be seen from files; a kernel
asks its server for them (``GET hy2fa/settings``).

jupyter_core and traitlets are imported when a function here runs, not with the module:
``hy2fa --help`` and ``hy2fa --version`` need neither.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every hy2fa command milliseconds
if TYPE_CHECKING:
    from typing import Any

    from traitlets.config import Config

    from .core.settings import Settings

EXTENSION_CONFIG = "jupyter_hy2fa_lab_config"


def _read(config_file_name: str) -> Config:
    """``config_file_name`` (and ``jupyter_config``) from every Jupyter config directory."""
    from jupyter_core.application import JupyterApp

    app = JupyterApp(config_file_name=config_file_name)
    app.load_config_file()
    return app.config


def jupyter_config() -> Config:
    """The merged config the server gives its ``Hy2faLab`` extension."""
    merged = _read(EXTENSION_CONFIG)  # the extension's own files first ...
    merged.merge(_read("jupyter_server_config"))  # ... the server's config wins over them
    return merged


def jupyter_settings() -> dict[str, Any]:
    """The ``Hy2faLab`` values the Jupyter config sets, as keyword arguments of ``Settings``."""
    from .core.settings import config_fields

    section = jupyter_config().get("Hy2faLab", {})
    names = {field.name for field in config_fields()}
    values = {key: section[key] for key in names if key in section}
    if "clusters" in values:
        values["clusters"] = dict(values["clusters"])
    return values


def settings_from_jupyter_config() -> Settings:
    from .core.settings import Settings

    return Settings(**jupyter_settings())
