"""Figure 7: ``hy2fa_lab.ensure()`` with a live master, against one ``mux.alive`` on the same
socket, measured side by side in this process.

``ensure()`` is what code in a kernel calls before every use of ssh, so when the master is up
it should cost little more than asking the socket once. The kernel side runs the engine here
(no Jupyter server: its ``LocalBackend`` with a Manager on this run's ssh config). Two
masters run on the demo server (Sigma2 script, a child process):

- ``sigma``: opened by ``ensure("sigma")`` itself (the person's answers typed into the
  kernel's ``getpass``, here answered by the bench), so ``ensure()`` knows its path;
- ``other``: opened elsewhere (a plain ``ssh -M``, as the sidebar or ``hy2fa connect`` would),
  at the ControlPath its ssh config names.

Interleaved round by round (the order rotates): (a) ``mux.alive(path_sigma)``,
(b) ``ensure("sigma")``, and on every 5th round (c) ``mux.alive(path_other)``,
(d) ``ensure("other")``. Goal: b/a and d/c at most 2. Run with
``python -m bench.ensure_check [--rounds N] [--json]``; ``figures(rounds)`` is what
``python -m bench`` calls.
"""

from __future__ import annotations

import contextlib
import functools
import io
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

GOAL = 2.0
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


def measure(rounds: int) -> dict[str, Any]:
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


def figures(rounds: int = 20) -> list[dict[str, Any]]:
    """Figure 7 for ``python -m bench``: ``rounds * 25`` rounds (50 to 20000)."""
    return _figure(max(MIN_ROUNDS, min(MAX_ROUNDS, rounds * 25)))


def _figure(rounds: int) -> list[dict[str, Any]]:
    result = measure(rounds)
    stats = {key: describe(values) for key, values in result["samples_us"].items()}
    rows = []
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
    return "\n".join(
        f"{label:<42} n {s['n']:>6}  median {s['median']:8.1f} us  "
        f"p10 {s['p10']:8.1f}  p90 {s['p90']:8.1f}"
        for result in rows
        for label, s in result["stats_us"].items()
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_module(
        "ensure_check", __doc__, argv, _figure, (MIN_ROUNDS, MAX_ROUNDS, DEFAULT_ROUNDS),
        render_stats,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
