"""The askpass bridge in a real Jupyter server: an ssh that a real kernel (started by the
server) runs with its own ControlPath asks in Lab over REST, against the real sshd."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kernel_ws import KernelWS
from procs import cmdlines
from tornado.httpclient import HTTPClientError

from hy2fa_lab.core import mux
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.types import State
from hy2fa_lab.demo import sshserver

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd
except ImportError:
    from sshd_fixture import RealSshd  # type: ignore[no-redef]

pytestmark = pytest.mark.sshd
Fetch = Callable[..., Any]


@pytest.fixture
def jp_server_config(short_tmp: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"hy2fa_lab": True}},
        "Hy2faLab": {"control_path": f"{short_tmp}/%C", "prompt_timeout": 30},
    }


async def start_kernel(fetch: Fetch, ws_fetch: Fetch, notebook: str) -> Any:
    """A kernel started by the server, as Lab starts one (its session names a notebook)."""
    body = {"path": notebook, "type": "notebook", "name": "", "kernel": {"name": "python3"}}
    response = await fetch("api", "sessions", method="POST", body=json.dumps(body))
    session = json.loads(response.body)
    ws = await ws_fetch("api", "kernels", session["kernel"]["id"], "channels")
    client = KernelWS(ws)
    await client.run("1", timeout=120)
    client.kernel_id = session["kernel"]["id"]  # type: ignore[attr-defined]
    client.session_id = session["id"]  # type: ignore[attr-defined]
    return client


async def stop_kernel(fetch: Fetch, client: Any) -> None:
    await client.close()
    await fetch("api", "sessions", client.session_id, method="DELETE")


@pytest_asyncio.fixture
async def kernel(jp_fetch: Fetch, jp_ws_fetch: Fetch, jp_serverapp: Any) -> AsyncIterator[Any]:
    client = await start_kernel(jp_fetch, jp_ws_fetch, "Analysis.ipynb")
    yield client
    await stop_kernel(jp_fetch, client)


async def get_asks(fetch: Fetch) -> list[dict[str, Any]]:
    response = await fetch("hy2fa", "asks", method="GET")
    return list(json.loads(response.body)["asks"])


async def next_ask(fetch: Fetch, seen: set[str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ask in await get_asks(fetch):
            if ask["id"] not in seen:
                seen.add(ask["id"])
                return ask
        await asyncio.sleep(0.05)
    raise AssertionError("no question arrived in Lab")


def ssh_code(config: Path, socket_path: Path, command: str, alias: str = "fixture") -> str:
    """What HSP does: ssh with its own socket path, ControlMaster=auto, no terminal."""
    argv = [
        "ssh", "-F", str(config), "-o", "ControlMaster=auto",
        "-o", f"ControlPath={socket_path}", "-o", "ControlPersist=60", alias, command,
    ]  # fmt: skip
    return (
        "import subprocess\n"
        f"result = subprocess.run({argv!r}, stdin=subprocess.DEVNULL, capture_output=True, "
        "text=True, timeout=60)\n"
        "print('STATUS', result.returncode)\nprint('OUT', result.stdout.strip())\n"
        "print('ERR', result.stderr.strip())\n"
    )


def stop_master(config: Path, socket_path: Path, alias: str = "fixture") -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_ASKPASS")}
    subprocess.run(
        ["ssh", "-F", str(config), "-S", str(socket_path), "-O", "exit", alias],
        capture_output=True,
        timeout=10,
        env=env,
    )


async def test_a_kernels_own_ssh_asks_in_lab_and_its_master_is_reused(
    kernel: Any, jp_fetch: Fetch, jp_serverapp: Any, real_sshd: RealSshd, short_tmp: Path
) -> None:
    config = real_sshd.write_client_config(short_tmp / "ssh_config", trust_host_key=False)
    socket_path = short_tmp / "hsp-fixture.sock"
    events: list[dict[str, Any]] = []

    async def heard(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        events.append({"schema_id": schema_id, **data})

    jp_serverapp.event_logger.add_listener(listener=heard)
    seen: set[str] = set()
    execution = kernel.start(ssh_code(config, socket_path, "echo ran-in-the-kernel"))
    try:
        hostkey = await next_ask(jp_fetch, seen)
        assert hostkey["prompt"]["kind"] == "hostkey"
        assert real_sshd.host_key_fingerprint in hostkey["prompt"]["text"]
        assert "continue connecting (yes/no/[fingerprint])?" in hostkey["prompt"]["text"]
        assert "ControlPath=" + str(socket_path) in hostkey["command"]
        assert hostkey["origin"]["kernel_id"] == kernel.kernel_id
        assert hostkey["origin"]["notebook"] == "Analysis.ipynb"
        await jp_fetch(
            "hy2fa", "asks", hostkey["id"], "answer", method="POST",
            body=json.dumps({"response": "yes"}),
        )  # fmt: skip

        code_ask = await next_ask(jp_fetch, seen)
        assert code_ask["prompt"]["kind"] == "otp"
        assert code_ask["prompt"]["text"].startswith(f"({real_sshd.user}@127.0.0.1) ")
        assert code_ask["host"] == "127.0.0.1"
        code = real_sshd.totp()
        answered = await jp_fetch(
            "hy2fa", "asks", code_ask["id"], "answer", method="POST",
            body=json.dumps({"response": code}),
        )  # fmt: skip
        assert answered.code == 204 and not answered.body

        await kernel.finish(execution, 60)
        assert "STATUS 0" in execution.stdout, execution.stdout
        assert "OUT ran-in-the-kernel" in execution.stdout
        assert await get_asks(jp_fetch) == []

        again = await kernel.run(ssh_code(config, socket_path, "echo again"), timeout=60)
        assert "STATUS 0" in again.stdout and "OUT again" in again.stdout
        assert len(seen) == 2  # over the socket: nothing asked
        assert real_sshd.log().count("Accepted keyboard-interactive/pam") == 1

        # The master that ssh left behind is a connection like any other.
        deadline = time.monotonic() + 15
        while True:
            listed = json.loads((await jp_fetch("hy2fa", "connections")).body)["connections"]
            made = [c for c in listed if c["control_path"] == str(socket_path)]
            if made or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert [(c["name"], c["state"]) for c in made] == [("fixture", "connected")]
        assert made[0]["master_pid"] == mux.alive(str(socket_path))
        assert made[0]["host"] == "127.0.0.1" and made[0]["user"] == real_sshd.user
        # A server started later (same runtime dir) lists it again: only paths and hosts kept.
        remembered = Path(jp_serverapp.runtime_dir) / "hy2fa-masters.json"
        assert str(socket_path) in remembered.read_text() and code not in remembered.read_text()
        assert remembered.stat().st_mode & 0o777 == 0o600
        later = Manager(Settings(masters_file=str(remembered)))
        await later.ready()
        assert [(s.name, s.state, s.master_pid) for s in later.sessions()] == [
            ("fixture", State.CONNECTED, made[0]["master_pid"])
        ]
        stopped = json.loads(
            (await jp_fetch("hy2fa", "connections", "fixture", method="DELETE")).body
        )
        assert stopped["state"] == "disconnected"
        assert mux.alive(str(socket_path)) is None

        asks = [e for e in events if e["schema_id"].endswith("/ask/v2")]
        assert [e["action"] for e in asks] == ["asked", "answered", "asked", "answered"]
        assert all(code not in json.dumps(e) for e in events)
    finally:
        jp_serverapp.event_logger.remove_listener(listener=heard)
        stop_master(config, socket_path)


async def test_cancel_in_lab_ends_the_kernels_ssh(
    kernel: Any, jp_fetch: Fetch, real_sshd: RealSshd, short_tmp: Path
) -> None:
    config = real_sshd.write_client_config(short_tmp / "ssh_config")
    socket_path = short_tmp / "hsp-fixture.sock"
    seen: set[str] = set()
    execution = kernel.start(ssh_code(config, socket_path, "echo never"))
    ask = await next_ask(jp_fetch, seen)
    assert ask["prompt"]["kind"] == "otp"
    started = time.monotonic()
    deleted = await jp_fetch("hy2fa", "asks", ask["id"], method="DELETE")
    assert deleted.code == 204
    await kernel.finish(execution, 30)
    assert time.monotonic() - started < 10
    assert "STATUS 0" not in execution.stdout and "OUT never" not in execution.stdout
    assert "Cancelled in JupyterLab" in execution.stdout
    assert len(seen) == 1  # not asked again
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch(
            "hy2fa", "asks", ask["id"], "answer", method="POST",
            body=json.dumps({"response": "123456"}),
        )  # fmt: skip
    assert caught.value.code == 404


async def test_bad_answers_are_refused_and_change_nothing(
    kernel: Any, jp_fetch: Fetch, real_sshd: RealSshd, short_tmp: Path
) -> None:
    config = real_sshd.write_client_config(short_tmp / "ssh_config")
    socket_path = short_tmp / "hsp-fixture.sock"
    seen: set[str] = set()
    execution = kernel.start(ssh_code(config, socket_path, "echo fine"))
    try:
        ask = await next_ask(jp_fetch, seen)
        for body, status in [
            ({"response": "x" * 5000}, 413),
            ({"response": "12\n34"}, 422),
            ({"response": 123456}, 400),
            ({}, 400),
            ({"response": "1", "extra": 1}, 400),
            ({"response": "\ud800"}, 422),  # a lone surrogate: not text ssh could get
        ]:
            with pytest.raises(HTTPClientError) as caught:
                await jp_fetch(
                    "hy2fa", "asks", ask["id"], "answer", method="POST", body=json.dumps(body)
                )
            assert caught.value.code == status, body
        assert [a["id"] for a in await get_asks(jp_fetch)] == [ask["id"]]
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch("hy2fa", "asks", "x" * 10_000, method="DELETE")
        assert caught.value.code == 404 and caught.value.response is not None
        assert len(caught.value.response.body) < 500  # the unknown id is not echoed whole
        await jp_fetch(
            "hy2fa", "asks", ask["id"], "answer", method="POST",
            body=json.dumps({"response": real_sshd.totp()}),
        )  # fmt: skip
        await kernel.finish(execution, 60)
        assert "OUT fine" in execution.stdout
    finally:
        stop_master(config, socket_path)


async def test_an_ssh_in_a_lab_terminal_still_asks_in_the_terminal(
    jp_fetch: Fetch, jp_ws_fetch: Fetch, real_sshd: RealSshd, short_tmp: Path
) -> None:
    config = real_sshd.write_client_config(short_tmp / "ssh_config")
    response = await jp_fetch("api", "terminals", method="POST", body="{}")
    name = json.loads(response.body)["name"]
    ws = await jp_ws_fetch("terminals", "websocket", name)
    shown = ""

    async def until(text: str, timeout: float = 30) -> None:
        nonlocal shown
        deadline = time.monotonic() + timeout
        while text not in shown:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} never showed; the terminal shows {shown[-500:]!r}"
            message = await asyncio.wait_for(ws.read_message(), remaining)
            assert message is not None, "the terminal closed"
            kind, *rest = json.loads(message)
            if kind == "stdout":
                shown += rest[0]

    try:
        # The terminal has the bridge's variables too: the helper itself asks on the tty.
        ws.write_message(json.dumps(["stdin", "echo REQ=${SSH_ASKPASS_REQUIRE}-$((1+1))\r"]))
        await until("REQ=force-2")
        ws.write_message(json.dumps(["stdin", f"ssh -F {config} fixture echo via-$((40+2))\r"]))
        await until("Verification code: ")
        assert await get_asks(jp_fetch) == []  # asked here, not in Lab
        ws.write_message(json.dumps(["stdin", real_sshd.totp() + "\r"]))
        await until("via-42")
    finally:
        ws.close()
        await jp_fetch("api", "terminals", name, method="DELETE")


async def test_two_kernels_asking_at_once_each_get_their_own_answer(
    jp_fetch: Fetch,
    jp_ws_fetch: Fetch,
    jp_serverapp: Any,
    prompt_server: Callable[..., Any],
    short_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two servers that want different codes: only answers routed to the right ssh log in."""
    caplog.set_level(logging.DEBUG)
    codes = {"alpha": "alpha-" + os.urandom(4).hex(), "beta": "beta-" + os.urandom(4).hex()}
    config = short_tmp / "ssh_config"
    known = short_tmp / "known_hosts"
    for name, code in codes.items():
        server = prompt_server(
            sshserver.PromptScript(steps=[sshserver.PromptStep("Code: ", expected=code)])
        )
        with known.open("a") as handle:
            handle.write(server.known_hosts_line())
        with config.open("a") as handle:
            handle.write(
                f"Host {name}\n  HostName 127.0.0.1\n  Port {server.port}\n  User tester\n"
                f"  UserKnownHostsFile {known}\n  PreferredAuthentications keyboard-interactive\n"
            )
    kernels = {name: await start_kernel(jp_fetch, jp_ws_fetch, f"{name}.ipynb") for name in codes}
    try:
        runs = {
            name: kernel.start(
                ssh_code(config, short_tmp / f"{name}.sock", f"echo {name}-ok", alias=name)
            )
            for name, kernel in kernels.items()
        }
        seen: set[str] = set()
        asks = [await next_ask(jp_fetch, seen), await next_ask(jp_fetch, seen)]
        for ask in asks:
            name = ask["origin"]["notebook"].removesuffix(".ipynb")
            assert name in ask["command"]  # the notebook's kernel runs the ssh for its host
            assert ask["origin"]["kernel_id"] == kernels[name].kernel_id
        for ask in reversed(asks):  # answered in the other order than asked
            name = ask["origin"]["notebook"].removesuffix(".ipynb")
            await jp_fetch(
                "hy2fa", "asks", ask["id"], "answer", method="POST",
                body=json.dumps({"response": codes[name]}),
            )  # fmt: skip
        for name, execution in runs.items():
            await kernels[name].finish(execution, 60)
            assert f"OUT {name}-ok" in execution.stdout, execution.stdout
        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert not any(code in logged for code in codes.values())
        assert not any(
            code in " ".join(argv) for argv in cmdlines().values() for code in codes.values()
        )
    finally:
        for name, kernel in kernels.items():
            stop_master(config, short_tmp / f"{name}.sock", name)
            await stop_kernel(jp_fetch, kernel)


async def test_bang_ssh_in_a_cell_asks_in_lab_not_in_ipythons_pty(
    kernel: Any, jp_fetch: Fetch, real_sshd: RealSshd, short_tmp: Path
) -> None:
    """IPython runs ``!`` commands in a pty of its own that nobody looks at: the helper has a
    terminal there, and the server, seeing the kernel above the ssh, still asks in Lab."""
    config = real_sshd.write_client_config(short_tmp / "ssh_config")
    socket_path = short_tmp / "bang.sock"
    seen: set[str] = set()
    execution = kernel.start(
        f"!ssh -F {config} -o ControlMaster=auto -o ControlPath={socket_path} "
        "-o ControlPersist=60 fixture echo bang-$((20+3))"
    )
    try:
        ask = await next_ask(jp_fetch, seen)
        assert ask["prompt"]["kind"] == "otp"
        assert ask["origin"]["kernel_id"] == kernel.kernel_id
        await jp_fetch(
            "hy2fa", "asks", ask["id"], "answer", method="POST",
            body=json.dumps({"response": real_sshd.totp()}),
        )  # fmt: skip
        await kernel.finish(execution, 60)
        assert "bang-23" in execution.stdout
    finally:
        stop_master(config, socket_path)
