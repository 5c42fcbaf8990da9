"""A real ``jupyter server`` with the extension in a subprocess, optionally under a command
that sets up its world first (``unshare`` ... a /proc hidden), and a client for it: REST
with its token, its event stream (``/api/events/subscribe``, what Lab listens to) and a
notebook kernel's websocket.

Its log is copied to ``server.log`` as it comes; :meth:`JupyterServer.start` returns once a
test-only server extension logs, from the running event loop, that the server listens.
:class:`ServerProcess` is shared with the browser tests' ``Lab`` (``browser.py``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

try:  # tests/ may or may not be a package
    from .kernel_ws import KernelWS
    from .sshd_fixture import free_port
except ImportError:
    from kernel_ws import KernelWS  # type: ignore[no-redef]
    from sshd_fixture import free_port  # type: ignore[no-redef]

# A server extension of the tests alone: jupyter_server starts extensions (this hook) from
# its event loop once it runs, after the loop's first callback bound the port. Its log line
# says the server listens; "is running at:" comes before the port is bound.
LISTENING = "hy2fa-tests: the server listens"
_STARTED_EXTENSION = f"""
def _jupyter_server_extension_points():
    return [{{"module": "hy2fa_tests_listening"}}]


def _load_jupyter_server_extension(serverapp):
    pass


async def _start_jupyter_server_extension(serverapp):
    serverapp.log.info({LISTENING!r})
"""


class ServerProcess:
    """A Jupyter server application (``jupyter_server``, ``jupyterlab``) in a subprocess of
    its own process group, in a dir of its own (``prefix``) holding its config
    (:meth:`write_config`), runtime and root dir. Environment variables whose names start
    with one of ``dropped_env`` are not passed on."""

    dropped_env: tuple[str, ...] = ()

    def __init__(self, prefix: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.port = free_port()
        self.token = os.urandom(12).hex()
        self.runtime_dir = self.dir / "runtime"
        config_dir = self.dir / "config"
        config_dir.mkdir()
        # In jupyter_server_config.d, so a test that rewrites the config file keeps it.
        extensions = config_dir / "jupyter_server_config.d"
        extensions.mkdir()
        (extensions / "hy2fa-tests-listening.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {"hy2fa_tests_listening": True}}})
        )
        modules = self.dir / "modules"
        modules.mkdir()
        (modules / "hy2fa_tests_listening.py").write_text(_STARTED_EXTENSION)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(self.dropped_env)},
            "JUPYTER_CONFIG_PATH": str(config_dir),
            "JUPYTER_TOKEN": self.token,
            "JUPYTER_RUNTIME_DIR": str(self.runtime_dir),
            "PYTHONPATH": os.pathsep.join(
                [str(modules), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self._listening = False

    def write_config(self, config: dict[str, Any]) -> None:
        """``config`` as the server's ``jupyter_server_config.json``."""
        (self.dir / "config" / "jupyter_server_config.json").write_text(json.dumps(config))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self, module: str, *options: str, wrapper: Sequence[str] = ()) -> None:
        """``python -m <module>`` with ``options`` (under ``wrapper``, argv put before it);
        returns once it listens."""
        argv = [
            *wrapper, sys.executable, "-m", module, "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", f"--ServerApp.root_dir={self.dir}", *options,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # The server's log, copied to server.log as it comes, says when it listens
        # (LISTENING); its end, that it never will.
        listening = threading.Event()
        threading.Thread(target=self._copy_log, args=(listening,), daemon=True).start()
        listening.wait()
        if self.proc.poll() is not None or not self._listening:
            self.stop()
            raise RuntimeError(f"{module} did not start:\n" + self.log())

    def _copy_log(self, listening: threading.Event) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with (self.dir / "server.log").open("wb") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                if not listening.is_set() and LISTENING.encode() in line:
                    self._listening = True
                    listening.set()
        listening.set()  # the server ended

    def log(self) -> str:
        return (self.dir / "server.log").read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM to its process group (the server shuts its kernels down), then the dir."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class JupyterServer(ServerProcess):
    """``python -m jupyter_server`` with the extension on and ``hy2fa`` as its Hy2faLab
    config, run under ``wrapper`` (argv put before the server's own); no ``SSH_ASKPASS*``
    or ``HY2FA*`` of the tests' environment reaches it."""

    dropped_env = ("SSH_ASKPASS", "HY2FA")

    def __init__(self, hy2fa: dict[str, Any], wrapper: Sequence[str] = ()) -> None:
        super().__init__("hy2fa-js-")
        self.write_config(
            {"ServerApp": {"jpserver_extensions": {"hy2fa_lab": True}}, "Hy2faLab": hy2fa}
        )
        self.wrapper = list(wrapper)

    def start(self) -> JupyterServer:
        self._start("jupyter_server", wrapper=self.wrapper)
        return self

    # ---- a client ------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``(status, json)`` of one request; an error status does not raise."""
        request = HTTPRequest(
            self.url + path,
            method=method,
            headers=self._headers(),
            body=None if body is None and method != "POST" else json.dumps(body or {}),
            request_timeout=60,
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        return response.code, json.loads(response.body) if response.body else None

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self.api(method, path, body)
        assert 200 <= status < 300, (method, path, status, data)
        return data

    async def events(self) -> Events:
        """The server's event stream, as Lab subscribes to it."""
        ws = await websocket_connect(
            HTTPRequest(
                self.url.replace("http", "ws", 1) + "/api/events/subscribe",
                headers=self._headers(),
            )
        )
        return Events(ws)

    async def notebook_kernel(self, notebook: str) -> KernelWS:
        """A kernel started as Lab starts one for ``notebook`` (a session names it)."""
        body = {"path": notebook, "type": "notebook", "name": "", "kernel": {"name": "python3"}}
        session = await self.ok("POST", "/api/sessions", body)
        ws = await websocket_connect(
            HTTPRequest(
                self.url.replace("http", "ws", 1)
                + f"/api/kernels/{session['kernel']['id']}/channels",
                headers=self._headers(),
            )
        )
        client = KernelWS(ws)
        await client.run("1", timeout=120)
        client.kernel_id = session["kernel"]["id"]  # type: ignore[attr-defined]
        return client


class Events:
    """The events a websocket of ``/api/events/subscribe`` brings, for a test to wait on."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def next(self, kind: str, **match: Any) -> dict[str, Any]:
        """The next event whose schema id ends with ``/<kind>/v2`` and whose data has the
        given values."""
        while True:
            raw = await self.ws.read_message()
            assert raw is not None, "the server closed its event stream"
            event = json.loads(raw)
            self.seen.append(event)
            if str(event.get("schema_id", "")).endswith(f"/{kind}/v2") and all(
                event.get(key) == value for key, value in match.items()
            ):
                return event

    def close(self) -> None:
        self.ws.close()
