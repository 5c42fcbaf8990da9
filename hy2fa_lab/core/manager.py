"""The registry of master sessions: one per control path, however often it is asked for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import mux, openssh, processes, remembered, validate
from .errors import Hy2faError, UnknownCluster
from .login import LoginMethod
from .login_ssh import SshLogin
from .session import MasterSession
from .settings import Settings
from .sshconfig import split_ssh_argv, ssh_g_args
from .targets import ClusterRow, Targets, socket_state
from .types import State, Target

__all__ = ["ClusterRow", "Manager", "Settings", "Targets", "socket_state"]

Listener = Callable[[MasterSession], None]
_LISTENING = (mux.Liveness.ALIVE, mux.Liveness.UNRESPONSIVE)
# A login that ended this way is replaced (superseded) by the next login of the same name.
_FINISHED = (State.IDLE, State.FAILED, State.DISCONNECTED)


def _preference(session: MasterSession) -> tuple[bool, bool, bool, int]:
    """Which of several connections of one name a name means: a login under way (it is
    the one that can be answered or cancelled), then one this server's login made, then a
    live one, then the newest."""
    return (
        session.pending,
        session.made_by.get("kind") == "login",
        session.state in (State.CONNECTED, State.UNRESPONSIVE),
        session.version,
    )


class Manager(Targets):
    """Starts, joins, lists and stops master sessions."""

    def __init__(
        self, settings: Settings | None = None, *, log: logging.Logger | None = None
    ) -> None:
        super().__init__(settings)
        # The server passes its extension's logger (a child of the Jupyter server's).
        self.log = log or logging.getLogger("hy2fa_lab")
        self._sessions: dict[str, MasterSession] = {}  # by control path
        self._by_id: dict[str, MasterSession] = {}  # the same sessions, by their id
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners: list[Listener] = []
        self._discovery: asyncio.Future[list[MasterSession]] | None = None
        self._watching: dict[int, asyncio.Task[None]] = {}  # master pid -> its watcher
        self._stopping: set[str] = set()  # ids of the sessions whose master is being stopped
        self.discovery_error: Exception | None = None

    # ---- targets ---------------------------------------------------------------

    async def resolve_async(self, cluster: str, **kwargs: Any) -> Target:
        return await asyncio.to_thread(self.resolve, cluster, **kwargs)

    # ---- listeners -------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Hear every state change of every session; returns an unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _notify(self, session: MasterSession) -> None:
        if session.state is State.CONNECTED and session.master_pid is not None:
            self._watch_master(session, session.master_pid)
        for listener in list(self._listeners):
            listener(session)

    def _watch_master(self, session: MasterSession, pid: int) -> None:
        """Notice the moment a master exits (ControlPersist ran out, killed, the network gone),
        from its pidfd: no wait for the next refresh. Without pidfds (macOS) or an event
        loop, the periodic :meth:`refresh` notices instead."""
        if pid in self._watching:
            return
        try:
            exited = processes.process_exit(pid)
        except RuntimeError:  # no running event loop
            return
        if exited is None:  # no pidfds here
            return

        async def watch() -> None:
            try:
                await exited
                if session.state is State.CONNECTED and session.master_pid == pid:
                    await self.check(session)
            finally:
                exited.cancel()
                self._watching.pop(pid, None)

        self._watching[pid] = asyncio.get_running_loop().create_task(watch())

    # ---- sessions --------------------------------------------------------------

    def session_for(self, target: Target) -> MasterSession:
        """The session on ``target``'s control path; a new one when there is none, or when
        the one there is settled and was made for another target (it is superseded)."""
        old = self._sessions.get(target.control_path)
        if old is not None and (old.target == target or old.pending):
            return old
        session = MasterSession(
            target,
            prompt_timeout=self.settings.prompt_timeout,
            on_change=self._notify,
            log=self.log,
            method=self._method_for(target),
        )
        self._sessions[target.control_path] = session
        self._by_id[session.id] = session
        if old is not None:
            self._retire(old, session)
        return session

    def _method_for(self, target: Target) -> LoginMethod:
        """The login method ``target``'s profile chose: a certificate's issuer first, else
        ssh's own questions (``core/login.py``)."""
        ssh = SshLogin(
            ssh=self.settings.ssh,
            config_file=self.settings.ssh_config,
            connect_timeout=self.settings.connect_timeout,
        )
        if target.certificate is None:
            return ssh
        # Imported here: cryptography, for profiles with a certificate alone (a kernel's
        # first ensure() pays for what it uses).
        if target.certificate.issuer == "command":
            from .issuer_command import CommandLogin

            return CommandLogin(target.certificate, ssh)
        from .login_certificate import CertificateLogin

        return CertificateLogin(target.certificate, ssh)

    def _retire(self, old: MasterSession, new: MasterSession) -> None:
        """``new`` takes ``old``'s place: ``old`` leaves the registry, and its listeners
        (events, so every Lab) hear it once more, with ``superseded_by``."""
        if self._sessions.get(old.target.control_path) is old:
            del self._sessions[old.target.control_path]
        self._by_id.pop(old.id, None)
        old.supersede(new)

    def _supersede_finished(self, session: MasterSession) -> None:
        """A login starts: finished connections of the same name (a failed login at another
        socket path, a master that went away) give way to it, so that the name, and a kernel
        that follows it, means this one."""
        for other in self.sessions():
            if other is not session and other.name == session.name and other.state in _FINISHED:
                self._retire(other, session)

    def known(self, target: Target) -> MasterSession | None:
        """The session on ``target``'s control path, if one was started or found."""
        return self._sessions.get(target.control_path)

    async def connect(
        self, cluster: str, *, profiles_only: bool = False, **kwargs: Any
    ) -> MasterSession:
        """Start a login, or join the one under way, or return the live master.

        ``profiles_only`` refuses a plain host name (the REST API connects only clusters
        it lists; the CLI and ``ensure()`` take any host, as ssh does).
        """
        if profiles_only:
            await asyncio.to_thread(self.profile, cluster, reload=True)
        await asyncio.to_thread(openssh.check_masters, self.settings.ssh)
        target = await self.resolve_async(cluster, **kwargs)
        lock = self._locks.setdefault(target.control_path, asyncio.Lock())
        async with lock:
            session = self.session_for(target)
            if session.pending:
                return session
            if session.state in (State.CONNECTED, State.UNRESPONSIVE):
                await self.check(session)
                if session.state in (State.CONNECTED, State.UNRESPONSIVE):
                    return session  # a master that does not answer is not replaced blindly
            self._supersede_finished(session)
            session.start()
            return session

    async def clusters(
        self, names: Sequence[str] | None = None, *, user: str | None = None
    ) -> list[ClusterRow]:
        """Every cluster (or ``names``, as ``user``) as its socket shows it, or the session on
        it: a login under way, or as another user (``user@cluster``), shows in its row."""
        rows = await asyncio.to_thread(self.survey, names, reload=True, user=user)
        for row in rows:
            if row.target is None:
                continue
            # A login for the cluster as another user shows in its row; a master some other
            # ssh made at its own socket (a kernel's, through the bridge) is a connection of
            # its own, not this row's.
            session = self.known(row.target) or next(
                (
                    s
                    for s in self.sessions()
                    if s.target.profile == row.name
                    and s.made_by.get("kind") == "login"
                    and (s.pending or s.state is State.CONNECTED)
                ),
                None,
            )
            if session is not None and session.state is not State.IDLE:
                row.target = session.target
                row.state = session.state
                row.master_pid = session.master_pid
                row.message = ""
                row.connection_id = session.id
        return rows

    def find(self, key: str) -> MasterSession | None:
        """The connection with id ``key``, else the one the name ``key`` means (see
        :func:`_preference`): code passes ids, people and older clients pass names."""
        session = self._by_id.get(key)
        if session is not None:
            return session
        named = [s for s in self._sessions.values() if s.name == key]
        return max(named, key=_preference) if named else None

    def get(self, key: str) -> MasterSession:
        session = self.find(key)
        if session is None:
            raise UnknownCluster(f"No connection named {validate.shown(key)}")
        return session

    async def watch(self, name: str, after: int, timeout: float) -> MasterSession:
        """The connection ``name`` once its view is newer than version ``after``, or as it is
        after ``timeout`` seconds: a client waits for the next change instead of polling."""
        session = self.get(name)

        async def newer() -> None:
            while session.version <= after:
                await session.changed()

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(newer(), max(0.0, timeout))
        return session

    def sessions(self) -> list[MasterSession]:
        return list(self._sessions.values())

    async def answer(self, name: str, response: str, prompt_id: int | None = None) -> MasterSession:
        session = self.get(name)
        await session.answer(response, prompt_id)
        return session

    async def disconnect(
        self, name: str, *, profiles_only: bool = False, **options: Any
    ) -> MasterSession:
        """Cancel a login under way, or stop a live master: the connection called ``name``,
        else the master on the socket of cluster (or, unless ``profiles_only``, host)
        ``name`` with ``options`` (as :meth:`resolve` takes them), which this process may
        never have seen (a restart, another tool, the CLI)."""
        session = self.find(name)
        if session is None or any(value for value in options.values()):
            if profiles_only:
                await asyncio.to_thread(self.profile, name, reload=True)
            session = self.session_for(await self.resolve_async(name, **options))
        return await self.disconnect_session(session)

    async def disconnect_session(self, session: MasterSession) -> MasterSession:
        if session.pending:
            await session.cancel()
            return session
        path = session.target.control_path
        lock = self._locks.setdefault(path, asyncio.Lock())
        async with lock:
            # Meanwhile the master's exit (its pidfd, a refresh) is this stop, not a master
            # that went away: one change, "Disconnected", never "the master exited" first.
            self._stopping.add(session.id)
            try:
                stopped = await _stop_master(path)
                if stopped or session.state in (State.CONNECTED, State.UNRESPONSIVE):
                    session.mark_disconnected("Disconnected")
            finally:
                self._stopping.discard(session.id)
        return session

    async def check(self, session: MasterSession) -> None:
        """Bring a settled session in line with its socket (one mux round trip, bounded)."""
        if session.pending:
            return
        self._apply(session, await asyncio.to_thread(mux.status, session.target.control_path))

    def _apply(self, session: MasterSession, found: mux.Status) -> None:
        """Bring ``session`` in line with what its socket said (unless it is being stopped:
        the stop says what became of it)."""
        if session.id in self._stopping:
            return
        if found.liveness is mux.Liveness.ALIVE and found.pid is not None:
            if session.state is not State.CONNECTED or session.master_pid != found.pid:
                session.adopt(found.pid)
        elif found.liveness is mux.Liveness.UNRESPONSIVE:
            if session.state is not State.UNRESPONSIVE or session.message != found.message:
                session.mark_unresponsive(found.message)
        elif session.state in (State.CONNECTED, State.UNRESPONSIVE):
            session.mark_disconnected(
                found.message or "The master exited (idle past ControlPersist, or stopped)"
            )

    async def refresh(self) -> None:
        """Notice masters that went away (ControlPersist ran out, killed) or stopped answering."""
        watched = [
            session
            for session in self.sessions()
            if session.state in (State.CONNECTED, State.UNRESPONSIVE)
        ]
        if not watched:
            return
        # All sockets in one worker thread, their requests in flight together (mux.statuses):
        # a thread per socket costs more in event-loop hand-offs and GIL waits than it saves.
        found = await asyncio.to_thread(
            mux.statuses, [session.target.control_path for session in watched]
        )
        for session in watched:
            self._apply(session, found[session.target.control_path])

    async def discover(self) -> list[MasterSession]:
        """Adopt masters that already run for known clusters (e.g. after a restart).

        A socket that does not answer is listed as unresponsive; one that is not ours is
        left alone. Nothing here raises: the server must start whatever is on disk.
        """

        async def look_again(target: Target) -> MasterSession | None:
            found = await asyncio.to_thread(mux.status, target.control_path)
            if found.liveness not in _LISTENING:
                return None
            session = self.known(target) or self.session_for(target)
            if session.state is State.IDLE:
                session.made_by = {"kind": "ssh"}  # remembered: an ssh of a kernel made it
            await self.check(session)
            return session

        try:
            rows = await asyncio.to_thread(self.survey)
        except Hy2faError:
            rows = []
        sessions = []
        for row in rows:
            if row.target is not None and row.liveness in _LISTENING:
                # Two aliases may share a socket (the same %C): the first one found keeps it.
                session = self.known(row.target) or self.session_for(row.target)
                if session in sessions:
                    continue
                if session.state is State.IDLE:
                    session.made_by = {"kind": "found"}  # running before this server started
                self._apply(session, mux.Status(row.liveness, row.master_pid, row.message))
                sessions.append(session)
        remembered = await asyncio.to_thread(self._remembered)
        found = await asyncio.gather(*(look_again(target) for target in remembered))
        sessions += [session for session in found if session is not None]
        live = {session.target.control_path for session in sessions}
        await asyncio.to_thread(
            self._remember, [t for t in remembered if t.control_path in live], replace=True
        )
        return sessions

    def _remembered(self) -> list[Target]:
        """The masters of ``masters_file``, each row checked (``core/remembered.py``)."""
        return remembered.load(self.settings.masters_file, self.log)

    def _remember(self, targets: Sequence[Target], *, replace: bool = False) -> None:
        """Keep ``targets`` in ``masters_file`` (written whole, atomically, 0600)."""
        remembered.save(self.settings.masters_file, targets, replace=replace, log=self.log)

    async def adopt_external(
        self, command: Sequence[str], origin: Mapping[str, Any] | None = None
    ) -> MasterSession | None:
        """The master an ssh made with its own ControlPath (``command`` is its argv, e.g. an
        ssh a kernel ran through the askpass bridge), as a connection like any other, listed
        as made by that ssh (``origin``: the ``notebook`` and ``kernel_id`` it ran under);
        ``None`` when that ssh makes no master or none answers (yet)."""
        split = split_ssh_argv(command)
        if split is None:
            return None
        options, destination = split
        try:
            settings = await asyncio.to_thread(
                ssh_g_args, [*options, "--", destination], destination, ssh=self.settings.ssh
            )
        except Hy2faError:
            return None
        path = settings.get("controlpath", "none")
        if path.lower() == "none" or settings.get("controlmaster", "no") in ("no", "false"):
            return None
        found = await asyncio.to_thread(mux.status, path)
        if found.liveness is not mux.Liveness.ALIVE or found.pid is None:
            return None
        persist = settings.get("controlpersist", "no")
        target = Target(
            name=destination,
            destination=destination,
            hostname=settings.get("hostname", destination),
            user=settings.get("user", ""),
            port=validate.port(settings.get("port", 22)),
            control_path=path,
            persist=f"{persist}s" if persist.isdigit() else persist,  # ssh -G: seconds or yes
            cluster=destination,
        )
        session = self.known(target) or self.session_for(target)
        if session.state is not State.CONNECTED or session.master_pid != found.pid:
            made_by = {"kind": "ssh"}
            for key in ("notebook", "kernel_id"):
                value = (origin or {}).get(key)
                if isinstance(value, str) and value:
                    made_by[key] = value
            session.made_by = made_by
            session.adopt(found.pid)
        await asyncio.to_thread(self._remember, [session.target])
        return session

    async def ready(self) -> None:
        """Discover running masters once, before anything is listed or started.

        A failure is kept in ``discovery_error`` for the caller to report; it never blocks
        requests (the server must answer whatever is on disk).
        """
        if self._discovery is None:
            self._discovery = asyncio.ensure_future(self.discover())
        try:
            await asyncio.shield(self._discovery)
        except Exception as error:
            self.discovery_error = error

    async def shutdown(self) -> None:
        """Cancel logins under way; live masters are left running on purpose."""
        pending = [session for session in self.sessions() if session.pending]
        await asyncio.gather(*(session.cancel() for session in pending))
        for task in list(self._watching.values()):
            task.cancel()


_STOP_SECONDS = 5.0  # how long a stopped master may take to go


async def _stop_master(path: str) -> bool:
    """Stop the master on ``path``; whether it accepted. Done when its process is gone, not
    only its socket, which goes a moment before: heard from its pidfd (opened before the
    stop, so a pid used again meanwhile is never mistaken for it), then its socket checked
    once; without pidfds, its socket checked every 50 ms until gone."""
    found = await asyncio.to_thread(mux.status, path)
    alive = found.liveness is mux.Liveness.ALIVE
    exited = processes.process_exit(found.pid) if alive and found.pid is not None else None
    try:
        accepted = await asyncio.to_thread(_send_stop, path)
        if accepted and exited is not None:
            await asyncio.wait({exited}, timeout=_STOP_SECONDS)
        return await asyncio.to_thread(_wait_gone, path, accepted)
    finally:
        if exited is not None:
            exited.cancel()


def _send_stop(path: str) -> bool:
    """Ask the master on ``path`` to exit (blocking); whether it accepted."""
    try:
        return mux.stop(path)
    except mux.UntrustedSocket as error:
        raise Hy2faError(str(error), reason="unsafe_socket") from None
    except (OSError, mux.MuxError):
        return False


def _wait_gone(path: str, accepted: bool, timeout: float = _STOP_SECONDS) -> bool:
    """Wait until no master answers on ``path`` (blocking; at once when its exit was
    heard), a stale file removed; ``accepted`` passed through."""
    deadline = time.monotonic() + timeout
    while True:
        found = mux.status(path)
        if found.liveness is mux.Liveness.UNRESPONSIVE and not accepted:
            raise Hy2faError(f"{found.message}; it was left as it is", reason="unresponsive")
        if found.liveness not in (mux.Liveness.ALIVE, mux.Liveness.UNRESPONSIVE):
            with contextlib.suppress(OSError):
                mux.remove_stale(path)
            return accepted
        if time.monotonic() >= deadline:
            raise Hy2faError(f"The master on {path} did not stop within {timeout:.0f} s")
        time.sleep(0.05)  # no pidfds (macOS), or another master took the path meanwhile
