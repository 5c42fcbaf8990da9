"""The server extension over its REST API: real Jupyter server, real OpenSSH client and servers."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import SECRET, code, otp_ok, wrong_code
from listeners import SilentListener
from procs import cmdlines, process_alive, ssh_processes
from tornado.httpclient import HTTPClientError, HTTPResponse

from hy2fa_lab.core import mux
from hy2fa_lab.demo import sshserver

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd, free_port
except ImportError:
    from sshd_fixture import RealSshd, free_port  # type: ignore[no-redef]

PASSWORD = "correct horse battery staple"
Fetch = Callable[..., Any]


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    """conftest.py's, with a configured cluster and a bounded prompt."""
    jp_server_config["Hy2faLab"].update(
        prompt_timeout=20,
        clusters={"configured": {"host": "127.0.0.1", "port": 1, "persist": "10m"}},
    )
    return jp_server_config


def add_prompt_host(config: Path, alias: str, port: int, user: str = "tester") -> None:
    """Aliases with one user share one control path (%C): give each its own user."""
    with config.open("a") as handle:
        handle.write(
            f"Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n"
            f"  UserKnownHostsFile {config.parent}/known_hosts\n  StrictHostKeyChecking no\n"
            "  PreferredAuthentications keyboard-interactive\n  LogLevel ERROR\n"
        )


def add_sshd_host(config: Path, sshd: RealSshd, alias: str = "fixture") -> None:
    block = sshd.write_client_config(config.parent / f"{alias}.conf", alias=alias).read_text()
    with config.open("a") as handle:
        handle.write(block)


async def call(fetch: Fetch, method: str, *parts: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"method": method}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    elif method in ("POST",):
        kwargs["body"] = "{}"
    response: HTTPResponse = await fetch("hy2fa", *parts, **kwargs)
    return json.loads(response.body) if response.body else None


async def call_error(fetch: Fetch, method: str, *parts: str, body: Any = None) -> tuple[int, Any]:
    with pytest.raises(HTTPClientError) as caught:
        await call(fetch, method, *parts, body=body)
    response = caught.value.response
    assert response is not None
    return caught.value.code, json.loads(response.body)


async def wait_for(
    fetch: Fetch, name: str, states: set[str], after_prompt: int = 0, timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            view = await call(fetch, "GET", "connections", name)
        except HTTPClientError as error:  # not started yet (a kernel may be about to)
            if error.code != 404 or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        prompt_id = (view.get("prompt") or {}).get("id", 0)
        if view["state"] in states and (view["state"] != "prompting" or prompt_id > after_prompt):
            return view
        if view["state"] in {"connected", "failed", "disconnected"} - states:
            raise AssertionError(f"settled as {view['state']}: {view['message']}")
        if time.monotonic() > deadline:
            raise AssertionError(f"still {view['state']} after {timeout} s")
        await asyncio.sleep(0.05)


async def answer(fetch: Fetch, name: str, response: str, prompt_id: int | None = None) -> Any:
    body: dict[str, Any] = {"response": response}
    if prompt_id is not None:
        body["prompt_id"] = prompt_id
    return await call(fetch, "POST", "connections", name, "answer", body=body)


def run_through(config: Path, path: str, alias: str, *command: str) -> str:
    result = subprocess.run(
        ["ssh", "-F", str(config), "-S", path, "-o", "BatchMode=yes", alias, *command],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return result.stdout


# ---- the whole flow ---------------------------------------------------------------------


@pytest.mark.sshd
async def test_whole_flow_against_the_real_sshd(
    jp_fetch: Fetch,
    jp_base_url: str,
    real_sshd: RealSshd,
    client_config: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert jp_base_url != "/"  # the API lives under a non-root base URL
    caplog.set_level(logging.DEBUG)
    add_sshd_host(client_config, real_sshd)
    version = await call(jp_fetch, "GET", "version")
    assert version["version"]

    started = await jp_fetch(
        "hy2fa", "connections", method="POST", body=json.dumps({"cluster": "fixture"})
    )
    assert started.code == 202
    view = await wait_for(jp_fetch, "fixture", {"prompting"})
    assert view["prompt"]["kind"] == "otp"
    assert view["prompt"]["text"] == f"({real_sshd.user}@127.0.0.1) Verification code: "
    assert view["prompt"]["secret"] is True
    otp = real_sshd.totp()
    answered = await answer(jp_fetch, "fixture", otp, view["prompt"]["id"])
    assert otp not in json.dumps(answered)
    view = await wait_for(jp_fetch, "fixture", {"connected"})
    for key in ("name", "cluster", "state", "prompt", "reason", "message", "control_path"):
        assert key in view
    assert view["master_pid"] == mux.alive(view["control_path"])
    assert view["since"] and view["persist"] == "3600s"
    assert run_through(client_config, view["control_path"], "fixture", "echo", "ok") == "ok\n"

    listing = await call(jp_fetch, "GET", "connections")
    assert [c["name"] for c in listing["connections"]] == ["fixture"]
    clusters = {c["name"]: c for c in (await call(jp_fetch, "GET", "clusters"))["clusters"]}
    assert clusters["fixture"]["state"] == "connected"
    assert clusters["fixture"]["source"] == "ssh_config"
    assert {"saga", "narval", "perlmutter", "configured"} <= set(clusters)

    gone = await call(jp_fetch, "DELETE", "connections", "fixture")
    assert gone["state"] == "disconnected"
    assert mux.alive(view["control_path"]) is None
    assert not os.path.exists(view["control_path"])
    assert otp not in caplog.text
    assert all(otp not in " ".join(argv) for argv in cmdlines().values())


async def test_sigma2_two_prompts(
    jp_fetch: Fetch, prompt_server: Callable[..., Any], client_config: Path
) -> None:
    server = prompt_server(sshserver.sigma2(otp_ok, PASSWORD))
    add_prompt_host(client_config, "sigma", server.port)
    await call(jp_fetch, "POST", "connections", body={"cluster": "sigma", "persist": "2h"})
    first = await wait_for(jp_fetch, "sigma", {"prompting"})
    assert first["prompt"]["kind"] == "otp"
    assert "One-time password (OATH)" in first["prompt"]["text"]
    await answer(jp_fetch, "sigma", code())
    second = await wait_for(jp_fetch, "sigma", {"prompting"}, first["prompt"]["id"])
    assert second["prompt"]["kind"] == "password"
    await answer(jp_fetch, "sigma", PASSWORD)
    done = await wait_for(jp_fetch, "sigma", {"connected"})
    assert done["persist"] == "7200s"
    assert run_through(client_config, done["control_path"], "sigma", "echo", "hi") == "hi\n"
    await call(jp_fetch, "DELETE", "connections", "sigma")


async def test_duo_menu(
    jp_fetch: Fetch, prompt_server: Callable[..., Any], client_config: Path
) -> None:
    server = prompt_server(sshserver.duo("424242"))
    add_prompt_host(client_config, "duo", server.port)
    await call(jp_fetch, "POST", "connections", body={"cluster": "duo"})
    view = await wait_for(jp_fetch, "duo", {"prompting"})
    assert view["prompt"]["kind"] == "duo"
    assert any("Duo Push" in option for option in view["prompt"]["options"])
    await answer(jp_fetch, "duo", "424242")
    await wait_for(jp_fetch, "duo", {"connected"})
    await call(jp_fetch, "DELETE", "connections", "duo")


async def test_wrong_code_then_right(
    jp_fetch: Fetch, prompt_server: Callable[..., Any], client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "otp", server.port)
    await call(jp_fetch, "POST", "connections", body={"cluster": "otp"})
    first = await wait_for(jp_fetch, "otp", {"prompting"})
    await answer(jp_fetch, "otp", wrong_code())
    again = await wait_for(jp_fetch, "otp", {"prompting"}, first["prompt"]["id"])
    assert again["message"] == "Wrong code — try again"
    status, error = await call_error(
        jp_fetch, "POST", "connections", "otp", "answer",
        body={"response": code(), "prompt_id": first["prompt"]["id"]},
    )  # fmt: skip
    assert status == 409 and error["reason"] == "no_prompt"
    await answer(jp_fetch, "otp", code(), again["prompt"]["id"])
    await wait_for(jp_fetch, "otp", {"connected"})
    await call(jp_fetch, "DELETE", "connections", "otp")


@pytest.fixture
def short_prompt_timeout(jp_server_config: dict[str, Any]) -> None:
    jp_server_config["Hy2faLab"]["prompt_timeout"] = 2


async def test_prompt_timeout_fails_and_leaves_no_child(
    short_prompt_timeout: None,
    jp_fetch: Fetch,
    prompt_server: Callable[..., Any],
    client_config: Path,
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "slow", server.port)
    view = await call(jp_fetch, "POST", "connections", body={"cluster": "slow"})
    await wait_for(jp_fetch, "slow", {"prompting"})
    done = await wait_for(jp_fetch, "slow", {"failed"}, timeout=15)
    assert done["reason"] == "timeout"
    assert ssh_processes(view["control_path"]) == {}


async def test_two_posts_at_once_start_one_ssh(
    jp_fetch: Fetch, prompt_server: Callable[..., Any], client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "twice", server.port)
    one, two = await asyncio.gather(
        call(jp_fetch, "POST", "connections", body={"cluster": "twice"}),
        call(jp_fetch, "POST", "connections", body={"cluster": "twice"}),
    )
    assert one["control_path"] == two["control_path"]
    await wait_for(jp_fetch, "twice", {"prompting"})
    assert len(ssh_processes(one["control_path"])) == 1
    cancelled = await call(jp_fetch, "DELETE", "connections", "twice")
    assert cancelled["state"] == "failed" and cancelled["reason"] == "cancelled"
    assert ssh_processes(one["control_path"]) == {}


async def test_user_in_the_request_names_the_connection(
    jp_fetch: Fetch, prompt_server: Callable[..., Any], client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "otp", server.port)
    view = await call(jp_fetch, "POST", "connections", body={"cluster": "otp", "user": "tester"})
    assert view["name"] == "tester@otp" and view["cluster"] == "otp"
    await wait_for(jp_fetch, "tester@otp", {"prompting"})
    rows = {c["name"]: c for c in (await call(jp_fetch, "GET", "clusters"))["clusters"]}
    assert rows["otp"]["connection"] == "tester@otp"  # the sidebar row follows it
    assert rows["otp"]["state"] == "prompting"
    await answer(jp_fetch, "tester@otp", code())
    await wait_for(jp_fetch, "tester@otp", {"connected"})
    await call(jp_fetch, "DELETE", "connections", "tester@otp")


# ---- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "parts", "body", "status", "reason"),
    [
        ("POST", ("connections",), {"cluster": "nowhere"}, 404, "unknown_cluster"),
        ("POST", ("connections",), {}, 400, "bad_request"),
        ("POST", ("connections",), {"cluster": 5}, 400, "bad_request"),
        ("POST", ("connections",), {"cluster": "saga", "x": 1}, 400, "bad_request"),
        ("POST", ("connections",), {"cluster": "saga", "user": "-oProxyCommand=x"}, 422, "invalid"),
        ("POST", ("connections",), {"cluster": "saga", "user": "a b"}, 422, "invalid"),
        ("POST", ("connections",), {"cluster": "saga", "persist": "forever"}, 422, "invalid"),
        ("POST", ("connections",), {"cluster": "saga", "persist": [1]}, 400, "bad_request"),
        ("POST", ("connections", "saga", "answer"), {"response": "1"}, 404, "unknown_cluster"),
        ("DELETE", ("connections", "nowhere"), None, 404, "unknown_cluster"),
        ("GET", ("connections", "nowhere"), None, 404, "unknown_cluster"),
    ],
)
async def test_bad_requests_get_clear_errors_and_spawn_nothing(
    jp_fetch: Fetch,
    method: str,
    parts: tuple[str, ...],
    body: Any,
    status: int,
    reason: str,
) -> None:
    before = set(ssh_processes("saga.sigma2.no"))
    got, error = await call_error(jp_fetch, method, *parts, body=body)
    assert (got, error["reason"]) == (status, reason)
    assert error["message"]
    assert set(ssh_processes("saga.sigma2.no")) == before
    listing = await call(jp_fetch, "GET", "connections")
    assert listing["connections"] == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"cluster": "configured", "persist": "9999999999w"}, 422, "longer than ssh allows"),
        ({"cluster": "configured", "persist": "1" * 20}, 422, "longer than ssh allows"),
        ({"cluster": "configured", "persist": "1e99"}, 422, "persist must be"),
        ({"cluster": "configured", "persist": -1}, 422, "persist must be"),
        ({"cluster": "configured", "user": "%d"}, 422, "'%'"),
        ({"cluster": "configured", "user": "-oProxyCommand=x"}, 422, "must not start"),
        ({"cluster": "x" * 5_000_000}, 404, "No cluster named"),
        ({"cluster": "configured", "user": "u" * 5_000_000}, 422, "longer than 255"),
    ],
    ids=["9999999999w", "20-digits", "1e99", "minus-one", "percent-user", "dash-user",
         "5MB-cluster", "5MB-user"],
)  # fmt: skip
async def test_out_of_range_and_huge_input_is_refused_briefly_before_ssh_runs(
    jp_fetch: Fetch, body: dict[str, Any], status: int, words: str
) -> None:
    got, error = await call_error(jp_fetch, "POST", "connections", body=body)
    assert got == status and words in error["message"]
    assert len(error["message"]) < 300  # a 5 MB input is not echoed back
    assert ssh_processes("127.0.0.1") == {}
    assert (await call(jp_fetch, "GET", "connections"))["connections"] == []


async def test_a_killed_master_shows_at_once_in_its_own_row(
    jp_fetch: Fetch, prompt_server: Callable[..., Any], client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "killed", server.port)
    await call(jp_fetch, "POST", "connections", body={"cluster": "killed"})
    await wait_for(jp_fetch, "killed", {"prompting"})
    await answer(jp_fetch, "killed", code())
    live = await wait_for(jp_fetch, "killed", {"connected"})
    os.kill(live["master_pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(live["master_pid"]) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    view = await call(jp_fetch, "GET", "connections", "killed")  # not after the next refresh
    assert view["state"] == "disconnected" and view["master_pid"] is None


@pytest.fixture
def hung_socket(jp_server_config: dict[str, Any], client_config: Path, short_tmp: Path) -> Any:
    """A listener that never answers at the ControlPath of ``Host hung``, there before the
    server starts (a master stopped with SIGSTOP, or something else bound there)."""
    path = str(short_tmp / "hung.sock")
    with client_config.open("a") as handle:
        handle.write(f"Host hung\n  HostName 127.0.0.1\n  ControlPath {path}\n")
    listener = SilentListener(path)
    yield path
    listener.close()


async def test_a_socket_that_never_answers_breaks_no_route(
    hung_socket: str, jp_fetch: Fetch
) -> None:
    assert (await call(jp_fetch, "GET", "version"))["version"]  # the extension started
    listed = (await call(jp_fetch, "GET", "connections"))["connections"]
    assert [(c["name"], c["state"]) for c in listed] == [("hung", "unresponsive")]
    assert "does not answer" in listed[0]["message"]
    rows = {c["name"]: c for c in (await call(jp_fetch, "GET", "clusters"))["clusters"]}
    assert rows["hung"]["state"] == "unresponsive"
    view = await call(jp_fetch, "POST", "connections", body={"cluster": "hung"})
    assert view["state"] == "unresponsive"
    assert (await call(jp_fetch, "GET", "connections", "hung"))["state"] == "unresponsive"
    status, error = await call_error(jp_fetch, "DELETE", "connections", "hung")
    assert (status, error["reason"]) == (502, "unresponsive")
    assert "does not answer" in error["message"]
    assert ssh_processes(hung_socket) == {}  # no login was started over it
    assert os.path.exists(hung_socket)  # and it was not removed


async def test_non_json_body_is_refused(jp_fetch: Fetch) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("hy2fa", "connections", method="POST", body="{not json")
    assert caught.value.code == 400


async def test_answers_are_checked_and_not_echoed(
    jp_fetch: Fetch, prompt_server: Callable[..., Any], client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "otp", server.port)
    await call(jp_fetch, "POST", "connections", body={"cluster": "otp"})
    view = await wait_for(jp_fetch, "otp", {"prompting"})
    for bad in ({"response": 123456}, {}, {"response": "1", "prompt_id": "x"}):
        status, error = await call_error(jp_fetch, "POST", "connections", "otp", "answer", body=bad)
        assert status == 400, error
    status, error = await call_error(
        jp_fetch, "POST", "connections", "otp", "answer", body={"response": "12\n34"}
    )
    assert status == 422 and "12" not in error["message"]
    still = await call(jp_fetch, "GET", "connections", "otp")
    assert still["state"] == "prompting" and still["prompt"]["id"] == view["prompt"]["id"]
    await call(jp_fetch, "DELETE", "connections", "otp")


# Auth of every route (listed from the app) is in test_server_auth.py.


# ---- events -----------------------------------------------------------------------------


async def test_state_changes_are_events_without_secrets(
    jp_fetch: Fetch, jp_serverapp: Any, prompt_server: Callable[..., Any], client_config: Path
) -> None:
    seen: list[dict[str, Any]] = []

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        seen.append({"schema_id": schema_id, **data})

    jp_serverapp.event_logger.add_listener(listener=listener)
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "otp", server.port)
    await call(jp_fetch, "POST", "connections", body={"cluster": "otp"})
    await wait_for(jp_fetch, "otp", {"prompting"})
    otp = code()
    await answer(jp_fetch, "otp", otp)
    await wait_for(jp_fetch, "otp", {"connected"})
    await call(jp_fetch, "DELETE", "connections", "otp")
    await asyncio.sleep(0.1)
    ours = [e for e in seen if "hy2fa" in e["schema_id"]]
    states = [e["state"] for e in ours]
    assert states[0] == "starting" and "prompting" in states
    assert states[-2:] == ["connected", "disconnected"]
    prompting = next(e for e in ours if e["state"] == "prompting")
    assert prompting["prompt"]["kind"] == "otp" and prompting["prompt"]["text"]
    # One shape: an event carries the connection exactly as REST shows it.
    rest = await call(jp_fetch, "GET", "connections", "otp")
    assert set(prompting) - {"schema_id"} == set(rest)
    assert otp not in json.dumps(ours)


# ---- many prompts, shutdown, restart ---------------------------------------------------


async def test_twenty_prompts_do_not_block_the_server(
    jp_fetch: Fetch, prompt_server: Callable[..., Any], client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    names = [f"many{i}" for i in range(20)]
    for name in names:
        add_prompt_host(client_config, name, server.port, user=name)
    await asyncio.gather(
        *(call(jp_fetch, "POST", "connections", body={"cluster": n}) for n in names)
    )
    for name in names:
        await wait_for(jp_fetch, name, {"prompting"}, timeout=60)
    started = time.monotonic()
    for _ in range(5):
        response = await jp_fetch("api", "status", request_timeout=5)
        assert response.code == 200
    assert time.monotonic() - started < 25  # a bound on the test, not a benchmark
    await asyncio.gather(*(call(jp_fetch, "DELETE", "connections", n) for n in names))
    for name in names:
        view = await call(jp_fetch, "GET", "connections", name)
        assert view["reason"] == "cancelled"
        assert ssh_processes(view["control_path"]) == {}


async def test_shutdown_cancels_pending_and_keeps_live_masters(
    jp_fetch: Fetch, jp_serverapp: Any, prompt_server: Callable[..., Any], client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "live", server.port)
    add_prompt_host(client_config, "pending", server.port, user="other")
    await call(jp_fetch, "POST", "connections", body={"cluster": "live"})
    await wait_for(jp_fetch, "live", {"prompting"})
    await answer(jp_fetch, "live", code())
    live = await wait_for(jp_fetch, "live", {"connected"})
    pending = await call(jp_fetch, "POST", "connections", body={"cluster": "pending"})
    await wait_for(jp_fetch, "pending", {"prompting"})
    assert ssh_processes(pending["control_path"])

    await jp_serverapp.extension_manager.stop_all_extensions()
    assert ssh_processes(pending["control_path"]) == {}
    assert mux.alive(live["control_path"]) == live["master_pid"]


@pytest.fixture
def second_server(client_config: Path, short_tmp: Path) -> Iterator[Callable[[], str]]:
    """Start another, separate ``jupyter server`` process on the same settings."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        port = free_port()
        argv = [
            sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
            f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
            "--IdentityProvider.token=second-token", f"--ServerApp.root_dir={short_tmp}",
            f"--Hy2faLab.ssh_config={client_config}",
            f"--Hy2faLab.control_path={short_tmp}/%C",
            "--Hy2faLab.prompt_timeout=30",
        ]  # fmt: skip
        log = (short_tmp / "second-server.log").open("wb")
        procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
        return f"http://127.0.0.1:{port}/"

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _get_json(url: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Authorization": "token second-token"})
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def test_a_restarted_server_finds_the_master(
    jp_fetch: Fetch,
    prompt_server: Callable[..., Any],
    client_config: Path,
    second_server: Callable[[], str],
    short_tmp: Path,
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "kept", server.port)
    await call(jp_fetch, "POST", "connections", body={"cluster": "kept"})
    await wait_for(jp_fetch, "kept", {"prompting"})
    await answer(jp_fetch, "kept", code())
    live = await wait_for(jp_fetch, "kept", {"connected"})

    url = second_server()
    listing = await asyncio.to_thread(_get_json, f"{url}hy2fa/connections")
    found = {c["name"]: c for c in listing["connections"]}
    assert "kept" in found, (short_tmp / "second-server.log").read_text()
    assert found["kept"]["state"] == "connected", (short_tmp / "second-server.log").read_text()
    assert found["kept"]["master_pid"] == live["master_pid"]
    # ... and the command line configured it (--Hy2faLab.prompt_timeout and friends).
    assert found["kept"]["control_path"] == live["control_path"]
    await call(jp_fetch, "DELETE", "connections", "kept")


# ---- packaging and configuration ------------------------------------------------------


def test_the_extension_is_enabled_on_install() -> None:
    jupyter = Path(sys.executable).parent / "jupyter"
    result = subprocess.run(
        [str(jupyter), "server", "extension", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text = result.stdout + result.stderr
    assert "hy2fa_lab" in text
    assert "hy2fa_lab enabled" in text.replace("\x1b[32m", "").replace("\x1b[0m", "")
    assert re.search(r"hy2fa_lab \S+ .*OK", text)


def test_the_prebuilt_frontend_is_installed() -> None:
    """pip put the labextension where JupyterLab finds it (no node needed at run time)."""
    jupyter = Path(sys.executable).parent / "jupyter"
    result = subprocess.run(
        [str(jupyter), "labextension", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert re.search(r"hy2fa-lab v\S+ enabled OK", text), text


@pytest.mark.parametrize(
    ("trait", "value", "message"),
    [
        ("clusters", {"x": {"port": 22}}, "needs a host"),
        ("clusters", {"x": {"host": "-oProxyCommand=x"}}, "must not start"),
        ("default_persist", "sometime", "persist"),
        ("prompt_timeout", 0, "1 to 86400"),
    ],
)
def test_bad_configuration_is_not_used_and_says_why(trait: str, value: Any, message: str) -> None:
    """Not a TraitError: jupyter_server would drop the whole Hy2faLab config for it (issue
    18). The value is not used (a bad cluster is left out) and a problem says why."""
    from traitlets.config import Config

    from hy2fa_lab.server import Hy2faLab

    app = Hy2faLab(config=Config({"Hy2faLab": {trait: value}}))
    (problem,) = app.config_problems
    assert problem.setting == trait and message in problem.message
    assert getattr(app, trait) != value


async def test_a_control_path_asked_for_is_used_exactly(
    jp_fetch: Fetch, prompt_server: Callable[..., Any], client_config: Path, short_tmp: Path
) -> None:
    """Where a tool such as HSP looks (its own socket path), not where hy2fa would put it."""
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "hsp", server.port)
    with client_config.open("a") as handle:  # the ssh config's own path loses to the asked one
        handle.write(f"  ControlPath {short_tmp}/from-config-%C\n")
    wanted = f"{short_tmp}/hsp-%n.sock"
    for bad, words in [
        (f"{short_tmp}/{'x' * 120}", "too long"),
        (f"{short_tmp}/a%%b", "literal '%'"),
        ("relative/path", "absolute"),
        (f"{short_tmp}/%Q", "unknown token"),
    ]:
        status, error = await call_error(
            jp_fetch, "POST", "connections", body={"cluster": "hsp", "control_path": bad}
        )
        assert status == 422 and words in error["message"], (bad, error)
    assert ssh_processes("hsp") == {}
    view = await call(
        jp_fetch, "POST", "connections", body={"cluster": "hsp", "control_path": wanted}
    )
    assert view["control_path"] == f"{short_tmp}/hsp-hsp.sock"
    prompt = await wait_for(jp_fetch, "hsp", {"prompting"})
    await answer(jp_fetch, "hsp", code(), prompt["prompt"]["id"])
    live = await wait_for(jp_fetch, "hsp", {"connected"})
    assert mux.alive(f"{short_tmp}/hsp-hsp.sock") == live["master_pid"]
    await call(jp_fetch, "DELETE", "connections", "hsp")


async def test_following_a_connection_waits_for_its_next_change(
    jp_fetch: Fetch, prompt_server: Callable[..., Any], client_config: Path
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "otp", server.port)
    await call(jp_fetch, "POST", "connections", body={"cluster": "otp"})
    view = await wait_for(jp_fetch, "otp", {"prompting"})
    for bad in ({"after": "x"}, {"after": "1", "wait": "nan"}, {"after": "1", "wait": "-1"},
                {"after": "1", "wait": "61"}):  # fmt: skip
        response = await jp_fetch(
            "hy2fa", "connections", "otp", method="GET", params=bad, raise_error=False
        )
        assert response.code == 400, bad

    async def follow(wait: float) -> Any:
        params = {"after": str(view["version"]), "wait": str(wait)}
        response = await jp_fetch("hy2fa", "connections", "otp", method="GET", params=params)
        return json.loads(response.body)

    # Nothing changes: the server answers after `wait`, with the same version.
    same = await follow(0.3)
    assert same["version"] == view["version"]
    # An answer is a change: a held request returns with it at once.
    held = asyncio.ensure_future(follow(30))
    await asyncio.sleep(0.2)
    assert not held.done()
    await answer(jp_fetch, "otp", code(), view["prompt"]["id"])
    changed = await asyncio.wait_for(held, 10)
    assert changed["version"] > view["version"] and changed["state"] != "prompting"
    await wait_for(jp_fetch, "otp", {"connected"})
    await call(jp_fetch, "DELETE", "connections", "otp")
