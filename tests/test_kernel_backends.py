"""ensure() and the server client, in-process against a real Jupyter server (env override)."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import SECRET, code
from listeners import SilentListener
from test_server_api import add_prompt_host, answer, wait_for

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
