"""Figure 1: what the product adds to a 2FA login, measured side by side in one run.

Against the demo asyncssh server with the Sigma2 script (a one-time code, then a password;
in a child process of its own), every answer is sent the instant its prompt shows, and the
time from the start to a live master (its socket answers a mux check) is taken three ways,
interleaved round by round (the order rotates), each master stopped before the next login:

(a) a bare pexpect script: ``ssh -M -S path -F config -o ControlPersist=… -fN -- alias``,
    answering each prompt as it appears, then ``mux.alive(path)``: the floor;
(b) the engine in this process: ``Manager.connect(alias)``, answered from an ``on_change``
    listener the moment the session is ``prompting``, done when it is ``connected``;
(c) through REST, as JupyterLab does it: a real ``python -m jupyter_server`` with the
    extension (a child process: its own config, data and runtime dirs, a token, a free port);
    the client hears the extension's events on ``/api/events/subscribe`` (a websocket), sends
    ``POST hy2fa/connections``, answers each ``prompting`` event with ``POST …/answer``, and
    is done at the ``connected`` event.

Reports the differences of the medians, (b)-(a) and (c)-(a), with the 10th to 90th percentile
of the per-round differences, and when each prompt showed. A login's key exchange takes one of
two times about 40 ms apart, whichever the product (ssh's and TCP's doing, see
bench/README.md), so the mix of the two in a run moves a whole median by up to 40 ms; the goal
is judged on the differences of the medians taken within each mode both sides show, weighted
by their samples ("modes matched"). Goals: (b) at most 20 ms over the floor, (c) at most
50 ms. Run with ``python -m bench.login [--rounds N] [--json]``; ``figures(rounds)`` is what
``python -m bench`` calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hy2fa_lab.core import mux
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.types import SETTLED_STATES, PromptKind, State
from hy2fa_lab.server.events import SCHEMA_ID as CONNECTION_EVENTS

from ._harness import (
    OTP,
    PASSWORD,
    TIMEOUT,
    BenchError,
    DemoServer,
    bare_login,
    describe,
    finish,
    make_tmp,
    rotations,
    row,
    run_module,
    stop_master,
    stop_masters,
    write_ssh_config,
)

ALIAS = "sigma"
PERSIST = "120"  # seconds: a master a crashed run leaves behind does not stay long
WARMUP = 2  # unmeasured rounds first: page cache, the server's first sessions, JIT-less warmup
MIN_ROUNDS, MAX_ROUNDS, DEFAULT_ROUNDS = 3, 200, 40
GOAL_ENGINE_MS = 20.0
GOAL_REST_MS = 50.0
MODE_GAP_MS = 30.0  # means this far apart in the times to the first prompt are two modes
ANSWERS = {PromptKind.OTP: OTP, PromptKind.PASSWORD: PASSWORD}
ANSWERS_BY_NAME = {kind.value: answer for kind, answer in ANSWERS.items()}
LABELS = {
    "a": "bare pexpect ssh -M -fN",
    "b": "engine in-process (Manager.connect)",
    "c": "REST (jupyter_server subprocess)",
}


# ---- (a) the floor ------------------------------------------------------------------------


def bare_round(tmp: Path, config: Path) -> dict[str, float]:
    path = str(tmp / "bare")
    argv = [
        "ssh",
        "-M",
        "-S",
        path,
        "-F",
        str(config),
        "-o",
        f"ControlPersist={PERSIST}",
        "-o",
        "ServerAliveInterval=30",
        "-o",
        "ConnectTimeout=60",
        "-fN",
        "--",
        ALIAS,
    ]  # fmt: skip  (the engine's own argv, so ssh does the same work)
    marks: list[float] = []
    start = time.perf_counter()
    bare_login(argv, marks)
    if mux.alive(path) is None:
        raise BenchError("the bare master does not answer on its socket")
    end = time.perf_counter()
    stop_master(path)
    return _phases(start, marks[:2], end)


def _phases(start: float, prompts: Sequence[float], end: float) -> dict[str, float]:
    """ms from the start to each prompt and to the live master."""
    if len(prompts) != 2:
        raise BenchError(f"expected two prompts, saw {len(prompts)}")
    return {
        "total": (end - start) * 1000,
        "prompt1": (prompts[0] - start) * 1000,
        "prompt2": (prompts[1] - start) * 1000,
        "after_prompt1": (end - prompts[0]) * 1000,  # the answers and the end: no key exchange
    }


# ---- (b) the engine in this process -------------------------------------------------------


class Engine:
    """A Manager on an event loop of its own thread (as in a kernel's LocalBackend)."""

    def __init__(self, tmp: Path, config: Path) -> None:
        settings = Settings(
            ssh_config=str(config), control_path=f"{tmp}/e-%C", default_persist=PERSIST
        )
        self.manager = Manager(settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-engine")
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT * 2)

    def round(self) -> dict[str, float]:
        phases: dict[str, float] = self.run(self._login())
        return phases

    async def _login(self) -> dict[str, float]:
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[float] = loop.create_future()
        prompts: list[float] = []
        tasks: list[asyncio.Task[None]] = []

        def listener(session: MasterSession) -> None:
            now = time.perf_counter()
            if session.state is State.PROMPTING and session.prompt is not None:
                prompts.append(now)
                answer = ANSWERS.get(session.prompt.kind)
                if answer is None:
                    raise BenchError(f"unexpected prompt {session.prompt.text!r}")
                tasks.append(loop.create_task(session.answer(answer, session.prompt_id)))
            elif session.state in SETTLED_STATES and not settled.done():
                if session.state is State.CONNECTED:
                    settled.set_result(now)
                else:
                    settled.set_exception(BenchError(f"{session.state}: {session.message}"))

        unsubscribe = self.manager.subscribe(listener)
        try:
            start = time.perf_counter()
            session = await self.manager.connect(ALIAS)
            end = await asyncio.wait_for(settled, TIMEOUT)
        finally:
            unsubscribe()
        await asyncio.gather(*tasks)  # an answer that failed fails the round
        await self.manager.disconnect_session(session)
        if session.state is not State.DISCONNECTED:
            raise BenchError(f"the engine's master did not stop: {session.state}")
        return _phases(start, prompts, end)

    def close(self) -> None:
        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                self.run(self.manager.shutdown())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


# ---- (c) through REST ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EventClient:
    """What JupyterLab does: hear the extension's events on ``/api/events/subscribe`` (a
    websocket), answer each prompt with ``POST hy2fa/connections/<name>/answer``. Runs on an
    event loop of its own thread; ``round()`` is one login and its ``DELETE``."""

    def __init__(self, port: int, token: str) -> None:
        self.base = f"127.0.0.1:{port}"
        self.headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-rest")
        self.thread.start()
        self.ws: Any = None
        self.http: Any = None
        self._run(self._open())

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT * 2)

    async def _open(self) -> None:
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest
        from tornado.websocket import websocket_connect

        self.http = AsyncHTTPClient()
        url = f"ws://{self.base}/api/events/subscribe"
        self.ws = await websocket_connect(HTTPRequest(url, headers=self.headers))

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.fetch(
            f"http://{self.base}{path}",
            method=method,
            headers=self.headers,
            body=None if body is None else json.dumps(body),
            raise_error=False,
            request_timeout=TIMEOUT,
        )
        if not 200 <= response.code < 300:
            raise BenchError(f"{method} {path}: {response.code} {response.body[:300]!r}")
        return json.loads(response.body or b"null")

    async def _event(self, connection: str) -> dict[str, Any]:
        """The next event of the connection with id ``connection`` (a round's login: events
        of an earlier round's are skipped)."""
        while True:
            message = await asyncio.wait_for(self.ws.read_message(), TIMEOUT)
            if message is None:
                raise BenchError("the events websocket closed")
            event: dict[str, Any] = json.loads(message)
            if event.get("schema_id") == CONNECTION_EVENTS and event.get("id") == connection:
                return event

    def round(self) -> dict[str, float]:
        phases: dict[str, float] = self._run(self._login())
        return phases

    async def _login(self) -> dict[str, float]:
        prompts: list[float] = []
        answered = 0
        start = time.perf_counter()
        view = await self._request("POST", "/hy2fa/connections", {"cluster": ALIAS})
        connection = str(view["id"])
        view_path = f"/hy2fa/connections/{connection}"
        while True:
            event = await self._event(connection)
            state = event["state"]
            if state == "connected":
                end = time.perf_counter()
                break
            if state in ("failed", "disconnected", "unresponsive"):
                raise BenchError(f"REST login {state}: {event.get('message')}")
            prompt = event.get("prompt") or {}  # event schema v2: the REST view's prompt
            if state == "prompting" and prompt.get("id", 0) > answered:
                prompts.append(time.perf_counter())
                answered = prompt["id"]
                body = {"response": ANSWERS_BY_NAME[prompt["kind"]], "prompt_id": answered}
                await self._request("POST", f"{view_path}/answer", body)
        stopped = await self._request("DELETE", view_path)
        if stopped["state"] != "disconnected":
            raise BenchError(f"DELETE left the connection {stopped['state']}")
        while (await self._event(connection))["state"] != "disconnected":
            pass  # so no event of this round is read as the next one's
        return _phases(start, prompts, end)

    def close(self) -> None:
        if self.thread.is_alive():
            if self.ws is not None:
                self.loop.call_soon_threadsafe(self.ws.close)
            if self.http is not None:
                self.loop.call_soon_threadsafe(self.http.close)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


class JupyterServer:
    """``python -m jupyter_server`` with the extension, its own dirs, a token and a free port."""

    def __init__(self, tmp: Path, config: Path) -> None:
        self.dir = tmp / "jupyter"
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "JPY_", "HY2FA_"))
        }
        for kind in ("config", "data", "runtime"):
            (self.dir / kind).mkdir(parents=True)
            env[f"JUPYTER_{kind.upper()}_DIR"] = str(self.dir / kind)
        env["JUPYTER_TOKEN"] = self.token  # not in argv, where ps would show it
        (self.dir / "config" / "jupyter_server_config.json").write_text(
            json.dumps(
                {
                    "ServerApp": {"jpserver_extensions": {"hy2fa_lab": True}},
                    "Hy2faLab": {
                        "ssh_config": str(config),
                        "control_path": f"{tmp}/r-%C",
                        "default_persist": PERSIST,
                    },
                }
            )
        )
        argv = [
            sys.executable, "-m", "jupyter_server",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={self.dir}",
        ]  # fmt: skip
        if os.geteuid() == 0:
            argv.append("--allow-root")
        self.log = self.dir / "server.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.conn: http.client.HTTPConnection | None = None
        self.events: EventClient | None = None
        deadline = time.monotonic() + 120
        while True:
            try:
                self.request("GET", "/hy2fa/version")
                return
            except (OSError, http.client.HTTPException, BenchError):
                self.conn = None
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise BenchError(
                        "jupyter_server did not start: " + self.log.read_text()[-3000:]
                    ) from None
                time.sleep(0.2)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One request on a kept-alive connection; raises BenchError unless 2xx."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        headers = {"Authorization": f"token {self.token}", "Content-Type": "application/json"}
        data = None if body is None else json.dumps(body)
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        if not 200 <= response.status < 300:
            raise BenchError(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload or b"null")

    def round(self) -> dict[str, float]:
        if self.events is None:
            self.events = EventClient(self.port, self.token)
        return self.events.round()

    def stop(self) -> list[str]:
        if self.events is not None:
            self.events.close()
            self.events = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc.poll() is not None:
            return []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
            return []
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return ["jupyter_server had to be killed"]


# ---- the run ------------------------------------------------------------------------------


def measure(rounds: int) -> dict[str, Any]:
    tmp = make_tmp()
    server: DemoServer | None = None
    engine: Engine | None = None
    jupyter: JupyterServer | None = None
    problems: list[str] = []
    samples: dict[str, list[dict[str, float]]] = {key: [] for key in LABELS}
    started = time.perf_counter()
    try:
        server = DemoServer(tmp)
        config = write_ssh_config(tmp, server.port, {ALIAS: ""})
        engine = Engine(tmp, config)
        jupyter = JupyterServer(tmp, config)
        setup_s = time.perf_counter() - started
        ops = {
            "a": lambda: bare_round(tmp, config),
            "b": engine.round,
            "c": jupyter.round,
        }
        for index in range(WARMUP + rounds):
            for key in rotations(list(ops), index):
                phases = ops[key]()
                if index >= WARMUP:
                    samples[key].append(phases)
    finally:
        if engine is not None:
            engine.close()
        if jupyter is not None:
            problems += jupyter.stop()
        problems += stop_masters(tmp)
        if server is not None:
            problems += server.stop()
        problems += finish(tmp)
    if problems:
        raise BenchError("; ".join(problems))
    return {
        "rounds": rounds,
        "setup_s": setup_s,
        "total_s": time.perf_counter() - started,
        "samples": samples,
    }


def split_modes(values: Sequence[float]) -> float | None:
    """The threshold between two modes of ``values``, or None if they show one.

    The best split into two groups (least squares, exact in one dimension) counts as two
    modes when the groups' means are at least ``MODE_GAP_MS`` apart, with 3 values or more
    in each; the threshold is the middle between the groups' edges."""
    ordered = sorted(values)
    best: tuple[float, int] | None = None
    for below in range(3, len(ordered) - 2):
        low, high = ordered[:below], ordered[below:]
        cost = sum((v - statistics.fmean(low)) ** 2 for v in low) + sum(
            (v - statistics.fmean(high)) ** 2 for v in high
        )
        if best is None or cost < best[0]:
            best = (cost, below)
    if best is None:
        return None
    below = best[1]
    low, high = ordered[:below], ordered[below:]
    if statistics.fmean(high) - statistics.fmean(low) < MODE_GAP_MS:
        return None
    return (low[-1] + high[0]) / 2


def _modes(rows: Sequence[dict[str, float]]) -> dict[str, list[float]]:
    """The total times of ``rows`` by the mode of their time to the first prompt."""
    threshold = split_modes([r["prompt1"] for r in rows])
    modes: dict[str, list[float]] = {}
    for r in rows:
        mode = "one" if threshold is None else "fast" if r["prompt1"] < threshold else "slow"
        modes.setdefault(mode, []).append(r["total"])
    return modes


def mode_matched(rows: Sequence[dict[str, float]], floor: Sequence[dict[str, float]]) -> Any:
    """The difference of the medians of total times, taken within each mode of the key
    exchange that both ``rows`` and ``floor`` show (weighted by their samples), or None.

    Which mode a login falls in is ssh's and TCP's doing, not the product's, and it shifts a
    login by about 40 ms: comparing whole medians would measure the mix of modes by chance."""
    ours, base = _modes(rows), _modes(floor)
    if (set(ours) == {"one"}) != (set(base) == {"one"}):
        return None  # one side bimodal, the other not: no like-for-like pairs
    if "one" in ours and "one" in base:
        pairs = {"one": (ours["one"], base["one"])}
    else:
        pairs = {m: (ours[m], base[m]) for m in ("fast", "slow") if m in ours and m in base}
        pairs = {m: (x, y) for m, (x, y) in pairs.items() if len(x) >= 3 and len(y) >= 3}
    if not pairs:
        return None
    weight = {m: len(x) + len(y) for m, (x, y) in pairs.items()}
    per_mode = {m: statistics.median(x) - statistics.median(y) for m, (x, y) in pairs.items()}
    estimate = sum(per_mode[m] * weight[m] for m in pairs) / sum(weight.values())
    counts = {m: {"ours": len(x), "floor": len(y)} for m, (x, y) in pairs.items()}
    return {"estimate": estimate, "per_mode": per_mode, "counts": counts}


def _stats(result: dict[str, Any]) -> dict[str, Any]:
    samples: dict[str, list[dict[str, float]]] = result["samples"]
    phases = {
        key: {phase: describe([s[phase] for s in rows]) for phase in rows[0]}
        for key, rows in samples.items()
    }
    totals = {key: [s["total"] for s in rows] for key, rows in samples.items()}
    over = {}
    for key in ("b", "c"):
        paired = [x - a for x, a in zip(totals[key], totals["a"], strict=True)]
        over[key] = {
            "difference_of_medians": phases[key]["total"]["median"]
            - phases["a"]["total"]["median"],
            "mode_matched": mode_matched(samples[key], samples["a"]),
            "paired": describe(paired),
            "after_prompt1": phases[key]["after_prompt1"]["median"]
            - phases["a"]["after_prompt1"]["median"],
        }
    modes = {key: {m: len(v) for m, v in _modes(rows).items()} for key, rows in samples.items()}
    return {"phases": phases, "over_floor": over, "modes": modes}


def figures(rounds: int = DEFAULT_ROUNDS // 2) -> list[dict[str, Any]]:
    """Figure 1 for ``python -m bench``: ``rounds * 2`` interleaved rounds (3 to 200); a
    login's time is bimodal (about 40 ms apart, see bench/README.md), so medians need them."""
    return _figure(max(MIN_ROUNDS, min(MAX_ROUNDS, rounds * 2)))


def _figure(rounds: int) -> list[dict[str, Any]]:
    result = measure(rounds)
    stats = _stats(result)
    floor = stats["phases"]["a"]["total"]
    rows = []
    for key, goal, what in (
        ("b", GOAL_ENGINE_MS, "login to a live master: engine in-process over bare pexpect"),
        ("c", GOAL_REST_MS, "login to a live master: through REST over bare pexpect"),
    ):
        over = stats["over_floor"][key]
        plain = over["difference_of_medians"]
        matched = over["mode_matched"]
        judged = plain if matched is None else matched["estimate"]
        paired = over["paired"]
        value = (
            f"{plain:+.1f} ms medians (round pairs p10..p90 {paired['p10']:+.0f}.."
            f"{paired['p90']:+.0f})"
        )
        if matched is not None:
            value = f"{judged:+.1f} ms key-exchange modes matched; " + value
        rows.append(
            row(
                1,
                what,
                f"(a) bare: {floor['median']:.1f} ms (p10..p90 {floor['p10']:.0f}.."
                f"{floor['p90']:.0f})",
                value,
                f"<= +{goal:.0f} ms",
                judged <= goal,
                rounds=rounds,
                medians_ms={k: v["total"]["median"] for k, v in stats["phases"].items()},
                phases_ms=stats["phases"],
                over_floor_ms=over,
                modes=stats["modes"],
                per_round_ms=result["samples"],
                setup_s=result["setup_s"],
                total_s=result["total_s"],
            )
        )
    return rows


def render_phases(rows: Sequence[dict[str, Any]]) -> str:
    phases: dict[str, dict[str, dict[str, float]]] = rows[0]["phases_ms"]
    names = ("prompt1", "prompt2", "total", "after_prompt1")
    lines = [
        "median ms (p10..p90) from the start to each prompt and to the live master, and from",
        "the first prompt to the live master (two answers and the end, no key exchange):",
        f"{'':<40} {'prompt 1':>18} {'prompt 2':>18} {'live master':>18} {'prompt 1->live':>18}",
    ]
    for key, label in LABELS.items():
        cells = [
            f"{p['median']:.1f} ({p['p10']:.0f}..{p['p90']:.0f})"
            for p in (phases[key][name] for name in names)
        ]
        lines.append(f"({key}) {label:<36} " + " ".join(f"{c:>18}" for c in cells))
    modes = rows[0]["modes"]
    lines.append(
        "logins per key-exchange mode: "
        + ", ".join(
            f"({k}) " + " ".join(f"{m} {n}" for m, n in v.items()) for k, v in modes.items()
        )
    )
    for result, key in zip(rows, ("b", "c"), strict=True):
        over = result["over_floor_ms"]
        matched = over["mode_matched"]
        per_mode = (
            ", ".join(f"{m} {d:+.1f}" for m, d in matched["per_mode"].items())
            if matched
            else "no common mode"
        )
        lines.append(
            f"({key})-(a): medians {over['difference_of_medians']:+.1f} ms; per mode {per_mode}; "
            f"first prompt to live master {over['after_prompt1']:+.1f} ms"
        )
    lines.append(f"{rows[0]['rounds']} rounds, whole run {rows[0]['total_s']:.0f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return run_module(
        "login", __doc__, argv, _figure, (MIN_ROUNDS, MAX_ROUNDS, DEFAULT_ROUNDS), render_phases
    )


if __name__ == "__main__":
    sys.exit(main())
