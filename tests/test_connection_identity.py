"""Two connections with one name: each has an id, and a name means the right one.

The README's own HSP flow makes two: a notebook's ssh makes a master at its own socket (the
askpass bridge adopts it as ``fixture``), then ``fixture`` is connected from the sidebar. An
answer or a cancel by name must reach the login under way, never stop the notebook's master;
a new login supersedes a finished one of its name, so ``ensure()`` follows the new one. Real
Jupyter server, real kernels, real OpenSSH client and sshd.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from test_askpass_server import next_ask, ssh_code, start_kernel, stop_kernel, stop_master
from test_server_api import add_sshd_host, call, call_error

from hy2fa_lab.core import mux

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd
except ImportError:
    from sshd_fixture import RealSshd  # type: ignore[no-redef]

pytestmark = [pytest.mark.sshd, pytest.mark.timeout(180)]
Fetch = Callable[..., Any]


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["Hy2faLab"]["prompt_timeout"] = 60
    return jp_server_config


async def connections(fetch: Fetch) -> list[dict[str, Any]]:
    return list((await call(fetch, "GET", "connections"))["connections"])


async def next_change(fetch: Fetch, key: str, view: dict[str, Any]) -> dict[str, Any]:
    """The connection ``key`` at its next change after ``view`` (the server holds the request)."""
    params = {"after": str(view["version"]), "wait": "30"}
    response = await fetch("hy2fa", "connections", key, method="GET", params=params)
    return dict(json.loads(response.body))


async def until(fetch: Fetch, key: str, view: dict[str, Any], states: set[str]) -> dict[str, Any]:
    while view["state"] not in states:
        view = await next_change(fetch, key, view)
    return view


async def test_a_name_shared_with_a_notebooks_master_means_the_login_under_way(
    jp_fetch: Fetch,
    jp_ws_fetch: Fetch,
    jp_serverapp: Any,
    real_sshd: RealSshd,
    client_config: Path,
    short_tmp: Path,
) -> None:
    add_sshd_host(client_config, real_sshd)
    hsp_socket = short_tmp / "hsp.sock"
    kernel = await start_kernel(jp_fetch, jp_ws_fetch, "Analysis.ipynb")
    try:
        # HSP's own ssh, with its own ControlPath, asks through the bridge; its master is
        # adopted as a connection named after the host it was given.
        seen: set[str] = set()
        execution = kernel.start(ssh_code(client_config, hsp_socket, "true"))
        ask = await next_ask(jp_fetch, seen)
        await jp_fetch(
            "hy2fa", "asks", ask["id"], "answer", method="POST",
            body=json.dumps({"response": real_sshd.totp()}),
        )  # fmt: skip
        await kernel.finish(execution, 60)
        assert "STATUS 0" in execution.stdout, execution.stdout
        hsp_pid = mux.alive(str(hsp_socket))
        assert hsp_pid is not None
        while not (made := [c for c in await connections(jp_fetch) if c["master_pid"] == hsp_pid]):
            await asyncio.sleep(0.05)  # the bridge adopts it right after the ssh ends
        (hsp,) = made
        assert hsp["name"] == "fixture" and hsp["state"] == "connected"
        assert hsp["made_by"] == {
            "kind": "ssh",
            "notebook": "Analysis.ipynb",
            "kernel_id": kernel.kernel_id,
        }

        # The sidebar connects the cluster of the same name: a login at its own socket.
        login = await call(jp_fetch, "POST", "connections", body={"cluster": "fixture"})
        assert login["id"] != hsp["id"] and login["name"] == "fixture"
        assert login["made_by"] == {"kind": "login"}
        assert login["control_path"] != str(hsp_socket)
        login = await until(jp_fetch, login["id"], login, {"prompting"})
        by_name = await call(jp_fetch, "GET", "connections", "fixture")
        assert by_name["id"] == login["id"]  # the name means the login under way

        # Cancel by name (an older client): the login is cancelled, HSP's master stays.
        cancelled = await call(jp_fetch, "DELETE", "connections", "fixture")
        assert cancelled["id"] == login["id"] and cancelled["state"] == "failed"
        assert cancelled["reason"] == "cancelled"
        assert mux.alive(str(hsp_socket)) == hsp_pid

        # Connected again: the same socket, so the same connection, started anew; an answer
        # by name reaches it, not the notebook's master.
        again = await call(jp_fetch, "POST", "connections", body={"cluster": "fixture"})
        assert again["id"] == login["id"] and again["state"] == "starting"
        again = await until(jp_fetch, again["id"], again, {"prompting"})
        answered = await call(
            jp_fetch, "POST", "connections", "fixture", "answer",
            body={"response": real_sshd.totp(), "prompt_id": again["prompt"]["id"]},
        )  # fmt: skip
        assert answered["id"] == again["id"]
        assert (await until(jp_fetch, again["id"], answered, {"connected"}))["state"] == (
            "connected"
        )
        listed = {c["id"]: c for c in await connections(jp_fetch)}
        assert set(listed) == {hsp["id"], again["id"]}
        assert listed[hsp["id"]]["master_pid"] == hsp_pid

        # By id, each one is itself: stop the sidebar's master, HSP's keeps running.
        master = listed[again["id"]]["master_pid"]
        stopped = await call(jp_fetch, "DELETE", "connections", again["id"])
        assert stopped["state"] == "disconnected"
        # Done when the process is gone, not only its socket (a zombie until its parent,
        # perhaps this test process, reaps it).
        with contextlib.suppress(psutil.NoSuchProcess):
            assert psutil.Process(master).status() == psutil.STATUS_ZOMBIE
        assert mux.alive(str(hsp_socket)) == hsp_pid
        # The cluster's row shows its own socket, not the notebook's master.
        row = await call(jp_fetch, "GET", "clusters", "fixture")
        assert row["state"] != "connected" and row["control_path"] != str(hsp_socket)
    finally:
        await stop_kernel(jp_fetch, kernel)
        stop_master(client_config, hsp_socket)


async def test_ensure_follows_its_own_login_not_a_failed_one_of_the_same_name(
    kernel: Any, jp_fetch: Fetch, real_sshd: RealSshd, client_config: Path, short_tmp: Path
) -> None:
    add_sshd_host(client_config, real_sshd)
    # A login at a socket path of its own, cancelled: a failed connection named fixture.
    odd = await call(
        jp_fetch,
        "POST",
        "connections",
        body={"cluster": "fixture", "control_path": f"{short_tmp}/odd.sock"},
    )
    odd = await until(jp_fetch, odd["id"], odd, {"prompting"})
    failed = await call(jp_fetch, "DELETE", "connections", odd["id"])
    assert failed["state"] == "failed" and failed["reason"] == "cancelled"

    execution = kernel.start(
        "from hy2fa_lab import ensure\nprint('PATH=' + ensure('fixture', timeout=60))"
    )
    while not (fresh := [c for c in await connections(jp_fetch) if c["state"] == "prompting"]):
        await asyncio.sleep(0.05)
    (login,) = fresh
    assert login["id"] != odd["id"]
    await call(
        jp_fetch, "POST", "connections", login["id"], "answer",
        body={"response": real_sshd.totp(), "prompt_id": login["prompt"]["id"]},
    )  # fmt: skip
    await kernel.finish(execution, 60)
    assert execution.error is None, execution.error
    assert f"PATH={login['control_path']}" in execution.stdout, execution.stdout
    # The failed one gave way: listed no more, and its id says so no more either.
    assert [c["id"] for c in await connections(jp_fetch)] == [login["id"]]
    code, error = await call_error(jp_fetch, "GET", "connections", odd["id"])
    assert code == 404 and error["reason"] == "unknown_cluster"
