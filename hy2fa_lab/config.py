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
CLUSTERS_FILE = ("hy2fa_lab", "clusters.json")  # under the Jupyter data dir


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
    """The ``Hy2faLab`` values the Jupyter config sets, as they are written (not checked)."""
    import copy

    from traitlets.config.loader import LazyConfigValue

    from .core.settings import DEFAULTS, config_fields

    section = jupyter_config().get("Hy2faLab", {})
    values = {}
    for field in config_fields():
        if field.name not in section:
            continue
        value = section[field.name]
        if isinstance(value, LazyConfigValue):  # c.Hy2faLab.clusters.update({...})
            value = value.get_value(copy.deepcopy(getattr(DEFAULTS, field.name)))
        values[field.name] = value
    return values


def settings_from_jupyter_config(*, warn: bool = True, **flags: Any) -> Settings:
    """The settings of the Jupyter config, where a bad value costs that value alone, as in the
    server (``Settings.from_config``: its fallback, off for a switch, and a problem); with
    ``flags`` on top (the ``hy2fa`` command's, checked strictly: a bad flag raises).

    ``warn`` says each problem once as a warning (a kernel without a server shows it in its
    cell); the ``hy2fa`` command says them itself.
    """
    from .core.settings import Settings, check

    checked = {name: check(name, value) for name, value in flags.items()}
    settings = Settings.from_config(
        {**jupyter_settings(), **checked}, clusters_file=clusters_file()
    )
    if warn and settings.problems:
        import warnings

        for problem in settings.problems:
            warnings.warn(f"hy2fa_lab: {problem.message}", ConfigWarning, stacklevel=2)
    return settings


def clusters_file() -> str:
    """Where the person's own cluster settings are kept (``core/mine.py``): in their Jupyter
    data dir, ``<data>/hy2fa_lab/clusters.json``; ``JUPYTER_DATA_DIR`` moves it (tests, CI,
    a second account), as it moves every Jupyter data file."""
    import os

    from jupyter_core.paths import jupyter_data_dir

    return os.path.join(os.path.abspath(jupyter_data_dir()), *CLUSTERS_FILE)


class ConfigWarning(UserWarning):
    """A value of the ``Hy2faLab`` config is not used (and what is used instead)."""
