"""Wiring the askpass bridge into a Jupyter server: where its socket lives, and the
environment every kernel (and terminal) the server starts inherits.

Kernels inherit the server process's environment, so the three variables are set there:
``SSH_ASKPASS`` (``hy2fa-askpass``), ``SSH_ASKPASS_REQUIRE=force`` (OpenSSH >= 8.4: use it
even with a terminal; the helper then asks on that terminal itself) and the socket's path.
The engine's own ``ssh -M`` children never see them (``core.environment`` drops them).

What this system cannot do for the bridge (``core/platform.py``: no peer check, no process
information, no way for the helper to name its parent) is said once in the server's log when
the bridge starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import stat
import tempfile

from tornado.ioloop import IOLoop

from ..askwire import SOCKET_ENV
from ..core import controlpath, openssh, platform
from ..core.asks import Ask, AskBridge
from ..core.manager import Manager
from ..core.processes import process_exit

_OWN_DIR = re.compile(r"hy2fa-([1-9][0-9]{0,8})")  # <runtime>/hy2fa-<server pid>/askpass
_SOCKET_NAME = "askpass"
# When to look for the master an answered ssh makes: it appears right after the login, and
# at the latest when the asking ssh exits (whichever comes first, each look is one mux call).
_MASTER_LOOKS = (0.3, 1.0, 3.0, 10.0)


def socket_path(runtime_dir: str) -> str:
    """A private directory for the listener: ``<runtime>/hy2fa-<pid>/`` if the path can be
    bound, else one in /tmp. What servers that did not stop (SIGKILL, a crash) left in the
    runtime dir is removed first (:func:`remove_stale_dirs`)."""
    remove_stale_dirs(runtime_dir)
    path = os.path.join(runtime_dir, f"hy2fa-{os.getpid()}", _SOCKET_NAME)
    if controlpath.bindable(path):
        return path
    return os.path.join(tempfile.mkdtemp(prefix="hy2fa-"), _SOCKET_NAME)  # mkdtemp: 0700


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _answers(path: str) -> bool:
    """Whether something listens at the socket ``path``: a server of another pid namespace
    (a container sharing the runtime dir) whose pid means nothing here. A connect to a Unix
    socket never waits for the listener to accept (the kernel's backlog does)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def remove_stale_dirs(runtime_dir: str) -> list[str]:
    """Remove the ``hy2fa-<pid>`` directories of servers that are gone: a directory (not a
    link) of ours whose pid runs no process, holding nothing but the bridge's socket, on which
    nothing listens. Anything else is left as it is. Returns what was removed.

    A runtime dir shared by several machines (an NFS home) cannot tell another machine's pid
    from a dead one: the same limit as Jupyter's own ``jpserver-<pid>.json`` clean-up."""
    removed: list[str] = []
    try:
        names = os.listdir(runtime_dir)
    except OSError:
        return removed
    for name in names:
        match = _OWN_DIR.fullmatch(name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        directory = os.path.join(runtime_dir, name)
        try:
            info = os.lstat(directory)
            if (
                not stat.S_ISDIR(info.st_mode)
                or info.st_uid != os.getuid()
                or _running(int(match.group(1)))
            ):
                continue
            inside = os.listdir(directory)
            if inside not in ([], [_SOCKET_NAME]):
                continue
            if inside:
                socket_file = os.path.join(directory, _SOCKET_NAME)
                if not stat.S_ISSOCK(os.lstat(socket_file).st_mode) or _answers(socket_file):
                    continue
                os.unlink(socket_file)
            os.rmdir(directory)
        except OSError:
            continue  # changed under us, or not ours to remove: left alone
        removed.append(directory)
    return removed


class BridgeInstall:
    """Starts the bridge and puts its variables into the server's environment, and undoes
    both. A person's own ``SSH_ASKPASS`` is left alone unless ``replace_own``."""

    def __init__(
        self, bridge: AskBridge, manager: Manager, log: logging.Logger, *, replace_own: bool
    ) -> None:
        self.bridge = bridge
        self.manager = manager
        self.log = log
        self.replace_own = replace_own
        self.off_reason: str | None = None  # why install() left the bridge off, for Lab
        self._saved: dict[str, str | None] = {}
        self._watching: dict[int, asyncio.Task[None]] = {}
        bridge.subscribe(self._heard)

    def _heard(self, ask: Ask, action: str) -> None:
        """An answered ssh may leave a ControlMaster (ControlMaster=auto + ControlPersist):
        list it with the other connections."""
        pid = ask.origin.get("pid")
        if not ask.command:
            return  # its argv is unknown here (no process information): nothing to look for
        if action == "answered" and isinstance(pid, int) and pid not in self._watching:
            task = asyncio.ensure_future(
                self._adopt_master(list(ask.command), pid, dict(ask.origin))
            )
            self._watching[pid] = task
            task.add_done_callback(lambda _: self._watching.pop(pid, None))

    async def _adopt_master(self, command: list[str], pid: int, origin: dict[str, object]) -> None:
        exited = process_exit(pid)  # None without pidfds: every look is made
        try:
            for delay in _MASTER_LOOKS:
                if exited is None:
                    await asyncio.sleep(delay)
                else:
                    await asyncio.wait({exited}, timeout=delay)
                session = await self.manager.adopt_external(command, origin)
                if session is not None:
                    self.log.info(
                        "hy2fa_lab: %s made a master at %s (pid %s)",
                        session.name,
                        session.target.control_path,
                        session.master_pid,
                    )
                    return
                if exited is not None and exited.done():
                    return
        except Exception:  # a courtesy: the ssh itself is not affected
            self.log.exception("hy2fa_lab: looking for the master of ssh %s failed", pid)
        finally:
            if exited is not None:
                exited.cancel()

    def install(self) -> bool:
        """Bind the socket and set the variables now, so that every kernel started from now
        on asks in Lab; the listener starts answering once the event loop runs. True when
        the bridge is on."""
        program = openssh.helper_program()
        if program is None:
            return self._off(logging.WARNING, "hy2fa-askpass is not installed")
        client = openssh.client(self.manager.settings.ssh)
        problem = client.askpass_problem() if client is not None else None
        if problem is not None:
            return self._off(logging.WARNING, problem)
        own = os.environ.get("SSH_ASKPASS")
        if own and own != program and not self.replace_own:
            return self._off(
                logging.INFO,
                f"SSH_ASKPASS is already set ({own}): kernels keep it; set "
                "c.Hy2faLab.askpass_replace_own = True to ask in JupyterLab instead",
            )
        try:
            self.bridge.listen()
        except OSError as error:
            self.log.exception("hy2fa_lab: the askpass bridge could not listen")
            self.off_reason = f"The askpass bridge could not listen: {error}"
            return False
        IOLoop.current().add_callback(self._serve)
        values = {
            "SSH_ASKPASS": program,
            "SSH_ASKPASS_REQUIRE": "force",
            SOCKET_ENV: self.bridge.path,
        }
        for key, value in values.items():
            self._saved[key] = os.environ.get(key)
            os.environ[key] = value
        self.log.info("hy2fa_lab: ssh run by kernels asks in JupyterLab (%s)", self.bridge.path)
        self._say_what_is_missing()
        return True

    def _say_what_is_missing(self) -> None:
        """One line for each fact the bridge relies on that this system does not give, with
        what happens instead (once, when the bridge starts)."""
        for capability in platform.bridge_capabilities():
            if not capability.available:
                level = logging.WARNING if capability.name == "peer check" else logging.INFO
                self.log.log(
                    level,
                    "hy2fa_lab: askpass bridge: no %s on this system: %s",
                    capability.name,
                    capability.without,
                )

    def _off(self, level: int, reason: str) -> bool:
        self.off_reason = reason
        self.log.log(level, "hy2fa_lab: the askpass bridge is off: %s", reason)
        return False

    async def _serve(self) -> None:
        try:
            await self.bridge.serve()
        except OSError:
            self.log.exception("hy2fa_lab: the askpass bridge could not start")

    async def stop(self) -> None:
        for task in list(self._watching.values()):
            task.cancel()
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved.clear()
        await self.bridge.close()
        directory = os.path.dirname(self.bridge.path)
        with contextlib.suppress(OSError):
            os.rmdir(directory)
