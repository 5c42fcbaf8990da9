"""Cluster names resolved to targets with the configured settings: what the manager and
the CLI's quick commands (``status``, ``path``, ``list``) share. No asyncio and no pexpect
here, so a command that only asks a socket does not pay for the engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from . import validate
from .profiles import ClusterProfile, load_profiles, resolve
from .types import Target


@dataclasses.dataclass
class Settings:
    """What the server's traitlets, the CLI flags or ``ensure()`` configure."""

    clusters: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    control_path: str | None = None
    default_persist: str = "1h"
    prompt_timeout: float = 120.0
    connect_timeout: float = 60.0
    include_ssh_config_hosts: bool = True
    ssh_config: str | None = None
    ssh: str = "ssh"
    # Where masters made by other ssh processes (the askpass bridge) are remembered, so that a
    # restarted server lists them again: paths and hosts only, never anything secret.
    masters_file: str | None = None


class Targets:
    """Profiles and their resolution (``ssh -G``) under one :class:`Settings`."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        validate.persist(self.settings.default_persist)
        if self.settings.control_path:
            validate.control_path_template(self.settings.control_path)
        self._profiles: dict[str, ClusterProfile] | None = None

    def profiles(self, *, reload: bool = False) -> dict[str, ClusterProfile]:
        if self._profiles is None or reload:
            self._profiles = load_profiles(
                self.settings.clusters,
                include_ssh_config_hosts=self.settings.include_ssh_config_hosts,
                config_file=self.settings.ssh_config,
            )
        return self._profiles

    def resolve(
        self,
        cluster: str,
        *,
        user: str | None = None,
        port: int | None = None,
        persist: str | None = None,
        ssh_options: Sequence[tuple[str, str]] = (),
        control_path: str | None = None,
    ) -> Target:
        """The fully resolved target (runs ``ssh -G``: call off an event loop).

        ``control_path`` puts the socket exactly there (e.g. where a tool such as HSP looks).
        """
        target = resolve(
            cluster,
            profiles=self.profiles(),
            user=user,
            port=port,
            persist=persist,
            ssh_options=tuple(ssh_options),
            control_path_template=self.settings.control_path,
            control_path=control_path,
            config_file=self.settings.ssh_config,
            default_persist=self.settings.default_persist,
            ssh=self.settings.ssh,
        )
        if user is not None:
            target = dataclasses.replace(target, name=f"{target.user}@{target.name}")
        return target
