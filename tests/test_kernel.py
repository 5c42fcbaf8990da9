"""Kernels started by the Jupyter server: ensure(), the %hy2fa magic and its widget; fallback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel
from kernel_ws import KernelWS
from test_server_api import add_sshd_host, answer, wait_for

from hy2fa_lab.core import mux

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd
except ImportError:
    from sshd_fixture import RealSshd  # type: ignore[no-redef]

pytestmark = pytest.mark.sshd
Fetch = Callable[..., Any]


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    """conftest.py's, with a prompt that waits a minute."""
    jp_server_config["Hy2faLab"]["prompt_timeout"] = 60
    return jp_server_config


async def test_ensure_waits_for_the_answer_given_in_lab(
    kernel: KernelWS, jp_fetch: Fetch, real_sshd: RealSshd, client_config: Path
) -> None:
    add_sshd_host(client_config, real_sshd)
    found = await kernel.run(
        "from hy2fa_lab.kernel.backends import find_server\nprint(find_server().url)"
    )
    assert found.stdout.strip().endswith("/a%40b/")  # via JPY_PARENT_PID, under the base URL

    execution = kernel.start(
        "from hy2fa_lab import ensure\npath = ensure('fixture', timeout=60)\nprint('PATH=' + path)"
    )
    view = await wait_for(jp_fetch, "fixture", {"prompting"})
    # A person reads the notebook's line first: answer once ensure() has said what it waits for.
    deadline = asyncio.get_running_loop().time() + 30
    while "fixture is asking for a one-time code" not in execution.stdout:
        assert asyncio.get_running_loop().time() < deadline, execution.stdout
        await asyncio.sleep(0.05)
    await answer(jp_fetch, "fixture", real_sshd.totp(), view["prompt"]["id"])
    await kernel.finish(execution, 60)
    assert execution.error is None, execution.error
    assert "JupyterLab dialog" in execution.stdout
    # One line while it waits, one when done, then the cell's own output: nothing repeated.
    lines = execution.stdout.strip().split("\n")
    assert len(lines) == 3, lines
    assert "is asking for a one-time code" in lines[0]
    assert lines[1] == "hy2fa: fixture connected"
    path = re.search(r"PATH=(.+)", execution.stdout)
    assert path is not None
    assert path.group(1) == view["control_path"]
    assert mux.alive(path.group(1)) is not None

    ssh = await kernel.run(
        f"!ssh -F {client_config} -S {path.group(1)} -o BatchMode=yes fixture hostname"
    )
    assert ssh.stdout.strip() == socket.gethostname()

    again = await kernel.run(
        "import hy2fa_lab.kernel.api as api\n"
        "calls = []\n"
        "real = api.choose_backend\n"
        "api.choose_backend = lambda: calls.append(1) or real()\n"
        "print(ensure('fixture') == path, calls)\n"
        "api.choose_backend = real\n"
    )
    assert again.stdout.strip() == "True []"  # at once: the mux check, no HTTP
    assert real_sshd.log().count("Accepted keyboard-interactive/pam") == 1


async def test_ensure_reports_failure_as_hy2fa_error(
    kernel: KernelWS, jp_fetch: Fetch, real_sshd: RealSshd, client_config: Path
) -> None:
    add_sshd_host(client_config, real_sshd)
    execution = kernel.start(
        "from hy2fa_lab import ensure, Hy2faError\n"
        "try:\n"
        "    ensure('fixture', timeout=60)\n"
        "except Hy2faError as error:\n"
        "    print('REASON=' + error.reason)\n"
    )
    after = 0
    for _ in range(3):
        view = await wait_for(jp_fetch, "fixture", {"prompting"}, after)
        after = view["prompt"]["id"]
        await answer(jp_fetch, "fixture", real_sshd.wrong_code(), after)
    await kernel.finish(execution, 60)
    assert "REASON=auth_failed" in execution.stdout


async def test_magic_widget_drives_the_login(
    kernel: KernelWS, jp_fetch: Fetch, real_sshd: RealSshd, client_config: Path
) -> None:
    add_sshd_host(client_config, real_sshd)
    await kernel.run("%load_ext hy2fa_lab")
    started = await kernel.run("%hy2fa connect fixture", timeout=30)  # returns at once
    assert started.error is None
    view = await wait_for(jp_fetch, "fixture", {"prompting"})
    passwords = kernel.widgets("PasswordModel")
    assert len(passwords) == 1
    (field_id,) = passwords
    update = {"method": "update", "buffer_paths": []}

    wrong = real_sshd.wrong_code()
    kernel.comm_msg(field_id, {**update, "state": {"value": wrong}})
    again = await wait_for(jp_fetch, "fixture", {"prompting"}, view["prompt"]["id"])
    status = await kernel.run(
        "from hy2fa_lab.kernel.widget import ConnectWidget as W\n"
        "import asyncio\n"
        "for _ in range(50):\n"  # awaits: the widget is drawn on this loop, between turns
        "    if 'Wrong code' in W.instances[-1].status.value: break\n"
        "    await asyncio.sleep(0.1)\n"
        "print(W.instances[-1].status.value)\n"
        "print(repr(W.instances[-1].password.value))"
    )
    assert "Wrong code — try again" in status.stdout
    assert status.stdout.strip().endswith("''")  # a fresh, empty field

    code = real_sshd.totp()
    kernel.comm_msg(field_id, {**update, "state": {"value": code}})
    done = await wait_for(jp_fetch, "fixture", {"connected"}, again["prompt"]["id"])
    after = await kernel.run(
        "for _ in range(50):\n"
        "    if \"data-state='connected'\" in W.instances[-1].status.value: break\n"
        "    await asyncio.sleep(0.1)\n"
        "print(W.instances[-1].status.value)\n"
        "print(repr(W.instances[-1].password.value))"
    )
    assert "data-state='connected'" in after.stdout
    assert after.stdout.strip().endswith("''")
    # The kernel told the frontend the field is empty again; no code is left in widget state.
    sent = [
        data["state"]["value"]
        for cid, data in kernel.comm_updates
        if cid == field_id and "value" in data.get("state", {})
    ]
    assert sent and sent[-1] == ""
    assert all(value in ("",) for value in sent)
    assert mux.alive(done["control_path"]) == done["master_pid"]

    status = await kernel.run("%hy2fa status")
    (result,) = [o for o in status.outputs if "execution_count" in o]  # the execute_result
    text = result["data"]["text/plain"]  # a terminal, jupyter console: a readable table
    assert text.split("\n")[0].split() == ["connection", "state", "pid", "socket", "note"]
    assert text.split("\n")[1].split()[:3] == ["fixture", "connected", str(done["master_pid"])]
    assert "IPython.core.display" not in text
    markdown = result["data"]["text/markdown"]  # Lab, and nbconvert --to markdown
    assert markdown.startswith("| connection | state | pid | socket | note |\n|---|")
    path = await kernel.run("%hy2fa path fixture")
    assert done["control_path"] in json.dumps(path.outputs)
    gone = await kernel.run("%hy2fa disconnect fixture")
    assert "fixture disconnected" in gone.stdout
    assert mux.alive(done["control_path"]) is None


async def test_magic_usage_errors_are_clear(kernel: KernelWS) -> None:
    await kernel.run("%load_ext hy2fa_lab")
    for line, words in [
        ("%hy2fa", "required"),
        ("%hy2fa connect", "required"),
        ("%hy2fa connect -oProxyCommand=x", "required"),
        ("%hy2fa connect saga --user 'a b'", "whitespace"),
        ("%hy2fa connect saga --persist soon", "persist"),
        ("%hy2fa frobnicate", "invalid choice"),
        ("%hy2fa connect 'unterminated", "No closing quotation"),
        ("%hy2fa connect saga --control-path relative/x.sock", "absolute"),
    ]:
        result = await kernel.run(line, allow_errors=True)
        shown = (result.error or "") + result.stderr  # IPython prints a UsageError on stderr
        assert "UsageError" in shown and words in shown, (line, shown)
    assert (await call_connections(kernel)) == "[]"


async def call_connections(kernel: KernelWS) -> str:
    result = await kernel.run(
        "from hy2fa_lab.kernel.backends import choose_backend\n"
        "print([v['name'] for v in choose_backend().connections()])"
    )
    return result.stdout.strip()


def test_fallback_without_a_server_runs_the_engine_in_the_kernel(
    real_sshd: RealSshd, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel with no server (plain jupyter_client): ensure() asks through stdin."""
    config = real_sshd.write_client_config(short_tmp / "ssh_config")
    config_dir = short_tmp / "jupyter-config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"Hy2faLab": {"ssh_config": str(config), "control_path": f"{short_tmp}/%C"}})
    )
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(short_tmp / "runtime"))
    monkeypatch.delenv("HY2FA_SERVER_URL", raising=False)
    manager, client = start_new_kernel(kernel_name="python3", startup_timeout=120)
    prompts: list[str] = []
    outputs: list[str] = []

    def on_stdin(msg: dict[str, Any]) -> None:
        prompts.append(msg["content"]["prompt"])
        assert msg["content"]["password"] is True
        client.input(real_sshd.totp())

    def on_output(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            outputs.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            outputs.append("\n".join(msg["content"]["traceback"]))

    try:
        reply = client.execute_interactive(
            "from hy2fa_lab import ensure\n"
            "from hy2fa_lab.kernel.backends import choose_backend\n"
            "print('BACKEND=' + choose_backend().kind)\n"
            "print('PATH=' + ensure('fixture', timeout=60))\n",
            allow_stdin=True,
            stdin_hook=on_stdin,
            output_hook=on_output,
            timeout=90,
        )
        text = "".join(outputs)
        assert reply["content"]["status"] == "ok", text
        assert "BACKEND=kernel" in text
        assert prompts == [f"({real_sshd.user}@127.0.0.1) Verification code: "]
        match = re.search(r"PATH=(.+)", text)
        assert match is not None
        path = match.group(1).strip()
        assert path.startswith(str(short_tmp))
        run = subprocess.run(
            ["ssh", "-F", str(config), "-S", path, "-o", "BatchMode=yes", "fixture", "echo", "ok"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert run.stdout == "ok\n", run.stderr
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    # The master is a daemon: it outlives the kernel.
    assert mux.alive(path) is not None
    assert os.path.exists(path)


async def test_widget_follows_a_prompt_answered_elsewhere(
    kernel: KernelWS, jp_fetch: Fetch, real_sshd: RealSshd, client_config: Path
) -> None:
    add_sshd_host(client_config, real_sshd)
    await kernel.run("%load_ext hy2fa_lab\n%hy2fa connect fixture")
    view = await wait_for(jp_fetch, "fixture", {"prompting"})
    await answer(jp_fetch, "fixture", real_sshd.totp(), view["prompt"]["id"])  # the sidebar
    await wait_for(jp_fetch, "fixture", {"connected"})
    status = await kernel.run(
        "from hy2fa_lab.kernel.widget import ConnectWidget as W\n"
        "import time\n"
        "for _ in range(50):\n"
        "    if \"data-state='connected'\" in W.instances[-1].status.value: break\n"
        "    await asyncio.sleep(0.1)\n"
        "print(W.instances[-1].status.value)\n"
        "print(W.instances[-1].entry.layout.display)"
    )
    assert "data-state='connected'" in status.stdout
    assert status.stdout.strip().endswith("none")  # the field is gone once connected
