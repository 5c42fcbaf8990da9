"""Under a real JupyterHub, one hub user cannot reach another user's hy2fa API.

A real JupyterHub (configurable-http-proxy from ``node_modules``, sqlite, ``DummyAuthenticator``,
``SimpleLocalProcessSpawner``) runs as a subprocess with every file in a temp dir and every port
free on 127.0.0.1. Alice and bob each get a real single-user Jupyter server that loads the
``hy2fa_lab`` server extension; alice starts a login to a cluster whose port is closed, so her
server lists a (failed) connection. Then bob's token, a token of alice's without
``access:servers`` and no token at all get no answer from any ``/user/alice/hy2fa/...`` route,
never see alice's connection, and change nothing on her server.

Needs jupyterhub (``pip install -e '.[test]'``) and configurable-http-proxy (``jlpm install``);
skipped without them on a developer machine, a failure under CI (which installs everything).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.jupyterhub, pytest.mark.timeout(200)]

REPO = Path(__file__).resolve().parent.parent
PROXY = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
USERS = ("alice", "bob")
# Every process of this test carries the temp dir in its environment (the hub and the proxy
# inherit it, the single-user servers get it from Spawner.environment, ssh children via HOME).
MARKER = "HY2FA_HUB_TEST_ROOT"
HUB_START_SECONDS = 30.0
SPAWN_SECONDS = 45.0
STOP_SECONDS = 15.0


def missing_requirements() -> str | None:
    if importlib.util.find_spec("jupyterhub") is None:
        return "jupyterhub is not installed (pip install -e '.[test]')"
    if not os.access(PROXY, os.X_OK):
        return "node_modules/.bin/configurable-http-proxy is missing (run jlpm install)"
    if shutil.which("node") is None:
        return "node is not on PATH (configurable-http-proxy needs it)"
    if shutil.which("ssh") is None:
        return "the OpenSSH client is not installed"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Reply:
    status: int
    location: str
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def call(port: int, method: str, path: str, token: str | None = None, body: Any = None) -> Reply:
    """One HTTP request to 127.0.0.1:port; redirects are returned, not followed."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"token {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", errors="replace")
        return Reply(response.status, response.getheader("Location") or "", text)
    finally:
        conn.close()


def wait_for(what: str, check: Callable[[], Any], seconds: float, hub: Hub) -> Any:
    """Poll ``check`` until it returns something truthy; fail (with the hub's log) at the
    deadline or as soon as the hub process is gone."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(OSError, http.client.HTTPException):
            result = check()
            if result:
                return result
        if hub.process is not None and hub.process.poll() is not None:
            pytest.fail(
                f"the hub exited ({hub.process.returncode}) waiting for {what}\n{hub.log()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds:.0f} s\n{hub.log()}")
        time.sleep(0.2)


def marked_processes(root: Path) -> dict[int, str]:
    """Live processes (not zombies) whose environment, command line or cwd names ``root``."""
    needle = str(root).encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
            cwd = os.readlink(entry / "cwd").encode()
        except OSError:
            continue
        if state != "Z" and any(needle in part for part in (cmdline, environ, cwd)):
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


class Hub:
    """A JupyterHub subprocess; every file it writes lives under ``root``."""

    def __init__(self, root: Path, clusters: dict[str, Any]) -> None:
        self.root = root
        self.clusters = clusters
        self.public_port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.admin_token = secrets.token_hex(32)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = root / "hub.log"

    def write_config(self) -> Path:
        root = self.root
        (root / "admin-token").write_text(self.admin_token)
        (root / "proxy-auth-token").write_text(secrets.token_hex(32))
        for path in (root / "admin-token", root / "proxy-auth-token"):
            path.chmod(0o600)
        single_user_config = root / "single-user-config"
        single_user_config.mkdir()
        (single_user_config / "jupyter_server_config.json").write_text(
            json.dumps({"Hy2faLab": {"clusters": self.clusters}})
        )
        settings = {
            "root": str(root),
            "proxy": str(PROXY),
            "python": sys.executable,
            "public_port": self.public_port,
            "hub_port": self.hub_port,
            "proxy_api_port": self.proxy_api_port,
            "users": list(USERS),
            "single_user_config": str(single_user_config),
            "marker": MARKER,
        }
        (root / "settings.json").write_text(json.dumps(settings))
        config = root / "jupyterhub_config.py"
        config.write_text(HUB_CONFIG.replace("SETTINGS_PATH", repr(str(root / "settings.json"))))
        return config

    def start(self) -> Hub:
        config = self.write_config()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("JUPYTERHUB_", "JPY_", "CONFIGPROXY_", "JUPYTER_"))
        }
        env[MARKER] = str(self.root)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole at the end
            )
        # Through the proxy: both the hub and the proxy answer.
        wait_for(
            "the hub to answer through the proxy",
            lambda: call(self.public_port, "GET", "/hub/api/").status == 200,
            HUB_START_SECONDS,
            self,
        )
        return self

    def log(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no hub log)"
        return "--- hub log (last 6000 characters) ---\n" + text[-6000:]

    def api(self, method: str, path: str, body: Any = None) -> Reply:
        return call(self.public_port, method, f"/hub/api/{path}", self.admin_token, body)

    def token_for(self, user: str, scopes: list[str] | None) -> str:
        body: dict[str, Any] = {"note": "hy2fa isolation test", "expires_in": 600}
        if scopes is not None:
            body["scopes"] = scopes
        reply = self.api("POST", f"users/{user}/tokens", body)
        assert reply.status == 201, (reply, self.log())
        token: str = reply.json()["token"]
        return token

    def spawn(self, *users: str) -> None:
        for user in users:
            reply = self.api("POST", f"users/{user}/server")
            assert reply.status in (201, 202), (reply, self.log())

        def ready() -> bool:
            for user in users:
                reply = self.api("GET", f"users/{user}")
                server = reply.json().get("servers", {}).get("") if reply.status == 200 else None
                if not (server and server.get("ready")):
                    return False
            return True

        wait_for(f"the servers of {', '.join(users)}", ready, SPAWN_SECONDS, self)

    def stop(self) -> dict[int, str]:
        """Stop the hub (it stops the servers and the proxy), then kill whatever is left.

        Returns the processes still alive after all that (there should be none).
        """
        process = self.process
        if process is None:
            return {}
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_SECONDS)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # the hub and the single-user servers
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        # The proxy runs in a session of its own (JupyterHub starts it so): anything left that
        # carries the marker goes too, by its own process group when that is not ours.
        ours = os.getpgrp()
        for pid in marked_processes(self.root):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                group = os.getpgid(pid)
                if group != ours:
                    os.killpg(group, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        left = marked_processes(self.root)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = marked_processes(self.root)
        return left


# The hub's config reads its values from a JSON file beside it (no quoting games).
HUB_CONFIG = """\
import json
from pathlib import Path

s = json.loads(Path(SETTINGS_PATH).read_text())
root = Path(s["root"])
home = str(root / "home" / "{username}")

c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = s["public_port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = s["hub_port"]
c.JupyterHub.db_url = "sqlite:///" + str(root / "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = str(root / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(root / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

c.ConfigurableHTTPProxy.command = [s["proxy"]]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % s["proxy_api_port"]
c.ConfigurableHTTPProxy.auth_token = (root / "proxy-auth-token").read_text().strip()
c.ConfigurableHTTPProxy.pid_file = str(root / "proxy.pid")

c.JupyterHub.authenticator_class = "jupyterhub.auth.DummyAuthenticator"
c.Authenticator.allowed_users = set(s["users"])

c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = home
c.Spawner.notebook_dir = home
c.Spawner.cmd = [s["python"], "-m", "jupyterhub.singleuser"]
c.Spawner.args = ["--allow-root"]  # CI runs as root; the servers run as the hub's OS user
c.Spawner.environment = {
    "JUPYTER_CONFIG_DIR": s["single_user_config"],
    s["marker"]: str(root),
}
c.Spawner.popen_kwargs = {"start_new_session": False}  # stay in the hub's process group
c.Spawner.start_timeout = 40
c.Spawner.http_timeout = 40

c.JupyterHub.services = [
    {"name": "hy2fa-test-admin", "api_token": (root / "admin-token").read_text().strip()}
]
c.JupyterHub.load_roles = [
    {
        "name": "hy2fa-test-admin",
        "scopes": ["admin:users", "admin:servers", "tokens"],
        "services": ["hy2fa-test-admin"],
    }
]
"""


@pytest.fixture
def hub_root() -> Iterator[Path]:
    reason = missing_requirements()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the JupyterHub test cannot run in CI: {reason}")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="hy2fa-hub-", dir="/tmp"))  # short: ssh socket paths
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but never listening: connecting is refused at once, and nobody takes it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_one_hub_user_cannot_reach_another_users_hy2fa_api(
    hub_root: Path, closed_port: int
) -> None:
    cluster = f"alicelab-{secrets.token_hex(4)}"  # nothing else on any page contains it
    hub = Hub(hub_root, {cluster: {"host": "127.0.0.1", "port": closed_port, "persist": "10m"}})
    try:
        hub.start()
        check_isolation(hub, cluster)
    finally:
        left = hub.stop()
    assert not left, f"processes left after stopping the hub: {left}"


def check_isolation(hub: Hub, cluster: str) -> None:
    port = hub.public_port
    alice = hub.token_for("alice", ["access:servers!user=alice", "read:users:name!user=alice"])
    alice_no_access = hub.token_for("alice", ["read:users:name!user=alice"])
    bob = hub.token_for("bob", None)  # everything bob may do (the default "inherit" token)
    hub.spawn("alice", "bob")

    def alice_api(method: str, path: str, token: str | None, body: Any = None) -> Reply:
        return call(port, method, f"/user/alice/hy2fa/{path}", token, body)

    # Alice's server runs the extension and answers her own token.
    version = wait_for(
        "alice's hy2fa API",
        lambda: (reply := alice_api("GET", "version", alice)).status == 200 and reply,
        SPAWN_SECONDS,
        hub,
    )
    assert "version" in version.json()
    started = alice_api("POST", "connections", alice, {"cluster": cluster})
    assert started.status in (200, 202), started
    assert started.json()["name"] == cluster

    def settled() -> list[dict[str, Any]] | None:
        reply = alice_api("GET", "connections", alice)
        assert reply.status == 200, reply
        rows: list[dict[str, Any]] = reply.json()["connections"]
        return rows if [r["state"] for r in rows if r["name"] == cluster] == ["failed"] else None

    before = wait_for("alice's login to fail (closed port)", settled, 20, hub)
    assert [row["name"] for row in before] == [cluster]

    # The tokens work: these are refusals of alice's server, not broken credentials.
    assert call(port, "GET", "/hub/api/users/alice", alice_no_access).status == 200
    bobs_own = call(port, "GET", "/user/bob/hy2fa/connections", bob)
    assert bobs_own.status == 200, bobs_own
    assert bobs_own.json() == {"connections": []}  # bob's server has its own, empty state

    routes: list[tuple[str, str, Any]] = [
        ("GET", "version", None),
        ("GET", "clusters", None),
        ("GET", "connections", None),
        ("POST", "connections", {"cluster": cluster}),
        ("GET", f"connections/{cluster}", None),
        ("POST", f"connections/{cluster}/answer", {"response": "123456"}),
        ("DELETE", f"connections/{cluster}", None),
    ]
    credentials = {"bob": bob, "alice without access:servers": alice_no_access, "no token": None}
    for who, token in credentials.items():
        for method, path, body in routes:
            reply = alice_api(method, path, token, body)
            where = f"{who}: {method} /user/alice/hy2fa/{path} -> {reply}"
            redirected_to_login = reply.status in (302, 303) and (
                "/hub/login" in reply.location or "/hub/api/oauth2/authorize" in reply.location
            )
            assert reply.status in (403, 404) or redirected_to_login, where
            assert cluster not in reply.body, where
            assert "control_path" not in reply.body, where

    # Nothing those requests asked for happened: alice's connection is exactly as it was.
    after = alice_api("GET", "connections", alice)
    assert after.status == 200, after
    assert after.json()["connections"] == before
