"""``hy2fa demo`` as a person runs it: read the URL and code, connect, use the socket, Ctrl-C."""

from __future__ import annotations

import contextlib
import getpass
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
import psutil
from procs import cmdlines, process_alive

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


def latest_cert_answer(child: pexpect.spawn, answer: str) -> str:
    """The last ``demo-cert: demo<code>`` the demo printed by now (``answer`` if no newer)."""
    while True:
        try:
            child.expect(r"demo-cert: (demo\d{6})\)", timeout=0)
        except pexpect.TIMEOUT:
            return answer
        answer = child.match.group(1)


def through(
    path: str, alias: str, command: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``command`` on ``alias`` through the master on ``path``, never asking anything."""
    return subprocess.run(
        ["ssh", "-S", path, "-o", "BatchMode=yes", alias, command],
        capture_output=True, text=True, timeout=20, check=False, env=env,
    )  # fmt: skip


def ports_closed(*ports: int) -> list[int]:
    """The ``ports`` still listening on 127.0.0.1."""
    left = []
    for port in ports:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 2):
            left.append(port)
    return left


def test_demo_runs_connects_and_leaves_nothing_behind(short_tmp: Path) -> None:
    hy2fa = str(Path(sys.executable).parent / "hy2fa")
    env = {**os.environ, "HOME": str(short_tmp)}  # nothing may land in the real home either
    child = pexpect.spawn(
        hy2fa, ["demo", "--no-browser"], cwd=str(short_tmp), env=env, encoding="utf-8", timeout=120
    )
    try:
        child.expect(r"JupyterLab: (http://127\.0\.0\.1:(\d+))/lab\?token=([0-9a-f]+)")
        url, token = child.match.group(1), child.match.group(3)
        ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", child.before)]
        issuer_port = re.search(r"issuer at http://127\.0\.0\.1:(\d+)", child.before)
        assert len(ports) == 3 and issuer_port is not None, child.before  # 2 nodes, the issuer
        child.expect(r"demo code: (\d{6}) .*demo-cert: (demo\d{6})\)")
        cert_answer = child.match.group(2)
        assert cert_answer == "demo" + child.match.group(1)
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
        run = through(path, "demo", "hostname", env=env)
        assert run.stdout.strip() == socket.gethostname(), run.stderr
        master = view["master_pid"]
        assert mux.alive(path) == master

        # demo-cert: the product's certificate login against the demo's issuer, and a node
        # that takes only the certificate it hands out (keys in the demo's temp dir)
        user = getpass.getuser()
        assert clusters["demo-cert"]["label"] == "Demo certificate cluster (this machine)"
        assert not os.path.exists(f"{demo_dir}/demo-key-cert.pub")
        api(url, token, "POST", "connections", {"cluster": "demo-cert"})
        view = wait_state(url, token, "demo-cert", "prompting")
        assert view["certificate"]["issuer"] == "sshproxy"
        assert view["certificate"]["key"] == f"{demo_dir}/demo-key"
        assert view["prompt"]["text"] == f"Password + OTP for {user} at 127.0.0.1"
        assert view["prompt"]["secret"] is True
        cert_answer = latest_cert_answer(child, cert_answer)
        api(url, token, "POST", "connections/demo-cert/answer", {"response": cert_answer})
        view = wait_state(url, token, "demo-cert", "connected")
        assert view["certificate"]["principals"] == [user]
        assert view["certificate"]["valid_before"] is not None
        assert os.stat(f"{demo_dir}/demo-key").st_mode & 0o077 == 0
        assert os.path.exists(f"{demo_dir}/demo-key-cert.pub")
        cert_path = view["control_path"]
        assert cert_path.startswith(demo_dir)
        run = through(cert_path, "demo-cert", "echo cert-$((6*7))", env=env)
        assert run.stdout.strip() == "cert-42", run.stderr
        cert_master = view["master_pid"]
        assert mux.alive(cert_path) == cert_master != master
        assert not (short_tmp / ".ssh").exists()  # never the person's ~/.ssh

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
    for pid in (master, cert_master):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
            psutil.Process(pid).wait(5)  # not our child: psutil waits for it to be gone
        assert not process_alive(pid), pid
    # Lab, both login nodes and the issuer stopped listening
    assert ports_closed(int(url.rsplit(":", 1)[1]), *ports) == []
    assert int(issuer_port.group(1)) in ports


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
