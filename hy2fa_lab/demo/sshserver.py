"""An SSH server on loopback that asks keyboard-interactive prompt scripts, like HPC login nodes.

The server (asyncssh) accepts **only** keyboard-interactive authentication driven by a
:class:`PromptScript`: every :class:`PromptStep` is one challenge, sent in turn inside a single
keyboard-interactive attempt. A wrong answer fails that attempt at once, so the OpenSSH client asks
again (up to its ``NumberOfPasswordPrompts``) and then prints ``Permission denied``.

Prompt texts are sent exactly as the real sites' sshd sends them; OpenSSH (8.5 and later) adds the
``(user@host) `` prefix on the client side. The literal ``{user}`` inside a prompt text is replaced
by the login name.

After login, sessions run commands for real (``/bin/sh -c``, as the user running the server) with
stdin, stdout, stderr and the exit status wired through; SFTP and SCP are served by asyncssh, and
``ssh -N`` masters work.

With ``PromptScript.client_key`` set the server is as strict as sshd with ``AuthenticationMethods
publickey,keyboard-interactive``: the prompts are only asked of a connection that has signed with
that key for the login name, and the signed key alone is never a login. asyncssh (2.x) cannot
answer a key with the *partial success* sshd sends, so a proven key is answered with a plain
failure instead; OpenSSH then goes on to keyboard-interactive all the same (the real ``sshd`` test
fixture does the genuine combination).

With ``PromptScript.user_ca`` set the server is a login node that trusts a user CA, as sshd with
``TrustedUserCAKeys``: a certificate signed by that CA, naming the login name among its
principals and valid now, is a login on its own (asyncssh checks the signature, the principals
and the validity); a plain key is not. With no steps it asks nothing else (keyboard-interactive
is not offered).

Two ways to run it: ``await start_server(script)`` inside an event loop, or :class:`ServerThread`
(its own event loop in a background thread) from synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import ipaddress
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

import asyncssh
import pyotp
from asyncssh.auth import KbdIntChallenge, KbdIntResponse

__all__ = [
    "DEFAULT_TACC_BANNER",
    "PromptScript",
    "PromptStep",
    "RunningServer",
    "ServerThread",
    "duo",
    "nersc",
    "sigma2",
    "start_server",
    "tacc",
    "totp",
    "totp_check",
]

Check: TypeAlias = Callable[[str], "bool | Awaitable[bool]"]
"""A function deciding whether an answer is right (may be a coroutine function)."""

Expected: TypeAlias = "str | Check"
"""The right answer itself, or a function that checks an answer."""

USER_TOKEN = "{user}"  # noqa: S105 - a placeholder, not a secret

DEFAULT_TACC_BANNER = (
    "------------------------------------------------------------------------------\n"
    "                  Welcome to the demo TACC-like login node\n"
    "------------------------------------------------------------------------------\n"
    "To access the system:\n"
    "\n"
    "1) If not using ssh-keys, please enter your TACC password at the password prompt\n"
    "2) At the TACC Token prompt, enter your 6-digit code followed by <return>.\n"
    "\n"
)

_log = logging.getLogger(__name__)

_SHELL = "/bin/sh"
_KILL_GRACE = 2.0


@dataclass(frozen=True)
class PromptStep:
    """One keyboard-interactive challenge.

    ``text`` is the prompt as the server sends it (``{user}`` becomes the login name), or a
    function that makes it at each challenge; ``echo`` whether the client shows what is typed,
    ``expected`` the right answer or a check function. ``instructions`` is the challenge's
    keyboard-interactive instruction text (``{user}`` replaced too), which OpenSSH prints on
    the lines before the prompt.
    """

    text: str | Callable[[], str]
    echo: bool = False
    expected: Expected = field(kw_only=True, repr=False)
    push: Push | None = field(default=None, kw_only=True)  # an option that pushes (Duo)
    instructions: str = field(default="", kw_only=True)

    def render(self, username: str) -> str:
        """The prompt text for ``username``."""
        text = self.text() if callable(self.text) else self.text
        return text.replace(USER_TOKEN, username)

    def render_instructions(self, username: str) -> str:
        """The instruction text for ``username`` ("" for none)."""
        return self.instructions.replace(USER_TOKEN, username)

    async def accepts(self, answer: str) -> bool:
        """Whether ``answer`` is right for this step."""
        if isinstance(self.expected, str):
            return hmac.compare_digest(answer.encode(), self.expected.encode())
        result = self.expected(answer)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)


@dataclass(frozen=True)
class PromptScript:
    """What the server asks at login, in order.

    ``banner`` is sent before the first prompt (OpenSSH shows it on stderr), ``delay`` is waited
    before each challenge (a slow server), and ``username``, when set, is the only login name
    that can succeed (others are still asked every prompt and then refused). A ``bastion``
    forwards ``ssh -W`` / ProxyJump connections, to loopback addresses only. ``user_ca``
    (``"ssh-ed25519 AAAA…"``) is a CA whose user certificates log in without the prompts
    (``steps`` may then be empty: a certificate-only node).
    """

    steps: Sequence[PromptStep]
    banner: str | None = None
    delay: float = 0.0
    username: str | None = None
    client_key: str | None = None  # "ssh-ed25519 AAAA…": must sign before the prompts
    bastion: bool = False
    user_ca: str | None = None  # "ssh-ed25519 AAAA…": its user certificates log in

    def __post_init__(self) -> None:
        if not self.steps and self.user_ca is None:
            raise ValueError("a prompt script needs at least one step")
        if self.user_ca is not None and self.client_key is not None:
            # the client_key wrapper turns every signed key into a failure, certificates too
            raise ValueError("user_ca and client_key cannot be combined")
        if self.delay < 0:
            raise ValueError("delay must not be negative")


def _answer_is(expected: Expected, answer: str) -> Awaitable[bool]:
    return PromptStep("", expected=expected).accepts(answer)


def totp_check(secret: str, *, valid_window: int = 1) -> Check:
    """A check accepting the current TOTP code of the base32 ``secret`` (pyotp)."""
    generator = pyotp.TOTP(secret)

    def check(answer: str) -> bool:
        answer = answer.strip()
        return answer.isdigit() and bool(generator.verify(answer, valid_window=valid_window))

    return check


def sigma2(otp_check: Expected, password: Expected) -> PromptScript:
    """Sigma2/NRIS (Saga, Fram, Betzy, Olivia): pam_oath's OTP prompt, then the password."""
    return PromptScript(
        steps=[
            PromptStep("One-time password (OATH) for `{user}': ", expected=otp_check),
            PromptStep("Password: ", expected=password),
        ]
    )


DUO_PUSHED = "Pushed a login request to your device..."
DUO_APPROVED = "Success. Logging you in..."
DUO_TIMED_OUT = "Login timed out."


@dataclass(frozen=True)
class Push:
    """What a Duo-like server does after the person picks a push option: it prints ``lines``
    (keyboard-interactive info, no prompt), waits ``delay`` seconds as the phone would, then
    lets the login through, or prints ``refusal`` and refuses it."""

    option: str = "1"
    lines: Sequence[str] = (DUO_PUSHED,)
    delay: float = 0.5
    approve: bool = True
    approved: Sequence[str] = (DUO_APPROVED,)
    refusal: Sequence[str] = (DUO_TIMED_OUT,)


def duo(
    passcode: Expected,
    *,
    device: str = "XXX-XXX-1234",
    push_delay: float = 0.5,
    push: Push | None = None,
    menu_in: Literal["prompt", "instructions"] = "prompt",
    banner: str | None = None,
) -> PromptScript:
    """Alliance clusters with Duo: one echo-on prompt holding the whole menu.

    The passcode is accepted; so is option ``1`` (Duo Push): the server says it pushed, waits
    ``push_delay`` seconds as if the person approved on the phone, and lets the login through
    (``push`` changes what it says, how long it waits, and whether it approves).

    ``menu_in="instructions"`` is the other shape servers send: the menu as the challenge's
    instruction text (OpenSSH prints it on the lines before the prompt) and only
    ``Passcode or option (1-1): `` as the prompt, where sshd with pam_duo puts it all in the
    prompt.
    """
    push = push or Push(delay=push_delay)
    menu = (
        "Duo two-factor login for {user}\n"
        "\n"
        "Enter a passcode or select one of the following options:\n"
        "\n"
        f" 1. Duo Push to {device}\n"
        "\n"
    )
    question = "Passcode or option (1-1): "
    if menu_in == "instructions":
        step = PromptStep(question, echo=True, expected=passcode, push=push, instructions=menu)
    else:
        step = PromptStep(menu + question, echo=True, expected=passcode, push=push)
    return PromptScript(steps=[step], banner=banner)


def nersc(password: str, otp_check: Expected) -> PromptScript:
    """NERSC (Perlmutter): password and OTP typed together at one prompt."""

    async def check(answer: str) -> bool:
        if not answer.startswith(password):
            return False
        return await _answer_is(otp_check, answer[len(password) :])

    return PromptScript(steps=[PromptStep("Password + OTP: ", expected=check)])


def tacc(
    password: Expected, token_check: Expected, *, banner: str = DEFAULT_TACC_BANNER
) -> PromptScript:
    """TACC: a banner mentioning both "password" and "token", then password, then token code."""
    return PromptScript(
        steps=[
            PromptStep("Password: ", expected=password),
            PromptStep("TACC Token Code: ", expected=token_check),
        ],
        banner=banner,
    )


def totp(secret: str) -> PromptScript:
    """Generic pam_google_authenticator: one ``Verification code: `` checked with pyotp."""
    return PromptScript(
        steps=[PromptStep("Verification code: ", expected=totp_check(secret, valid_window=1))]
    )


class _ScriptedServer(asyncssh.SSHServer):
    """One instance per connection: walks the prompt script for that client."""

    def __init__(self, owner: RunningServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None
        self._step = 0
        self._key_proven = False  # the client signed with script.client_key for this login name
        self._pushing: Push | None = None  # a push is out: the next (empty) reply waits for it
        self._outcome: bool | None = None  # a last notice was sent: the next reply ends it

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner._connections.add(conn)
        if self._owner.script.client_key is not None:
            check_key = conn.validate_public_key

            async def validate_public_key(
                username: str, key_data: bytes, msg: bytes, signature: bytes
            ) -> bool:
                # asyncssh's own check: our validate_public_key below accepts the key, and for a
                # signed request (msg set) the signature over this session is verified too.
                valid = await check_key(username, key_data, msg, signature)
                if not msg:
                    return valid  # the unsigned query: True sends PK_OK, so the client signs
                # A signed request: True would be USERAUTH_SUCCESS, a login without the prompts.
                # Note the proof and fail instead (asyncssh cannot send a partial success);
                # OpenSSH then goes on to keyboard-interactive.
                self._key_proven = self._key_proven or valid
                return False

            # asyncssh has no hook between the signature check and the success it sends, so this
            # connection's method is replaced (asyncssh's auth calls it through the instance).
            conn.validate_public_key = validate_public_key  # type: ignore[method-assign]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        # asyncssh calls this again when a client switches login names (sshd would disconnect):
        # a key proven for one name must not open the prompts for another.
        self._key_proven = False
        banner = self._owner.script.banner
        if banner and self._conn is not None:
            self._conn.send_auth_banner(banner if banner.endswith("\n") else banner + "\n")
        return True  # authentication is always required

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        """A jump (``ssh -W``, ProxyJump) through a bastion: only to 127.0.0.0/8, never out."""
        if not self._owner.script.bastion:
            return False
        try:
            return ipaddress.ip_address(dest_host).is_loopback
        except ValueError:
            return False

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        script = self._owner.script
        return script.client_key is not None or script.user_ca is not None

    def validate_ca_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # Whether a certificate's signer is the trusted user CA (sshd's TrustedUserCAKeys);
        # asyncssh then checks the certificate is a user one, names ``username`` among its
        # principals and is valid now, and that the client signed with its key.
        script = self._owner.script
        if script.user_ca is None:
            return False
        if script.username is not None and username != script.username:
            return False
        offered = key.export_public_key("openssh").decode().split()[:2]
        return offered == script.user_ca.split()[:2]

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # Whether the key is acceptable, as an authorized_keys line would say; the signature is
        # checked by asyncssh, and the wrapper in connection_made keeps a proven key from being
        # a login on its own.
        wanted = self._owner.script.client_key
        if wanted is None:
            return False
        offered = key.export_public_key("openssh").decode().split()[:2]
        return offered == wanted.split()[:2]

    def host_based_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return bool(self._owner.script.steps)  # a certificate-only node asks nothing

    async def _challenge(self, username: str) -> tuple[str, str, str, list[tuple[str, bool]]]:
        script = self._owner.script
        if script.delay:
            await asyncio.sleep(script.delay)
        step = script.steps[self._step]
        return "", step.render_instructions(username), "", [(step.render(username), step.echo)]

    async def get_kbdint_challenge(
        self, username: str, lang: str, submethods: str
    ) -> KbdIntChallenge:
        self._step = 0
        if self._owner.script.client_key is not None and not self._key_proven:
            return False  # "Permission denied": this server wants a signature with the key first
        return await self._challenge(username)

    async def validate_kbdint_response(
        self, username: str, responses: KbdIntResponse
    ) -> KbdIntChallenge:
        script = self._owner.script
        if self._outcome is not None:  # the reply to a last notice (no prompts): the end
            outcome, self._outcome = self._outcome, None
            return outcome
        if self._pushing is not None:  # the reply to a push notice (no prompts): the "phone"
            push, self._pushing = self._pushing, None
            await asyncio.sleep(push.delay)
            if not push.approve:
                self._outcome = False
                return "", "\n".join(push.refusal), "", []
            return await self._next(username, notice="\n".join(push.approved))
        if len(responses) != 1 or self._step >= len(script.steps):
            return False
        step = script.steps[self._step]
        if step.push is not None and responses[0].strip() == step.push.option:
            self._pushing = step.push
            return "", "\n".join(step.push.lines), "", []
        try:
            accepted = await step.accepts(responses[0])
        except Exception:  # a broken check is a refusal, not a dropped connection
            _log.exception("prompt check failed")
            accepted = False
        if not accepted:
            return False  # fails this attempt; the client may start a new one
        return await self._next(username)

    async def _next(self, username: str, notice: str = "") -> KbdIntChallenge:
        """The next step's challenge, or the end of the script (after ``notice``, if any)."""
        script = self._owner.script
        self._step += 1
        if self._step < len(script.steps):
            name, instructions, lang, prompts = await self._challenge(username)
            said = "\n".join(part for part in (notice, instructions) if part)
            return name, said, lang, prompts
        done = script.username is None or username == script.username
        if notice:  # said before the login goes through, as Duo's "Success. Logging you in..."
            self._outcome = done
            return "", notice, "", []
        return done


async def _feed_stdin(
    process: asyncssh.SSHServerProcess[bytes], proc: asyncio.subprocess.Process
) -> None:
    """Copy the client's stdin to the command; EOF from the client closes the command's stdin."""
    assert proc.stdin is not None
    try:
        while True:
            try:
                data = await process.stdin.read(65536)
            except (asyncssh.TerminalSizeChanged, asyncssh.BreakReceived):
                continue
            except asyncssh.SignalReceived as exc:
                with contextlib.suppress(KeyError):  # a signal name this system lacks
                    _kill_group(proc, signal.Signals["SIG" + exc.signal].value)
                continue
            if not data:
                break
            proc.stdin.write(data)
            await proc.stdin.drain()
    except (OSError, asyncssh.Error):
        pass  # the command or the client went away
    finally:
        proc.stdin.close()


class _SFTPServer(asyncssh.SFTPServer):
    """asyncssh's SFTP server, plus the exit status OpenSSH expects when the subsystem ends.

    asyncssh closes an SFTP channel without an exit status; an OpenSSH mux master then reports
    "Control master terminated unexpectedly" and ``scp`` (SFTP mode, the default) fails.
    """

    def exit(self) -> None:
        super().exit()
        if self.channel.get_subsystem() == "sftp":  # scp sessions send their own status
            with contextlib.suppress(OSError):
                self.channel.exit(0)


def _kill_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class RunningServer:
    """A listening scripted SSH server (made by :func:`start_server`)."""

    def __init__(
        self,
        script: PromptScript,
        *,
        host: str,
        host_key: asyncssh.SSHKey,
        host_key_path: Path,
        temp_dir: Path | None,
        allow_commands: bool,
    ) -> None:
        self.script = script
        self.host = host
        self.host_key_path = host_key_path
        self.host_key_fingerprint: str = host_key.get_fingerprint("sha256")
        self._host_key = host_key
        self._temp_dir = temp_dir
        self._allow_commands = allow_commands
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._processes: set[asyncio.subprocess.Process] = set()
        self._closed = False

    @property
    def port(self) -> int:
        if self._acceptor is None:
            raise RuntimeError("the server is not listening")
        return int(self._acceptor.get_port())

    @property
    def host_public_key(self) -> str:
        """The host key in OpenSSH public-key format (``ssh-ed25519 AAAA…``)."""
        return self._host_key.export_public_key("openssh").decode().strip()

    def known_hosts_line(self) -> str:
        """A ``known_hosts`` line that trusts this server at its host and port."""
        return f"[{self.host}]:{self.port} {self.host_public_key}\n"

    async def _listen(self, port: int) -> None:
        options: dict[str, object] = {}
        if self._allow_commands:
            options.update(
                process_factory=self._run_session, sftp_factory=_SFTPServer, allow_scp=True
            )
        self._acceptor = await asyncssh.create_server(
            lambda: _ScriptedServer(self),
            self.host,
            port,
            server_host_keys=[self._host_key],
            encoding=None,
            line_editor=False,
            agent_forwarding=False,
            x11_forwarding=False,
            gss_host=None,
            login_timeout=120,
            **options,
        )

    async def _run_session(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """Run the client's command (or a shell reading stdin) as the current user."""
        command = process.command
        argv = [_SHELL, "-c", command] if command is not None else [_SHELL]
        home = Path.home()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=home if home.is_dir() else "/",
                start_new_session=True,  # its own process group, so close() can kill it all
            )
        except OSError as exc:
            process.stderr.write(f"{_SHELL}: {exc}\n".encode())
            process.exit(127)
            return
        self._processes.add(proc)
        exited = asyncio.ensure_future(proc.wait())
        gone = asyncio.ensure_future(process.wait_closed())
        feeding = asyncio.ensure_future(_feed_stdin(process, proc))
        try:
            # send_eof=False: the first stream to end must not send EOF while the other still
            # has data (asyncssh refuses any data after EOF); EOF is sent once both are done.
            await process.redirect(stdout=proc.stdout, stderr=proc.stderr, send_eof=False)
            done, _ = await asyncio.wait({exited, gone}, return_when=asyncio.FIRST_COMPLETED)
            if exited in done and not gone.done():
                await process.stdout.drain()  # returns once the command's output is forwarded
                await process.stderr.drain()
                process.channel.write_eof()
                status = exited.result()
                if status < 0:
                    process.exit_with_signal(signal.Signals(-status).name.removeprefix("SIG"))
                else:
                    process.exit(status)
        finally:
            feeding.cancel()
            gone.cancel()
            if proc.returncode is None:
                await self._terminate(proc)
            exited.cancel()
            await asyncio.gather(feeding, gone, exited, return_exceptions=True)
            self._processes.discard(proc)

    @staticmethod
    async def _terminate(proc: asyncio.subprocess.Process) -> None:
        _kill_group(proc, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), _KILL_GRACE)
        except asyncio.TimeoutError:
            _kill_group(proc, signal.SIGKILL)
            await proc.wait()
        _kill_group(proc, signal.SIGKILL)  # whatever the command left in its group

    async def close(self) -> None:
        """Stop listening, drop every connection, kill running commands, remove temp files."""
        if self._closed:
            return
        self._closed = True
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        for conn in connections:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(conn.wait_closed(), _KILL_GRACE)
        for proc in list(self._processes):
            if proc.returncode is None:
                await self._terminate(proc)
        self._processes.clear()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    async def __aenter__(self) -> RunningServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def start_server(
    script: PromptScript,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    host_key: str | os.PathLike[str] | None = None,
    allow_commands: bool = True,
) -> RunningServer:
    """Start a scripted SSH server; ``port=0`` picks a free port (see ``.port``).

    ``host_key`` is a private key file; without one an ed25519 key is generated in a temp dir that
    :meth:`RunningServer.close` removes. ``allow_commands=False`` refuses every session (only
    ``ssh -N`` works).
    """
    temp_dir: Path | None = None
    if host_key is None:
        temp_dir = Path(tempfile.mkdtemp(prefix="hy2fa-srv-"))
        key = asyncssh.generate_private_key("ssh-ed25519")
        key_path = temp_dir / "ssh_host_ed25519_key"
        key.write_private_key(key_path)
        key.write_public_key(key_path.with_name(key_path.name + ".pub"))
    else:
        key_path = Path(host_key)
        key = asyncssh.read_private_key(key_path)
    server = RunningServer(
        script,
        host=host,
        host_key=key,
        host_key_path=key_path,
        temp_dir=temp_dir,
        allow_commands=allow_commands,
    )
    try:
        await server._listen(port)
    except BaseException:
        await server.close()
        raise
    return server


class ServerThread:
    """A scripted SSH server on its own event loop in a background thread, for sync callers.

    ``ServerThread(script).start()`` returns once the server listens; ``stop()`` closes it and
    joins the thread. Also a context manager.
    """

    def __init__(
        self,
        script: PromptScript,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        host_key: str | os.PathLike[str] | None = None,
        allow_commands: bool = True,
        start_timeout: float = 20.0,
    ) -> None:
        self.script = script
        self._host = host
        self._port = port
        self._host_key = host_key
        self._allow_commands = allow_commands
        self._start_timeout = start_timeout
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: RunningServer | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def server(self) -> RunningServer:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return self._server

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def host_key_path(self) -> Path:
        return self.server.host_key_path

    @property
    def host_key_fingerprint(self) -> str:
        return self.server.host_key_fingerprint

    def known_hosts_line(self) -> str:
        return self.server.known_hosts_line()

    def start(self) -> ServerThread:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._run, name="hy2fa-sshserver", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            self.stop()
            raise TimeoutError("the SSH server did not start in time")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                self._server = loop.run_until_complete(
                    start_server(
                        self.script,
                        host=self._host,
                        port=self._port,
                        host_key=self._host_key,
                        allow_commands=self._allow_commands,
                    )
                )
            except BaseException as exc:
                self._error = exc
                return
            finally:
                self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self._server.close())
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout: float = 20.0) -> None:
        """Close the server and wait for its thread; safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closed in between
                loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError("the SSH server thread did not stop")
        self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
