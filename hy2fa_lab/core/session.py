"""A connection: the record of one master's login and life, as every surface sees it.

idle → starting → prompting ⇄ verifying → connected, or failed(reason); connected →
disconnected. The record holds the state, the prompt and its id, the version, ``to_json()``
(the connection view of REST and events) and the change notifications; *how* the master is
opened is its login method's (``core/login.py``: ``ssh -M`` under pexpect by default,
``login_ssh.py``). An answer is checked here, handed to the method and dropped: never logged,
kept, or put in argv or the environment (see SECURITY.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from . import mux
from .errors import InvalidInput, NoPrompt
from .login import Finished, LoginMethod
from .login_ssh import SshLogin
from .prompts import asked_for, clean
from .settings import DEFAULTS
from .types import SETTLED_STATES, Prompt, PromptKind, Reason, State, Target, iso_time
from .validate import visible

ChangeCallback = Callable[["MasterSession"], None]
_VERSIONS = itertools.count(1)

_MAX_RESPONSE = 1024
_VERIFYING_LINES = 20


def _chosen_option(prompt: Prompt, response: str) -> str | None:
    """The menu text of the Duo option ``response`` picks ("Duo Push to XXX-XXX-1234"); None
    for a passcode, which is never kept."""
    if prompt.kind is not PromptKind.DUO or not response.strip().isdigit():
        return None
    number = int(response.strip())
    if 1 <= number <= len(prompt.options) and len(response.strip()) <= 2:
        return prompt.options[number - 1]
    return None


class MasterSession:
    """One connection's record; its login ``method`` opens the master (``ssh -M`` unless the
    profile chose another). ``on_change`` hears every state change."""

    def __init__(
        self,
        target: Target,
        *,
        ssh: str = DEFAULTS.ssh,
        config_file: str | None = None,
        prompt_timeout: float = DEFAULTS.prompt_timeout,
        connect_timeout: float = DEFAULTS.connect_timeout,
        on_change: ChangeCallback | None = None,
        log: logging.Logger | None = None,
        method: LoginMethod | None = None,
    ) -> None:
        self.target = target
        # The name is for people (two connections may share one: a kernel's own master and a
        # login from the sidebar); the id is for code (REST paths, events, ensure()).
        self.id = secrets.token_hex(6)
        self.made_by: dict[str, str] = {"kind": "login"}  # or "found", or "ssh" + notebook
        self.superseded_by: str | None = None  # the id of the login that replaced this one
        self.log = log or logging.getLogger("hy2fa_lab")
        self.method: LoginMethod = method or SshLogin(
            ssh=ssh, config_file=config_file, connect_timeout=connect_timeout
        )
        self.prompt_timeout = prompt_timeout
        self.on_change = on_change
        self.state = State.IDLE
        self.prompt: Prompt | None = None
        self.prompt_id = 0
        self.reason: Reason | None = None
        self.message = ""
        self.since: float | None = None
        self.master_pid: int | None = None
        self.updated = time.time()
        self.version = 0  # of every session, one counter: a newer view has a larger number
        self._task: asyncio.Task[None] | None = None
        # What the method's process said since the last answer (ssh: where a prompt is looked
        # for; shown line by line while verifying). Never an answer, which ssh does not echo.
        self._pending = ""
        self._answered_at: float | None = None  # when the last answer went to ssh
        self._choice: str | None = None  # the Duo option the answer chose (its menu text)
        self._prompt_expires: float | None = None  # wall clock: prompt_timeout runs out
        self._changed = asyncio.Event()
        self._cancelled = False
        self._refused_hostkey = False  # the person answered "no" to a host key

    # ---- public view -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def pending(self) -> bool:
        """Whether a login is under way (a child ssh runs or is about to)."""
        return self.state in (State.STARTING, State.PROMPTING, State.VERIFYING)

    @property
    def child_pid(self) -> int | None:
        """The login method's foreground process (ssh), while one runs."""
        return self.method.child_pid

    def to_json(self) -> dict[str, Any]:
        prompt = None
        if self.prompt is not None and self.state is State.PROMPTING:
            expires = iso_time(self._prompt_expires)
            prompt = {
                **self.prompt.to_json(),
                "id": self.prompt_id,
                "expires": expires,
                "host": asked_for(self.prompt.text),
            }
        verifying = None
        if self.state is State.VERIFYING:
            verifying = {
                "since": iso_time(self._answered_at),
                "choice": self._choice,
                "lines": self.lines_since_answer(),
            }
        return {
            "id": self.id,
            "name": self.name,
            "made_by": dict(self.made_by),
            "superseded_by": self.superseded_by,
            "cluster": self.target.profile,
            "host": self.target.hostname,
            "user": self.target.user,
            "port": self.target.port,
            "state": self.state.value,
            "prompt": prompt,
            "verifying": verifying,
            "reason": self.reason.value if self.reason else None,
            "message": visible(self.message),  # ssh's words in it, shown as prompts are
            "control_path": self.target.control_path,
            "master_pid": self.master_pid,
            "since": iso_time(self.since),
            "persist": self.target.persist,
            "updated": iso_time(self.updated),
            "version": self.version,
            "certificate": self.method.view(),
        }

    def lines_since_answer(self) -> list[str]:
        """What ssh printed since the last answer, line by line as it said it (a Duo push
        notice, a Verified Push code to type on the phone): never an answer, which ssh does
        not echo."""
        lines = [line for line in clean(self._pending).split("\n")[:-1] if line.strip()]
        return [visible(line) for line in lines[-_VERIFYING_LINES:]]

    # ---- control ---------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Start the login in the background (idempotent while one is under way)."""
        if self._task is None or self._task.done():
            self._cancelled = False
            self._refused_hostkey = False
            self.reason = None
            self.message = ""
            self._set(State.STARTING)
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self._task

    async def answer(self, response: str, prompt_id: int | None = None) -> None:
        """Pass ``response`` to the pending prompt's login method. It is not kept anywhere."""
        if self.state is not State.PROMPTING or self.prompt is None:
            raise NoPrompt(f"{self.name} is not waiting for an answer")
        if prompt_id is not None and prompt_id != self.prompt_id:
            raise NoPrompt(f"that prompt of {self.name} was already answered")
        if not isinstance(response, str):
            raise InvalidInput("response must be a string")
        if len(response) > _MAX_RESPONSE or re.search(r"[\x00-\x1f\x7f]", response):
            raise InvalidInput("response must be one line of printable text")
        if self.prompt.kind is PromptKind.HOSTKEY:
            word = response.strip()
            if word.lower() not in ("yes", "no") and not word.startswith("SHA256:"):
                raise InvalidInput("answer 'yes' or 'no' to a host key question")
            response = word.lower() if word.lower() in ("yes", "no") else word
            self._refused_hostkey = response == "no"
        elif not response and self.prompt.kind is not PromptKind.OTHER:
            raise InvalidInput("the answer is empty")
        # Written the moment it arrives, not at the conversation's next turn. The state moves
        # on first, so a second answer to the same prompt is refused, and what ssh says from
        # now on is where the next question is looked for.
        self._pending = ""
        self._answered_at = time.time()
        self._choice = _chosen_option(self.prompt, response)
        self._set(State.VERIFYING)
        try:
            await self.method.deliver(response)
        finally:
            del response

    async def cancel(self) -> None:
        """Stop a login under way; no ssh child is left behind."""
        task = self._task
        if task is None or task.done():
            return
        self._cancelled = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self.pending:  # cancelled before the login began: nothing in it ran to say so
            await self.method.stop()
            self._fail(Reason.CANCELLED, "Cancelled")

    async def wait(self, timeout: float | None = None) -> State:
        """Wait until the login is over (connected, failed or disconnected)."""

        async def settled() -> State:
            while self.state not in SETTLED_STATES:
                await self.changed()
            return self.state

        return await asyncio.wait_for(settled(), timeout)

    async def changed(self) -> None:
        """Return at the next state change."""
        await self._changed.wait()

    def adopt(self, pid: int) -> None:
        """Take over a master that already runs on the control path."""
        self.master_pid = pid
        self.since = self.since or time.time()
        self.message = ""
        self.reason = None
        self._set(State.CONNECTED)

    def mark_unresponsive(self, message: str) -> None:
        """A socket is there but its master does not answer (stopped, hung, not a master)."""
        self.message = message
        self._set(State.UNRESPONSIVE)

    def supersede(self, by: MasterSession) -> None:
        """A newer login took this finished one's place: say so once, so every client drops
        it (and one that follows this id learns which one to follow instead)."""
        self.superseded_by = by.id
        self._set(self.state, self.prompt)

    def mark_disconnected(self, message: str) -> None:
        self.master_pid = None
        self.since = None
        self.message = message
        self._set(State.DISCONNECTED)

    # ---- internals -------------------------------------------------------------

    def _set(self, state: State, prompt: Prompt | None = None) -> None:
        self.state = state
        self.prompt = prompt
        self.updated = time.time()
        self.version = next(_VERSIONS)
        event, self._changed = self._changed, asyncio.Event()
        event.set()
        if self.on_change is not None:
            self.on_change(self)

    def _fail(self, reason: Reason, message: str) -> None:
        self.reason = reason
        self.message = message
        self._set(State.FAILED)

    # ---- what a login method calls (core/login.py) -----------------------------------

    def ask(self, prompt: Prompt) -> None:
        """Raise ``prompt``: ``prompting``, with a new prompt id, until answered or expired."""
        self.prompt_id += 1
        self._prompt_expires = time.time() + self.prompt_timeout
        self._set(State.PROMPTING, prompt)

    def verifying(self) -> None:
        """Still verifying, with something new to show (a line the method's process said)."""
        self._set(State.VERIFYING)

    def fail(self, reason: Reason, message: str) -> None:
        """The login ended in ``failed`` with ``reason``."""
        self._fail(reason, message)

    def connected(self, pid: int) -> None:
        """The login opened the master ``pid``."""
        self.since = time.time()
        self.prompt = None
        self.reason = None
        self.message = ""
        self.master_pid = pid
        self._set(State.CONNECTED)

    async def _run(self) -> None:
        try:
            if await self._socket_settles():
                return
            await self.method.run(self)
        except Finished:
            pass
        except asyncio.CancelledError:
            await self.method.stop()
            await self._stop_orphan_master()
            self._fail(Reason.CANCELLED, "Cancelled")
        except Exception as exc:  # a bug or an OS error must not leave a child behind
            self.log.exception("hy2fa_lab: %s: the login broke off unexpectedly", self.name)
            await self.method.stop()
            self._fail(Reason.ERROR, f"{type(exc).__name__}: {exc}")

    async def _socket_settles(self) -> bool:
        """The socket first, whatever the method: a live master is adopted, one that does not
        answer is ``unresponsive``, another user's is refused, a stale one is removed.
        Whether that settled the connection (nothing is to be opened)."""
        path = self.target.control_path
        existing = await asyncio.to_thread(mux.status, path)
        if existing.liveness is mux.Liveness.ALIVE and existing.pid is not None:
            self.adopt(existing.pid)
            return True
        if existing.liveness is mux.Liveness.UNRESPONSIVE:
            self.mark_unresponsive(existing.message)
            return True
        if existing.liveness is mux.Liveness.UNTRUSTED:
            self._fail(Reason.UNSAFE_SOCKET, existing.message)
            return True
        if existing.liveness is mux.Liveness.STALE:
            await asyncio.to_thread(mux.remove_stale, path)
        return False

    async def _stop_orphan_master(self) -> None:
        """A cancel racing a successful login may leave a fresh master: stop it."""
        path = self.target.control_path
        if self.master_pid is None and await asyncio.to_thread(mux.alive, path) is not None:
            with contextlib.suppress(OSError, mux.MuxError):
                await asyncio.to_thread(mux.stop, path)
