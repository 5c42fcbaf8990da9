"""``hy2fa demo`` as a person runs it: read the URL and code, connect, use the socket, Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pexpect
import pytest
from procs import cmdlines

from hy2fa_lab.core import mux


def api(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/hy2fa/{path}", data=data, method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_state(url: str, token: str, name: str, state: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        view = api(url, token, "GET", f"connections/{name}")
        if view["state"] == state:
            return view
        assert view["state"] not in ("failed", "disconnected"), view
        assert time.monotonic() < deadline, view
        time.sleep(0.1)


def test_demo_runs_connects_and_leaves_nothing_behind(short_tmp: Path) -> None:
    hy2fa = str(Path(sys.executable).parent / "hy2fa")
    env = {**os.environ, "HOME": str(short_tmp)}  # nothing may land in the real home either
    child = pexpect.spawn(
        hy2fa, ["demo", "--no-browser"], cwd=str(short_tmp), env=env, encoding="utf-8", timeout=120
    )
    try:
        child.expect(r"JupyterLab: (http://127\.0\.0\.1:(\d+))/lab\?token=([0-9a-f]+)")
        url, token = child.match.group(1), child.match.group(3)
        child.expect(r"demo code: (\d{6})")
        temp_dir = re.search(r"Demo files \(.*\): (/tmp/hy2fa-demo-\w+)", child.before)
        assert temp_dir is not None
        demo_dir = temp_dir.group(1)
        assert os.stat(demo_dir).st_mode & 0o077 == 0

        clusters = {c["name"]: c for c in api(url, token, "GET", "clusters")["clusters"]}
        assert clusters["demo"]["label"] == "Demo cluster (this machine)"
        # The product knows nothing of demo codes: no secret file setting, no code in a row.
        assert "secret" not in json.dumps(api(url, token, "GET", "settings"))
        assert not re.search(r"\b\d{6}\b", json.dumps(clusters["demo"]))

        api(url, token, "POST", "connections", {"cluster": "demo"})
        view = wait_state(url, token, "demo", "prompting")
        assert "One-time password (OATH)" in view["prompt"]["text"]
        # The demo cluster says its code itself, as part of what ssh shows.
        said = re.search(r"the code now is (\d{6})", view["prompt"]["text"])
        assert said is not None, view["prompt"]
        code = said.group(1)
        api(url, token, "POST", "connections/demo/answer", {"response": code})
        view = wait_state(url, token, "demo", "connected")
        path = view["control_path"]
        assert path.startswith(demo_dir)
        run = subprocess.run(
            ["ssh", "-S", path, "-o", "BatchMode=yes", "demo", "hostname"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env=env,
        )
        assert run.stdout.strip() == socket.gethostname(), run.stderr
        master = view["master_pid"]
        assert mux.alive(path) == master

        child.kill(signal.SIGINT)  # what Ctrl-C in the terminal sends
        child.expect("stopping")
        child.expect(pexpect.EOF, timeout=60)
    finally:
        if child.isalive():
            child.kill(signal.SIGINT)  # let it clean up, even when an assertion failed
            with contextlib.suppress(pexpect.TIMEOUT, pexpect.EOF):
                child.expect(pexpect.EOF, timeout=30)
        if child.isalive():
            child.kill(signal.SIGKILL)
        child.close()
    assert child.exitstatus == 0
    assert not os.path.exists(demo_dir)
    left = [argv for argv in cmdlines().values() if any(demo_dir in a for a in argv)]
    assert left == []
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{master}") and time.monotonic() < deadline:
        time.sleep(0.1)
    state = (
        Path(f"/proc/{master}/stat").read_text().split()[2]
        if os.path.exists(f"/proc/{master}")
        else "gone"
    )
    assert state in ("gone", "Z")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2)


_WITHOUT_DEMO_EXTRA = "import sys; sys.modules['asyncssh'] = None; sys.modules['pyotp'] = None; "


def test_the_product_runs_without_the_demo_extra() -> None:
    """asyncssh and pyotp are the demo's: the server, kernel side and CLI import without them."""
    imports = "import hy2fa_lab.server.app, hy2fa_lab.kernel.magic, hy2fa_lab.cli, hy2fa_lab"
    run = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DEMO_EXTRA + imports],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_demo_without_its_extra_says_how_to_get_it() -> None:
    code = _WITHOUT_DEMO_EXTRA + "from hy2fa_lab.cli import main; sys.exit(main(['demo']))"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 1
    assert "pip install 'hy2fa_lab[demo]'" in run.stderr
    assert "Traceback" not in run.stderr
