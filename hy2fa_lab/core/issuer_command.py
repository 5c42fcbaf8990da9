"""Issuer ``command``: the site's own tool hands out the key and certificate (CSCS
``cscs-key``, Cineca ``step ssh certificate``, Isambard ``clifton auth``), then ``ssh -M``
with them, as for sshproxy (``login_certificate.py``).

Profile (the person's own Jupyter config only: ``profiles.certificate_spec``; no REST body,
own-settings file or remembered master carries a ``certificate``)::

    {"certificate": {"issuer": "command", "argv": ["step", "ssh", "certificate", ...],
                     "key": "~/.ssh/x"}}

The tool runs the way ssh runs (:class:`ToolRun` is an :class:`SshLogin` with another
command line and conversation): ``argv`` as a list, no shell, the short environment of
``environment.py``, under a pty in a session and process group of its own, the whole group
killed on cancel or timeout. Its questions are raised on the connection record like ssh's
(``prompts.py``) and each answer is written to its terminal and dropped. A link it prints
(the device flow: "Open https://… and enter code ABCD-1234") is the view's
``certificate.device`` (``{"url", "code"}``: http(s) only, escaped) while it waits; the
person then has ``prompt_timeout`` to finish in the browser. Nothing printed for
``connect_timeout`` otherwise fails the login, as does an exit other than 0 (with its last
lines) or an exit 0 without a usable ``key`` and ``key-cert.pub``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pexpect

from . import messages
from .environment import ssh_environment
from .login import Finished
from .login_certificate import CertificateLogin
from .login_ssh import _SETTLE, SshLogin
from .prompts import classify, clean, is_complete, is_same_question, pending_line
from .types import CertificateSpec, Prompt, Reason, State, Target
from .validate import visible

if TYPE_CHECKING:
    from .session import MasterSession

_MAX_URL = 2048
# What a URL may hold (RFC 3986, without quotes and parentheses, which end it in prose).
_URL = re.compile(r"\bhttps?://[A-Za-z0-9\-._~:/?#\[\]@!$&*+,;=%]+", re.I)
_CODE = re.compile(
    r"(?i:\bcode\b(?:\s+is)?)[^A-Za-z0-9\n]{0,8}\n?\s*([A-Z0-9]{4,12}(?:-[A-Z0-9]{3,12}){0,3})\b"
)
_QUERY_CODE = ("user_code", "code")


def device_of(output: str) -> dict[str, str | None] | None:
    """The link (and code) a device-flow tool printed, the last one in ``output``: ``{"url",
    "code"}`` (``code`` ``None`` when it printed none). Only an http(s) URL with a host and no
    user name in it is taken; both are escaped as prompts are (``validate.visible``)."""
    text = clean(output)
    url = None
    for match in _URL.finditer(text):
        candidate = match.group(0).rstrip(".,;:!?]")
        parts = urllib.parse.urlsplit(candidate)
        if (
            parts.scheme.lower() in ("http", "https")
            and parts.hostname
            and "@" not in parts.netloc
            and len(candidate) <= _MAX_URL
        ):
            url = candidate
    if url is None:
        return None
    codes = _CODE.findall(_URL.sub(" ", text))
    code = codes[-1] if codes else None
    if code is None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        code = next((query[key][0] for key in _QUERY_CODE if query.get(key)), None)
    return {"url": visible(url), "code": visible(code[:64]) if code else None}


def _asks(line: str) -> bool:
    """An unterminated line that reads as a question (``Password:``, ``Continue? [y/N]``), not
    a progress line ("Waiting for approval...")."""
    return line.rstrip().endswith((":", "?", "]"))


class ToolRun(SshLogin):
    """The site's tool under a pty, asked and answered the way ``ssh -M`` is
    (:meth:`SshLogin.open`, :meth:`SshLogin.deliver`, :meth:`SshLogin.stop`): only its
    command line, its conversation and the reading of its end are its own."""

    kind = "command"

    def __init__(self, argv: Sequence[str], *, connect_timeout: float) -> None:
        super().__init__(ssh=argv[0], connect_timeout=connect_timeout)
        self.tool = tuple(argv)
        self.name = os.path.basename(argv[0])
        self.device: dict[str, str | None] | None = None
        self.status: int | None = None
        self.lines: list[str] = []

    def argv(self, target: Target) -> list[str]:
        return list(self.tool)

    def found(self) -> bool:
        return shutil.which(self.tool[0], path=ssh_environment().get("PATH")) is not None

    async def _converse(self, login: MasterSession, child: pexpect.spawn) -> str:
        """Read the tool's output until it exits: each question raised as ssh's are, each new
        line and the link it prints shown while it works."""
        patterns: list[Any] = [pexpect.EOF, pexpect.TIMEOUT, re.compile(r".+", re.S)]
        transcript = ""
        asked: list[Prompt] = []
        last_output = time.monotonic()
        prompt_since = 0.0
        settled = None  # the output an unknown unterminated line was last waited out on
        self.device = None
        login._pending = ""
        while True:
            now = time.monotonic()
            if login.state is State.PROMPTING:
                timeout = max(0.0, login.prompt_timeout - (now - prompt_since))
            elif pending_line(login._pending) is not None and settled != login._pending:
                timeout = _SETTLE  # an unknown question, perhaps: wait for quiet
            else:
                timeout = max(0.0, self._quiet_limit(login) - (now - last_output))
            index = await child.expect(patterns, timeout=timeout, async_=True)
            now = time.monotonic()
            if index == 0:
                return transcript + (child.before if isinstance(child.before, str) else "")
            prompt: Prompt | None
            if index == 2:
                login._pending += child.after
                transcript = (transcript + child.after)[-8192:]
                last_output = now
                device = device_of(transcript)
                shown = device is not None and device != self.device
                if shown:
                    self.device = device
                    login.message = ""  # what it asked was answered: it moved on to the link
                if login.state is State.PROMPTING:
                    if not clean(child.after).strip():
                        continue
                    login.verifying()  # it said more after the question: read it again
                elif shown or "\n" in clean(child.after):
                    login.verifying()  # a new line, or the link, to show while it works
                prompt = classify(login._pending)
                if prompt is None or not is_complete(prompt, login._pending):
                    continue
            elif login.state is State.PROMPTING:
                if now - prompt_since < login.prompt_timeout:
                    continue
                await self._dispose(kill=True)
                login.fail(
                    Reason.TIMEOUT,
                    f"Nobody answered the prompt within {int(login.prompt_timeout)} s",
                )
                raise Finished
            else:
                line = pending_line(login._pending)
                if line is not None and settled != login._pending:
                    settled = login._pending
                    if not _asks(line):
                        continue  # progress, not a question: keep waiting
                    prompt = classify(login._pending)
                    if prompt is None:
                        continue
                else:
                    if now - last_output < self._quiet_limit(login):
                        continue
                    await self._dispose(kill=True)
                    login.fail(Reason.TIMEOUT, self._silence(login, transcript))
                    raise Finished
            if any(is_same_question(prompt, earlier) for earlier in asked):
                login.message = messages.wrong_answer(asked[-1].kind)
                asked = []
            elif asked:
                login.message = ""
            asked.append(prompt)
            prompt_since = now
            login.ask(prompt)

    def _quiet_limit(self, login: MasterSession) -> float:
        """How long the tool may say nothing: ``connect_timeout``; once it showed a link, the
        person's time to finish in the browser (``prompt_timeout``)."""
        if self.device is not None:
            return max(self.connect_timeout, login.prompt_timeout)
        return self.connect_timeout

    def _silence(self, login: MasterSession, transcript: str) -> str:
        if self.device is not None:
            return (
                f"Nobody finished the sign-in at {self.device['url']} within "
                f"{int(self._quiet_limit(login))} s"
            )
        if not clean(transcript).strip():
            return f"{self.name} printed nothing within {int(self.connect_timeout)} s"
        return f"{self.name} said nothing more within {int(self.connect_timeout)} s"

    async def _finish(self, login: MasterSession, output: str) -> None:
        """Read how the tool ended: its status and what it said (for the failure words)."""
        child = self._child
        self.status = child.exitstatus if child is not None else None
        signal_status = child.signalstatus if child is not None else None
        self.lines = [line for line in clean(output).split("\n") if line.strip()]
        if self.status == 0:
            return
        said = messages.last_lines(self.lines)
        if signal_status is not None:
            ended = f"{self.name} was ended by signal {signal_status}"
        else:
            ended = f"{self.name} exited with status {self.status}"
        login.fail(Reason.ERROR, f"{ended}:\n{said}" if said else ended)
        raise Finished


class CommandLogin(CertificateLogin):
    """The certificate method with the site's own tool as the issuer (``spec.argv``)."""

    def __init__(self, spec: CertificateSpec, ssh: SshLogin) -> None:
        super().__init__(spec, ssh)
        self.tool = ToolRun(spec.argv, connect_timeout=ssh.connect_timeout)
        self._running = False

    @property
    def child_pid(self) -> int | None:
        return self.tool.child_pid if self._running else self.ssh.child_pid

    def view(self) -> dict[str, Any]:
        device = self.tool.device if self._running else None
        return {**super().view(), "device": dict(device) if device else None}

    async def _obtain(self, login: MasterSession, name: str) -> None:
        """Run the tool until it exits, then take the key and certificate it left."""
        if not await asyncio.to_thread(self.tool.found):
            login.fail(Reason.ERROR, f"{self.tool.name} ({self.tool.tool[0]}) is not installed")
            raise Finished
        self._running = True
        try:
            await self.tool.open(login)
        finally:
            self._running = False
        if login.state is State.PROMPTING:
            login.verifying()  # it exited 0 with a question up: nothing waits for the answer
        described = await asyncio.to_thread(self._read)
        problem = (
            "there is no key and certificate"
            if described is None
            else described.unusable(login.target.user, 0)
        )
        if problem:
            login.fail(
                Reason.ERROR,
                f"{self.tool.name} finished, but {self.spec.certificate_file} cannot log in as "
                f"{login.target.user}: {problem}",
            )
            raise Finished
        login.message = ""
        if login.state is State.VERIFYING:
            login.verifying()  # the view's certificate changed, and the link is gone

    async def deliver(self, response: str) -> None:
        if self._running:
            await self.tool.deliver(response)
        else:
            await super().deliver(response)
        del response

    async def stop(self) -> None:
        await self.tool.stop()
        await super().stop()
