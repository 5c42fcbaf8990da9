"""Figure 7: ``hy2fa_lab.ensure()`` with a live master, measured side by side in one run.

**In a fresh kernel** (the goal the issue set: at most 100 ms). Every notebook that starts
with ``import hy2fa_lab; hy2fa_lab.ensure("saga")`` pays the first call, in a kernel that
has imported nothing of ours. A real ``python -m jupyter_server`` with the extension (its own
dirs, a token, a free port; the same server as figure 1's) has its ssh config name the demo
server (Sigma2 script, a child process); a master is up at the socket path the server gives
for the alias (``GET hy2fa/clusters/sigma``). Then for each round the server starts a new
kernel (``POST /api/kernels``), which runs, after one unmeasured ``pass``, three cells in
rotating order: an empty cell; ``ssh -O check`` on the master (``subprocess.run``, timed in
the kernel): OpenSSH's own "is it alive?", the baseline; and ``import hy2fa_lab;
hy2fa_lab.ensure("sigma")``, timed in the kernel, with the modules it imported. The cells'
round trips (execute request to reply, at the client) are taken too. Goal: the ensure cell's
own time at most 100 ms (median over kernels); its ratio over ``ssh -O check`` is shown.

**Called again in one process**: ``ensure()`` should then cost little more than asking the
socket once. The kernel side runs the engine here (no Jupyter server: its ``LocalBackend``
with a Manager on this run's ssh config). Two masters run on the demo server:

- ``sigma``: opened by ``ensure("sigma")`` itself (the person's answers typed into the
  kernel's ``getpass``, here answered by the bench), so ``ensure()`` knows its path;
- ``other``: opened elsewhere (a plain ``ssh -M``, as the sidebar or ``hy2fa connect`` would),
  at the ControlPath its ssh config names.

Interleaved round by round (the order rotates): (a) ``mux.alive(path_sigma)``,
(b) ``ensure("sigma")``, and on every 5th round (c) ``mux.alive(path_other)``,
(d) ``ensure("other")``. Goal: b/a and d/c at most 2.

Run with ``python -m bench.ensure_check [--rounds N] [--json]`` (one fresh kernel per 50
rounds, 5 to 50 kernels); ``figures(rounds)`` is what ``python -m bench`` calls.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hy2fa_lab.core import mux
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.kernel import api
from hy2fa_lab.kernel.backends import LocalBackend

from ._harness import (
    OTP,
    OTP_PROMPT,
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
    stop_masters,
    write_ssh_config,
)
from .login import JupyterServer

GOAL = 2.0
GOAL_FRESH_MS = 100.0  # the goal for the first ensure() in a new kernel
ROUNDS_PER_KERNEL, MIN_KERNELS, MAX_KERNELS = 50, 5, 50
# What find_server() used to import to read jpserver-<pid>.json (jupyter_server.serverapp):
# none of it may come with ensure() when the master is up.
HEAVY = ("jupyter_server", "jupyter_events", "jsonschema", "rfc3987_syntax", "lark")
WARMUP = 20
EVERY = 5  # (c) and (d) run on every 5th round: (d) spawns ssh -G, (b) does not
MIN_ROUNDS, MAX_ROUNDS, DEFAULT_ROUNDS = 50, 20000, 500
LABELS = {
    "a": "mux.alive(path of sigma)",
    "b": "ensure('sigma'), it opened that master",
    "c": "mux.alive(path of other)",
    "d": "ensure('other'), opened elsewhere",
}


def _answer(prompt: str, stream: object = None) -> str:
    """The person at the kernel's getpass: the code, then the password."""
    if OTP_PROMPT.strip() in prompt:
        return OTP
    if "Password:" in prompt:
        return PASSWORD
    raise BenchError(f"unexpected question {prompt!r}")


@contextlib.contextmanager
def kernel_engine(tmp: Path, config: Path) -> Iterator[LocalBackend]:
    """The kernel side as it runs without a Jupyter server, on this run's ssh config; the
    module state ensure() keeps (its known paths, the shared backend) is put back after."""
    saved_env = {key: os.environ.pop(key) for key in ("HY2FA_SERVER_URL", "JPY_PARENT_PID")
                 if key in os.environ}  # fmt: skip
    saved_known = dict(api._known_paths)
    module = vars(api)  # ensure() asks with ``getpass.getpass`` through this module's name
    saved_getpass = module["getpass"]
    saved_instance = LocalBackend._instance
    settings = Settings(ssh_config=str(config), control_path=f"{tmp}/k-%C", default_persist="120")
    backend = LocalBackend(Manager(settings))
    api._known_paths.clear()
    module["getpass"] = types.SimpleNamespace(getpass=_answer)
    LocalBackend._instance = backend
    try:
        yield backend
    finally:
        LocalBackend._instance = saved_instance
        module["getpass"] = saved_getpass
        api._known_paths.clear()
        api._known_paths.update(saved_known)
        os.environ.update(saved_env)
        with contextlib.suppress(Exception):
            backend.run(backend.manager.shutdown(), timeout=TIMEOUT)
        backend.loop.call_soon_threadsafe(backend.loop.stop)
        backend.thread.join(10)
        if not backend.thread.is_alive():
            backend.loop.close()


def _timed_us(action: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    action()
    return (time.perf_counter_ns() - start) / 1000.0


def measure_in_process(rounds: int) -> dict[str, Any]:
    tmp = make_tmp()
    server: DemoServer | None = None
    problems: list[str] = []
    samples: dict[str, list[float]] = {key: [] for key in LABELS}
    try:
        server = DemoServer(tmp)
        other_path = f"{tmp}/other"
        config = write_ssh_config(
            tmp, server.port, {"sigma": "", "other": f"  ControlPath {other_path}\n"}
        )
        with kernel_engine(tmp, config):
            started = time.perf_counter()
            sigma_path = api.ensure("sigma", timeout=60, out=io.StringIO())
            login_s = time.perf_counter() - started
            if ("sigma", None, None) not in api._known_paths:
                raise BenchError("ensure() did not remember the path of the master it opened")
            bare_login(["ssh", "-F", str(config), "-M", "-o", "ControlPersist=120", "-fN", "other"])
            if api.ensure("other", out=io.StringIO()) != other_path:
                raise BenchError("ensure('other') does not find the master at its ControlPath")
            sigma_pid = mux.alive(sigma_path)
            other_pid = mux.alive(other_path)
            if sigma_pid is None or other_pid is None:
                raise BenchError("a master does not answer")

            def alive(path: str, pid: int) -> None:
                if mux.alive(path) != pid:
                    raise BenchError(f"the master on {path} went away")

            def ensure(name: str, path: str) -> None:
                if api.ensure(name, out=io.StringIO()) != path:
                    raise BenchError(f"ensure({name!r}) gave another path")

            ops = {
                "a": functools.partial(alive, sigma_path, sigma_pid),
                "b": functools.partial(ensure, "sigma", sigma_path),
                "c": functools.partial(alive, other_path, other_pid),
                "d": functools.partial(ensure, "other", other_path),
            }
            for index in range(WARMUP + rounds):
                keys = ["a", "b", "c", "d"] if index % EVERY == 0 else ["a", "b"]
                for key in rotations(keys, index):
                    elapsed = _timed_us(ops[key])
                    if index >= WARMUP:
                        samples[key].append(elapsed)
    finally:
        problems += stop_masters(tmp)
        if server is not None:
            problems += server.stop()
        problems += finish(tmp)
    if problems:
        raise BenchError("; ".join(problems))
    return {"rounds": rounds, "samples_us": samples, "first_login_s": login_s}


# ---- the first ensure() in a fresh kernel -------------------------------------------------

EMPTY_CELL = "pass"
CHECK_CELL = """\
import json as _json, subprocess as _sp, time as _t
_t0 = _t.perf_counter()
_r = _sp.run({argv!r}, capture_output=True)
_ms = (_t.perf_counter() - _t0) * 1e3
assert _r.returncode == 0, _r.stderr
print(_json.dumps({{"ms": _ms}}))
"""
ENSURE_CELL = """\
import json as _json, sys as _sys, time as _t
_before = set(_sys.modules)
_t0 = _t.perf_counter()
import hy2fa_lab
_ensure = hy2fa_lab.ensure  # imports hy2fa_lab.kernel
_t1 = _t.perf_counter()
_path = _ensure({alias!r})
_t2 = _t.perf_counter()
_new = set(_sys.modules) - _before
print(_json.dumps({{
    "ms": (_t2 - _t0) * 1e3, "import_ms": (_t1 - _t0) * 1e3, "call_ms": (_t2 - _t1) * 1e3,
    "path": _path, "preloaded": "hy2fa_lab" in _before, "new_modules": len(_new),
    "heavy": sorted({{m.split(".")[0] for m in _new}} & set({heavy!r})),
}}))
"""
KERNEL_LABELS = {
    "empty": "an empty cell (round trip at the client)",
    "check": "ssh -O check in the kernel (subprocess.run)",
    "ensure": "import hy2fa_lab; ensure('sigma') in the kernel",
}


class Kernel:
    """A kernel the server starts (``POST /api/kernels``), driven over its own ZMQ channels
    (its connection file is in the server's runtime dir) as the server's websocket would."""

    def __init__(self, jupyter: JupyterServer) -> None:
        from jupyter_client.blocking.client import BlockingKernelClient

        self.jupyter = jupyter
        self.id = str(jupyter.request("POST", "/api/kernels", {"name": "python3"})["id"])
        self.client = BlockingKernelClient(
            connection_file=str(jupyter.dir / "runtime" / f"kernel-{self.id}.json")
        )
        try:
            self.client.load_connection_file()
            self.client.start_channels()
            self.client.wait_for_ready(timeout=TIMEOUT * 2)
        except BaseException:
            self.close()
            raise

    def run(self, code: str) -> tuple[float, str]:
        """The cell's round trip in ms (request sent to reply, at the client), and its stdout."""
        out: list[str] = []

        def hook(message: dict[str, Any]) -> None:
            if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
                out.append(message["content"]["text"])
            elif message["msg_type"] == "error":
                out.append("\n".join(message["content"]["traceback"]))

        started = time.perf_counter()
        reply = self.client.execute_interactive(code, output_hook=hook, timeout=TIMEOUT)
        elapsed = (time.perf_counter() - started) * 1000.0
        if reply["content"]["status"] != "ok":
            raise BenchError(f"a cell failed in the kernel: {''.join(out)[-2000:]}")
        return elapsed, "".join(out)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.stop_channels()
        self.jupyter.request("DELETE", f"/api/kernels/{self.id}")


def measure_fresh_kernels(kernels: int) -> dict[str, Any]:
    tmp = make_tmp()
    server: DemoServer | None = None
    jupyter: JupyterServer | None = None
    problems: list[str] = []
    rounds: list[dict[str, Any]] = []
    try:
        server = DemoServer(tmp)
        config = write_ssh_config(tmp, server.port, {"sigma": ""})
        jupyter = JupyterServer(tmp, config)
        path = str(jupyter.request("GET", "/hy2fa/clusters/sigma")["control_path"])
        bare_login(
            ["ssh", "-F", str(config), "-M", "-S", path, "-o", "ControlPersist=120", "-fN",
             "sigma"]
        )  # fmt: skip
        if mux.alive(path) is None:
            raise BenchError(f"no master answers on {path}")
        cells = {
            "empty": EMPTY_CELL,
            "check": CHECK_CELL.format(
                argv=["ssh", "-F", str(config), "-S", path, "-O", "check", "sigma"]
            ),
            "ensure": ENSURE_CELL.format(alias="sigma", heavy=HEAVY),
        }
        for index in range(kernels):
            kernel = Kernel(jupyter)
            try:
                kernel.run(EMPTY_CELL)  # unmeasured: the kernel's own first execution
                result: dict[str, Any] = {}
                for key in rotations(list(cells), index):
                    trip_ms, out = kernel.run(cells[key])
                    result[key] = {"trip_ms": trip_ms, **(json.loads(out) if out else {})}
            finally:
                kernel.close()
            seen = result["ensure"]
            if seen["path"] != path or seen["preloaded"]:
                raise BenchError(f"ensure() in a fresh kernel gave {seen}, not {path}")
            rounds.append(result)
    finally:
        if jupyter is not None:
            problems += jupyter.stop()
        problems += stop_masters(tmp)
        if server is not None:
            problems += server.stop()
        problems += finish(tmp)
    if problems:
        raise BenchError("; ".join(problems))
    return {"kernels": kernels, "rounds": rounds}


def _fresh_row(result: dict[str, Any]) -> dict[str, Any]:
    rounds = result["rounds"]

    def stats(key: str, field: str) -> dict[str, float]:
        return describe([r[key][field] for r in rounds])

    ensure, check = stats("ensure", "ms"), stats("check", "ms")
    ratio = ensure["median"] / check["median"]
    heavy = sorted({m for r in rounds for m in r["ensure"]["heavy"]})
    trips = {key: stats(key, "trip_ms") for key in KERNEL_LABELS}
    return row(
        7,
        "first `import hy2fa_lab; ensure()` in a fresh kernel (started by a server), master up",
        f"ssh -O check in the same kernels: {check['median']:.1f} ms (p90 {check['p90']:.1f})",
        f"{ensure['median']:.1f} ms (p10..p90 {ensure['p10']:.1f}..{ensure['p90']:.1f}) = "
        f"{ratio:.1f}x ssh -O check; {len(rounds)} kernels; "
        + (f"imported {', '.join(heavy)}" if heavy else "no jupyter_server or jsonschema"),
        f"<= {GOAL_FRESH_MS:.0f} ms",
        ensure["median"] <= GOAL_FRESH_MS and not heavy,
        kernels=len(rounds),
        ensure_ms=ensure,
        import_ms=stats("ensure", "import_ms"),
        call_ms=stats("ensure", "call_ms"),
        new_modules=describe([r["ensure"]["new_modules"] for r in rounds]),
        check_ms=check,
        ratio_over_check=ratio,
        cell_round_trips_ms={KERNEL_LABELS[key]: value for key, value in trips.items()},
        heavy_imported=heavy,
    )


def figures(rounds: int = 20) -> list[dict[str, Any]]:
    """Figure 7 for ``python -m bench``: ``rounds * 25`` rounds in-process (50 to 20000),
    and one fresh kernel per 50 of them (5 to 50)."""
    return _figure(max(MIN_ROUNDS, min(MAX_ROUNDS, rounds * 25)))


def _figure(rounds: int) -> list[dict[str, Any]]:
    kernels = max(MIN_KERNELS, min(MAX_KERNELS, rounds // ROUNDS_PER_KERNEL))
    rows = [_fresh_row(measure_fresh_kernels(kernels))]
    result = measure_in_process(rounds)
    stats = {key: describe(values) for key, values in result["samples_us"].items()}
    for top, bottom, what in (
        ("b", "a", "ensure() with a live master it opened, over one mux.alive"),
        ("d", "c", "ensure() with a live master opened elsewhere, over one mux.alive"),
    ):
        ratio = stats[top]["median"] / stats[bottom]["median"]
        rows.append(
            row(
                7,
                what,
                f"mux.alive: {stats[bottom]['median']:.0f} us (p90 {stats[bottom]['p90']:.0f})",
                f"{ratio:.2f}x; ensure() {stats[top]['median']:.0f} us "
                f"(p90 {stats[top]['p90']:.0f})",
                f"<= {GOAL:.0f}x",
                ratio <= GOAL,
                rounds=rounds,
                stats_us={LABELS[k]: stats[k] for k in (bottom, top)},
                first_login_s=result["first_login_s"],
            )
        )
    return rows


def render_stats(rows: list[dict[str, Any]]) -> str:
    lines = []
    for result in rows:
        if "stats_us" in result:
            lines += [
                f"{label:<50} n {s['n']:>6}  median {s['median']:8.1f} us  "
                f"p10 {s['p10']:8.1f}  p90 {s['p90']:8.1f}"
                for label, s in result["stats_us"].items()
            ]
            continue
        lines.append(f"fresh kernels: {result['kernels']}; in the kernel, ms:")
        for label, key in (
            ("import hy2fa_lab; ensure('sigma')", "ensure_ms"),
            ("  of which import hy2fa_lab.kernel", "import_ms"),
            ("  of which the ensure() call", "call_ms"),
            ("ssh -O check (subprocess.run)", "check_ms"),
        ):
            s = result[key]
            lines.append(
                f"{label:<50} median {s['median']:8.1f}  p10 {s['p10']:8.1f}  p90 {s['p90']:8.1f}"
            )
        lines.append(f"modules ensure() imported: median {result['new_modules']['median']:.0f}")
        lines.append("cell round trips at the client, ms:")
        for label, s in result["cell_round_trips_ms"].items():
            lines.append(
                f"{label:<50} median {s['median']:8.1f}  p10 {s['p10']:8.1f}  p90 {s['p90']:8.1f}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return run_module(
        "ensure_check", __doc__, argv, _figure, (MIN_ROUNDS, MAX_ROUNDS, DEFAULT_ROUNDS),
        render_stats,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
