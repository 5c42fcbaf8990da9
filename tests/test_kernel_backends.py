"""ensure() and the server client: in-process against a real Jupyter server (env override),
and in kernels that server starts (how a kernel finds and reaches its server, what the first
ensure() imports)."""

from __future__ import annotations

import ast
import asyncio
import http.server
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import SECRET, code
from kernel_ws import KernelWS
from listeners import SilentListener
from test_server_api import add_prompt_host, answer, wait_for

import hy2fa_lab
from hy2fa_lab import Hy2faError, ensure
from hy2fa_lab.core import mux
from hy2fa_lab.demo import sshserver
from hy2fa_lab.kernel.backends import ServerBackend, ServerInfo, ServerUnavailable, find_server

# jp_server_config: conftest.py's, as it is.


@pytest.fixture
def server_env(
    jp_serverapp: Any, jp_base_url: str, http_server_port: Any, monkeypatch: pytest.MonkeyPatch
) -> ServerInfo:
    """HY2FA_SERVER_URL and HY2FA_TOKEN, as on JupyterHub, name the server explicitly."""
    monkeypatch.setenv("HY2FA_SERVER_URL", f"http://127.0.0.1:{http_server_port[-1]}{jp_base_url}")
    monkeypatch.setenv("HY2FA_TOKEN", jp_serverapp.identity_provider.token)
    info = find_server()
    assert info is not None
    return info


def test_env_override_names_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HY2FA_SERVER_URL", "http://127.0.0.1:9/base")
    monkeypatch.setenv("HY2FA_TOKEN", "secret-token")
    info = find_server()
    assert info == ServerInfo("http://127.0.0.1:9/base/", "secret-token")
    assert "secret-token" not in repr(info)
    with pytest.raises(ServerUnavailable):
        ServerBackend(info).version()  # nothing listens on port 9
    monkeypatch.setenv("HY2FA_SERVER_URL", "file:///etc/passwd")
    with pytest.raises(ServerUnavailable, match="Not an HTTP server URL"):
        ServerBackend(find_server()).version()  # type: ignore[arg-type]


def test_without_a_parent_server_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HY2FA_SERVER_URL", raising=False)
    monkeypatch.setenv("JPY_PARENT_PID", "1")
    assert find_server() is None


async def test_ensure_times_out_with_a_clear_error(
    server_env: ServerInfo,
    jp_fetch: Any,
    prompt_server: Any,
    client_config: Path,
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "slowhand", server.port)
    out = io.StringIO()
    with pytest.raises(Hy2faError) as caught:
        await asyncio.to_thread(ensure, "slowhand", timeout=2, out=out)
    assert caught.value.reason == "timeout"
    assert "not connected within 2 s" in caught.value.message
    assert "is asking for a one-time code" in out.getvalue()
    await jp_fetch("hy2fa", "connections", "slowhand", method="DELETE")


def _count_gets(serverapp: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every finished GET of connection ``name`` (the server's request log, as it writes it)."""
    seen: list[str] = []
    settings = serverapp.web_app.settings
    original = settings["log_function"]

    def log(handler: Any) -> None:
        request = handler.request
        if request.method == "GET" and request.path.endswith(f"/hy2fa/connections/{name}"):
            seen.append(request.uri)
        original(handler)

    monkeypatch.setitem(settings, "log_function", log)
    return seen


async def test_ensure_returns_the_path_once_answered(
    server_env: ServerInfo,
    jp_serverapp: Any,
    monkeypatch: pytest.MonkeyPatch,
    jp_fetch: Any,
    prompt_server: Any,
    client_config: Path,
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "quick", server.port)
    out = io.StringIO()
    waiting = asyncio.ensure_future(asyncio.to_thread(ensure, "quick", timeout=30, out=out))
    view = await wait_for(jp_fetch, "quick", {"prompting"})
    gets = _count_gets(jp_serverapp, "quick", monkeypatch)
    await asyncio.sleep(2)  # a waiting ensure() holds one request open; it does not poll
    assert len(gets) <= 1, gets  # polling every 0.25 s would show about eight
    await answer(jp_fetch, "quick", code(), view["prompt"]["id"])
    path = await asyncio.wait_for(waiting, 30)
    assert path == view["control_path"]
    assert out.getvalue().endswith("hy2fa: quick connected\n")
    assert mux.alive(path) is not None
    await jp_fetch("hy2fa", "connections", "quick", method="DELETE")


async def test_ensure_over_a_hung_master_fails_at_once_with_a_clear_error(
    server_env: ServerInfo, jp_fetch: Any, client_config: Path, short_tmp: Path
) -> None:
    hung = short_tmp / "hung.sock"
    with client_config.open("a") as handle:
        handle.write(f"Host hung\n  HostName 127.0.0.1\n  ControlPath {hung}\n")
    listener = SilentListener(str(hung))
    try:
        started = time.monotonic()
        with pytest.raises(Hy2faError) as caught:
            await asyncio.to_thread(ensure, "hung", timeout=60, out=io.StringIO())
        assert caught.value.reason == "unresponsive"
        assert "does not answer" in caught.value.message
        assert time.monotonic() - started < 30  # not the whole timeout: the state is final
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cluster": "-oProxyCommand=x"}, "must not start"),
        ({"cluster": "saga", "user": "a b"}, "whitespace"),
        ({"cluster": "saga", "persist": "soon"}, "persist"),
        ({"cluster": "saga", "timeout": 0}, "timeout"),
    ],
)
def test_ensure_refuses_bad_input_at_once(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(Hy2faError, match=message):
        ensure(**kwargs)


async def test_ensure_makes_the_socket_where_the_tool_looks(
    server_env: ServerInfo, jp_fetch: Any, prompt_server: Any, client_config: Path, short_tmp: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "hsptool", server.port)
    wanted = str(short_tmp / "tool.sock")
    waiting = asyncio.ensure_future(
        asyncio.to_thread(ensure, "hsptool", timeout=30, control_path=wanted, out=io.StringIO())
    )
    view = await wait_for(jp_fetch, "hsptool", {"prompting"})
    assert view["control_path"] == wanted
    await answer(jp_fetch, "hsptool", code(), view["prompt"]["id"])
    assert await asyncio.wait_for(waiting, 30) == wanted
    assert mux.alive(wanted) is not None
    # Asked again: the socket answers at once, nothing is started.
    assert await asyncio.to_thread(ensure, "hsptool", control_path=wanted) == wanted
    await jp_fetch("hy2fa", "connections", "hsptool", method="DELETE")


# ---- the kernel reaches its own server directly (issue 18, item 2) ------------------------


class FakeProxy:
    """An HTTP proxy on 127.0.0.1 that records every request it is sent (and whether it
    carried an ``Authorization`` header) and answers each with 502, as a site proxy does
    for a host it cannot reach."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bool]] = []
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                seen.append((self.command, self.path, "Authorization" in self.headers))
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_DELETE = do_CONNECT = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def behind_proxy(jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProxy]:
    """As on many HPC login nodes: http_proxy (and friends) set, no_proxy not naming the
    server, and the server listening on every address (``--ip=0.0.0.0``), so its runtime
    file names ``0.0.0.0`` and its URL the host name. Request it before ``kernel``: the
    kernel inherits this environment and the runtime file is written with this address."""
    proxy = FakeProxy()
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
        monkeypatch.setenv(name.upper(), proxy.url)
    for name in ("no_proxy", "NO_PROXY", "HY2FA_SERVER_URL", "HY2FA_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(jp_serverapp, "ip", "0.0.0.0")
    try:
        yield proxy
    finally:
        proxy.close()


async def test_a_kernel_never_sends_the_token_through_a_proxy(
    behind_proxy: FakeProxy, kernel: KernelWS, jp_fetch: Any, client_config: Path
) -> None:
    with client_config.open("a") as handle:
        handle.write("Host viaserver\n  HostName 127.0.0.1\n")
    # The proxy is in effect in the kernel: a URL elsewhere goes to it.
    elsewhere = await kernel.run(
        "import urllib.request, urllib.error\n"
        "try:\n"
        "    urllib.request.urlopen('http://elsewhere.invalid/', timeout=10)\n"
        "except urllib.error.HTTPError as error:\n"
        "    print(error.code)\n"
    )
    assert elsewhere.stdout.strip() == "502"
    assert behind_proxy.requests == [("GET", "http://elsewhere.invalid/", False)]
    behind_proxy.requests.clear()

    found = await kernel.run(
        "import hy2fa_lab\n"
        "from hy2fa_lab.kernel.backends import find_server, ServerBackend\n"
        "info = find_server()\n"
        "print(info.url)\n"
        "print(ServerBackend(info).version())\n"
        "print(hy2fa_lab.socket_path('viaserver'))\n"
    )
    url, version, path = found.stdout.split()
    assert behind_proxy.requests == []  # not one request, least of all with the token
    assert url.startswith("http://127.0.0.1:")  # 0.0.0.0 is reached on loopback
    assert version == hy2fa_lab.__version__
    row = json.loads((await jp_fetch("hy2fa", "clusters", "viaserver")).body)
    assert path == row["control_path"]  # the server's answer, not the kernel's own guess


@pytest.mark.parametrize(
    ("ip", "host"),
    [
        ("0.0.0.0", "127.0.0.1"),
        ("::", "[::1]"),
        ("", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("10.11.12.13", "10.11.12.13"),
        ("login-1.saga.example", "login-1.saga.example"),
        ("fd00::7", "[fd00::7]"),
    ],
)
def test_the_server_is_found_from_its_runtime_file(
    ip: str, host: str, jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the real ServerApp writes in jpserver-<pid>.json, read back: a server listening
    on every address is reached on loopback; one on a given address or name, there."""
    monkeypatch.delenv("HY2FA_SERVER_URL", raising=False)
    monkeypatch.setenv("JPY_PARENT_PID", str(os.getpid()))
    monkeypatch.setattr(jp_serverapp, "ip", ip)
    jp_serverapp.write_server_info_file()
    try:
        info = find_server()
    finally:
        jp_serverapp.remove_server_info_file()
    assert info is not None
    assert info.url == f"http://{host}:{jp_serverapp.port}{jp_serverapp.base_url}"
    assert info.token == jp_serverapp.identity_provider.token


async def test_the_token_never_goes_through_a_proxy_even_to_a_named_host(
    behind_proxy: FakeProxy,
    jp_serverapp: Any,
    jp_fetch: Any,  # the server answers only when a test asks for its client
    jp_base_url: str,
    http_server_port: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``0.0.0.0`` as a destination is this machine, but no loopback name: a proxy would
    have been used for it (and for a host name) before."""
    # As a server started with --ip=0.0.0.0 is: a Host header other than loopback's is fine.
    monkeypatch.setitem(jp_serverapp.web_app.settings, "allow_remote_access", True)
    monkeypatch.setenv("HY2FA_SERVER_URL", f"http://0.0.0.0:{http_server_port[-1]}{jp_base_url}")
    monkeypatch.setenv("HY2FA_TOKEN", jp_serverapp.identity_provider.token)
    info = find_server()
    assert info is not None
    assert await asyncio.to_thread(ServerBackend(info).version) == hy2fa_lab.__version__
    assert behind_proxy.requests == []


async def test_a_redirect_is_not_followed_with_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL that answers with a redirect (a hub's login page, a wrong HY2FA_SERVER_URL):
    urllib would send the request, token included, on to ``Location``. It is not followed,
    and the kernel is told there is no server to ask."""
    elsewhere = FakeProxy()  # records what reaches it

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"{elsewhere.url}/hub/login")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    redirecting = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=redirecting.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{redirecting.server_address[1]}/user/someone/"
        monkeypatch.setenv("HY2FA_SERVER_URL", url)
        monkeypatch.setenv("HY2FA_TOKEN", "secret-token")
        info = find_server()
        assert info is not None
        with pytest.raises(ServerUnavailable, match="redirect"):
            await asyncio.to_thread(ServerBackend(info).version)
        assert elsewhere.requests == []
    finally:
        redirecting.shutdown()
        redirecting.server_close()
        elsewhere.close()


# ---- ensure() with a live master is cheap in a fresh kernel (issue 18, item 4) ------------


async def test_ensure_with_a_live_master_imports_nothing_heavy(
    kernel: KernelWS, jp_fetch: Any, prompt_server: Any, client_config: Path
) -> None:
    """The first ``ensure()`` in a fresh kernel, with a master up: no jupyter_server (and its
    jupyter_events, jsonschema, lark grammars) just to find the server."""
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "upalready", server.port)
    await jp_fetch("hy2fa", "connections", method="POST", body=json.dumps({"cluster": "upalready"}))
    view = await wait_for(jp_fetch, "upalready", {"prompting"})
    await answer(jp_fetch, "upalready", code(), view["prompt"]["id"])
    view = await wait_for(jp_fetch, "upalready", {"connected"})
    execution = await kernel.run(
        "import sys\n"
        "before = set(sys.modules)\n"
        "import hy2fa_lab\n"
        "print(hy2fa_lab.ensure('upalready', timeout=10))\n"
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}))\n"
        "print('hy2fa_lab' in before)\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('hy2fa_lab')))\n"
    )
    path, new, preloaded, ours = execution.stdout.strip().split("\n")
    assert path == view["control_path"]
    assert preloaded == "False"  # a fresh kernel: nothing of ours imported before
    heavy = {"jupyter_server", "jupyter_events", "jsonschema", "rfc3987_syntax", "lark"}
    heavy |= {"pexpect", "cryptography"}  # the login engine and certificates: for a login
    assert heavy.isdisjoint(ast.literal_eval(new)), new
    engine = {"hy2fa_lab.core.manager", "hy2fa_lab.core.session", "hy2fa_lab.core.login_ssh"}
    assert engine.isdisjoint(ast.literal_eval(ours)), ours
    await jp_fetch("hy2fa", "connections", "upalready", method="DELETE")
