"""``python -m bench``: every figure, against local test servers on 127.0.0.1, in one table.

Each module in ``MODULES`` exposes ``figures(rounds) -> list[dict]``: one dict per row, with
``figure`` (int), ``what``, ``baseline``, ``value``, ``goal`` (text), ``met`` (bool) and the raw
numbers behind them. Every module is run; none is skipped: one that cannot be imported or that
fails is an error row, and the exit status is 1. A missed goal is a result, not an error
(exit 0). At the end, nothing a bench started may be left: every temp dir made during the run
(``tempfile.mkdtemp`` is watched while the modules run) must be gone, and no process may name
one in its command line (a master, an ssh, a server).

``--rounds N`` (default 20) is passed to every module, which scales it to its own cost (see
each module's ``figures``). ``--json FILE`` also writes every row with its raw numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._harness import machine, render_table

MODULES = (
    "bench.login",  # figure 1
    "bench.mux_check",  # figure 2 (figure 3 was dropped: it measured ssh, not hy2fa-lab)
    "bench.server_load",  # figures 4, 5, 6
    "bench.ensure_check",  # figure 7
    "bench.cli_start",  # figure 8
    "bench.askpass",  # figure 9
)
KEYS = ("figure", "what", "baseline", "value", "goal", "met")
MIN_ROUNDS, MAX_ROUNDS, DEFAULT_ROUNDS = 3, 1000, 20


def _checked(module: str, rows: object) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or not rows:
        raise TypeError(f"{module}.figures() returned {type(rows).__name__}, not a list of rows")
    for item in rows:
        missing = [key for key in KEYS if not isinstance(item, dict) or key not in item]
        if missing:
            raise TypeError(f"{module}.figures() gave a row without {', '.join(missing)}")
        if not isinstance(item["figure"], int) or not isinstance(item["met"], bool):
            raise TypeError(f"{module}.figures(): 'figure' must be an int and 'met' a bool")
    return rows


def _error_row(module: str, error: str) -> dict[str, Any]:
    return {
        "figure": 0,
        "what": f"{module}: ERROR",
        "baseline": "",
        "value": error.splitlines()[-1][:160] if error else "",
        "goal": "",
        "met": False,
        "module": module,
        "error": error,
    }


@contextlib.contextmanager
def watched_temp_dirs() -> Iterator[list[str]]:
    """Every dir ``tempfile.mkdtemp`` (and so ``TemporaryDirectory``) makes meanwhile."""
    made: list[str] = []
    original = tempfile.mkdtemp

    def mkdtemp(*args: Any, **kwargs: Any) -> Any:
        path = original(*args, **kwargs)
        made.append(os.fsdecode(path))
        return path

    tempfile.mkdtemp = mkdtemp
    try:
        yield made
    finally:
        tempfile.mkdtemp = original


def leftovers(dirs: Sequence[str]) -> list[str]:
    """Temp dirs of this run still there, and processes whose argv names one of them."""
    from ._harness import processes_mentioning

    problems = [f"temp dir left: {path}" for path in dirs if os.path.exists(path)]
    for path in dirs:
        found = processes_mentioning(path)
        if found:
            problems.append(f"processes left naming {path}: {found}")
    return problems


def run(rounds: int) -> tuple[list[dict[str, Any]], list[str], dict[str, float]]:
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    seconds: dict[str, float] = {}
    with watched_temp_dirs() as made:
        for module in MODULES:
            started = time.perf_counter()
            print(f"bench: {module} ...", file=sys.stderr, flush=True)
            try:
                figures = importlib.import_module(module).figures
                rows += _checked(module, figures(rounds))
            except Exception as exc:  # reported as an error row, never skipped
                errors.append(f"{module}: {traceback.format_exc()}")
                rows.append(_error_row(module, f"{type(exc).__name__}: {exc}"))
            seconds[module] = time.perf_counter() - started
    errors += leftovers(made)
    rows.sort(key=lambda r: r["figure"])
    return rows, errors, seconds


def load_average() -> str:
    """The 1-minute load average: how busy the machine was besides the bench."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # not every system keeps one
        return "?"


def header(info: dict[str, Any], rounds: int, total_s: float) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{when}; {info['cpus']} CPUs ({info['cpu_model']}), {info['system']}, "
        f"Python {info['python']}, {info['ssh']}; --rounds {rounds}; whole run {total_s:.0f} s; "
        f"load average {info['load_before']} before, {load_average()} after"
    )


def _rounds(text: str) -> int:
    value = int(text)
    if not MIN_ROUNDS <= value <= MAX_ROUNDS:
        raise argparse.ArgumentTypeError(f"rounds must be between {MIN_ROUNDS} and {MAX_ROUNDS}")
    return value


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=_rounds, default=DEFAULT_ROUNDS, metavar="N")
    parser.add_argument("--json", metavar="FILE", help="also write every row as JSON to FILE")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)  # every module cleans up in its finally
    info = {**machine(), "load_before": load_average()}
    started = time.perf_counter()
    rows, errors, seconds = run(args.rounds)
    total = time.perf_counter() - started
    print(header(info, args.rounds, total))
    print()
    print(render_table(rows))
    print()
    print("seconds per module: " + ", ".join(f"{m} {s:.0f}" for m, s in seconds.items()))
    if args.json:
        data = {"machine": info, "rounds": args.rounds, "seconds": seconds, "rows": rows}
        Path(args.json).write_text(json.dumps(data, indent=2, default=str))
    for error in errors:
        print(f"\nbench: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
