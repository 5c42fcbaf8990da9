"""The askpass bridge: questions from any ssh a kernel starts, asked in JupyterLab.

OpenSSH runs ``hy2fa-askpass`` (``SSH_ASKPASS`` with ``SSH_ASKPASS_REQUIRE=force``) for every
question it would ask on a terminal. The helper connects to the Unix
socket this module listens on and sends the question; it becomes an :class:`Ask` until a
person answers it in Lab, cancels it, its ssh exits, or ``timeout`` passes. The answer goes
back on the same socket to the helper's stdout, which is ssh's pipe, and is dropped here.

The wire format is :mod:`hy2fa_lab.askwire`'s, shared with the helper. A helper with a
terminal says so: unless its ssh runs under a kernel (IPython's ``!`` runs commands in a pty
nobody looks at), it is told "ask on your terminal", as ssh would have.

The helper names the ssh that asks (its parent pid and session id); where the system tells
the peer's pid too (``SO_PEERCRED``, ``LOCAL_PEERPID``) and its parent is known, the two must
agree. A cancelled or expired question ends its ssh: the helper signals it where it can tell
that its parent is an ssh client, and in any case every further question of that ssh is
refused here at once, so an ssh the helper could not signal gives up within its
``NumberOfPasswordPrompts`` instead of asking again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .. import askwire
from ..askwire import MAX_ANSWER
from .errors import Hy2faError, InvalidInput, NoPrompt
from .processes import cmdline, parent_pid, peer_of, process_exit
from .prompts import classify, clean
from .settings import DEFAULTS
from .types import Prompt, PromptKind, iso_time
from .validate import shown, visible

_HEADER_TIMEOUT = 2.0  # a peer that connects and says nothing is dropped
_PREFIX_HOST = re.compile(r"\(([^()\s@]+)@([^()\s]+)\) ")
_HOSTKEY_HOST = re.compile(r"authenticity of host '([^']+)'")

Origin = Callable[[int], Awaitable[dict[str, Any]]]
Listener = Callable[["Ask", str], None]


class UnknownAsk(Hy2faError):
    reason = "unknown_ask"


class AnswerTooLong(InvalidInput):
    reason = "too_long"


class _Withdrawn(Exception):
    """The helper or its ssh went away before an answer."""


@dataclass
class Ask:
    """One question of one ssh, waiting for a person."""

    id: str
    prompt: Prompt
    host: str | None
    command: list[str]
    origin: dict[str, Any]
    since: float = field(default_factory=time.time)
    expires: float | None = None  # when it is refused unanswered (epoch seconds)
    _reply: asyncio.Future[bytes] | None = field(default=None, repr=False)
    _asker: tuple[int, int] | None = field(default=None, repr=False)  # ssh's (pid, session)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prompt": {**self.prompt.to_json(), "expires": iso_time(self.expires)},
            "host": self.host,
            "command": self.command,
            "origin": self.origin,
            "since": self.since,
        }

    @property
    def settled(self) -> bool:
        return self._reply is None or self._reply.done()


async def _until_closed(reader: asyncio.StreamReader) -> None:
    """Read (and drop) what the peer still sends, until it closes."""
    while await reader.read(4096):
        pass


def host_of(question: str) -> str | None:
    """The host a question is for: OpenSSH's ``(user@host)`` prefix, or the host-key text."""
    match = _PREFIX_HOST.search(question)
    if match:
        return match.group(2)
    match = _HOSTKEY_HOST.search(question)
    return match.group(1) if match else None


def prompt_of(question: str) -> Prompt:
    """ssh's question as a :class:`Prompt`: its own words, classified like the engine's."""
    text = clean(question)
    found = classify(text if text.endswith((" ", ":", "?")) else text + " ")
    if found is None:
        return Prompt(PromptKind.OTHER, text.strip("\n"))
    return Prompt(found.kind, text.strip("\n"), found.options, found.secret)


def check_answer(ask: Ask, response: object) -> str:
    """The response as ssh should get it; refuses what ssh could not take as one line."""
    if not isinstance(response, str):
        raise InvalidInput("response must be a string")
    if len(response) > MAX_ANSWER:
        raise AnswerTooLong(f"response is longer than {MAX_ANSWER} characters")
    if re.search(r"[\x00-\x1f\x7f]", response):
        raise InvalidInput("response must be one line of printable text")
    try:
        response.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("response must be UTF-8 text") from None
    if ask.prompt.kind is PromptKind.HOSTKEY:
        word = response.strip()
        if word.lower() not in ("yes", "no") and not word.startswith("SHA256:"):
            raise InvalidInput("answer 'yes' or 'no' to a host key question")
        return word.lower() if word.lower() in ("yes", "no") else word
    return response


class AskBridge:
    """Listens for ``hy2fa-askpass`` and keeps the questions that wait for a person."""

    def __init__(
        self,
        path: str,
        *,
        timeout: float,
        limit: int = DEFAULTS.askpass_limit,
        origin: Origin | None = None,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.limit = limit
        self.origin = origin
        self._asks: dict[str, Ask] = {}
        # ssh (pid, session) whose question was cancelled or expired -> (until when its
        # further questions are refused at once, monotonic; the reason they get)
        self._ended: dict[tuple[int, int], tuple[float, str]] = {}
        self._listeners: list[Listener] = []
        self._server: asyncio.AbstractServer | None = None
        self._sock: socket.socket | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)

    # ---- life cycle ------------------------------------------------------------------

    def listen(self) -> None:
        """Bind ``path`` now (no event loop needed): its directory 0700 and the socket 0600,
        ours alone. Helpers that connect before :meth:`serve` wait in the backlog, as many
        as the system allows (``SOMAXCONN``, capped by ``net.core.somaxconn``); a helper that
        finds it full tries again within its connect deadline."""
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)
        try:
            sock.bind(self.path)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(previous)
        sock.listen(socket.SOMAXCONN)
        self._sock = sock

    async def serve(self) -> None:
        """Start answering on the socket bound by :meth:`listen`."""
        if self._sock is None:
            self.listen()
        assert self._sock is not None
        self._server = await asyncio.start_unix_server(self._serve, sock=self._sock)

    async def start(self) -> None:
        """:meth:`listen` and :meth:`serve`."""
        self.listen()
        await self.serve()

    async def close(self) -> None:
        """Stop listening; every waiting ssh is told the question was withdrawn."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif self._sock is not None:
            self._sock.close()
        self._sock = None
        for ask in list(self._asks.values()):
            self._settle(
                ask,
                askwire.refusal("Jupyter stopped before the question was answered"),
                "withdrawn",
            )
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    # ---- what the REST API and the frontend use --------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Hear every change of every ask (``asked``, ``answered``, ``cancelled``, ...)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def asks(self) -> list[Ask]:
        return list(self._asks.values())

    def get(self, ask_id: str) -> Ask:
        try:
            return self._asks[ask_id]
        except KeyError:
            raise UnknownAsk(f"No question {shown(ask_id)} is waiting") from None

    def answer(self, ask_id: str, response: object) -> None:
        """Send ``response`` to the ssh that asks. It is not kept anywhere."""
        ask = self.get(ask_id)
        if ask.settled:
            raise NoPrompt("that question was already answered")
        text = check_answer(ask, response)
        self._settle(ask, askwire.answer(text), "answered")
        del text, response

    def cancel(self, ask_id: str) -> None:
        """End the ssh that asks (the helper stops it): not an empty answer, which would only
        make the server ask again."""
        ask = self.get(ask_id)
        if ask.settled:
            raise NoPrompt("that question was already answered")
        self._end(ask, "Cancelled in JupyterLab", "cancelled")

    # ---- internals -------------------------------------------------------------------

    def _notify(self, ask: Ask, action: str) -> None:
        for listener in list(self._listeners):
            listener(ask, action)

    def _settle(self, ask: Ask, reply: bytes, action: str | None = None) -> None:
        if ask._reply is not None and not ask._reply.done():
            ask._reply.set_result(reply)
            if action is not None:
                self._notify(ask, action)

    def _end(self, ask: Ask, reason: str, action: str) -> None:
        """Refuse ``ask`` and every further question of its ssh (for as long as a question
        may wait): the helper may have no way to end that ssh itself."""
        if ask._asker is not None and not ask.settled:
            self._ended[ask._asker] = (time.monotonic() + self.timeout, reason)
        self._settle(ask, askwire.refusal(reason), action)

    def _ended_reason(self, asker: tuple[int, int]) -> str | None:
        """Why questions of ``asker`` are refused at once, or None."""
        now = time.monotonic()
        for key in [key for key, (until, _) in self._ended.items() if until <= now]:
            del self._ended[key]
        ended = self._ended.get(asker)
        return ended[1] if ended is not None else None

    def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._conversation(reader, writer))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _conversation(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            reply = await self._ask(reader, writer)
            if reply:
                writer.write(reply)
                await writer.drain()
                # The helper closes once it has the reply. Closing first, with bytes of its
                # unread (a question refused before it was read), would reset the
                # connection, and the helper would lose the reply with it.
                await asyncio.wait_for(_until_closed(reader), _HEADER_TIMEOUT)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _ask(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        try:
            peer = peer_of(writer.get_extra_info("socket"))
        except OSError:  # the system can tell who asks, and did not: fail closed
            return askwire.refusal("the Jupyter server could not tell who asks")
        if peer.uid is not None and peer.uid != os.getuid():
            return askwire.refusal("only the user running Jupyter can ask through this server")
        read = await self._read_question(reader)
        if read is None:
            return askwire.refusal("not a question hy2fa-lab understands")
        question, terminal, ssh_pid, session = read
        if peer.pid is not None and parent_pid(peer.pid) not in (None, ssh_pid):
            return askwire.refusal("hy2fa-askpass named another process than its parent")
        ended = self._ended_reason((ssh_pid, session))
        if ended is not None:
            return askwire.refusal(ended)  # that ssh's question was cancelled: no more
        origin: dict[str, Any] = {"pid": ssh_pid}
        if self.origin is not None:
            with contextlib.suppress(Exception):  # where it came from is a courtesy
                origin.update(await self.origin(ssh_pid))
        if terminal and not origin.get("kernel_id") and parent_pid(ssh_pid) is not None:
            return askwire.ASK_ON_TERMINAL  # a terminal a person uses: ask there
        # (Where nothing is known of the ssh's process, a kernel's pty, which nobody looks
        # at, cannot be told from a person's terminal: it is asked here, where it times out.)
        if sum(1 for ask in self._asks.values() if not ask.settled) >= self.limit:
            return askwire.refusal(
                f"too many ssh questions are waiting in JupyterLab ({self.limit}); answer or "
                "cancel those first"
            )
        loop = asyncio.get_running_loop()
        ask = Ask(
            id=f"{next(self._ids)}-{os.urandom(4).hex()}",
            prompt=prompt_of(question),
            host=host_of(visible(question)),  # the cluster's words, never hidden ones
            command=cmdline(ssh_pid),
            origin=origin,
            _reply=loop.create_future(),
            _asker=(ssh_pid, session),
        )
        ask.expires = ask.since + self.timeout
        self._asks[ask.id] = ask
        self._notify(ask, "asked")
        try:
            return await self._wait(ask, reader, ssh_pid)
        finally:
            self._asks.pop(ask.id, None)

    async def _read_question(
        self, reader: asyncio.StreamReader
    ) -> tuple[str, bool, int, int] | None:
        """(question, whether the helper has a terminal, the pid and session id of the ssh
        that asks), or None for anything else."""
        try:
            header = askwire.parse_header(
                await asyncio.wait_for(reader.readline(), _HEADER_TIMEOUT)
            )
            if header is None:
                return None
            size, terminal, parent, session = header
            body = await asyncio.wait_for(reader.readexactly(size), _HEADER_TIMEOUT)
        except (ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            return None
        return body.decode(errors="replace"), terminal, parent, session

    async def _wait(self, ask: Ask, reader: asyncio.StreamReader, ssh_pid: int) -> bytes:
        """The reply for the helper: an answer, a cancel, or nothing when it went away."""
        assert ask._reply is not None
        gone = asyncio.ensure_future(reader.read(1))  # b"": the helper exited
        ended = process_exit(ssh_pid)  # None without pidfds: the helper's exit tells
        waiting: set[asyncio.Future[Any]] = {ask._reply, gone}
        if ended is not None:
            waiting.add(ended)
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for future in waiting - {ask._reply}:
                future.cancel()
        if ask._reply in done:
            return ask._reply.result()
        if not done:
            waited = f"nobody answered in JupyterLab within {int(self.timeout)} s"
            self._end(ask, waited, "expired")
            return ask._reply.result()
        ask._reply.cancel()
        self._notify(ask, "withdrawn")  # the ssh or its helper exited meanwhile
        return b""
