"""Cluster names resolved to targets with the configured settings: what the manager and
the CLI's quick commands (``status``, ``path``, ``list``) share. No asyncio and no pexpect
here, so a command that only asks a socket does not pay for the engine.

The person's own cluster settings (``mine.py``) are read with the profiles, and read again
whenever their file changed (a kernel sees a change made in Lab or by ``hy2fa set``);
:meth:`Targets.set_mine`, :meth:`Targets.add_mine` and :meth:`Targets.forget_mine` change
them, for REST and the ``hy2fa`` command alike.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import mine, mux, validate
from .errors import Hy2faError, UnknownCluster
from .profiles import ClusterProfile, load_profiles, resolve, with_mine
from .settings import Settings
from .types import State, Target

if TYPE_CHECKING:
    from .certificates import Certificate
    from .managed_config import HostBlock

__all__ = ["ClusterRow", "Settings", "Targets", "socket_state"]

_log = logging.getLogger("hy2fa_lab")


def socket_state(found: mux.Status) -> State:
    """The state a socket alone shows, when no session of ours knows it."""
    if found.liveness is mux.Liveness.ALIVE:
        return State.CONNECTED
    if found.liveness is mux.Liveness.UNRESPONSIVE:
        return State.UNRESPONSIVE
    return State.IDLE


@dataclasses.dataclass
class ClusterRow:
    """One cluster as ``GET hy2fa/clusters`` and ``hy2fa list`` show it: the profile, where
    it resolves to, and what its socket (or the session on it) says."""

    profile: ClusterProfile
    target: Target | None = None
    error: Hy2faError | None = None
    state: State = State.IDLE
    master_pid: int | None = None
    message: str = ""
    liveness: mux.Liveness = mux.Liveness.ABSENT  # what the socket itself said
    connection_id: str | None = None  # the id of the connection shown in this row
    # What the key and certificate files of a certificate profile say (read from disk, no
    # network); None when the profile has none or the files are not there.
    certificate: Certificate | None = None

    @property
    def name(self) -> str:
        return self.profile.name

    def observe(self, found: mux.Status) -> None:
        """Take what the socket said."""
        self.state = socket_state(found)
        self.master_pid = found.pid
        self.message = found.message
        self.liveness = found.liveness

    def to_json(self) -> dict[str, Any]:
        row = self.profile.to_json()
        if self.target is None:
            error = self.error or Hy2faError("not resolved")
            row.update(state="error", error={"message": error.message, "reason": error.reason})
            return row
        target = self.target
        row.update(
            hostname=target.hostname,
            user=target.user,
            port=target.port,
            control_path=target.control_path,
            persist=target.persist,
            state=self.state.value,
            master_pid=self.master_pid,
            connection=target.name,
            connection_id=self.connection_id,
        )
        if self.message:
            row["message"] = self.message
        spec = self.profile.certificate
        if spec is not None:
            # Where a login gets one: said before any certificate is on disk, too.
            row["certificate_from"] = spec.issuer_name
            if self.certificate is not None:
                row["certificate"] = {
                    **self.certificate.view(spec.issuer),
                    # When Lab warns before the end, as the login renews (seconds).
                    "renew_before": spec.renew_before,
                }
        return row

    def read_certificate(self) -> None:
        """Read the profile's key and certificate files (blocking; never the issuer)."""
        spec = self.profile.certificate
        if spec is None:
            return
        from . import certificates  # cryptography: only for a profile that has a certificate

        self.certificate = certificates.read(spec)


class Targets:
    """Profiles and their resolution (``ssh -G``) under one :class:`Settings`."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()  # checked when it was made
        self._profiles: dict[str, ClusterProfile] | None = None
        self._mine_seen: tuple[int, ...] | None = None
        # The person's own settings as last read (``mine.problems``: what of the file is
        # not used, said by the server's log, ``GET hy2fa/clusters`` and ``hy2fa``).
        self.mine = mine.Mine(self.settings.clusters_file)

    def site_profiles(self) -> dict[str, ClusterProfile]:
        """The clusters the site gives: built-in, ssh config aliases, Jupyter config."""
        return load_profiles(
            self.settings.clusters,
            include_ssh_config_hosts=self.settings.include_ssh_config_hosts,
            config_file=self.settings.ssh_config,
            broken=self.settings.broken_clusters,
        )

    def profiles(self, *, reload: bool = False) -> dict[str, ClusterProfile]:
        """Every cluster: the site's, with the person's own settings on top. Read again with
        ``reload``, or when the file of the person's settings changed."""
        seen = mine.signature(self.settings.clusters_file)
        if self._profiles is None or reload or seen != self._mine_seen:
            self.mine = mine.load(self.settings.clusters_file)
            self._mine_seen = seen
            self._profiles = with_mine(self.site_profiles(), self.mine)
        return self._profiles

    # ---- the person's own settings (blocking: a file, and the ssh config's aliases) ----

    def set_mine(self, name: str, changes: dict[str, Any]) -> None:
        """Set (a value of ``None``: remove) the person's values for cluster ``name``: user,
        port, persist, label, ssh_options; host too for a cluster of their own.
        :class:`UnknownCluster` when there is no such cluster; :class:`InvalidInput` for a
        value refused (nothing is written)."""
        validate.cluster_name(name)
        site = self.site_profiles()
        mine.change(
            self.settings.clusters_file, lambda raw: mine.set_values(raw, name, changes, site=site)
        )
        self._profiles = None
        self.follow_in_terminals(name)

    def add_mine(self, name: str, values: dict[str, Any]) -> None:
        """A cluster of the person's own (``host`` and any of the other values);
        :class:`mine.ClusterExists` when the name is taken (the site's or theirs)."""
        validate.cluster_name(name)
        site = self.site_profiles()
        mine.change(self.settings.clusters_file, lambda raw: mine.add(raw, name, values, site=site))
        self._profiles = None

    def forget_mine(self, name: str) -> bool:
        """Remove the person's settings for ``name``: a cluster of their own goes, one of the
        site is as the site gives it again. Whether ``name`` is still a cluster.
        :class:`UnknownCluster` when they have no settings for it."""
        validate.cluster_name(name)
        mine.change(self.settings.clusters_file, lambda raw: mine.forget(raw, name))
        listed = name in self.profiles(reload=True)
        if listed:
            self.follow_in_terminals(name)
        return listed

    def follow_in_terminals(self, name: str) -> None:
        """Once the person let ``hy2fa config-ssh`` write a block for ``name`` ("Also use it
        in terminals"), that block follows their values: written again after each change, so
        plain ``ssh name`` does not go on with the old user or port. Where there is no block,
        nothing is asked for and nothing is written. A config that cannot be written costs
        the block alone: the change itself is kept, and the log says so."""
        from .managed_config import has_block, update_block

        try:
            if not has_block(name, self.settings.ssh_config):
                return
            written = update_block(self.host_block(name), self.settings.ssh_config)
        except Hy2faError as error:
            _log.warning(
                "hy2fa: the ssh config's block for %s still has the earlier values: %s",
                name,
                error.message,
            )
            return
        if written is not None:
            _log.info(
                "hy2fa: the ssh config's block for %s now has your values (%s)", name, written[0]
            )

    def host_block(
        self, name: str, *, user: str | None = None, persist: str | None = None
    ) -> HostBlock:
        """The managed ``Host`` block of ``hy2fa config-ssh`` for cluster ``name``: where it
        resolves to, with the person's user and port (or ``user`` given), so plain ``ssh
        name`` uses the same user and socket (runs ``ssh -G``)."""
        from .controlpath import DEFAULT_TEMPLATE
        from .managed_config import HostBlock

        alias = validate.cluster_name(name)
        profile = self.profiles().get(name)
        chosen = user if user is not None else (profile.user if profile else None)
        target = self.resolve(name, user=chosen, persist=persist)
        return HostBlock(
            alias=alias,
            hostname=target.hostname,
            persist=target.persist,
            control_path=self.settings.control_path or DEFAULT_TEMPLATE,
            user=chosen,
            port=target.port if target.port != 22 else None,
        )

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

    def profile(self, name: str, *, reload: bool = False) -> ClusterProfile:
        """The profile called ``name``; :class:`UnknownCluster` (404) if there is none."""
        found = self.profiles(reload=reload).get(name)
        if found is None:
            raise UnknownCluster(f"No cluster named {validate.shown(name)}")
        return found

    def survey(
        self, names: Iterable[str] | None = None, *, reload: bool = False, user: str | None = None
    ) -> list[ClusterRow]:
        """Every cluster (or those ``names``) resolved, with its socket checked (blocking).

        A cluster that does not resolve keeps its error in the row; all sockets are checked
        together in one :func:`mux.statuses` call.
        """
        profiles = self.profiles(reload=reload)
        wanted = list(profiles) if names is None else [self.profile(n).name for n in names]
        rows = []
        for name in wanted:
            try:
                rows.append(ClusterRow(profiles[name], target=self.resolve(name, user=user)))
            except Hy2faError as error:
                rows.append(ClusterRow(profiles[name], error=error))
        found = mux.statuses([row.target.control_path for row in rows if row.target])
        for row in rows:
            if row.target is not None:
                row.observe(found[row.target.control_path])
            row.read_certificate()
        return rows

    def survey_target(self, target: Target) -> ClusterRow:
        """The row of one resolved target, a cluster or any host, its socket checked."""
        profile = self.profiles().get(target.profile) or ClusterProfile(
            name=target.profile, host=target.destination, source="host"
        )
        row = ClusterRow(profile, target=target)
        row.observe(mux.status(target.control_path))
        row.read_certificate()
        return row
