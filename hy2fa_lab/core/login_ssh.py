"""The keyboard-interactive login method: one ``ssh -M`` under pexpect, its questions raised
on the connection record as they show, each answer written to ssh's terminal and dropped.

Answers go to ``sendline`` and are dropped at once: never logged, kept, or put in argv or the
environment (see SECURITY.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import shutil
import signal
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pexpect
import ptyprocess

from . import controlpath, messages, mux, processes
from .environment import ssh_environment
from .errors import InvalidInput
from .login import Finished
from .prompts import classify, clean, is_complete, is_prompt_line, is_same_question, pending_line
from .settings import DEFAULTS
from .types import Prompt, PromptKind, Reason, State, Target

if TYPE_CHECKING:
    from .session import MasterSession

_SETTLE = 0.2  # seconds of quiet after which an unknown unterminated line is a prompt
_PEER_CHECK = 1.0  # seconds between looks at ssh's connection while a prompt waits

_NOISE = re.compile(r"^(Warning: Permanently added .*|\s*)$")


class SshLogin:
    """``ssh -M -S <path> -fN … -- <destination>``, its questions asked on the record.

    ``extra_options`` are added after the target's (the certificate method's
    ``IdentityFile``/``CertificateFile``/``IdentitiesOnly``); they never hold a secret.
    """

    kind = "ssh"

    def __init__(
        self,
        *,
        ssh: str = DEFAULTS.ssh,
        config_file: str | None = None,
        connect_timeout: float = DEFAULTS.connect_timeout,
    ) -> None:
        self.ssh = ssh
        self.config_file = config_file
        self.connect_timeout = connect_timeout
        self.extra_options: Sequence[tuple[str, str]] = ()
        self._child: pexpect.spawn | None = None

    @property
    def child_pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def view(self) -> dict[str, Any] | None:
        return None

    def argv(self, target: Target) -> list[str]:
        """The ssh command line: a list, never a shell string, and never a secret."""
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
        for key, value in (*target.ssh_options, *self.extra_options):
            args += ["-o", f"{key}={value}"]
        args += ["--", target.destination]
        return args

    # ---- the method ------------------------------------------------------------

    async def run(self, login: MasterSession) -> None:
        if await self.ready(login):
            await self.open(login)

    async def ready(self, login: MasterSession) -> bool:
        """Whether ssh is there and the socket's directory is ours (else the login failed)."""
        if shutil.which(self.ssh) is None:
            login.fail(Reason.SSH_MISSING, f"The OpenSSH client ({self.ssh}) is not installed")
            return False
        try:
            await asyncio.to_thread(controlpath.ensure_dir, login.target.control_path)
        except InvalidInput as error:
            login.fail(Reason.UNSAFE_SOCKET, error.message)
            return False
        return True

    async def open(self, login: MasterSession) -> None:
        """Spawn ``ssh -M`` and hold its conversation until it exits."""
        env = ssh_environment()
        argv = self.argv(login.target)
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
        output = await self._converse(login, child)
        await self._dispose(kill=False)
        await self._finish(login, output)

    async def deliver(self, response: str) -> None:
        child = self._child
        if child is None:
            return  # ssh is gone: the conversation saw its end and says why
        try:
            await asyncio.to_thread(child.sendline, response)
        except OSError:
            pass  # ssh is gone: the conversation sees its end and says why
        finally:
            del response

    async def stop(self) -> None:
        await self._dispose(kill=True)

    # ---- the conversation ------------------------------------------------------

    async def _converse(self, login: MasterSession, child: pexpect.spawn) -> str:
        """Read ssh's output, raising each prompt the moment it shows, until ssh exits.

        A question of a known shape (``prompts.is_complete``) is raised as soon as its bytes
        arrive; only unknown text waits for ``_SETTLE`` of quiet. Answers are written by
        :meth:`deliver` itself, so nothing here waits on a timer for them. Returns what ssh
        said (for the failure message; it never holds a response).
        """
        patterns: list[Any] = [pexpect.EOF, pexpect.TIMEOUT, re.compile(r".+", re.S)]
        transcript = ""
        asked: list[Prompt] = []  # prompts of this round; one asked again = wrong answer
        last_progress = time.monotonic()
        prompt_since = 0.0
        peer_checked = 0.0
        login._pending = ""
        while True:
            now = time.monotonic()
            if login.state is State.PROMPTING:
                left = login.prompt_timeout - (now - prompt_since)
                timeout = max(0.0, min(left, _PEER_CHECK - (now - peer_checked)))
            elif pending_line(login._pending) is not None:
                timeout = _SETTLE  # an unknown question, perhaps: wait for quiet
            else:
                timeout = max(0.0, self.connect_timeout - (now - last_progress))
            index = await child.expect(patterns, timeout=timeout, async_=True)
            now = time.monotonic()
            if index == 0:
                transcript += child.before if isinstance(child.before, str) else ""
                return transcript
            if index == 2:
                login._pending += child.after
                transcript = (transcript + child.after)[-8192:]
                last_progress = now
                if login.state is State.PROMPTING:
                    if not clean(child.after).strip():
                        continue
                    # ssh said more after the prompt (e.g. a Duo push notice): re-read it.
                    login.verifying()
                elif login.state is State.VERIFYING and "\n" in clean(child.after):
                    login.verifying()  # a new line to show while the person waits
                prompt = classify(login._pending)
                if prompt is None or not is_complete(prompt, login._pending):
                    continue
            elif login.state is State.PROMPTING:
                if now - prompt_since >= login.prompt_timeout:
                    await self._dispose(kill=True)
                    login.fail(
                        Reason.TIMEOUT,
                        f"Nobody answered the prompt within {int(login.prompt_timeout)} s",
                    )
                    raise Finished
                peer_checked = now
                # ssh reads the answer from the tty and does not notice meanwhile that the
                # server hung up: look at its connection, or the prompt would stay up.
                if await asyncio.to_thread(processes.closed_by_peer, child.pid):
                    await self._dispose(kill=True)
                    login.fail(
                        Reason.UNREACHABLE,
                        f"{login.target.hostname} closed the connection while the prompt "
                        "waited for an answer",
                    )
                    raise Finished
                continue
            else:
                prompt = classify(login._pending)  # quiet after unknown text: a question
                if prompt is None:
                    if now - last_progress < self.connect_timeout:
                        continue
                    await self._dispose(kill=True)
                    if login.state is State.STARTING:
                        login.fail(
                            Reason.UNREACHABLE,
                            f"No answer from {login.target.hostname} within "
                            f"{int(self.connect_timeout)} s",
                        )
                    else:
                        login.fail(Reason.TIMEOUT, "The server did not finish the login in time")
                    raise Finished
            if prompt.kind is PromptKind.HOSTKEY:
                prompt = _with_fingerprint(prompt, asked)
            if any(is_same_question(prompt, earlier) for earlier in asked):
                login.message = messages.wrong_answer(asked[-1].kind)
                if login._choice is not None:  # a push, not a code: say what the server said
                    said = _said_before(login._pending, prompt)
                    login.message = (
                        f"{said[-1]} — try again" if said else "Not approved — try again"
                    )
                asked = []
            elif asked:
                login.message = ""
            asked.append(prompt)
            prompt_since = peer_checked = now
            login.ask(prompt)

    async def _finish(self, login: MasterSession, output: str) -> None:
        child = self._child
        status = child.exitstatus if child is not None else None
        lines = [
            line
            for line in clean(output).split("\n")
            if not _NOISE.match(line) and not is_prompt_line(line)
        ]
        if status == 0:
            pid = await self._await_master(login.target.control_path)
            if pid is not None:
                login.connected(pid)
                return
            login.fail(
                Reason.ERROR,
                messages.last_lines(lines) or "ssh exited but no master answers on the socket",
            )
            return
        reason, message = messages.ssh_failure(
            output,
            lines,
            login.target.hostname,
            refused_hostkey=login._refused_hostkey,
            status=status,
        )
        login.fail(reason, message)

    async def _await_master(self, path: str) -> int | None:
        """The forked master's pid; the socket is bound before ssh forks, so this is quick."""
        for _ in range(20):
            pid = await asyncio.to_thread(mux.alive, path)
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


def _said_before(output: str, prompt: Prompt) -> list[str]:
    """The lines ssh printed before ``prompt``'s own text (e.g. Duo's "Login timed out.")."""
    text = clean(output)
    if text.endswith(prompt.text):
        text = text[: -len(prompt.text)]
    return [line for line in text.split("\n") if line.strip()]


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


def _close_quietly(child: pexpect.spawn, grace: float = 5.0) -> None:
    """Let ssh exit on its own first: closing early would signal it and lose its exit status."""
    deadline = time.monotonic() + grace
    with contextlib.suppress(Exception):
        while _child_alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
    with contextlib.suppress(Exception):
        child.close(force=True)
