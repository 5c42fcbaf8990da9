"""The ``Hy2faLab`` settings that kernels and the ``hy2fa`` command share with the server,
read from the Jupyter config files (so ``hy2fa path saga`` gives the server's answer).

Settings given only on the server's command line (``--Hy2faLab.*``) cannot be seen here;
kernels learn those from the server itself when it is reachable.

jupyter_core, traitlets and the manager are imported when a function here runs, not with the
module: ``hy2fa --help`` and ``hy2fa --version`` need none of them, and ``hy2fa status`` needs
no manager.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every hy2fa command milliseconds
if TYPE_CHECKING:
    from typing import Any

    from traitlets.config import Config

    from .core.targets import Settings

_FIELDS = {
    "clusters",
    "control_path",
    "default_persist",
    "prompt_timeout",
    "connect_timeout",
    "include_ssh_config_hosts",
    "ssh_config",
    "ssh",
}


def _load(loader: Any) -> Config:
    from traitlets.config import Config
    from traitlets.config.loader import ConfigFileNotFound

    try:
        loaded: Config = loader.load_config()
    except ConfigFileNotFound:
        return Config()
    return loaded


def jupyter_config() -> Config:
    """The merged server config, lowest priority first, as jupyter_server reads it."""
    import glob
    import os

    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

    merged = Config()
    for directory in reversed(jupyter_config_path()):
        for path in sorted(glob.glob(os.path.join(directory, "jupyter_server_config.d", "*.json"))):
            merged.merge(_load(JSONFileConfigLoader(os.path.basename(path), os.path.dirname(path))))
        merged.merge(_load(JSONFileConfigLoader("jupyter_server_config.json", directory)))
        merged.merge(_load(PyFileConfigLoader("jupyter_server_config.py", directory)))
    return merged


def jupyter_settings() -> dict[str, Any]:
    """The ``Hy2faLab`` values the Jupyter config sets, as keyword arguments of ``Settings``."""
    section = jupyter_config().get("Hy2faLab", {})
    values = {key: section[key] for key in _FIELDS if key in section}
    if "clusters" in values:
        values["clusters"] = dict(values["clusters"])
    return values


def settings_from_jupyter_config() -> Settings:
    from .core.targets import Settings

    return Settings(**jupyter_settings())
