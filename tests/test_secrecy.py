"""What a person types (code, password, passphrase) is never logged, printed, stored, put in argv
or the environment, echoed in an API response or an event, or left in a widget's synced state.

Each test logs in through the real Jupyter server with every logger at DEBUG and collects all it
can reach: every log record of every logger (propagating or not, also formatted the way the
server formats its log), every API response, every event of every schema, the files under HOME,
the Jupyter dirs and the test's temp dirs (and anything changed under the cwd or the temp dir),
``/proc/*/cmdline`` and ``/proc/*/environ`` (while the master runs), the stdout and stderr of the
test process and of its children, and, for the widget, every message the kernel sent. Then it
looks for the typed answers in all of it. Each test also plants its secret in a log record once,
to show the search does find it (and the dedicated sanity test plants one in every channel).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import secrets
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import pytest_asyncio
from kernel_ws import KernelWS
from procs import ssh_processes
from test_server_api import add_prompt_host, add_sshd_host, answer, call, run_through, wait_for
from tornado.httpclient import HTTPClientError, HTTPResponse

from hy2fa_lab.core import mux
from hy2fa_lab.demo import sshserver
from hy2fa_lab.server.events import SCHEMA_ID

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd
except ImportError:
    from sshd_fixture import RealSshd  # type: ignore[no-redef]

Fetch = Callable[..., Any]
Source = tuple[str, bytes]  # (where it was found, what it said)

_MAX_FILE = 8 << 20  # bytes read of one file
_MAX_ENTRIES = 300_000  # directory entries looked at in one scan
_PRUNED = {".git", "node_modules", ".venv"}  # under the cwd and the temp dir: not ours
_STANDARD_RECORD_KEYS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_LOGGERS = ("tornado", "tornado.access", "tornado.application", "tornado.general",
            "jupyter_server", "ServerApp", "hy2fa_lab", "asyncssh", "traitlets",
            "jupyter_events", "jupyter_client", "pexpect", "asyncio")  # fmt: skip


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    """conftest.py's, logging at DEBUG (the most a secret could leak into)."""
    jp_server_config["ServerApp"]["log_level"] = "DEBUG"
    jp_server_config["Hy2faLab"]["prompt_timeout"] = 60
    return jp_server_config


# ---- the search -------------------------------------------------------------------------


def pattern(secret: str) -> re.Pattern[bytes]:
    """A code is looked for as a whole number, not inside a longer one (timestamps, ids)."""
    body = re.escape(secret.encode())
    if secret.isdigit():
        return re.compile(rb"(?<![0-9])" + body + rb"(?![0-9])")
    return re.compile(body)


def record_text(record: logging.LogRecord) -> str:
    """All a log record holds: message, format and args, exception, stack and extra fields."""
    parts = [str(record.msg), repr(record.args)]
    with contextlib.suppress(Exception):
        parts.append(record.getMessage())
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    parts += [record.exc_text or "", record.stack_info or ""]
    parts += [f"{k}={v!r}" for k, v in vars(record).items() if k not in _STANDARD_RECORD_KEYS]
    return "\n".join(parts)


class Keep(logging.Handler):
    """Keeps every record with its text (formatted as the server formats its log) at once."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.kept: list[tuple[logging.LogRecord, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            formatted = self.format(record)
        except Exception as error:  # still keep what the record holds
            formatted = f"<could not format: {error!r}>"
        self.kept.append((record, formatted + "\n" + record_text(record)))


def process_sources() -> tuple[list[Source], set[int]]:
    """``/proc/*/cmdline`` and ``/proc/*/environ`` of every process we can read."""
    found: list[Source] = []
    read: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        for part in ("cmdline", "environ"):
            try:
                data = (entry / part).read_bytes()
            except OSError:
                continue
            found.append((f"proc-{part} {entry.name} ({comm})", data))
            if part == "environ":
                read.add(int(entry.name))
    return found, read


def file_sources(
    full: list[Path], recent: list[Path], since: float
) -> tuple[list[Source], list[str]]:
    """Every regular file under ``full``, and those changed since ``since`` under ``recent``.

    Sockets, fifos, devices and links are skipped (never opened); so are files over 8 MB,
    which are named in the second list.
    """
    found: list[Source] = []
    skipped: list[str] = []
    seen: set[tuple[int, int]] = set()
    entries = 0
    for root, only_recent in [(p, False) for p in full] + [(p, True) for p in recent]:
        for directory, subdirs, names in os.walk(root):
            if only_recent:
                subdirs[:] = [d for d in subdirs if d not in _PRUNED]
            for name in names:
                entries += 1
                if entries > _MAX_ENTRIES:
                    skipped.append(f"more than {_MAX_ENTRIES} entries; stopped in {directory}")
                    return found, skipped
                path = os.path.join(directory, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                if not stat.S_ISREG(info.st_mode):
                    continue
                if only_recent and max(info.st_mtime, info.st_ctime) < since:
                    continue
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
                if info.st_size > _MAX_FILE:
                    skipped.append(path)
                    continue
                data = _read_regular(path)
                if data is not None:
                    found.append((f"file {path}", data))
    return found, skipped


def _read_regular(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with contextlib.suppress(OSError):
            return handle.read(_MAX_FILE)
    return None


class Secrecy:
    """Collects everything a test can reach, and searches it for typed answers."""

    def __init__(
        self,
        serverapp: Any,
        jp_fetch: Fetch,
        caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str],
        full: list[Path],
        recent: list[Path],
        server_stream: io.StringIO,
    ) -> None:
        self.serverapp = serverapp
        self.server_stream = server_stream
        self.jp_fetch = jp_fetch
        self.caplog = caplog
        self.capfd = capfd
        self.full = full
        self.recent = recent
        self.started = time.time() - 2  # file times have coarse resolution
        formatter = serverapp._log_formatter_cls(
            fmt=serverapp.log_format, datefmt=serverapp.log_datefmt
        )
        self.keep = Keep(formatter)
        self.responses: list[Source] = []
        self.events: list[Source] = []
        self.event_stream = io.StringIO()
        self.event_handler = logging.StreamHandler(self.event_stream)
        self.kernel_messages: list[Source] = []
        self.output = ""
        self.snapshots: list[Source] = []
        self.skipped: list[str] = []

    # ---- collecting -----------------------------------------------------------------

    async def fetch(self, *parts: str, **kwargs: Any) -> HTTPResponse:
        """``jp_fetch``, keeping every response (status, headers, body), errors too."""
        label = f"response {kwargs.get('method', 'GET')} /{'/'.join(parts)}"
        try:
            response: HTTPResponse = await self.jp_fetch(*parts, **kwargs)
        except HTTPClientError as error:
            if error.response is not None:
                self._keep_response(f"{label} {error.code}", error.response)
            raise
        self._keep_response(f"{label} {response.code}", response)
        return response

    def _keep_response(self, label: str, response: HTTPResponse) -> None:
        head = str(list(response.headers.get_all())).encode()
        self.responses.append((label, head + b"\n" + (response.body or b"")))

    async def listener(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        self.events.append((f"event {schema_id}", json.dumps(data, default=str).encode()))

    async def raw_listener(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        self.events.append((f"event (unmodified) {schema_id}", json.dumps(data).encode()))

    def snapshot_processes(self) -> set[int]:
        """Read every process now (e.g. while a master runs); returns the pids whose
        environment was read."""
        found, read = process_sources()
        self.snapshots += found
        return read

    def sources(self) -> Iterator[Source]:
        """Everything collected, and a fresh look at processes, files and output."""
        for record, text in list(self.keep.kept):
            yield f"log {record.name} {record.levelname}: {str(record.msg)[:60]}", text.encode()
        for record in list(self.caplog.records):
            yield f"caplog {record.name}", record_text(record).encode()
        yield from self.responses
        yield from self.events
        yield "event handler output", self.event_stream.getvalue().encode()
        yield "log the server's own stream handlers write", self.server_stream.getvalue().encode()
        yield from self.kernel_messages
        yield from self.snapshots
        yield from process_sources()[0]
        yield "os.environ of the server process", repr(dict(os.environ)).encode()
        found, skipped = file_sources(self.full, self.recent, self.started)
        self.skipped = skipped
        yield from found
        captured = self.capfd.readouterr()
        self.output += captured.out + captured.err
        yield "stdout and stderr (children too)", self.output.encode()

    async def leaks(self, *secrets_: str) -> dict[str, list[str]]:
        """secret -> where it was found (with a little context)."""
        await self.serverapp.event_logger.gather_listeners()
        patterns = {secret: pattern(secret) for secret in secrets_}
        found: dict[str, list[str]] = {secret: [] for secret in secrets_}
        for label, data in self.sources():
            for secret, regex in patterns.items():
                match = regex.search(data)
                if match is not None:
                    context = data[max(0, match.start() - 80) : match.end() + 80]
                    found[secret].append(f"{label}: {context!r}")
        return found

    async def assert_never_seen(self, *secrets_: str) -> None:
        for secret in secrets_:
            self.prove_found(secret)
        found = await self.leaks(*secrets_)
        assert not any(found.values()), json.dumps(found, indent=1)
        assert not [path for path in self.skipped if "entries" in path], self.skipped

    def prove_found(self, secret: str) -> None:
        """Not vacuous: the secret, logged once through the server's own logger, is found
        (in our records and in caplog); then that record is taken out again."""
        probe = logging.getLogger(f"{self.serverapp.log.name}.secrecy-probe")
        probe.debug("planted on purpose: %s", secret)
        regex = pattern(secret)
        ours = [text for record, text in self.keep.kept if record.name == probe.name]
        in_caplog = [r for r in self.caplog.records if r.name == probe.name]
        assert ours and all(regex.search(text.encode()) for text in ours), ours
        assert in_caplog and regex.search(in_caplog[0].getMessage().encode())
        self.forget(lambda record: record.name == probe.name)
        assert not any(
            regex.search(text.encode())
            for record, text in self.keep.kept
            if record.name == probe.name
        )

    def forget(self, which: Callable[[logging.LogRecord], bool]) -> None:
        self.keep.kept[:] = [(r, t) for r, t in self.keep.kept if not which(r)]
        self.caplog.handler.records[:] = [r for r in self.caplog.handler.records if not which(r)]


@pytest.fixture
def secrecy(
    jp_serverapp: Any,
    jp_fetch: Fetch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    short_tmp: Path,
    jp_runtime_dir: Path,
    jp_config_dir: Path,
    jp_data_dir: Path,
    jp_logging_stream: io.StringIO,
) -> Iterator[Secrecy]:
    """Every logger at DEBUG and every record kept; events and responses kept."""
    full = [Path(os.environ["HOME"]), jp_runtime_dir, jp_config_dir, jp_data_dir,
            short_tmp, tmp_path]  # fmt: skip
    recent = [Path.cwd(), Path(tempfile.gettempdir())]
    found = Secrecy(jp_serverapp, jp_fetch, caplog, capfd, full, recent, jp_logging_stream)

    caplog.set_level(logging.DEBUG)  # the root logger, and caplog's handler
    names = {name for name, logger in logging.Logger.manager.loggerDict.items()
             if isinstance(logger, logging.Logger)}  # fmt: skip
    for name in sorted(names | set(_LOGGERS) | {jp_serverapp.log.name}):
        caplog.set_level(logging.DEBUG, logger=name)
    assert jp_serverapp.log.propagate  # pytest-jupyter lets the server's log reach caplog
    # Every record of every logger, whether it propagates or not (traitlets apps do not).
    call_handlers = logging.Logger.callHandlers

    def keep_then_call(self: logging.Logger, record: logging.LogRecord) -> None:
        found.keep.handle(record)
        call_handlers(self, record)

    monkeypatch.setattr(logging.Logger, "callHandlers", keep_then_call)

    events = jp_serverapp.event_logger
    events.add_listener(listener=found.listener)  # every registered schema
    events.add_listener(modified=False, listener=found.raw_listener)
    events.register_handler(found.event_handler)
    try:
        yield found
    finally:
        events.remove_listener(listener=found.listener)
        events.remove_listener(listener=found.raw_listener)
        events.remove_handler(found.event_handler)


def otp_generator() -> pyotp.TOTP:
    """pam_oath with ``digits=8``: eight digits are unlikely to turn up by chance anywhere."""
    return pyotp.TOTP(pyotp.random_base32(), digits=8)


def wrong_code(generator: pyotp.TOTP) -> str:
    while True:
        candidate = f"{secrets.randbelow(10**generator.digits):0{generator.digits}d}"
        if not generator.verify(candidate, valid_window=2):
            return candidate


def a_password() -> str:
    return f"pw-{secrets.token_hex(12)}"


async def settle_and_check(
    secrecy: Secrecy, short_tmp: Path, view: dict[str, Any], *secrets_: str
) -> None:
    """No ssh left, no master left; the login was seen in every channel; then the secrets are
    nowhere."""
    assert mux.alive(view["control_path"]) is None
    assert ssh_processes(str(short_tmp)) == {}
    await asyncio.sleep(0.1)  # events are delivered to listeners as tasks
    await secrecy.serverapp.event_logger.gather_listeners()
    keys = (view["name"], view["id"])  # REST clients name it; the widget and Lab use its id
    answered = [f"POST {secrecy.serverapp.base_url}hy2fa/connections/{key}/answer" for key in keys]
    # The server's request log:
    assert any(line in text for _, text in secrecy.keep.kept for line in answered)
    states = {json.loads(data).get("state") for _, data in secrecy.events}
    assert {"prompting", "verifying"} <= states and states & {"connected", "failed"}
    assert any(
        f"/hy2fa/connections/{key} 200" in label for label, _ in secrecy.responses for key in keys
    )
    await secrecy.assert_never_seen(*secrets_)


# ---- the harness can fail -----------------------------------------------------------------


@pytest.mark.timeout(60)
async def test_the_search_finds_a_secret_planted_in_every_channel(
    secrecy: Secrecy, jp_serverapp: Any
) -> None:
    code = f"{secrets.randbelow(9 * 10**7) + 10**7}"
    password = a_password()
    secrecy.prove_found(code)  # a log record, then taken out again
    assert not any((await secrecy.leaks(code)).values())

    logging.getLogger("hy2fa_lab.secrecy-probe").info("planted %s", password)
    jp_serverapp.event_logger.emit(
        schema_id=SCHEMA_ID,
        data={
            "id": "planted-1",
            "name": "planted",
            "cluster": "planted",
            "state": "failed",
            "prompt": None,
            "version": 0,
            "message": password,
        },
    )
    with pytest.raises(HTTPClientError):
        await secrecy.fetch("hy2fa", "connections", password)  # "No connection named ..."
    home_file = Path(os.environ["HOME"]) / "planted.txt"
    home_file.write_text(code)
    with tempfile.NamedTemporaryFile("w", prefix="hy2fa-planted-", delete=False) as handle:
        handle.write(password)  # in the temp dir (the recently changed files)
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; print(flush=True); time.sleep(30)", password],
        env={"PLANTED": code, "PATH": os.environ.get("PATH", "")},
        stdout=subprocess.PIPE,
    )
    try:
        # Its first line: it runs Python. Popen returns once exec began, and for a moment then
        # /proc/<pid>/cmdline and environ are still empty.
        assert proc.stdout is not None and proc.stdout.readline() == b"\n"
        print(f"printed {code}", flush=True)
        found = await secrecy.leaks(code, password)
    finally:
        proc.kill()
        proc.communicate()
        os.unlink(handle.name)

    def kinds(secret: str) -> set[str]:
        return {where.split(" ", 1)[0] for where in found[secret]}

    assert {"log", "caplog", "event", "response", "file", "proc-cmdline"} <= kinds(password)
    assert any(where.startswith("event handler output") for where in found[password])
    assert any(handle.name in where for where in found[password])
    assert {"file", "proc-environ", "stdout"} <= kinds(code)
    assert any(str(home_file) in where for where in found[code])


# ---- REST logins against the prompt server ------------------------------------------------


@pytest.mark.timeout(120)
async def test_sigma2_code_and_password_leave_no_trace(
    secrecy: Secrecy,
    prompt_server: Callable[..., Any],
    client_config: Path,
    short_tmp: Path,
) -> None:
    generator = otp_generator()
    password = a_password()
    wrong = wrong_code(generator)
    server = prompt_server(
        sshserver.sigma2(lambda text: generator.verify(text, valid_window=1), password)
    )
    add_prompt_host(client_config, "sigma", server.port)
    fetch = secrecy.fetch

    await call(fetch, "POST", "connections", body={"cluster": "sigma"})
    first = await wait_for(fetch, "sigma", {"prompting"})
    assert first["prompt"]["kind"] == "otp"
    await answer(fetch, "sigma", wrong, first["prompt"]["id"])
    again = await wait_for(fetch, "sigma", {"prompting"}, first["prompt"]["id"])
    assert again["prompt"]["kind"] == "otp" and again["message"] == "Wrong code — try again"
    code = generator.now()
    await answer(fetch, "sigma", code, again["prompt"]["id"])
    second = await wait_for(fetch, "sigma", {"prompting"}, again["prompt"]["id"])
    assert second["prompt"]["kind"] == "password"
    foreground = set(ssh_processes(second["control_path"]))  # the ssh the code was typed to
    assert foreground and foreground <= secrecy.snapshot_processes()
    broken = a_password()  # refused (not one line): not echoed, nor is the body logged
    with pytest.raises(HTTPClientError) as refused:
        await answer(fetch, "sigma", broken + "\n", second["prompt"]["id"])
    assert refused.value.code == 422
    await answer(fetch, "sigma", password, second["prompt"]["id"])
    done = await wait_for(fetch, "sigma", {"connected"})
    assert run_through(client_config, done["control_path"], "sigma", "echo", "hi") == "hi\n"

    late = a_password()  # refused (no prompt waits): the same
    with pytest.raises(HTTPClientError) as refused:
        await answer(fetch, "sigma", late)
    assert refused.value.code == 409

    await call(fetch, "GET", "connections")
    await call(fetch, "GET", "clusters")
    read = secrecy.snapshot_processes()
    assert done["master_pid"] in read  # the master's environment was looked at
    gone = await call(fetch, "DELETE", "connections", "sigma")
    assert gone["state"] == "disconnected"
    await settle_and_check(secrecy, short_tmp, done, code, password, wrong, late, broken)


@pytest.mark.timeout(120)
async def test_key_passphrase_and_code_leave_no_trace(
    secrecy: Secrecy,
    prompt_server: Callable[..., Any],
    client_config: Path,
    short_tmp: Path,
) -> None:
    """An encrypted key (ssh asks its passphrase on the pty), then a code."""
    passphrase = f"pp-{secrets.token_hex(12)}"
    key = short_tmp / "id_keyed"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "keyed", "-f", str(key)],
        check=True, timeout=30, capture_output=True,
    )  # fmt: skip
    public_key = key.with_name(key.name + ".pub").read_text().strip()
    generator = otp_generator()
    step = sshserver.PromptStep(
        "Verification code: ", expected=lambda text: generator.verify(text, valid_window=1)
    )
    server = prompt_server(sshserver.PromptScript([step], client_key=public_key))
    with client_config.open("a") as handle:
        handle.write(
            f"Host keyed\n  HostName 127.0.0.1\n  Port {server.port}\n  User keyed\n"
            f"  IdentityFile {key}\n  IdentitiesOnly yes\n  IdentityAgent none\n"
            f"  UserKnownHostsFile {short_tmp}/known_hosts\n  StrictHostKeyChecking no\n"
            "  PreferredAuthentications publickey,keyboard-interactive\n  LogLevel ERROR\n"
        )
    fetch = secrecy.fetch

    await call(fetch, "POST", "connections", body={"cluster": "keyed"})
    asked = await wait_for(fetch, "keyed", {"prompting"})
    assert asked["prompt"]["kind"] == "passphrase", asked["prompt"]
    await answer(fetch, "keyed", passphrase, asked["prompt"]["id"])
    then = await wait_for(fetch, "keyed", {"prompting"}, asked["prompt"]["id"])
    assert then["prompt"]["kind"] == "otp"
    code = generator.now()
    await answer(fetch, "keyed", code, then["prompt"]["id"])
    done = await wait_for(fetch, "keyed", {"connected"})
    assert run_through(client_config, done["control_path"], "keyed", "echo", "ok") == "ok\n"

    await call(fetch, "GET", "connections")
    await call(fetch, "GET", "clusters")
    assert done["master_pid"] in secrecy.snapshot_processes()
    await call(fetch, "DELETE", "connections", "keyed")
    await settle_and_check(secrecy, short_tmp, done, passphrase, code)


@pytest.mark.timeout(120)
async def test_a_refused_password_is_not_in_the_failure(
    secrecy: Secrecy,
    prompt_server: Callable[..., Any],
    client_config: Path,
    short_tmp: Path,
) -> None:
    """ssh's last words become the failure message: the typed answers are not among them."""
    generator = otp_generator()
    server = prompt_server(
        sshserver.sigma2(lambda text: generator.verify(text, valid_window=1), a_password())
    )
    add_prompt_host(client_config, "refused", server.port)
    fetch = secrecy.fetch
    await call(fetch, "POST", "connections", body={"cluster": "refused"})
    typed: list[str] = []
    after = 0
    while True:
        view = await wait_for(fetch, "refused", {"prompting", "failed"}, after)
        if view["state"] == "failed":
            break
        after = view["prompt"]["id"]
        response = generator.now() if view["prompt"]["kind"] == "otp" else a_password()
        typed.append(response)
        await answer(fetch, "refused", response, after)
    assert view["reason"] == "auth_failed" and "Permission denied" in view["message"]
    assert len(typed) >= 4  # each attempt: the code, then a wrong password
    await call(fetch, "GET", "connections")
    await call(fetch, "GET", "clusters")
    await settle_and_check(secrecy, short_tmp, view, *sorted(set(typed)))


@pytest.mark.timeout(120)
async def test_duo_passcode_leaves_no_trace(
    secrecy: Secrecy,
    prompt_server: Callable[..., Any],
    client_config: Path,
    short_tmp: Path,
) -> None:
    passcode = f"{secrets.randbelow(9 * 10**8) + 10**8}"
    wrong = f"{secrets.randbelow(9 * 10**8) + 10**8}"
    server = prompt_server(sshserver.duo(passcode))
    add_prompt_host(client_config, "duo", server.port)
    fetch = secrecy.fetch

    await call(fetch, "POST", "connections", body={"cluster": "duo"})
    menu = await wait_for(fetch, "duo", {"prompting"})
    assert menu["prompt"]["kind"] == "duo"
    assert any("Duo Push" in option for option in menu["prompt"]["options"])
    await answer(fetch, "duo", wrong, menu["prompt"]["id"])
    again = await wait_for(fetch, "duo", {"prompting"}, menu["prompt"]["id"])
    assert again["message"] == "Wrong passcode — try again"
    await answer(fetch, "duo", passcode, again["prompt"]["id"])
    done = await wait_for(fetch, "duo", {"connected"})
    assert run_through(client_config, done["control_path"], "duo", "echo", "ok") == "ok\n"

    await call(fetch, "GET", "connections")
    await call(fetch, "GET", "clusters")
    assert done["master_pid"] in secrecy.snapshot_processes()
    await call(fetch, "DELETE", "connections", "duo")
    await settle_and_check(secrecy, short_tmp, done, passcode, wrong)


# ---- the real sshd with pam_google_authenticator -------------------------------------------


@pytest.mark.sshd
@pytest.mark.timeout(120)
async def test_real_sshd_code_leaves_no_trace(
    secrecy: Secrecy, real_sshd: RealSshd, client_config: Path, short_tmp: Path
) -> None:
    add_sshd_host(client_config, real_sshd)
    fetch = secrecy.fetch
    await call(fetch, "POST", "connections", body={"cluster": "fixture"})
    first = await wait_for(fetch, "fixture", {"prompting"})
    assert first["prompt"]["kind"] == "otp"
    wrong = real_sshd.wrong_code()
    await answer(fetch, "fixture", wrong, first["prompt"]["id"])
    again = await wait_for(fetch, "fixture", {"prompting"}, first["prompt"]["id"])
    code = real_sshd.totp()
    await answer(fetch, "fixture", code, again["prompt"]["id"])
    done = await wait_for(fetch, "fixture", {"connected"})
    assert run_through(client_config, done["control_path"], "fixture", "echo", "ok") == "ok\n"

    await call(fetch, "GET", "connections")
    await call(fetch, "GET", "clusters")
    assert done["master_pid"] in secrecy.snapshot_processes()
    await call(fetch, "DELETE", "connections", "fixture")
    await settle_and_check(secrecy, short_tmp, done, code, wrong)


# ---- the %hy2fa widget in a real kernel ------------------------------------------------------


class RecordingWS:
    """The kernel websocket, keeping every message that comes from the kernel; ``timeline``
    has the comm messages both ways, in order (to rebuild a frontend's widget state)."""

    def __init__(self, ws: Any, kept: list[Source]) -> None:
        self.ws = ws
        self.kept = kept
        self.timeline: list[dict[str, Any]] = []

    async def read_message(self) -> Any:
        raw = await self.ws.read_message()
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else bytes(raw)
            self.kept.append((f"kernel message {len(self.kept)}", data))
            self._note(data)
        return raw

    def write_message(self, message: Any) -> Any:
        self._note(message.encode() if isinstance(message, str) else bytes(message))
        return self.ws.write_message(message)

    def _note(self, data: bytes) -> None:
        with contextlib.suppress(ValueError):
            msg = json.loads(data)
            if msg.get("header", {}).get("msg_type") == "comm_msg":
                self.timeline.append(msg["content"])

    def close(self) -> None:
        self.ws.close()


class RecordedKernel(KernelWS):
    def __init__(self, recording: RecordingWS) -> None:
        super().__init__(recording)
        self.recording = recording


@pytest_asyncio.fixture
async def kernel(
    secrecy: Secrecy, jp_ws_fetch: Fetch, jp_serverapp: Any
) -> AsyncIterator[RecordedKernel]:
    """A kernel started by the server, as Lab starts one; every message from it is kept."""
    jp_serverapp.write_server_info_file()  # what the kernel's find_server() reads
    response = await secrecy.fetch(
        "api", "kernels", method="POST", body=json.dumps({"name": "python3"})
    )
    kernel_id = json.loads(response.body)["id"]
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    client = RecordedKernel(RecordingWS(ws, secrecy.kernel_messages))
    await client.run("1", timeout=120)
    try:
        yield client
    finally:
        await client.close()
        await secrecy.fetch("api", "kernels", kernel_id, method="DELETE")
        jp_serverapp.remove_server_info_file()


async def kernel_wait(kernel: KernelWS, condition: str, timeout: float = 20) -> None:
    """Wait in the kernel until ``condition`` (about ``w``, the last widget) holds."""
    result = await kernel.run(
        "import time\n"
        "from hy2fa_lab.kernel.widget import ConnectWidget\n"
        "w = ConnectWidget.instances[-1]\n"
        f"for _ in range({int(timeout * 10)}):\n"
        f"    if {condition}: break\n"
        "    time.sleep(0.1)\n"
        f"print('HELD' if {condition} else 'NOT')\n",
        timeout=timeout + 10,
    )
    assert result.stdout.strip() == "HELD", (condition, result.stdout)


@pytest.mark.timeout(240)
async def test_the_widget_keeps_no_code_in_its_state(
    secrecy: Secrecy,
    kernel: RecordedKernel,
    prompt_server: Callable[..., Any],
    client_config: Path,
    short_tmp: Path,
) -> None:
    generator = otp_generator()
    password = a_password()
    server = prompt_server(
        sshserver.sigma2(lambda text: generator.verify(text, valid_window=1), password)
    )
    add_prompt_host(client_config, "sigma", server.port)
    fetch = secrecy.fetch

    await kernel.run("%load_ext hy2fa_lab")
    await kernel.run("%hy2fa connect sigma", timeout=30)
    first = await wait_for(fetch, "sigma", {"prompting"})
    (field_id,) = kernel.widgets("PasswordModel")
    (submit_id,) = [
        comm_id
        for comm_id, state in kernel.widgets("ButtonModel").items()
        if state.get("description") == "Submit"
    ]
    await kernel_wait(kernel, f"w._prompt_id == {first['prompt']['id']}")

    # The code: typed, then Enter (the field sends its value: continuous_update is off).
    code = generator.now()
    kernel.comm_msg(field_id, {"method": "update", "state": {"value": code}, "buffer_paths": []})
    second = await wait_for(fetch, "sigma", {"prompting"}, first["prompt"]["id"])
    assert second["prompt"]["kind"] == "password"
    await kernel_wait(kernel, f"w._prompt_id == {second['prompt']['id']}")
    # The password: typed, then the Submit button (the field sends its value as it blurs).
    kernel.comm_msg(
        field_id, {"method": "update", "state": {"value": password}, "buffer_paths": []}
    )
    kernel.comm_msg(submit_id, {"method": "custom", "content": {"event": "click"}})
    done = await wait_for(fetch, "sigma", {"connected"}, second["prompt"]["id"])
    await kernel_wait(kernel, "\"data-state='connected'\" in w.status.value")

    # A frontend that asks for the field's whole state (as a reloaded page does) gets "".
    updates_before = len(kernel.comm_updates)
    kernel.comm_msg(field_id, {"method": "request_state"})
    deadline = time.monotonic() + 20
    while not any(
        cid == field_id and "placeholder" in data.get("state", {})
        for cid, data in kernel.comm_updates[updates_before:]
    ):
        assert time.monotonic() < deadline, "the kernel did not send the field's state"
        await asyncio.sleep(0.05)
    # The state a frontend holds: the comm_open state with every update it typed and every
    # update the kernel sent applied in order.
    model = dict(kernel.comm_opens[field_id]["state"])
    timeline = kernel.recording.timeline
    for content in timeline:
        data = content.get("data", {})
        if content["comm_id"] == field_id and data.get("method") in ("update", "echo_update"):
            model.update(data.get("state", {}))
    assert model["value"] == ""
    assert {code, password} <= {c["data"].get("state", {}).get("value") for c in timeline}
    sent = [d["state"]["value"] for c, d in kernel.comm_updates if c == field_id
            and "value" in d.get("state", {})]  # fmt: skip
    assert sent and set(sent) == {""}  # the kernel only ever told the frontend ""
    # The kernel's own view of every widget it holds.
    states = await kernel.run(
        "import json\n"
        "from ipywidgets.widgets.widget import _instances\n"
        "print(json.dumps({k: w.get_state() for k, w in _instances.items()}, default=repr))\n"
        "print(repr(w.password.value))"
    )
    assert states.stdout.strip().endswith("''")
    secrecy.kernel_messages.append(("kernel widget states", states.stdout.encode()))

    # Not vacuous: what the kernel prints reaches the kept messages.
    probe = f"probe-{secrets.token_hex(8)}"
    await kernel.run(f"print('{probe[:6]}' + '{probe[6:]}')")
    assert any(probe.encode() in data for _, data in secrecy.kernel_messages)

    assert done["master_pid"] in secrecy.snapshot_processes()
    gone = await kernel.run("%hy2fa disconnect sigma")
    assert "sigma disconnected" in gone.stdout
    await settle_and_check(secrecy, short_tmp, done, code, password)
