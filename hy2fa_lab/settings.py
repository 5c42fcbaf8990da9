"""The ``Hy2faLab`` settings that kernels and the ``hy2fa`` command share with the server,
read from the Jupyter config files (so ``hy2fa path saga`` gives the server's answer).

Settings given only on the server's command line (``--Hy2faLab.*``) cannot be seen here;
kernels learn those from the server itself when it is reachable.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from jupyter_core.paths import jupyter_config_path
from traitlets.config import Config
from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

from .core.manager import Settings

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
    try:
        loaded: Config = loader.load_config()
    except ConfigFileNotFound:
        return Config()
    return loaded


def jupyter_config() -> Config:
    """The merged server config, lowest priority first, as jupyter_server reads it."""
    merged = Config()
    for directory in reversed(jupyter_config_path()):
        for path in sorted(glob.glob(os.path.join(directory, "jupyter_server_config.d", "*.json"))):
            merged.merge(_load(JSONFileConfigLoader(os.path.basename(path), os.path.dirname(path))))
        merged.merge(_load(JSONFileConfigLoader("jupyter_server_config.json", directory)))
        merged.merge(_load(PyFileConfigLoader("jupyter_server_config.py", directory)))
    return merged


def settings_from_jupyter_config() -> Settings:
    section = jupyter_config().get("Hy2faLab", {})
    values = {key: section[key] for key in _FIELDS if key in section}
    if "clusters" in values:
        values["clusters"] = dict(values["clusters"])
    return Settings(**values)
