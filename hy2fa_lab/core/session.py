"""One ``ssh -M`` master login under pexpect, driven as an asyncio state machine.

starting → prompting ⇄ verifying → connected, or failed(reason); connected → disconnected.
Responses go to ``sendline`` and are dropped at once: never logged, kept, or put in
argv or the environment (see SECURITY.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pexpect
import ptyprocess

from . import controlpath, mux, processes
from .environment import ssh_environment
from .errors import InvalidInput, NoPrompt
from .prompts import (
    asked_for,
    classify,
    clean,
    is_complete,
    is_prompt_line,
    is_same_question,
    pending_line,
)
from .settings import DEFAULTS
from .types import SETTLED_STATES, Prompt, PromptKind, Reason, State, Target
from .validate import visible

ChangeCallback = Callable[["MasterSession"], None]
_VERSIONS = itertools.count(1)

_SETTLE = 0.2  # seconds of quiet after which an unknown unterminated line is a prompt
_PEER_CHECK = 1.0  # seconds between looks at ssh's connection while a prompt waits
_MAX_RESPONSE = 1024
_TAIL_LINES = 6

_HOSTKEY_CHANGED = re.compile(r"REMOTE HOST IDENTIFICATION HAS CHANGED|host key for .* has changed")
_HOSTKEY_FAILED = re.compile(r"Host key verification failed")
_DENIED = re.compile(r"Permission denied|Too many authentication failures|Authentication failed")
_UNREACHABLE = re.compile(
    r"Could not resolve hostname|Name or service not known|Connection refused|"
    r"Connection timed out|No route to host|Network is unreachable|"
    r"Connection closed by|Connection reset by|kex_exchange_identification|"
    r"Operation timed out|timed out during banner exchange",
    re.I,
)
_NOISE = re.compile(r"^(Warning: Permanently added .*|\s*)$")

_WRONG = {
    PromptKind.OTP: "Wrong code — try again",
    PromptKind.DUO: "Wrong passcode — try again",
    PromptKind.PASSWORD: "Wrong password — try again",
    PromptKind.PASSPHRASE: "Wrong passphrase — try again",
}


_VERIFYING_LINES = 20


def _said_before(output: str, prompt: Prompt) -> list[str]:
    """The lines ssh printed before ``prompt``'s own text (e.g. Duo's "Login timed out.")."""
    text = clean(output)
    if text.endswith(prompt.text):
        text = text[: -len(prompt.text)]
    return [line for line in text.split("\n") if line.strip()]


def _chosen_option(prompt: Prompt, response: str) -> str | None:
    """The menu text of the Duo option ``response`` picks ("Duo Push to XXX-XXX-1234"); None
    for a passcode, which is never kept."""
    if prompt.kind is not PromptKind.DUO or not response.strip().isdigit():
        return None
    number = int(response.strip())
    if 1 <= number <= len(prompt.options) and len(response.strip()) <= 2:
        return prompt.options[number - 1]
    return None


def _hostkey_changed_message(host: str, lines: list[str]) -> str:
    """ssh's warning, kept to what a person needs: what changed, the new key, where the old is."""
    keep = [
        line.strip("@ ").strip()
        for line in lines
        if re.search(
            r"IDENTIFICATION HAS CHANGED|SHA256:|fingerprint for|Offending|"
            r"Host key verification failed",
            line,
        )
    ]
    return f"Host key changed for {host}: " + "\n".join(keep)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


def _terminate_group(child: pexpect.spawn, grace: float = 1.0) -> None:
    """Stop the foreground ssh and its helpers (ProxyJump); blocking, run off the loop.

    The daemonised master (if one forked) is in a session of its own and is not touched.
    """
    pid = child.pid
    if pid is None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _child_alive(child):
                return
            time.sleep(0.02)
    with contextlib.suppress(Exception):
        child.wait()


def _child_alive(child: pexpect.spawn) -> bool:
    """``child.isalive()``, where "already reaped elsewhere" means gone, not an error.

    The pty's read transport may close the spawn (and reap ssh) on the event loop while a
    worker thread waits here for the same process: waitpid then fails with ECHILD, which
    pexpect's ``spawn.isalive`` re-raises as ``ExceptionPexpect``.
    """
    try:
        return bool(child.isalive())
    except (ptyprocess.PtyProcessError, ChildProcessError, pexpect.ExceptionPexpect):
        return False


class MasterSession:
    """Drives one master login; ``on_change`` hears every state change."""

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
    ) -> None:
        self.target = target
        # The name is for people (two connections may share one: a kernel's own master and a
        # login from the sidebar); the id is for code (REST paths, events, ensure()).
        self.id = secrets.token_hex(6)
        self.made_by: dict[str, str] = {"kind": "login"}  # or "found", or "ssh" + notebook
        self.superseded_by: str | None = None  # the id of the login that replaced this one
        self.log = log or logging.getLogger("hy2fa_lab")
        self.ssh = ssh
        self.config_file = config_file
        self.prompt_timeout = prompt_timeout
        self.connect_timeout = connect_timeout
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
        self._child: pexpect.spawn | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending = ""  # what ssh said since the last answer: where a prompt is looked for
        self._answered_at: float | None = None  # when the last answer went to ssh
        self._choice: str | None = None  # the Duo option the answer chose (its menu text)
        self._prompt_expires: float | None = None  # wall clock: prompt_timeout runs out
        self._changed = asyncio.Event()
        self._cancelled = False
        self._refused_hostkey = False

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
        return self._child.pid if self._child is not None else None

    def to_json(self) -> dict[str, Any]:
        prompt = None
        if self.prompt is not None and self.state is State.PROMPTING:
            expires = _iso(self._prompt_expires)
            prompt = {
                **self.prompt.to_json(),
                "id": self.prompt_id,
                "expires": expires,
                "host": asked_for(self.prompt.text),
            }
        verifying = None
        if self.state is State.VERIFYING:
            verifying = {
                "since": _iso(self._answered_at),
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
            "since": _iso(self.since),
            "persist": self.target.persist,
            "updated": _iso(self.updated),
            "version": self.version,
        }

    def lines_since_answer(self) -> list[str]:
        """What ssh printed since the last answer, line by line as it said it (a Duo push
        notice, a Verified Push code to type on the phone): never an answer, which ssh does
        not echo."""
        lines = [line for line in clean(self._pending).split("\n")[:-1] if line.strip()]
        return [visible(line) for line in lines[-_VERIFYING_LINES:]]

    def argv(self) -> list[str]:
        """The ssh command line: a list, never a shell string, and never a secret."""
        target = self.target
        args = [self.ssh, "-M", "-S", target.control_path]
        if self.config_file:
            args += ["-F", self.config_file]
        args += [
            "-o",
            f"ControlPersist={target.persist}",
            "-o",
            "ServerAliveInterval=30",
            "-o",
            f"ConnectTimeout={max(1, min(int(self.connect_timeout), 60))}",
            "-fN",
        ]
        if target.explicit_port is not None:
            args += ["-p", str(target.explicit_port)]
        if target.explicit_user is not None:
            args += ["-l", target.explicit_user]
        for key, value in target.ssh_options:
            args += ["-o", f"{key}={value}"]
        args += ["--", target.destination]
        return args

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
        """Pass ``response`` to the pending prompt. It is not kept anywhere."""
        child = self._child
        if self.state is not State.PROMPTING or self.prompt is None or child is None:
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
            await asyncio.to_thread(child.sendline, response)
        except OSError:
            pass  # ssh is gone: the conversation sees its end and says why
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
            await self._dispose(kill=True)
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

    async def _run(self) -> None:
        try:
            await self._login()
        except _Finished:
            pass
        except asyncio.CancelledError:
            await self._dispose(kill=True)
            await self._stop_orphan_master()
            self._fail(Reason.CANCELLED, "Cancelled")
        except Exception as exc:  # a bug or an OS error must not leave a child behind
            self.log.exception("hy2fa_lab: %s: the login broke off unexpectedly", self.name)
            await self._dispose(kill=True)
            self._fail(Reason.ERROR, f"{type(exc).__name__}: {exc}")

    async def _login(self) -> None:
        path = self.target.control_path
        existing = await asyncio.to_thread(mux.status, path)
        if existing.liveness is mux.Liveness.ALIVE and existing.pid is not None:
            self.adopt(existing.pid)
            return
        if existing.liveness is mux.Liveness.UNRESPONSIVE:
            self.mark_unresponsive(existing.message)
            return
        if existing.liveness is mux.Liveness.UNTRUSTED:
            self._fail(Reason.UNSAFE_SOCKET, existing.message)
            return
        if existing.liveness is mux.Liveness.STALE:
            await asyncio.to_thread(mux.remove_stale, path)
        if shutil.which(self.ssh) is None:
            self._fail(Reason.SSH_MISSING, f"The OpenSSH client ({self.ssh}) is not installed")
            return
        try:
            await asyncio.to_thread(controlpath.ensure_dir, path)
        except InvalidInput as error:
            self._fail(Reason.UNSAFE_SOCKET, error.message)
            return
        env = ssh_environment()
        argv = self.argv()
        child: pexpect.spawn = await asyncio.to_thread(
            pexpect.spawn,
            argv[0],
            argv[1:],
            env=env,
            encoding="utf-8",
            codec_errors="replace",
            echo=False,
            ignore_sighup=True,
            dimensions=(24, 200),
        )
        child.ptyproc.delayafterclose = 0
        child.delaybeforesend = None  # pexpect's 50 ms pause per answer buys nothing here
        self._child = child
        output = await self._converse(child)
        await self._dispose(kill=False)
        await self._finish(output)

    async def _converse(self, child: pexpect.spawn) -> str:
        """Read ssh's output, raising each prompt the moment it shows, until ssh exits.

        A question of a known shape (``prompts.is_complete``) is raised as soon as its bytes
        arrive; only unknown text waits for ``_SETTLE`` of quiet. Answers are written by
        :meth:`answer` itself, so nothing here waits on a timer for them. Returns what ssh
        said (for the failure message; it never holds a response).
        """
        patterns: list[Any] = [pexpect.EOF, pexpect.TIMEOUT, re.compile(r".+", re.S)]
        transcript = ""
        asked: list[Prompt] = []  # prompts of this round; one asked again = wrong answer
        last_progress = time.monotonic()
        prompt_since = 0.0
        peer_checked = 0.0
        self._pending = ""
        while True:
            now = time.monotonic()
            if self.state is State.PROMPTING:
                left = self.prompt_timeout - (now - prompt_since)
                timeout = max(0.0, min(left, _PEER_CHECK - (now - peer_checked)))
            elif pending_line(self._pending) is not None:
                timeout = _SETTLE  # an unknown question, perhaps: wait for quiet
            else:
                timeout = max(0.0, self.connect_timeout - (now - last_progress))
            index = await child.expect(patterns, timeout=timeout, async_=True)
            now = time.monotonic()
            if index == 0:
                transcript += child.before if isinstance(child.before, str) else ""
                return transcript
            if index == 2:
                self._pending += child.after
                transcript = (transcript + child.after)[-8192:]
                last_progress = now
                if self.state is State.PROMPTING:
                    if not clean(child.after).strip():
                        continue
                    # ssh said more after the prompt (e.g. a Duo push notice): re-read it.
                    self._set(State.VERIFYING)
                elif self.state is State.VERIFYING and "\n" in clean(child.after):
                    self._set(State.VERIFYING)  # a new line to show while the person waits
                prompt = classify(self._pending)
                if prompt is None or not is_complete(prompt, self._pending):
                    continue
            elif self.state is State.PROMPTING:
                if now - prompt_since >= self.prompt_timeout:
                    await self._dispose(kill=True)
                    self._fail(
                        Reason.TIMEOUT,
                        f"Nobody answered the prompt within {int(self.prompt_timeout)} s",
                    )
                    raise _Finished
                peer_checked = now
                # ssh reads the answer from the tty and does not notice meanwhile that the
                # server hung up: look at its connection, or the prompt would stay up.
                if await asyncio.to_thread(processes.closed_by_peer, child.pid):
                    await self._dispose(kill=True)
                    self._fail(
                        Reason.UNREACHABLE,
                        f"{self.target.hostname} closed the connection while the prompt "
                        "waited for an answer",
                    )
                    raise _Finished
                continue
            else:
                prompt = classify(self._pending)  # quiet after unknown text: a question
                if prompt is None:
                    if now - last_progress < self.connect_timeout:
                        continue
                    await self._dispose(kill=True)
                    if self.state is State.STARTING:
                        self._fail(
                            Reason.UNREACHABLE,
                            f"No answer from {self.target.hostname} within "
                            f"{int(self.connect_timeout)} s",
                        )
                    else:
                        self._fail(Reason.TIMEOUT, "The server did not finish the login in time")
                    raise _Finished
            if prompt.kind is PromptKind.HOSTKEY:
                prompt = _with_fingerprint(prompt, asked)
            if any(is_same_question(prompt, earlier) for earlier in asked):
                self.message = _WRONG.get(asked[-1].kind, "Not accepted — try again")
                if self._choice is not None:  # a push, not a code: say what the server said
                    said = _said_before(self._pending, prompt)
                    self.message = f"{said[-1]} — try again" if said else "Not approved — try again"
                asked = []
            elif asked:
                self.message = ""
            asked.append(prompt)
            self.prompt_id += 1
            prompt_since = peer_checked = now
            self._prompt_expires = time.time() + self.prompt_timeout
            self._set(State.PROMPTING, prompt)

    async def _finish(self, output: str) -> None:
        child = self._child
        status = child.exitstatus if child is not None else None
        lines = [
            line
            for line in clean(output).split("\n")
            if not _NOISE.match(line) and not is_prompt_line(line)
        ]
        tail = "\n".join(lines[-_TAIL_LINES:]).strip()
        if status == 0:
            pid = await self._await_master()
            if pid is not None:
                self.since = time.time()
                self.prompt = None
                self.reason = None
                self.message = ""
                self.master_pid = pid
                self._set(State.CONNECTED)
                return
            self._fail(Reason.ERROR, tail or "ssh exited but no master answers on the socket")
            return
        host = self.target.hostname
        if _HOSTKEY_CHANGED.search(output):
            self._fail(Reason.HOSTKEY_CHANGED, _hostkey_changed_message(host, lines))
        elif _HOSTKEY_FAILED.search(output):
            reason = Reason.HOSTKEY_REJECTED
            message = "Host key rejected" if self._refused_hostkey else tail
            self._fail(reason, message)
        elif _DENIED.search(output):
            self._fail(Reason.AUTH_FAILED, f"Login refused by {host}: {tail}")
        elif _UNREACHABLE.search(output):
            self._fail(Reason.UNREACHABLE, f"Cannot reach {host}: {tail}")
        else:
            self._fail(Reason.ERROR, tail or f"ssh exited with status {status}")

    async def _await_master(self) -> int | None:
        """The forked master's pid; the socket is bound before ssh forks, so this is quick."""
        for _ in range(20):
            pid = await asyncio.to_thread(mux.alive, self.target.control_path)
            if pid is not None:
                return pid
            await asyncio.sleep(0.05)
        return None

    async def _dispose(self, *, kill: bool) -> None:
        """Reap the foreground ssh (killing it and its group first when asked)."""
        child = self._child
        if child is None:
            return
        if kill:
            await asyncio.to_thread(_terminate_group, child)
        waiter = getattr(child, "async_pw_transport", None)
        if waiter is not None:
            # The read transport owns the pty fd: close through it, then let its
            # connection_lost (which closes the spawn) run before reaping.
            waiter[1].close()
            child.async_pw_transport = None
            for _ in range(3):
                await asyncio.sleep(0)
        await asyncio.to_thread(_close_quietly, child)

    async def _stop_orphan_master(self) -> None:
        """A cancel racing a successful login may leave a fresh master: stop it."""
        path = self.target.control_path
        if self.master_pid is None and await asyncio.to_thread(mux.alive, path) is not None:
            with contextlib.suppress(OSError, mux.MuxError):
                await asyncio.to_thread(mux.stop, path)


def _with_fingerprint(prompt: Prompt, asked: list[Prompt]) -> Prompt:
    """ssh's "Please type 'yes', 'no' or the fingerprint" after a wrong answer drops the key's
    description: keep showing it, so the person can still compare the fingerprint."""
    if "fingerprint is" in prompt.text:
        return prompt
    for earlier in reversed(asked):
        if earlier.kind is PromptKind.HOSTKEY and "fingerprint is" in earlier.text:
            head = earlier.text.rsplit("\n", 1)[0]
            return dataclasses.replace(prompt, text=f"{head}\n{prompt.text}")
    return prompt


class _Finished(Exception):
    """The session already recorded its outcome."""


def _close_quietly(child: pexpect.spawn, grace: float = 5.0) -> None:
    """Let ssh exit on its own first: closing early would signal it and lose its exit status."""
    deadline = time.monotonic() + grace
    with contextlib.suppress(Exception):
        while _child_alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
    with contextlib.suppress(Exception):
        child.close(force=True)
