"""A real Jupyter server with the extension under load: logins waiting at their prompts, many
live masters, many connect/disconnect cycles; measured side by side in one run.

Everything runs on 127.0.0.1: the demo asyncssh server (``totp(secret)`` script) in a child
process of its own, and ``python -m jupyter_server`` in another (its own config, data and
runtime dirs, a token, a free port, ``c.Hy2faLab.ssh_config`` pointing at a temp ssh config
whose aliases all reach the demo server, each with its own ``User`` and so its own control
path). The bench talks to it over HTTP only, logging in as a person would: ``POST``
a connection, read the prompt, answer it with the current TOTP code (pyotp), ``DELETE`` it.

- **Figure 4**: ``GET /api/status`` p50/p99 idle, with 50 logins sitting at their prompts, and
  idle again once they are cancelled (A-B-A, so drift shows). Goal: pending p99 <= 2x idle p99.
- **Figure 5**: ``GET hy2fa/connections`` with 200 live masters (each listed after a live mux
  check), interleaved round by round with the baseline, 200 sequential ``mux.alive`` calls in
  this process. Goal: median < 50 ms, and the checks overlap (an instrumented listing counts
  how many run at once).
- **Figure 6**: server RSS, fds, children and asyncio tasks before and after 50
  connect/answer/disconnect cycles. Goal: RSS growth < 5 MB, nothing else left.

Tasks and the overlap of the checks are read through a bench-only server extension written
into the temp dir and loaded by the server under test (``hy2fa-bench/probe``); the product
is not changed for it.

Run with ``python -m bench.server_load [--rounds N] [--json]``; ``figures(rounds)`` is what
the bench runner calls.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pyotp

from hy2fa_lab.core import mux

from ._harness import processes_mentioning

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # the demo server's TOTP seed: not a secret here
PENDING = 50  # figure 4
MASTERS = 200  # figure 5
CYCLES = 50  # figure 6
WORKERS = 6  # parallel REST logins while setting up figure 5
MIN_ROUNDS, MAX_ROUNDS, DEFAULT_ROUNDS = 5, 1000, 50
WARMUP = 3
LOGIN_BUDGET = 150.0  # seconds for the 200 logins of figure 5; fewer masters if it runs out
STEP_TIMEOUT = 30.0  # no single wait (a state, a process, a request) is longer than this
POLL = 0.01
REQUEST_TIMEOUT = 30.0
PROBE_MODULE = "hy2fa_bench_probe"
T = TypeVar("T")

PROBE_SOURCE = textwrap.dedent(
    '''
    """Bench-only instrumentation loaded into the Jupyter server under test (not the product).

    GET: asyncio tasks and threads of the server; the mux checks counted while switched on.
    POST {"on": bool}: reset the counts and switch counting on or off.
    """
    import asyncio
    import collections
    import json
    import threading
    import time

    import tornado.web
    from jupyter_server.base.handlers import APIHandler
    from jupyter_server.utils import url_path_join

    from hy2fa_lab.core import mux

    _lock = threading.Lock()
    _on = [False]
    _stats = {}
    _original = mux.status


    def _reset():
        _stats.clear()
        _stats.update(calls=0, inflight=0, max_inflight=0, threads=set(), first=None, last=None,
                      busy=0.0)


    def _enter():
        now = time.perf_counter()
        with _lock:
            _stats["calls"] += 1
            _stats["inflight"] += 1
            _stats["max_inflight"] = max(_stats["max_inflight"], _stats["inflight"])
            _stats["threads"].add(threading.get_ident())
            if _stats["first"] is None:
                _stats["first"] = now
        return now


    def _leave(start):
        end = time.perf_counter()
        with _lock:
            _stats["inflight"] -= 1
            _stats["last"] = end
            _stats["busy"] += end - start


    def _status(path, timeout=mux.TIMEOUT):
        if not _on[0]:
            return _original(path, timeout)
        start = _enter()
        try:
            return _original(path, timeout)
        finally:
            _leave(start)


    if hasattr(mux, "_Check"):  # the batched checks (mux.statuses): one object per socket

        class _Counted(mux._Check):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self._started = _enter() if _on[0] else None

            def readable(self):
                answer = super().readable()
                if answer is not None and self._started is not None:
                    _leave(self._started)
                    self._started = None
                return answer

        mux._Check = _Counted


    _reset()
    mux.status = _status  # manager, session and mux.alive all look it up at call time


    class Probe(APIHandler):
        @tornado.web.authenticated
        def get(self):
            tasks = asyncio.all_tasks()
            kinds = collections.Counter(
                getattr(task.get_coro(), "__qualname__", "?") for task in tasks
            )
            with _lock:
                first, last = _stats["first"], _stats["last"]
                checks = {
                    "calls": _stats["calls"],
                    "max_inflight": _stats["max_inflight"],
                    "threads": len(_stats["threads"]),
                    "span_ms": (last - first) * 1000.0 if first and last else 0.0,
                    "busy_ms": _stats["busy"] * 1000.0,
                }
            self.finish(json.dumps({
                "tasks": len(tasks),
                "task_kinds": dict(kinds),
                "threads": threading.active_count(),
                "checks": checks,
            }))

        @tornado.web.authenticated
        def post(self):
            body = json.loads(self.request.body or b"{}")
            with _lock:
                _reset()
            _on[0] = bool(body.get("on"))
            self.finish("{}")


    def _jupyter_server_extension_points():
        return [{"module": "hy2fa_bench_probe"}]


    def _load_jupyter_server_extension(serverapp):
        web_app = serverapp.web_app
        path = url_path_join(web_app.settings["base_url"], "hy2fa-bench/probe")
        web_app.add_handlers(".*$", [(path, Probe)])
    '''
)

# The demo server in a child process of its own, so its event loop never shares a GIL with
# the client timing the requests. It reads the TOTP seed on stdin and runs until stdin closes.
DEMO_SERVER = textwrap.dedent(
    """
    import sys
    from hy2fa_lab.demo.sshserver import ServerThread, totp
    server = ServerThread(totp(sys.stdin.readline().strip())).start()
    sys.stdout.write(f"{server.port}\\n{server.known_hosts_line()}")
    sys.stdout.flush()
    sys.stdin.read()
    server.stop()
    """
)


class BenchError(RuntimeError):
    """Something in the set-up did not behave; the numbers would mean nothing."""


# ---- processes (psutil: the same on Linux and macOS) ------------------------------------


def ssh_processes(needle: str) -> dict[int, list[str]]:
    """Live ssh processes whose argv names ``needle`` (our temp dir): only ours."""
    return processes_mentioning(needle, ssh_only=True)


def children(pid: int) -> dict[int, list[str]]:
    """Direct children of ``pid`` (zombies too: an unreaped child is a leak as well)."""
    found: dict[int, list[str]] = {}
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(pid).children():
            try:
                found[child.pid] = child.cmdline()
            except (psutil.ZombieProcess, psutil.AccessDenied):
                found[child.pid] = []
            except psutil.NoSuchProcess:
                continue
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for init to reap it has ended)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def rss_kib(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss // 1024)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its threads so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def fd_count(pid: int) -> int:
    return int(psutil.Process(pid).num_fds())


def _wait_until(test: Callable[[], bool], seconds: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while not test():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# ---- statistics ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: an observed value."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p10_ms": percentile(values, 10),
        "median_ms": statistics.median(values),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values),
    }


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000.0


# ---- HTTP ---------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection to the server, with the token."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"token {token}"}
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def raw(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, REQUEST_TIMEOUT)
            try:
                self._conn.request(method, "/" + path, body=data, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()  # a keep-alive connection the server closed: once more, afresh
                if attempt:
                    raise
            except BaseException:
                self.close()  # never reuse a connection left half way through a request
                raise
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, raw = self.raw(method, path, body)
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, method: str, path: str, body: Any = None, expect: Sequence[int] = (200,)) -> Any:
        status, reply = self.call(method, path, body)
        if status not in expect:
            raise BenchError(f"{method} {path}: HTTP {status}: {reply!r}")
        return reply

    def wait_state(self, name: str, states: set[str], seconds: float = STEP_TIMEOUT) -> Any:
        """Poll one connection until it is in ``states``; a failure on the way is an error."""
        deadline = time.monotonic() + seconds
        while True:
            view = self.ok("GET", f"hy2fa/connections/{name}")
            if view["state"] in states:
                return view
            if view["state"] in ("failed", "disconnected", "unresponsive"):
                raise BenchError(f"{name}: {view['state']} ({view['message']!r})")
            if time.monotonic() > deadline:
                raise BenchError(f"{name} stayed {view['state']!r}, not {sorted(states)}")
            time.sleep(POLL)

    def login(self, name: str) -> dict[str, Any]:
        """POST the connection, answer its prompt with the current code, wait until connected."""
        self.ok("POST", "hy2fa/connections", {"cluster": name}, expect=(200, 202))
        view = self.wait_state(name, {"prompting", "connected"})
        if view["state"] == "prompting":
            answer = {"response": pyotp.TOTP(SECRET).now(), "prompt_id": view["prompt"]["id"]}
            self.ok("POST", f"hy2fa/connections/{name}/answer", answer)
            view = self.wait_state(name, {"connected"})
        return dict(view)


# ---- the lab: demo server, ssh config, Jupyter server -------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Lab:
    """The temp dir, the demo ssh server, the Jupyter server; ``close()`` undoes all of it."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="hy2l-"))  # short: control paths must bind
        self.token = secrets.token_hex(16)
        self.demo: subprocess.Popen[str] | None = None
        self.jupyter: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.client: Client | None = None

    @property
    def needle(self) -> str:
        return str(self.tmp)

    @property
    def pid(self) -> int:
        assert self.jupyter is not None
        return self.jupyter.pid

    def start(self, aliases: Sequence[str]) -> Client:
        self._start_demo()
        self._write_ssh_config(aliases)
        self._start_jupyter()
        self.client = Client(self.port, self.token)
        return self.client

    def _start_demo(self) -> None:
        self.demo = subprocess.Popen(
            [sys.executable, "-c", DEMO_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(self.tmp / "demo.log").open("wb"),
            text=True,
        )
        assert self.demo.stdin is not None and self.demo.stdout is not None
        self.demo.stdin.write(SECRET + "\n")
        self.demo.stdin.flush()
        port = self.demo.stdout.readline().strip()
        known = self.demo.stdout.readline()
        if not port.isdigit() or not known.strip():
            raise BenchError(f"the demo server did not start: {self.tail('demo.log')}")
        self.ssh_port = int(port)
        (self.tmp / "known_hosts").write_text(known)

    def _write_ssh_config(self, aliases: Sequence[str]) -> None:
        """One Host block per alias with its own User (so its own control path), then the
        settings they share; the product adds -M, -S, ControlPersist itself."""
        blocks = [f"Host {alias}\n  User {alias}\n" for alias in aliases]
        blocks.append(
            "Host *\n"
            "  HostName 127.0.0.1\n"
            f"  Port {self.ssh_port}\n"
            f"  UserKnownHostsFile {self.tmp / 'known_hosts'}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
            "  PubkeyAuthentication no\n"
            "  PreferredAuthentications keyboard-interactive\n"
            "  LogLevel ERROR\n"
        )
        (self.tmp / "ssh_config").write_text("".join(blocks))

    def _start_jupyter(self, timeout: float = 60.0) -> None:
        env = dict(os.environ)
        for kind in ("config", "data", "runtime"):
            path = self.tmp / kind
            path.mkdir()
            env[f"JUPYTER_{kind.upper()}_DIR"] = str(path)
        probe_dir = self.tmp / "probe"
        probe_dir.mkdir()
        (probe_dir / f"{PROBE_MODULE}.py").write_text(PROBE_SOURCE)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(probe_dir), *filter(None, [env.get("PYTHONPATH")])]
        )
        (self.tmp / "root").mkdir()
        self.port = _free_port()
        config = {
            "ServerApp": {
                "ip": "127.0.0.1",
                "port": self.port,
                "port_retries": 0,
                "open_browser": False,
                "allow_root": True,
                "root_dir": str(self.tmp / "root"),
                "jpserver_extensions": {"hy2fa_lab": True, PROBE_MODULE: True},
            },
            "IdentityProvider": {"token": self.token},
            "Hy2faLab": {
                "ssh_config": str(self.tmp / "ssh_config"),
                "control_path": f"{self.tmp}/cm-%r",
                "prompt_timeout": 3600,
                "default_persist": "10m",  # a master the bench fails to stop ends by itself
            },
        }
        (self.tmp / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
        with (self.tmp / "server.log").open("wb") as log:
            self.jupyter = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = Client(self.port, self.token)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.jupyter.poll() is not None:
                    raise BenchError(f"jupyter server exited: {self.tail('server.log')}")
                with contextlib.suppress(OSError, http.client.HTTPException):
                    if client.call("GET", "hy2fa/connections")[0] == 200:
                        return
                if time.monotonic() > deadline:
                    raise BenchError(f"jupyter server did not answer: {self.tail('server.log')}")
                time.sleep(0.1)
        finally:
            client.close()

    def tail(self, name: str, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.tmp / name).read_text(errors="replace").splitlines()[-lines:])
        return ""

    def probe(self) -> dict[str, Any]:
        assert self.client is not None
        return dict(self.client.ok("GET", "hy2fa-bench/probe"))

    def counting(self, on: bool) -> None:
        assert self.client is not None
        self.client.ok("POST", "hy2fa-bench/probe", {"on": on})

    def close(self) -> list[str]:
        """Stop every master and process this run started, remove the temp dir; return what
        had to be forced (anything left is a finding, not only untidiness)."""
        problems: list[str] = []
        if self.client is not None:
            with contextlib.suppress(Exception):
                views = self.client.ok("GET", "hy2fa/connections")["connections"]
                live = [v["name"] for v in views if v["state"] in ("connected", "unresponsive")]
                pending = [v["name"] for v in views if v["state"] in _PENDING_STATES]
                _in_parallel(
                    lambda c, n: c.ok("DELETE", f"hy2fa/connections/{n}"), live + pending, self
                )
            self.client.close()
        if self.jupyter is not None and self.jupyter.poll() is None:
            self.jupyter.terminate()
            try:
                self.jupyter.wait(20)
            except subprocess.TimeoutExpired:
                problems.append("the jupyter server ignored SIGTERM for 20 s")
                self.jupyter.kill()
                self.jupyter.wait(10)
        # Masters are daemons of their own (ssh -f): any left has our temp dir in its argv.
        for path in self.tmp.glob("cm-*"):
            with contextlib.suppress(OSError, mux.MuxError):
                if mux.stop(str(path)):
                    problems.append(f"a master was still running on {path.name}")
        if not _wait_until(lambda: not ssh_processes(self.needle), 5.0):
            left = ssh_processes(self.needle)
            problems.append(f"ssh processes left: {sorted(left)}")
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)
            if not _wait_until(lambda: not ssh_processes(self.needle), 3.0):
                problems.append("and they survived SIGTERM")
        if self.demo is not None and self.demo.poll() is None:
            with contextlib.suppress(OSError):
                assert self.demo.stdin is not None
                self.demo.stdin.close()
            try:
                self.demo.wait(20)
            except subprocess.TimeoutExpired:
                problems.append("the demo server did not stop when its stdin closed")
                self.demo.kill()
                self.demo.wait(10)
        if self.demo is not None and self.demo.stdout is not None:
            self.demo.stdout.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.tmp.exists():
            problems.append(f"could not remove {self.tmp}")
        return problems


_PENDING_STATES = ("starting", "prompting", "verifying")


def _in_parallel(
    work: Callable[[Client, str], T], names: Sequence[str], lab: Lab, workers: int = WORKERS
) -> list[T]:
    """``work(client, name)`` for every name, ``workers`` at a time, one connection each."""
    local = threading.local()
    made: list[Client] = []
    lock = threading.Lock()

    def run(name: str) -> T:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = Client(lab.port, lab.token)
            with lock:
                made.append(client)
        return work(client, name)

    try:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            return list(pool.map(run, names))
    finally:
        for client in made:
            client.close()


# ---- figure 4: /api/status with logins waiting at their prompts ---------------------------


def figure4(lab: Lab, samples: int) -> dict[str, Any]:
    client = lab.client
    assert client is not None
    names = [f"u{index:03d}" for index in range(PENDING)]

    cpu: dict[str, float] = {}

    def phase(label: str) -> list[float]:
        for _ in range(WARMUP * 10):
            client.raw("GET", "api/status")
        wall, used = time.perf_counter(), cpu_seconds(lab.pid)
        times = [_timed(lambda: client.raw("GET", "api/status")) for _ in range(samples)]
        cpu[label] = (cpu_seconds(lab.pid) - used) / (time.perf_counter() - wall) * 100.0
        return times

    idle_before = phase("idle_before")

    started = time.perf_counter()
    for name in names:
        client.ok("POST", "hy2fa/connections", {"cluster": name}, expect=(202,))

    def all_prompting() -> bool:
        views = client.ok("GET", "hy2fa/connections")["connections"]
        states = {v["name"]: v["state"] for v in views if v["name"] in names}
        bad = {n: s for n, s in states.items() if s not in _PENDING_STATES}
        if bad:
            raise BenchError(f"logins ended before they were answered: {bad}")
        return len(states) == PENDING and set(states.values()) == {"prompting"}

    if not _wait_until(all_prompting, STEP_TIMEOUT, 0.1):
        raise BenchError(f"the {PENDING} logins did not all reach their prompts")
    to_prompts_ms = (time.perf_counter() - started) * 1000.0
    ssh_waiting = len(ssh_processes(lab.needle))
    time.sleep(1.5)  # every waiting login has run its once-a-second look at its connection
    pending = phase("pending")
    during = lab.probe()

    for name in names:
        view = client.ok("DELETE", f"hy2fa/connections/{name}")
        if view["state"] != "failed" or view["reason"] != "cancelled":
            raise BenchError(f"DELETE {name} left it {view['state']} ({view['reason']})")
    gone = _wait_until(lambda: not ssh_processes(lab.needle), 5.0)
    left_children = children(lab.pid)
    left_ssh = ssh_processes(lab.needle)
    idle_after = phase("idle_after")

    idle = idle_before + idle_after
    idle_p99 = percentile(idle, 99)
    pending_p99 = percentile(pending, 99)
    ratio = pending_p99 / idle_p99
    clean = gone and not left_ssh and not left_children
    return {
        "figure": 4,
        "what": f"GET /api/status p99 with {PENDING} logins waiting at their prompts",
        "baseline": (
            f"idle p99 {idle_p99:.2f} ms (before {percentile(idle_before, 99):.2f}, "
            f"after {percentile(idle_after, 99):.2f}); idle p50 {statistics.median(idle):.2f} ms"
        ),
        "value": (
            f"p99 {pending_p99:.2f} ms = {ratio:.2f}x idle; p50 {statistics.median(pending):.2f} "
            f"ms; server CPU {cpu['pending']:.0f}% of a core (idle phases "
            f"{cpu['idle_before']:.0f}%, {cpu['idle_after']:.0f}%); {PENDING} cancelled, "
            f"{len(left_ssh)} ssh / {len(left_children)} children left"
        ),
        "goal": "pending p99 <= 2x idle p99; no ssh child left after the DELETEs",
        "met": ratio <= 2.0 and clean,
        "ratio_p99": ratio,
        "idle_before": _summary(idle_before),
        "pending": _summary(pending),
        "idle_after": _summary(idle_after),
        "server_cpu_percent": cpu,  # of one core, while the requests of each phase ran
        "ssh_waiting_at_prompts": ssh_waiting,
        "to_all_prompts_ms": to_prompts_ms,
        "server_tasks_with_pending": during["tasks"],
        "server_threads_with_pending": during["threads"],
        "ssh_left": sorted(left_ssh),
        "children_left": sorted(left_children),
    }


# ---- figure 6: connect/disconnect cycles leave nothing behind -----------------------------


def _footprint(lab: Lab) -> dict[str, Any]:
    """The server at rest: no ``ssh -G`` or login child in flight when this is read."""
    _wait_until(lambda: not children(lab.pid), 5.0)
    probe = lab.probe()
    return {
        "rss_kib": rss_kib(lab.pid),
        "fds": fd_count(lab.pid),
        "children": sorted(children(lab.pid)),
        "tasks": probe["tasks"],
        "task_kinds": probe["task_kinds"],
        "threads": probe["threads"],
    }


def figure6(lab: Lab) -> dict[str, Any]:
    client = lab.client
    assert client is not None
    name = "cycle"

    def cycle() -> None:
        view = client.login(name)
        pid = view["master_pid"]
        done = client.ok("DELETE", f"hy2fa/connections/{name}")
        if done["state"] != "disconnected":
            raise BenchError(f"DELETE left {name} {done['state']}")
        if not _wait_until(lambda: not _running(pid), 5.0, POLL):
            raise BenchError(f"the master {pid} outlived its DELETE")

    for _ in range(WARMUP):
        cycle()
    before = _footprint(lab)
    durations = [_timed(cycle) for _ in range(CYCLES)]
    after = _footprint(lab)

    growth = (after["rss_kib"] - before["rss_kib"]) / 1024.0
    fds = after["fds"] - before["fds"]
    tasks = after["tasks"] - before["tasks"]
    left = not after["children"] and not ssh_processes(lab.needle)
    return {
        "figure": 6,
        "what": f"server RSS, fds, children, asyncio tasks after {CYCLES} connect/disconnect",
        "baseline": (
            f"after {WARMUP} warm-up cycles: {before['rss_kib'] / 1024:.1f} MB RSS, "
            f"{before['fds']} fds, {before['tasks']} tasks, {len(before['children'])} children"
        ),
        "value": (
            f"RSS {growth:+.2f} MB, fds {fds:+d}, tasks {tasks:+d}, "
            f"{len(after['children'])} children; cycle median "
            f"{statistics.median(durations):.0f} ms"
        ),
        "goal": "RSS growth < 5 MB; no fd, child or asyncio task left",
        "met": growth < 5.0 and fds <= 0 and tasks <= 0 and left,
        "rss_growth_mb": growth,
        "before": before,
        "after": after,
        "cycle": _summary(durations),
    }


# ---- figure 5: the listing with 200 live masters ------------------------------------------


def figure5(lab: Lab, rounds: int) -> dict[str, Any]:
    client = lab.client
    assert client is not None
    names = [f"m{index:03d}" for index in range(MASTERS)]
    deadline = time.monotonic() + LOGIN_BUDGET

    def login(worker: Client, name: str) -> dict[str, Any] | None:
        if time.monotonic() > deadline:
            return None  # out of time: fewer masters, and the figure says so
        return worker.login(name)

    started = time.perf_counter()
    views = [v for v in _in_parallel(login, names, lab) if v is not None]
    login_s = time.perf_counter() - started
    paths = {v["name"]: v["control_path"] for v in views}
    pids = {v["name"]: v["master_pid"] for v in views}
    count = len(paths)

    listing = client.ok("GET", "hy2fa/connections")["connections"]
    connected = {v["name"] for v in listing if v["state"] == "connected"}
    if not set(paths) <= connected:
        raise BenchError(f"not listed as connected: {sorted(set(paths) - connected)[:10]}")

    ordered = [paths[name] for name in sorted(paths)]

    def baseline() -> None:
        for path in ordered:
            if mux.alive(path) is None:
                raise BenchError(f"no master answers on {path}")

    def list_all() -> None:
        status, _raw = client.raw("GET", "hy2fa/connections")
        if status != 200:
            raise BenchError(f"GET hy2fa/connections: HTTP {status}")

    def version() -> None:
        client.raw("GET", "hy2fa/version")

    ops: dict[str, Callable[[], None]] = {
        "listing": list_all,
        "baseline": baseline,
        "version": version,
    }
    for _ in range(WARMUP):
        for op in ops.values():
            op()
    samples: dict[str, list[float]] = {key: [] for key in ops}
    order = list(ops)
    for index in range(rounds):
        shift = index % len(order)
        for key in order[shift:] + order[:shift]:
            samples[key].append(_timed(ops[key]))

    # A few listings with the probe counting the checks (it costs a lock per check, so these
    # are not among the timed ones); the median span of them is reported.
    instrumented: list[tuple[float, dict[str, Any]]] = []
    for _ in range(WARMUP):
        lab.counting(True)
        took = _timed(list_all)
        instrumented.append((took, lab.probe()["checks"]))
        lab.counting(False)
    instrumented.sort(key=lambda pair: float(pair[1]["span_ms"]))
    instrumented_ms, checks = instrumented[len(instrumented) // 2]

    # The pids seen at the start still answer: the listing adopted nothing new on the way.
    final = client.ok("GET", "hy2fa/connections")["connections"]
    still = {
        v["name"]
        for v in final
        if v["state"] == "connected" and pids.get(v["name"]) == v["master_pid"]
    }
    if len(still & set(paths)) != count:
        raise BenchError("masters changed during the measurement")

    listing_ms = statistics.median(samples["listing"])
    baseline_ms = statistics.median(samples["baseline"])
    span_ms = checks["span_ms"]
    # Concurrent in fact, not only in form: several checks in flight at once, and all of them
    # over in less time than the same checks one after the other.
    concurrent_checks = (
        checks["max_inflight"] > 1 and checks["calls"] >= count and 0 < span_ms < baseline_ms
    )
    fewer = "" if count == MASTERS else f" (only {count} of {MASTERS} fit in {LOGIN_BUDGET:.0f} s)"
    return {
        "figure": 5,
        "what": f"GET hy2fa/connections median with {count} live masters{fewer}",
        "baseline": (
            f"{count} sequential mux.alive in the bench: median {baseline_ms:.1f} ms "
            f"(p10 {percentile(samples['baseline'], 10):.1f}, "
            f"p90 {percentile(samples['baseline'], 90):.1f}; one check "
            f"{baseline_ms / count:.3f} ms)"
        ),
        "value": (
            f"{listing_ms:.1f} ms (p10 {percentile(samples['listing'], 10):.1f}, "
            f"p90 {percentile(samples['listing'], 90):.1f}) = "
            f"{listing_ms / baseline_ms:.2f}x the sequential checks; in the server up to "
            f"{checks['max_inflight']} checks in flight at once, all {checks['calls']} over in "
            f"{span_ms:.1f} ms"
        ),
        "goal": "median < 50 ms, and the checks run concurrently (faster than one by one)",
        "met": listing_ms < 50.0 and concurrent_checks and count == MASTERS,
        "masters": count,
        "logins_s": login_s,
        "listing": _summary(samples["listing"]),
        "sequential_checks": _summary(samples["baseline"]),
        "version_get": _summary(samples["version"]),
        "listing_over_sequential": listing_ms / baseline_ms,
        "instrumented_listing_ms": instrumented_ms,
        "instrumented_checks": checks,
    }


# ---- the whole run ------------------------------------------------------------------------


def _bounded(rounds: int) -> int:
    return max(MIN_ROUNDS, min(MAX_ROUNDS, rounds))


def figures(rounds: int = DEFAULT_ROUNDS) -> list[dict[str, Any]]:
    """Figures 4, 6 and 5 (in that order: the 200 masters last) from one server.

    ``rounds`` sets the status requests per phase of figure 4 (60 per round, 600 to 5000) and
    the interleaved listing rounds of figure 5 (at most 100); figure 6 is always 50 cycles.
    Cleanup problems (anything that had to be forced) are added to every figure and unset
    its ``met``.
    """
    if shutil.which("ssh") is None:
        raise BenchError("the OpenSSH client (ssh) is not installed")
    rounds = _bounded(rounds)
    aliases = [f"u{i:03d}" for i in range(PENDING)] + ["cycle"]
    aliases += [f"m{i:03d}" for i in range(MASTERS)]
    lab = Lab()
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    problems: list[str] = []
    closed = False
    try:
        lab.start(aliases)
        setup_s = time.perf_counter() - started
        results.append(figure4(lab, max(600, min(5000, rounds * 60))))
        results.append(figure6(lab))
        results.append(figure5(lab, min(rounds, 100)))
    except BenchError as exc:
        errors = [line for line in lab.tail("server.log", 500).splitlines() if "[E " in line]
        problems, closed = lab.close(), True
        raise BenchError(f"{exc}; server errors: {errors[-3:]}; clean-up: {problems}") from None
    finally:
        if not closed:
            problems = lab.close()
    if results:
        leftover = [f"process {pid}" for pid in processes_mentioning(lab.needle)]
        problems += leftover
        for result in results:
            result["server_start_s"] = setup_s
            result["total_s"] = time.perf_counter() - started
            result["cleanup_problems"] = problems
            if problems:
                result["met"] = False
    return results


def render(results: Sequence[dict[str, Any]]) -> str:
    version = subprocess.run(["ssh", "-V"], capture_output=True, text=True, timeout=10)
    lines = [
        f"{(version.stderr or version.stdout).strip()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, loopback",
    ]
    for result in results:
        lines += [
            "",
            f"Figure {result['figure']}: {result['what']}",
            f"  baseline: {result['baseline']}",
            f"  value:    {result['value']}",
            f"  goal:     {result['goal']} -> {'met' if result['met'] else 'MISSED'}",
        ]
    if results:
        lines.append(f"\nwhole run {results[0]['total_s']:.0f} s")
    return "\n".join(lines)


def _rounds(text: str) -> int:
    value = int(text)
    if not MIN_ROUNDS <= value <= MAX_ROUNDS:
        raise argparse.ArgumentTypeError(f"rounds must be between {MIN_ROUNDS} and {MAX_ROUNDS}")
    return value


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server_load", description=__doc__)
    parser.add_argument("--rounds", type=_rounds, default=DEFAULT_ROUNDS, metavar="N")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)  # run the clean-up on SIGTERM too
    try:
        results = figures(args.rounds)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2) if args.json else render(results))
    problems = results[0]["cleanup_problems"] if results else []
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
