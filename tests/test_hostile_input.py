"""Hostile values on every input surface, as hypothesis properties.

The surfaces: the REST API through a real Jupyter server (every POST body field and every URL
path part), every argument of ``hy2fa connect/status/path/disconnect/config-ssh``, every
``%hy2fa`` line, and the arguments of ``ensure()`` and ``socket_path()``.

The property is the same on each: a hostile value is refused with a plain error (a 4xx JSON
``{message, reason}``; exit status 2, or 1 where the value is well formed but names nothing,
with one line of text; ``UsageError``; ``Hy2faError``), never a 5xx, a traceback or another
exception, and it never starts an ``ssh -M`` login. ``ssh`` is a wrapper that logs every call,
so "nothing started" is observed, not assumed. ``ssh -G`` (which only prints settings) may run
for a value that only ssh can judge (the message then says "ssh refuses"), and before a control
path template is expanded; a value hy2fa refuses on its own starts nothing at all.

Every strategy builds values that are refused by construction (a wrong JSON type, a character
that is never allowed, a leading ``-``, a number out of range...): a value that merely looks odd
but is valid (a host named ``%d``, for IPv6 zone ids like ``fe80::1%eth0``) is a login, not an
attack. Sanity checks prove each half of the property can fail: a valid request does spawn
``ssh -M`` in the log, a valid answer does reach the prompt, a 500 is caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import json
import os
import shlex
import shutil
import string
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from helpers import SECRET, finish, wrong_code
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from IPython.core.error import UsageError
from test_cli import Cli, assert_no_ssh_left
from test_server_api import add_prompt_host, call, wait_for
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from tornado.httputil import HTTPHeaders
from tornado.iostream import StreamClosedError

from hy2fa_lab import cli
from hy2fa_lab.config import settings_from_jupyter_config
from hy2fa_lab.core.errors import Hy2faError
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.profiles import BUILTIN_CLUSTERS
from hy2fa_lab.core.validate import SAFE_SSH_OPTIONS
from hy2fa_lab.demo import sshserver
from hy2fa_lab.kernel import api
from hy2fa_lab.kernel.backends import LocalBackend
from hy2fa_lab.kernel.magic import USAGE, load_ipython_extension

REAL_SSH = shutil.which("ssh") or "/usr/bin/ssh"
TRACEBACK = "Traceback (most recent call last)"
REFUSED = (400, 404, 409, 422)
FIVE_MB = 5 * 1024 * 1024
# Tornado reads at most 64 KiB of request line and headers and drops a longer request before
# any handler runs: a request that gets no answer is accepted only for a URL longer than this.
URL_LIMIT = 60_000

# database=None keeps no examples, but Hypothesis also caches Unicode tables and constants of the
# source in its home directory (./.hypothesis by default): that stays out of the checkout too.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"hy2fa-lab-hypothesis-{os.getuid()}")


def bounded(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # no .hypothesis directory in the checkout
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # one server / one temp dir for all examples
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )


# ---- the ssh wrapper -------------------------------------------------------------------------


class SshLog:
    """The calls an ssh wrapper logged: one line each, its arguments joined by blanks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        return self.path.read_text(encoding="utf-8", errors="replace").splitlines()

    def mark(self) -> None:
        self.seen = len(self.lines())

    def new(self) -> list[str]:
        return self.lines()[self.seen :]

    def logins(self) -> list[str]:
        return [line for line in self.lines() if line.startswith("-M ")]


def ssh_wrapper(directory: Path, *, logins: bool) -> tuple[Path, SshLog]:
    """``directory/ssh``: logs each call in one write, then runs the real client.

    Without ``logins`` only ``ssh -G`` runs; anything else (a master login) exits 255 at once,
    so a property run never reaches the network even if it fails.
    """
    log = directory / "ssh-calls.log"
    wrapper = directory / "ssh"
    run = f'exec {REAL_SSH} "$@"' if logins else f'[ "$1" = -G ] && exec {REAL_SSH} "$@"\nexit 255'
    wrapper.write_text(
        "#!/bin/sh\n"
        "line=$(printf '%s ' \"$@\" | tr '\\n\\r' '  ')\n"
        f"printf '%s\\n' \"$line\" >> '{log}'\n"
        f"{run}\n"
    )
    wrapper.chmod(0o755)
    return wrapper, SshLog(log)


def assert_nothing_started(log: SshLog, pwned: Path, *, lookups_allowed: bool) -> None:
    """No master login; no ssh at all unless ssh itself had to be asked (``ssh -G``), or its
    version (``ssh -V``, which takes no input of anyone's)."""
    new = [line for line in log.new() if line != "-V "]
    assert [line for line in new if not line.startswith("-G ")] == [], new
    if not lookups_allowed:
        assert new == [], new
    assert not pwned.exists()


def asked_ssh(message: str) -> bool:
    """Whether the refusal needed ``ssh -G``: ssh's own, or a control path (which is expanded
    from what ssh resolved)."""
    return "ssh refuses" in message or "control path" in message


def fill(value: Any, tmp: Path) -> Any:
    """Put the test's temp dir into the ``{tmp}``/``{pwned}`` placeholders of a drawn value."""
    if isinstance(value, str):
        return value.replace("{pwned}", f"{tmp}/pwned").replace("{tmp}", str(tmp))
    if isinstance(value, list):
        return [fill(item, tmp) for item in value]
    if isinstance(value, dict):
        return {fill(key, tmp): fill(item, tmp) for key, item in value.items()}
    return value


# ---- strategies ------------------------------------------------------------------------------

TOKENS = (
    "%d", "%h", "%%", "%C", "%r", "%u", "%n", "%", "%q", "../", "..%2F", "..", "~", "-", "--",
    "-oProxyCommand=touch {pwned}", "-M", "-S", "$(touch {pwned})", "`touch {pwned}`",
    ";touch {pwned}", "|touch {pwned}", "&& touch {pwned}", "1e3", "0", "-1", "70000",
    "yes; x", "\u202e", "\u200f", "\u061c", "\ufeff", "\x00", "\n", "\r\n", "\t", " ",
    "\x1b[31m", "\x7f", "\ud800", "\udcff", "é", "مرحبا", "\u0661\u0662", "😀", "\\", "'",
    '"', "{}",
)  # fmt: skip
any_char = st.characters(exclude_categories=())  # lone surrogates too
piece = st.one_of(st.sampled_from(TOKENS), any_char, st.text(max_size=6))
short_wild = st.lists(piece, max_size=6).map("".join)


def repeated(pieces: Sequence[str], low: int, high: int) -> st.SearchStrategy[str]:
    """A string of ``low`` to ``high`` characters made of one piece over and over."""
    return st.builds(
        lambda part, size: (part * (size // len(part) + 1))[:size],
        st.sampled_from(pieces),
        st.integers(low, high),
    )


HUGE = ("a", "%d", "é", "\x00", "-", "../", "\u202e", "\ud800")
LONGEST = 100_000  # the longest drawn string (%hy2fa lines: see MAGIC_LONGEST)


def wild_text(longest: int = LONGEST) -> st.SearchStrategy[str]:
    return st.one_of(short_wild, repeated(HUGE, 256, longest))


wild = wild_text()


def containing(pieces: Sequence[str]) -> st.SearchStrategy[str]:
    """Any text around one of ``pieces`` (each of which alone makes the value refused)."""
    return st.builds(lambda a, p, b: a + p + b, short_wild, st.sampled_from(pieces), short_wild)


def inside(pieces: Sequence[str]) -> st.SearchStrategy[str]:
    """As ``containing``, for a value that is stripped first (``-o``): the piece stays inside."""
    return st.builds(
        lambda a, p, b: f"x{a}{p}{b}x", short_wild, st.sampled_from(pieces), short_wild
    )


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and Infinity too: Python's json reads them
    st.sampled_from([0, -1, 70000, 2**31, 2**64, 10**30, 1e3, 1e99, -0.0]),
)
json_junk = st.recursive(
    json_scalars | short_wild,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_wild, inner, max_size=3),
    max_leaves=8,
)
not_text = st.one_of(
    json_scalars,
    st.lists(json_junk, max_size=3),
    st.dictionaries(short_wild, json_junk, max_size=3),
)

# Characters a host name never has (validate.host), and one that is too long.
TARGET_BAD = (
    "/", ";", "$", " ", "\n", "\x00", "\t", "\x7f", "é", "\u202e", "\ud800", "\udcff", "'", "`",
    "*", "~", ",", "=", "!", "#", "\\", "(", ")", "{", "}", "?", "&", "|", "<", ">", "😀",
)  # fmt: skip


def refused_targets(longest: int = LONGEST) -> st.SearchStrategy[str]:
    return st.one_of(
        containing(TARGET_BAD),
        short_wild.map(lambda text: "-" + text),
        st.sampled_from(
            [
                "",
                "../",
                "../../etc/passwd",
                "-oProxyCommand=touch {pwned}",
                "$(touch {pwned})",
                "saga\n-oProxyCommand=touch {pwned}",
                "saga;touch {pwned}",
                "-M",
            ]
        ),
        st.integers(256, longest).map(lambda size: "a" * size),
    )


refused_target = refused_targets()
# Names that are well-formed hosts but never cluster names (config-ssh's alias).
NOT_CLUSTER_NAMES = ("%d", "%h", "%%", "..%2F", "..", "a:b", "a@b", "_x", ".x", "[::1]")

# A user name: refused by hy2fa itself, or by ssh (its shell metacharacters, ``ssh -G``).
USER_BAD_HY2FA = ("@", ":", "/", "%", "%d", "\x00", "\n", "\r", " ", "\t", "\x7f", "\x1b")
USER_BAD_UNICODE = ("\ud800", "\udcff")  # not UTF-8: ssh would get broken bytes, or none
USER_BAD_SSH = (";", "'", "`", '"', "|", "&", "<", ">", "(", ")", "{", "}")


def refused_users(longest: int = LONGEST) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(""),
        short_wild.map(lambda text: "-" + text),
        containing(USER_BAD_HY2FA + USER_BAD_UNICODE + USER_BAD_SSH),
        st.sampled_from(["$(touch {pwned})", "`touch {pwned}`", "-oProxyCommand=touch {pwned}"]),
        st.integers(256, longest).map(lambda size: "u" * size),
    )


refused_user = refused_users()

PERSIST_BAD = (
    "-1", "1e99", "yes; x", "9999999999w", "9" * 20, "", " ", "1.5h", "10 m", "0x10", "nan",
    "inf", "-oProxyCommand=touch {pwned}", "%d", "../", "yes\x00", "10m\n5", "forever", "1h-1m",
    "1y", "\u0661\u0662y", "\u202e10m",
)  # fmt: skip
refused_persist = st.one_of(
    st.sampled_from(PERSIST_BAD),
    containing((";", "x", "-", ".", "/", "%", "\x00", "é", "@", "\ud800")),
    st.integers(min_value=2**31).map(str),
)

PORT_BAD = (
    "0", "70000", "-1", "1e3", "", " ", "22.5", "0x16", "nan", "65536", "9" * 20, "22;touch x",
    "-oProxyCommand=touch {pwned}", "%d", "../", "\u0662\u0662x", "\ud800",
)  # fmt: skip
refused_port = st.one_of(
    st.sampled_from(PORT_BAD),
    containing(("x", "-", ".", "e", ";", "/", "\x00", "%", "é")),
    st.one_of(st.integers(max_value=0), st.integers(min_value=65536)).map(str),
)

UNSAFE_OPTIONS = (
    "ProxyCommand", "LocalCommand", "PermitLocalCommand", "RemoteCommand", "KnownHostsCommand",
    "ControlPath", "ControlMaster", "ControlPersist", "PKCS11Provider", "SecurityKeyProvider",
    "UserKnownHostsFile", "GlobalKnownHostsFile", "Include", "Match", "Host", "SendEnv",
    "SetEnv", "LocalForward", "RemoteForward", "DynamicForward", "ForwardAgent", "Port",
)  # fmt: skip
CONTROL = ("\x00", "\n", "\r", "\x1b", "\x7f", "\x1f")


def _option(keys: st.SearchStrategy[str], values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda key, value: f"{key}={value}", keys, values)


refused_option = st.one_of(
    _option(st.sampled_from(UNSAFE_OPTIONS), short_wild),
    _option(
        st.text(string.ascii_letters, min_size=1, max_size=20).filter(
            lambda key: key.lower() not in SAFE_SSH_OPTIONS
        ),
        short_wild,
    ),
    _option(
        st.sampled_from(["User", "HostName", "IdentityFile", "ServerAliveInterval", "LogLevel"]),
        inside(CONTROL),
    ),
    _option(st.just("User"), refused_user.filter(lambda user: user.strip() == user != "")),
    _option(st.sampled_from(["HostName", "HostKeyAlias"]), inside(TARGET_BAD)),
    _option(
        st.just("ProxyJump"),
        st.sampled_from(
            ["-oProxyCommand=touch {pwned}", "a b", "$(touch {pwned})", "a;b", "%d", "a/b"]
        ),
    ),
    st.sampled_from(
        [
            "NoEquals",
            "=x",
            "StrictHostKeyChecking=no",
            "StrictHostKeyChecking=accept-new",
            "StrictHostKeyChecking=off",
            "IdentityAgent=" + "a" * 2000,
            "Proxy Command=touch {pwned}",
            "\x00User=x",
        ]
    ),
)

CONTROL_PATH_BAD = (
    "%h", "%C", "cm-%C", "x/%C", "../%C", "..%2F%C", "%%", "{tmp}/%%", "{tmp}/%", "{tmp}/%q",
    "{tmp}/%z%C", "~root/%C", "-oProxyCommand=touch {pwned}", "{tmp}/\x00/%C",
    "{tmp}/\ud800/%C", "{tmp}/%%C%%d",
)  # fmt: skip
refused_control_path = st.one_of(
    st.sampled_from(CONTROL_PATH_BAD),
    st.builds(
        lambda middle, token: "{tmp}/" + middle + "%" + token,
        short_wild,
        st.sampled_from(["q", "z", "Z", "A", "1", "é", "\x00", ""]),
    ),
    short_wild.map(lambda text: "x" + text + "/%C"),  # relative: no leading / or ~/ or %d
)


# ---- REST: a real Jupyter server -------------------------------------------------------------

Fetch = Callable[..., Any]
CLUSTER = "configured"  # 127.0.0.1 port 1: a login that does start fails at once, locally
PROMPT_ALIAS = "otp"
NAMES_IN_USE = set(BUILTIN_CLUSTERS) | {CLUSTER, PROMPT_ALIAS}


@pytest.fixture
def server_ssh(short_tmp: Path) -> tuple[Path, SshLog]:
    return ssh_wrapper(short_tmp, logins=True)


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], server_ssh: tuple[Path, SshLog]
) -> dict[str, Any]:
    """conftest.py's, with ssh run through the logging wrapper and a configured cluster."""
    wrapper, _ = server_ssh
    jp_server_config["Hy2faLab"].update(
        ssh=str(wrapper),
        prompt_timeout=300,  # the prompt stays open through every hostile answer
        clusters={CLUSTER: {"host": "127.0.0.1", "port": 1, "persist": "10m"}},
    )
    return jp_server_config


class Rest:
    """Requests to the server under test, also with URL paths as given (pre-quoted)."""

    def __init__(
        self, fetch: Fetch, client: Any, base_url: str, headers: dict[str, str], log: SshLog
    ) -> None:
        self.fetch = fetch
        self.client = client
        self.base_url = base_url
        self.headers = headers
        self.log = log

    async def post(self, *parts: str, body: Any) -> HTTPResponse:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response: HTTPResponse = await self.fetch(
            "hy2fa", *parts, method="POST", body=data, raise_error=False, request_timeout=60
        )
        return response

    async def raw(self, method: str, path: str, body: bytes | None = None) -> HTTPResponse:
        """``path`` goes into the URL as it is: the caller quotes (or does not)."""
        if body is None and method == "POST":
            body = b"{}"
        url = f"{self.base_url.rstrip('/')}/hy2fa/{path}"
        response: HTTPResponse = await self.client.fetch(
            url,
            method=method,
            body=body,
            headers=self.headers,
            raise_error=False,
            request_timeout=60,
        )
        return response

    async def send(self, method: str, path: str, body: bytes | None = None) -> HTTPResponse | None:
        """The answer, or None when tornado dropped the request before any handler saw it
        (which it does to a request line past its 64 KiB limit, and only then)."""
        try:
            response = await self.raw(method, path, body)
        except (ConnectionError, StreamClosedError, HTTPClientError):  # 599: stream closed
            response = None
        if response is None or (response.code in (400, 431, 599) and not response.body):
            assert len(path) > URL_LIMIT, (method, path[:200], response)
            return None
        return response


@pytest.fixture
async def rest(
    jp_fetch: Fetch,
    http_server_client: Any,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
    server_ssh: tuple[Path, SshLog],
) -> Rest:
    # The first request waits for the start-up look for running masters (ssh -G for each
    # cluster): only what happens after it is the test's.
    await call(jp_fetch, "GET", "connections")
    return Rest(jp_fetch, http_server_client, jp_base_url, jp_auth_header, server_ssh[1])


def refusal(response: HTTPResponse) -> dict[str, Any]:
    """The answer to every hostile request: a 4xx with a short JSON ``{message, reason}``."""
    assert response.code in REFUSED, (response.code, (response.body or b"")[:500])
    payload = json.loads(response.body)
    assert isinstance(payload, dict), payload
    message = payload.get("message")
    assert isinstance(message, str) and message, payload
    # A path part that is not UTF-8 is refused by tornado itself, with no reason word.
    tornado_400 = response.code == 400 and message.startswith("Invalid unicode in ")
    assert "reason" in payload
    assert tornado_400 or (isinstance(payload["reason"], str) and payload["reason"]), payload
    assert TRACEBACK not in message and not payload.get("traceback"), payload
    assert len(message) <= 1000, message[:300]  # a refused value is quoted cut short
    return payload


def deep(size: int, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    return prefix + b"[" * size + b"]" * size + suffix


valid_user = st.sampled_from(["tester", "a.b_c"])
valid_persist = st.sampled_from(["10m", 600, "yes", "1h40m"])
refused_persist_json = st.one_of(
    st.booleans(),
    st.floats(),
    st.lists(json_junk, max_size=2),
    st.dictionaries(short_wild, json_junk, max_size=2),
    st.integers(max_value=-1),
    st.integers(min_value=2**31),
    refused_persist,
)
unknown_fields = st.dictionaries(
    wild.filter(lambda key: key not in ("cluster", "user", "persist")),
    json_junk,
    min_size=1,
    max_size=3,
)
raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"{",
            b"[",
            b"\xff\xfe\x00",
            b"NaN",
            b"null",
            b"[1, 2]",
            b'"configured"',
            b"{}",
            b'{"cluster": "configured",}',
            b'{"cluster": "configured"}{"cluster": "saga"}',
            b'{"cluster": "con\x00figured"}',
            b'{"cluster": "\\ud800"}',
        ]
    ),
    st.integers(1, 100_000).map(deep),
    st.integers(1, 100_000).map(lambda size: deep(size, b'{"cluster": "configured", "x": ', b"}")),
    st.integers(1, 100_000).map(lambda size: b"[" * size),
)
connection_bodies = st.one_of(
    raw_bodies,
    # Not a cluster (wrong type, missing, or a name nobody configured): whatever else is there.
    st.fixed_dictionaries(
        {},
        optional={
            "cluster": st.one_of(not_text, wild.filter(lambda name: name not in NAMES_IN_USE)),
            "user": st.one_of(json_junk, wild),
            "persist": json_junk,
        },
    ).filter(lambda body: str(body.get("cluster")) not in NAMES_IN_USE),
    # A real cluster, and one refused field.
    st.fixed_dictionaries(
        {
            "cluster": st.just(CLUSTER),
            "user": st.one_of(not_text.filter(lambda value: value is not None), refused_user),
        },
        optional={"persist": valid_persist},
    ),
    st.fixed_dictionaries(
        {"cluster": st.just(CLUSTER), "persist": refused_persist_json},
        optional={"user": valid_user},
    ),
    st.builds(
        lambda body, extra: {**body, **extra},
        st.fixed_dictionaries(
            {"cluster": st.just(CLUSTER)}, optional={"user": valid_user, "persist": valid_persist}
        ),
        unknown_fields,
    ),
)


@bounded(300)
@given(body=connection_bodies)
@example(body=deep(100_000)).via("RecursionError in json.loads was a 500")
@example(body={"cluster": CLUSTER, "user": "\ud800"}).via("unencodable user was a 500")
@example(body={"cluster": CLUSTER, "user": "\udcff"}).via("ssh -G's answer was not UTF-8: 500")
@example(body={"cluster": CLUSTER, "user": "$(id)"}).via("was left to ssh -G to refuse")
@example(body={"cluster": CLUSTER, "k" * 100_000: 1}).via("unknown field was echoed whole")
async def test_post_connections_refuses_hostile_bodies(
    rest: Rest, short_tmp: Path, body: Any
) -> None:
    rest.log.mark()
    response = await rest.post("connections", body=fill(body, short_tmp))
    payload = refusal(response)
    assert_nothing_started(
        rest.log, short_tmp / "pwned", lookups_allowed=asked_ssh(payload["message"])
    )


CURRENT = "the id of the open prompt"  # replaced by the live id in the test


def other_id(number: int) -> tuple[str, int]:
    return ("another id", number)


refused_response = st.one_of(
    not_text,
    st.just(""),
    containing((*CONTROL, "\t", "\r\n")),
    repeated(("1", "é", "\u202e", "a b"), 1025, 100_000),
)
refused_prompt_id = st.one_of(
    st.booleans(),
    st.floats(),
    short_wild,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(short_wild, st.integers(), max_size=2),
    st.integers().map(other_id),
)
answer_bodies = st.one_of(
    raw_bodies,
    st.fixed_dictionaries({"response": refused_response}, optional={"prompt_id": st.just(CURRENT)}),
    st.fixed_dictionaries(
        {"prompt_id": refused_prompt_id},
        optional={"response": st.one_of(st.sampled_from(["123456", "yes", "مرحبا"]), wild)},
    ),
    st.builds(
        lambda body, extra: {**extra, **body},
        st.fixed_dictionaries({"response": refused_response}),
        unknown_fields,
    ),
)


def with_prompt_id(body: Any, current: int) -> Any:
    if not isinstance(body, dict) or "prompt_id" not in body:
        return body
    wanted = body["prompt_id"]
    if wanted == CURRENT:
        wanted = current
    elif isinstance(wanted, tuple):
        wanted = wanted[1] if wanted[1] != current else current + 1
    return {**body, "prompt_id": wanted}


@pytest.fixture
async def prompting(
    rest: Rest, prompt_server: Callable[..., Any], client_config: Path
) -> dict[str, Any]:
    """A real login waiting at its one-time code prompt."""
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, PROMPT_ALIAS, server.port)
    await call(rest.fetch, "POST", "connections", body={"cluster": PROMPT_ALIAS})
    view: dict[str, Any] = await wait_for(rest.fetch, PROMPT_ALIAS, {"prompting"})
    assert view["prompt"]["kind"] == "otp"
    assert len(rest.log.logins()) == 1
    return view


@bounded(150)
@given(body=answer_bodies)
@example(body={"response": "1" * 100_000})
@example(body={"response": "123456\n-oProxyCommand=touch {pwned}", "prompt_id": CURRENT})
@example(body={"response": "123456", "prompt_id": True})
@example(body={"response": "123456", "prompt_id": other_id(2**70)})
async def test_answers_refuses_hostile_bodies(
    rest: Rest, prompting: dict[str, Any], short_tmp: Path, body: Any
) -> None:
    rest.log.mark()
    prompt_id = prompting["prompt"]["id"]
    response = await rest.post(
        "connections", PROMPT_ALIAS, "answer", body=with_prompt_id(fill(body, short_tmp), prompt_id)
    )
    refusal(response)
    view = await call(rest.fetch, "GET", "connections", PROMPT_ALIAS)
    # Nothing reached ssh: still the same open prompt, no "wrong code".
    assert (view["state"], view["prompt"]["id"]) == ("prompting", prompt_id), view
    assert view["message"] == prompting["message"]
    assert_nothing_started(rest.log, short_tmp / "pwned", lookups_allowed=False)


RAW_SEGMENTS = (
    "..", ".", "..%2F", "..%2f..%2fetc", "%2e%2e", "%2E%2E%2F", "%00", "%ff", "%C0%AE", "%",
    "%zz", "a%2Fb", "%252F", "~", ";", "%20", "%0a", "%E2%80%AE", "%ED%A0%80", "saga%00",
    "saga%20", "configured%2F..", "..;", "%5C..%5C", "saga%0d%0aX-Evil:%201", "%25d", "%%25",
)  # fmt: skip
quoted_names = wild.filter(lambda name: name not in NAMES_IN_USE and name != "")
path_parts = st.one_of(
    quoted_names.map(lambda name: quote(name.encode("utf-8", "surrogatepass"), safe="")),
    st.sampled_from(RAW_SEGMENTS),
)


@bounded(100)
@given(part=path_parts)
@example(part=quote("-oProxyCommand=touch {pwned}", safe=""))
@example(part="%ED%A0%80")
@example(part=quote("a" * LONGEST, safe=""))
async def test_path_parts_refuse_hostile_names(rest: Rest, short_tmp: Path, part: str) -> None:
    rest.log.mark()
    part = fill(part, short_tmp)
    for method, path, body in (
        ("GET", f"connections/{part}", None),
        ("DELETE", f"connections/{part}", None),
        ("POST", f"connections/{part}/answer", None),
        ("POST", f"connections/{part}/answer", b'{"response": "123456", "prompt_id": 1}'),
    ):
        response = await rest.send(method, path, body)
        if response is None:  # too long for tornado: no handler saw it
            continue
        payload = refusal(response)
        assert response.code in (400, 404), (method, path[:200], payload)
    assert_nothing_started(rest.log, short_tmp / "pwned", lookups_allowed=False)
    assert (await rest.raw("GET", "connections")).code == 200  # and the server goes on


async def test_five_megabytes_on_every_rest_input(
    rest: Rest, prompting: dict[str, Any], short_tmp: Path
) -> None:
    big = "9" * FIVE_MB
    rest.log.mark()
    for body in (
        {"cluster": big},
        {"cluster": CLUSTER, "user": big},
        {"cluster": CLUSTER, "persist": big},
        {"cluster": CLUSTER, big: 1},
        deep(FIVE_MB // 2),
        b"[" * FIVE_MB,
    ):
        refusal(await rest.post("connections", body=body))
    for answer in ({"response": big}, {"response": "1", "prompt_id": big}):
        refusal(await rest.post("connections", PROMPT_ALIAS, "answer", body=answer))
    assert await rest.send("GET", f"connections/{big}") is None
    assert_nothing_started(rest.log, short_tmp / "pwned", lookups_allowed=False)
    view = await call(rest.fetch, "GET", "connections", PROMPT_ALIAS)
    assert (view["state"], view["prompt"]["id"]) == ("prompting", prompting["prompt"]["id"])


async def test_rest_harness_sees_spawns_answers_and_errors(
    rest: Rest, prompting: dict[str, Any], short_tmp: Path
) -> None:
    """The properties above can fail: a valid login is in the log, a valid answer reaches the
    prompt, and a 5xx or a traceback is not taken for a refusal."""
    rest.log.mark()
    started = await rest.post("connections", body={"cluster": CLUSTER, "user": "tester"})
    assert started.code in (200, 202), started.body
    deadline = time.monotonic() + 20
    while not [line for line in rest.log.new() if line.startswith("-M ")]:
        assert time.monotonic() < deadline, rest.log.new()
        await asyncio.sleep(0.05)
    with pytest.raises(AssertionError):
        assert_nothing_started(rest.log, short_tmp / "pwned", lookups_allowed=True)

    rest.log.mark()
    wrong = wrong_code()
    answered = await rest.post(
        "connections",
        PROMPT_ALIAS,
        "answer",
        body={"response": wrong, "prompt_id": prompting["prompt"]["id"]},
    )
    assert answered.code == 200
    again = await wait_for(rest.fetch, PROMPT_ALIAS, {"prompting"}, prompting["prompt"]["id"])
    assert again["message"] == "Wrong code — try again"  # what the property would notice
    assert rest.log.new() == []  # an answer never starts ssh
    await call(rest.fetch, "DELETE", "connections", PROMPT_ALIAS)

    def response(code: int, payload: dict[str, Any]) -> HTTPResponse:
        request = HTTPRequest("http://localhost/")
        headers = HTTPHeaders({"Content-Type": "application/json"})
        return HTTPResponse(
            request, code, headers=headers, buffer=io.BytesIO(json.dumps(payload).encode())
        )

    for code, payload in (
        (500, {"message": "Unhandled error", "reason": None, "traceback": ""}),
        (422, {"message": f"{TRACEBACK}:\n  File ...", "reason": "invalid"}),
        (422, {"message": "x", "reason": None}),
        (200, {"message": "ok", "reason": "ok"}),
        (422, {"message": "'" + "a" * 5000 + "'", "reason": "invalid"}),
    ):
        with pytest.raises(AssertionError):
            refusal(response(code, payload))


# ---- the hy2fa command, in process (the property) and as a process (smoke) -------------------


class CliHome:
    """HOME, Jupyter config dir (with ``Hy2faLab.ssh`` = the wrapper) and an empty ssh config."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.wrapper, self.log = ssh_wrapper(tmp, logins=False)
        home = tmp / "home"
        home.mkdir()
        jupyter = tmp / "jupyter"
        jupyter.mkdir()
        (jupyter / "jupyter_server_config.json").write_text(
            json.dumps({"Hy2faLab": {"ssh": str(self.wrapper)}})
        )
        self.config = tmp / "ssh_config"
        self.config.write_text("")
        self.written = tmp / "config-ssh-output"  # config-ssh's -F: must never appear
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(jupyter))
        monkeypatch.delenv("JUPYTER_CONFIG_PATH", raising=False)
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
        assert settings_from_jupyter_config().ssh == str(self.wrapper)

    def run(self, argv: list[str]) -> tuple[int, str, bool]:
        """``hy2fa.main(argv)``: (exit status, stderr, whether argparse refused it)."""
        out = io.StringIO()
        # As the real sys.stderr: UTF-8 with backslashreplace (a lone surrogate is not an error).
        raw = io.BytesIO()
        err = io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main(argv, out=out)
                parsed = True
            except SystemExit as exit_:
                assert isinstance(exit_.code, int), exit_.code
                status, parsed = exit_.code, False
        err.flush()
        text = raw.getvalue().decode()
        assert TRACEBACK not in text + out.getvalue()
        return status, text, not parsed


@pytest.fixture
def cli_home(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> CliHome:
    return CliHome(short_tmp, monkeypatch)


def check_cli_refusal(status: int, err: str, *, by_argparse: bool) -> None:
    assert status in (1, 2), (status, err[:500])
    if by_argparse:
        assert status == 2 and err.startswith("usage: hy2fa"), err[:500]
        assert ": error: " in err
        return
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("hy2fa"), err[:500]
    assert len(lines[0]) <= 1000, lines[0][:300]


CLI_SLOTS = {
    "connect": ("target", "user", "port", "option", "persist", "control_path"),
    "status": ("target", "user", "port", "option", "control_path"),
    "path": ("target", "user", "port", "option", "control_path"),
    "disconnect": ("target", "user", "port", "option", "control_path"),
    "config-ssh": ("target", "user", "persist", "control_path"),
}
CLI_BENIGN: dict[str, st.SearchStrategy[str]] = {
    "target": st.just("saga"),
    "user": valid_user,
    "port": st.sampled_from(["22", "2222"]),
    "option": st.sampled_from(["ServerAliveInterval=30", "ConnectTimeout=5"]),
    "persist": st.sampled_from(["10m", "yes", "600"]),
    "control_path": st.just("{tmp}/cm-%C"),
}
CLI_HOSTILE: dict[str, st.SearchStrategy[str]] = {
    "target": refused_target,
    "user": refused_user,
    "port": refused_port,
    "option": refused_option,
    "persist": refused_persist,
    "control_path": refused_control_path,
}
CLI_FLAGS = {
    "user": (["-l", "{}"], ["-l{}"], ["--user={}"], ["--user", "{}"]),
    "port": (["-p", "{}"], ["-p{}"], ["--port={}"]),
    "option": (["-o", "{}"], ["-o{}"]),
    "persist": (["--persist", "{}"], ["--persist={}"]),
    "control_path": (["--control-path", "{}"], ["--control-path={}"]),
}


@st.composite
def cli_argv(draw: st.DrawFn) -> list[str]:
    """One command with one refused argument; the others absent or valid."""
    command = draw(st.sampled_from(sorted(CLI_SLOTS)))
    slots = CLI_SLOTS[command]
    hostile = draw(st.sampled_from(slots))
    argv = [command]
    target = "saga"
    for slot in slots:
        if slot == hostile:
            value = draw(CLI_HOSTILE[slot])
            if command == "config-ssh" and slot == "target":
                value = draw(st.one_of(st.just(value), st.sampled_from(NOT_CLUSTER_NAMES)))
        elif slot in ("target", "control_path") or draw(st.booleans()):
            value = draw(CLI_BENIGN[slot])
        else:
            continue
        if slot == "target":
            target = value
            continue
        form = draw(st.sampled_from(CLI_FLAGS[slot]))
        argv += [word.replace("{}", value) for word in form]
    argv += ["-F", "{written}" if command == "config-ssh" else "{config}"]
    # Without "--" a target like "-l0" is an option, and "status -l0" rightly lists every cluster.
    argv += ["--", target] if target.startswith("-") or draw(st.booleans()) else [target]
    return argv


@bounded(300)
@given(argv=cli_argv())
@example(argv=["connect", "-l", "\udcff", "-F", "{config}", "saga"]).via("non-UTF-8 user")
@example(argv=["status", "-l", "\ud800", "-F", "{config}", "saga"]).via("unencodable user")
@example(argv=["connect", "-o", "User=\ud800", "-F", "{config}", "saga"]).via("unencodable -o")
@example(argv=["connect", "-l", "tester", "-o", "User=;", "-F", "{config}", "saga"]).via(
    "ssh checks no -o User that -l overrides: the ';' reached ssh -M"
)
@example(argv=["status", "--control-path", "{tmp}/\x00/%C", "-F", "{config}", "saga"])
@example(argv=["path", "--control-path", "{tmp}/\ud800/%C", "-F", "{config}", "saga"])
@example(argv=["config-ssh", "-F", "{written}", "--", "-oProxyCommand=touch {pwned}"])
@example(argv=["config-ssh", "-l", "", "-F", "{written}", "saga"]).via("empty user was ignored")
@example(argv=["status", "-F", "{config}", ""]).via("an empty target meant every cluster: exit 0")
@example(argv=["connect", "-F", "{config}", "-/\ud800"])
@example(argv=["connect", "-o", "HostName=x x", "-F", "{config}", "saga"])
@example(argv=["config-ssh", "--control-path", "{tmp}/%\n%q", "-F", "{written}", "saga"]).via(
    "the unknown token was quoted raw: a two-line message"
)
@example(
    argv=[
        "config-ssh",
        "--control-path",
        "{tmp}/cm-%C\nProxyCommand touch {pwned}",
        "-F",
        "{written}",
        "saga",
    ]
).via("a line into the ssh config: refused, but quoted raw")
def test_cli_refuses_hostile_arguments(cli_home: CliHome, argv: list[str]) -> None:
    words = [
        word.replace("{config}", str(cli_home.config)).replace("{written}", str(cli_home.written))
        for word in fill(argv, cli_home.tmp)
    ]
    if "--control-path" not in " ".join(words) and words[0] != "config-ssh":
        words[1:1] = ["--control-path", f"{cli_home.tmp}/cm-%C"]
    cli_home.log.mark()
    try:
        status, err, by_argparse = cli_home.run(words)
        assert not cli_home.written.exists(), cli_home.written.read_text()[:500]
    finally:
        cli_home.written.unlink(missing_ok=True)  # one example's slip stays its own
    check_cli_refusal(status, err, by_argparse=by_argparse)
    lookups = not by_argparse and asked_ssh(err)
    assert_nothing_started(cli_home.log, cli_home.tmp / "pwned", lookups_allowed=lookups)


@pytest.mark.parametrize("name", ["%d", "%h", "%%", "..%2F", "..", "[::1]%eth0"])
def test_cli_odd_but_well_formed_names_never_reach_the_socket_path(
    cli_home: CliHome, name: str
) -> None:
    """A host literally named ``%d`` is looked up (``ssh -G``), never expanded into a path."""
    options = ["-F", str(cli_home.config), "--control-path", f"{cli_home.tmp}/%h-%C"]
    for command, expected in (("status", 1), ("disconnect", 1), ("path", 0)):
        cli_home.log.mark()
        status, err, by_argparse = cli_home.run([command, *options, "--", name])
        if status == 2:  # "%" in the expanded path: refused, as documented for ssh's -S
            check_cli_refusal(status, err, by_argparse=by_argparse)
            assert "literal '%'" in err
        else:
            assert (status, err) == (expected, ""), err
        assert_nothing_started(cli_home.log, cli_home.tmp / "pwned", lookups_allowed=True)


def test_cli_harness_sees_a_login(cli_home: CliHome) -> None:
    """The CLI property can fail: a valid connect runs ``ssh -M`` (the wrapper ends it)."""
    cli_home.log.mark()
    argv = ["connect", "-F", str(cli_home.config), "--control-path", f"{cli_home.tmp}/%C", "saga"]
    status, err, _ = cli_home.run(argv)
    assert status == 1 and err.startswith("hy2fa: saga: "), err
    assert [line for line in cli_home.log.new() if line.startswith("-M ")]
    with pytest.raises(AssertionError):
        assert_nothing_started(cli_home.log, cli_home.tmp / "pwned", lookups_allowed=True)
    for status, err, by_argparse in ((0, "", False), (2, "hy2fa: a\nb\n", False), (2, "x", True)):
        with pytest.raises(AssertionError):
            check_cli_refusal(status, err, by_argparse=by_argparse)


PROCESS_CASES = [
    ["connect", "saga", "-l", "$(touch {pwned})"],
    ["connect", "saga\n-oProxyCommand=touch {pwned}"],
    ["connect", "saga", "-l", "x;touch${IFS}{pwned}"],
    ["connect", "saga", "--persist", "1e99"],
    ["connect", "saga", "-o", "ProxyJump=-oProxyCommand=touch {pwned}"],
    ["connect", "saga", "-o", "KnownHostsCommand=touch {pwned}"],
    ["status", "saga", "-p", "1e3"],
    ["path", "../../etc/passwd"],
    ["disconnect", "saga", "--control-path", "%h"],
    ["connect", "a" * 100_000],
]


@pytest.mark.parametrize("args", PROCESS_CASES, ids=lambda args: repr(args)[:40])
def test_cli_process_refuses_hostile_arguments(short_tmp: Path, args: list[str]) -> None:
    """The same through the real ``hy2fa`` in a pty: a one-line error, exit 2, no login."""
    runner = Cli(short_tmp)
    try:
        config = short_tmp / "ssh_config"
        config.write_text("")
        argv = [arg.replace("{pwned}", str(short_tmp / "pwned")) for arg in args]
        argv[1:1] = runner.target_options(config)
        status, output = finish(runner.spawn(*argv))
        assert status == 2, output
        assert TRACEBACK not in output
        assert output.strip("\n").split("\n")[-1].startswith("hy2fa"), output
        assert runner.master_logins() == []
        assert not (short_tmp / "pwned").exists()
        runner.home_untouched()
    finally:
        runner.cleanup()
    assert_no_ssh_left(short_tmp, timeout=0)


# ---- the kernel: %hy2fa, ensure(), socket_path() ---------------------------------------------


@pytest.fixture
def kernel_engine(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SshLog]:
    """The in-kernel engine (no Jupyter server), its ssh the wrapper."""
    wrapper, log = ssh_wrapper(short_tmp, logins=False)
    config = short_tmp / "ssh_config"
    config.write_text("")
    home = short_tmp / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("IPYTHONDIR", str(short_tmp / "ipython"))
    monkeypatch.delenv("HY2FA_SERVER_URL", raising=False)
    monkeypatch.delenv("JPY_PARENT_PID", raising=False)
    settings_ = Settings(ssh=str(wrapper), ssh_config=str(config), control_path=f"{short_tmp}/%C")
    backend = LocalBackend(Manager(settings_))
    monkeypatch.setattr(LocalBackend, "_instance", backend)
    monkeypatch.setattr(api, "_known_paths", {})
    try:
        yield log
    finally:
        backend.loop.call_soon_threadsafe(backend.loop.stop)
        backend.thread.join(5)


@pytest.fixture
def shell(kernel_engine: SshLog) -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    ipython = InteractiveShell.instance(config=config)
    load_ipython_extension(ipython)
    try:
        yield ipython
    finally:
        InteractiveShell.clear_instance()


MAGIC_COMMANDS = ("connect", "status", "disconnect", "path")
MAGIC_CONNECT_SLOTS = "cupk" if "--control-path" in USAGE else "cup"  # cluster user persist path
# IPython expands $name and {expr} in a magic line in quadratic time (a minute for 100 kB):
# drawn lines stay short, and longer ones go to the magic function itself.
MAGIC_LONGEST = 5_000
MAGIC_WILD = wild_text(MAGIC_LONGEST)
MAGIC_TARGET = refused_targets(MAGIC_LONGEST)
MAGIC_USER = refused_users(MAGIC_LONGEST)


def first_word(line: str) -> str | None:
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""  # as shlex.split
    try:
        return lexer.get_token()
    except ValueError:
        return None


def dashed(flag: str, value: str) -> list[str]:
    """``--user VALUE``, or ``--user=VALUE`` for a value argparse would take for an option."""
    long_flag = "--user" if flag == "-l" else flag
    return [f"{long_flag}={value}"] if value.startswith(("-", "=")) else [flag, value]


@st.composite
def magic_lines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(("noise", "connect", "path", "disconnect", "status")))
    if kind == "noise":
        return draw(MAGIC_WILD.filter(lambda line: first_word(line) not in MAGIC_COMMANDS))
    if kind == "status":
        return "status " + shlex.quote(draw(MAGIC_WILD.filter(lambda text: text.strip() != "")))
    hostile = draw(
        st.sampled_from({"connect": MAGIC_CONNECT_SLOTS, "path": "cu", "disconnect": "c"}[kind])
    )
    cluster = draw(MAGIC_TARGET) if hostile == "c" else "saga"
    words = [kind]
    if hostile == "u" or (kind != "disconnect" and draw(st.booleans())):
        user = draw(MAGIC_USER) if hostile == "u" else draw(valid_user)
        words += dashed(draw(st.sampled_from(["--user", "-l"])), user)
    if kind == "connect" and (hostile == "p" or draw(st.booleans())):
        persist = draw(refused_persist) if hostile == "p" else draw(st.sampled_from(["10m", "yes"]))
        words += dashed("--persist", persist)
    if hostile == "k":
        words += dashed("--control-path", draw(refused_control_path))
    words += ["--", cluster] if draw(st.booleans()) else [cluster]
    return " ".join(shlex.quote(word) for word in words)


@bounded(200)
@given(line=magic_lines())
@example(line="connect saga --user '\udcff'")
@example(line="path saga --user '\ud800'")
@example(line="connect 'saga")
@example(line="")
@example(line="connect -- " + "a" * LONGEST)
@example(line="connect saga --user=" + "-" * LONGEST)
def test_magic_refuses_hostile_lines(
    shell: Any, kernel_engine: SshLog, short_tmp: Path, line: str
) -> None:
    kernel_engine.mark()
    line = fill(line, short_tmp)
    with pytest.raises(UsageError) as refused:
        if len(line) <= MAGIC_LONGEST * 2:
            shell.run_line_magic("hy2fa", line)
        else:
            shell.find_line_magic("hy2fa")(line)
    assert_nothing_started(
        kernel_engine, short_tmp / "pwned", lookups_allowed=asked_ssh(str(refused.value))
    )


ENSURE_SLOTS = ("cluster", "user", "persist", "timeout") + (
    ("control_path",) if "control_path" in inspect.signature(api.ensure).parameters else ()
)
ENSURE_BENIGN: dict[str, st.SearchStrategy[Any]] = {
    "cluster": st.just("saga"),
    "user": st.sampled_from([None, "tester"]),
    "persist": st.sampled_from([None, "10m", 600]),
    "timeout": st.sampled_from([5, 1.5]),
    "control_path": st.none(),
}
ENSURE_HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "cluster": st.one_of(not_text, refused_target, st.binary(max_size=8)),
    "user": st.one_of(not_text.filter(lambda value: value is not None), refused_user),
    "persist": st.one_of(
        st.booleans(),
        st.floats(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(short_wild, st.integers(), max_size=2),
        st.integers(max_value=-1),
        st.integers(min_value=2**31),
        refused_persist,
    ),
    "timeout": st.one_of(
        st.floats(max_value=0),
        st.sampled_from([float("nan"), "5", None, True, False, [], {}, 1j, b"5"]),
        st.integers(max_value=0),
    ),
    "control_path": st.one_of(
        not_text.filter(lambda value: value is not None), st.just(""), refused_control_path
    ),
}


@st.composite
def ensure_arguments(draw: st.DrawFn, slots: Sequence[str]) -> dict[str, Any]:
    hostile = draw(st.sampled_from(slots))
    return {
        slot: draw(ENSURE_HOSTILE[slot] if slot == hostile else ENSURE_BENIGN[slot])
        for slot in slots
    }


@bounded(200)
@given(arguments=ensure_arguments(ENSURE_SLOTS))
@example(arguments={"cluster": "saga", "user": None, "persist": None, "timeout": float("nan")})
@example(arguments={"cluster": "saga", "user": "\udcff", "persist": None, "timeout": 5})
def test_ensure_refuses_hostile_arguments(
    kernel_engine: SshLog, short_tmp: Path, arguments: dict[str, Any]
) -> None:
    kernel_engine.mark()
    with pytest.raises(Hy2faError) as refused:
        api.ensure(**fill(arguments, short_tmp), out=io.StringIO())
    lookups = asked_ssh(refused.value.message)
    assert_nothing_started(kernel_engine, short_tmp / "pwned", lookups_allowed=lookups)


@bounded(100)
@given(arguments=ensure_arguments(("cluster", "user")))
@example(arguments={"cluster": "saga", "user": "\ud800"})
def test_socket_path_refuses_hostile_arguments(
    kernel_engine: SshLog, short_tmp: Path, arguments: dict[str, Any]
) -> None:
    kernel_engine.mark()
    with pytest.raises(Hy2faError) as refused:
        api.socket_path(**fill(arguments, short_tmp))
    lookups = asked_ssh(refused.value.message)
    assert_nothing_started(kernel_engine, short_tmp / "pwned", lookups_allowed=lookups)


def test_kernel_harness_sees_a_login(kernel_engine: SshLog, short_tmp: Path, shell: Any) -> None:
    """The kernel properties can fail: a valid ``ensure`` runs ``ssh -M`` (the wrapper ends it,
    so it fails with ``Hy2faError``), and a valid ``%hy2fa path`` answers instead of refusing."""
    kernel_engine.mark()
    with pytest.raises(Hy2faError):
        api.ensure("saga", timeout=20, out=io.StringIO())
    assert [line for line in kernel_engine.new() if line.startswith("-M ")]
    with pytest.raises(AssertionError):
        assert_nothing_started(kernel_engine, short_tmp / "pwned", lookups_allowed=True)
    path = shell.run_line_magic("hy2fa", "path saga")
    assert path.startswith(f"{short_tmp}/")
