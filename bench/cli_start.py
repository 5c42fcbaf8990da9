"""Figure 8: ``hy2fa status <alias>`` as a whole process, against the interpreter's own
start-up and ``ssh -O check``, measured side by side in one run.

A live master runs on the demo server (Sigma2 script, a child process); the ssh config
(``-F``) names its ControlPath. Then, interleaved round by round (the order rotates), each a
whole process started and waited for:

(a) ``python -c pass``: the interpreter's own start-up, the floor of any Python command;
(b) ``ssh -F config -O check alias``: OpenSSH's own answer to "is the master alive?";
(c) ``hy2fa status alias -F config``: start, read the Jupyter config, resolve the alias
    (``ssh -G``, one process), ask the socket (``mux.status``), print, exit;
(d) ``ssh -F config -G alias``: the one process (c) must spawn to resolve the alias.

Goal: (c) at most twice (a). (a) + (d) is what (c) costs with no Python work at all. A
``python -X importtime`` run of (c) says where the rest goes (the largest top-level imports).
Every process gets the same environment, with an empty Jupyter config dir of its own.
Run with ``python -m bench.cli_start [--rounds N] [--json]``; ``figures(rounds)`` is what
``python -m bench`` calls.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hy2fa_lab.core import mux

from ._harness import (
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
    timed_ms,
    write_ssh_config,
)

ALIAS = "sigma"
GOAL = 2.0
WARMUP = 3
MIN_ROUNDS, MAX_ROUNDS, DEFAULT_ROUNDS = 5, 1000, 40
LABELS = {
    "a": "python -c pass",
    "b": "ssh -O check",
    "c": "hy2fa status alias",
    "d": "ssh -G alias",
}


def _hy2fa() -> list[str]:
    """The console script a person runs; ``python -m hy2fa_lab.cli`` if it is not installed."""
    script = Path(sys.executable).parent / "hy2fa"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hy2fa_lab.cli"]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "HY2FA_"))}
    jupyter = tmp / "jupyter-config"
    jupyter.mkdir(exist_ok=True)
    env["JUPYTER_CONFIG_DIR"] = str(jupyter)  # no user settings; the environment's still apply
    return env


def _run(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr[-500:]}")
    return result


def import_profile(argv: Sequence[str], env: dict[str, str], top: int = 12) -> dict[str, Any]:
    """One ``python -X importtime`` run of ``argv`` (a Python script): the largest top-level
    imports (cumulative ms, including what they import) and their sum."""
    script = argv[0] if argv[0].endswith("hy2fa") else None
    command = [sys.executable, "-X", "importtime", script, *argv[1:]] if script else list(argv)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    rows: list[tuple[float, str]] = []
    for line in result.stderr.splitlines():
        parts = line.split("|")  # "import time: <self us> | <cumulative us> | <indented name>"
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        if len(name) - len(name.lstrip()) != 1:
            continue  # only the top level: nested imports are inside their parent's time
        rows.append((int(parts[1]) / 1000, name.strip()))
    rows.sort(reverse=True)
    return {
        "top_level_ms": {name: round(ms, 1) for ms, name in rows[:top]},
        "all_imports_ms": round(sum(ms for ms, _ in rows), 1),
        "modules": sum(1 for line in result.stderr.splitlines() if line.count("|") == 2) - 1,
        "note": "python -X importtime inflates every import; compare the sizes, not the sum",
    }


_STAGES = """
import io, json, sys, time
marks = [("start", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
import argparse
mark("import argparse (and re)")
import hy2fa_lab.cli as cli
mark("import hy2fa_lab.cli (package, validate, errors)")
import jupyter_core.paths
mark("import jupyter_core.paths")
import traitlets.config
mark("import traitlets.config")
import hy2fa_lab.core.profiles, hy2fa_lab.core.mux, hy2fa_lab.config
mark("import profiles, sshconfig, controlpath, mux (dataclasses, socket, subprocess, ...)")
out = io.StringIO()
status = cli.main(sys.argv[1:], out=out)
mark("main(): read the Jupyter config, ssh -G, mux.status, print")
assert status == 0, out.getvalue()
print(json.dumps([(name, (t - marks[i][1]) * 1000) for i, (name, t) in enumerate(marks[1:])]))
"""


OUTSIDE = "outside the stages: interpreter start-up, and shutdown with every module loaded"
WHOLE = "the whole staged process"


def stage_profile(args: Sequence[str], env: dict[str, str], runs: int = 9) -> dict[str, float]:
    """Where ``hy2fa status`` spends its time: the same work in stages in a fresh interpreter,
    each stage timed inside it, the whole process timed from here (median ms of ``runs``)."""
    times: dict[str, list[float]] = {}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _STAGES, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        whole = (time.perf_counter() - started) * 1000
        if done.returncode != 0:
            raise BenchError(f"the stage profile failed: {done.stderr[-500:]}")
        stages = json.loads(done.stdout)
        for name, ms in stages:
            times.setdefault(name, []).append(ms)
        times.setdefault(OUTSIDE, []).append(whole - sum(ms for _, ms in stages))
        times.setdefault(WHOLE, []).append(whole)
    return {name: describe(values)["median"] for name, values in times.items()}


def measure(rounds: int) -> dict[str, Any]:
    tmp = make_tmp()
    server: DemoServer | None = None
    problems: list[str] = []
    samples: dict[str, list[float]] = {key: [] for key in LABELS}
    try:
        server = DemoServer(tmp)
        config = write_ssh_config(tmp, server.port, {ALIAS: f"  ControlPath {tmp}/cm-%C\n"})
        env = _env(tmp)
        bare_login(["ssh", "-F", str(config), "-M", "-o", "ControlPersist=120", "-fN", ALIAS])
        commands = {
            "a": [sys.executable, "-c", "pass"],
            "b": ["ssh", "-F", str(config), "-O", "check", ALIAS],
            "c": [*_hy2fa(), "status", ALIAS, "-F", str(config)],
            "d": ["ssh", "-F", str(config), "-G", ALIAS],
        }
        shown = _run(commands["c"], env).stdout
        if not shown.startswith(f"{ALIAS}: connected (master pid "):
            raise BenchError(f"hy2fa status does not see the master: {shown!r}")
        path = shown.rsplit(" ", 1)[-1].strip()
        if mux.alive(path) is None:
            raise BenchError(f"no master answers on {path}")
        for index in range(WARMUP + rounds):
            for key in rotations(list(commands), index):
                elapsed = timed_ms(functools.partial(_run, commands[key], env))
                if index >= WARMUP:
                    samples[key].append(elapsed)
        profile = import_profile(commands["c"], env)
        stages = stage_profile(commands["c"][-4:], env)
    finally:
        problems += stop_masters(tmp)
        if server is not None:
            problems += server.stop()
        problems += finish(tmp)
    if problems:
        raise BenchError("; ".join(problems))
    return {"rounds": rounds, "samples": samples, "import_profile": profile, "stages": stages}


def figures(rounds: int = DEFAULT_ROUNDS // 2) -> list[dict[str, Any]]:
    """Figure 8 for ``python -m bench``: ``rounds * 2`` interleaved rounds (5 to 1000)."""
    return _figure(max(MIN_ROUNDS, min(MAX_ROUNDS, rounds * 2)))


def _figure(rounds: int) -> list[dict[str, Any]]:
    result = measure(rounds)
    stats = {key: describe(values) for key, values in result["samples"].items()}
    a, b, c, d = (stats[key]["median"] for key in "abcd")
    ratio = c / a
    per_round = [x / y for x, y in zip(result["samples"]["c"], result["samples"]["a"], strict=True)]
    spread = describe(per_round)
    return [
        row(
            8,
            "`hy2fa status <alias>` (whole process) over `python -c pass`",
            f"python -c pass: {a:.1f} ms; ssh -O check: {b:.1f} ms",
            f"{ratio:.2f}x (p10..p90 {spread['p10']:.2f}..{spread['p90']:.2f}); "
            f"{c:.1f} ms, {c / b:.1f}x ssh -O check",
            f"<= {GOAL:.0f}x",
            ratio <= GOAL,
            rounds=rounds,
            medians_ms={LABELS[k]: v["median"] for k, v in stats.items()},
            stats_ms=stats,
            floor_with_ssh_g_ms=a + d,
            floor_ratio=(a + d) / a,
            python_work_ms=c - a - d,
            import_profile=result["import_profile"],
            stages_ms=result["stages"],
        )
    ]


def render_details(rows: Sequence[dict[str, Any]]) -> str:
    result = rows[0]
    lines = [f"{'':<24} {'n':>5} {'median ms':>10} {'p10':>8} {'p90':>8}"]
    for key, label in LABELS.items():
        s = result["stats_ms"][key]
        numbers = f"{s['median']:>10.2f} {s['p10']:>8.2f} {s['p90']:>8.2f}"
        lines.append(f"({key}) {label:<20} {s['n']:>5} {numbers}")
    lines += [
        "",
        f"(a)+(d), the floor with the one ssh -G: {result['floor_with_ssh_g_ms']:.1f} ms "
        f"= {result['floor_ratio']:.2f}x (a); (c)-(a)-(d), Python's own work: "
        f"{result['python_work_ms']:.1f} ms",
        "(c)'s work in stages, in fresh interpreters (median ms of 9 runs, not interleaved):",
    ]
    for name, ms in result["stages_ms"].items():
        lines.append(f"  {ms:7.1f}  {name}")
    lines.append("largest top-level imports of (c), python -X importtime (cumulative ms):")
    for name, ms in result["import_profile"]["top_level_ms"].items():
        lines.append(f"  {ms:7.1f}  {name}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return run_module(
        "cli_start",
        __doc__,
        argv,
        _figure,
        (MIN_ROUNDS, MAX_ROUNDS, DEFAULT_ROUNDS),
        render_details,
    )


if __name__ == "__main__":
    sys.exit(main())
