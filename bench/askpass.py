"""What one question through the askpass bridge costs, as a whole process, against the
Python interpreter's own start-up, measured side by side in one run.

ssh runs ``hy2fa-askpass`` once per question, so its start-up is paid at every host-key,
code and password question of every ssh a kernel runs. Interleaved round by round:

(a) ``python -c pass``: the interpreter's own start-up (the floor for a Python helper);
(b) ``hy2fa-askpass "(bench@host) Password: "`` with no terminal: start, connect to an
    :class:`AskBridge` in this process, which answers at once, print the answer, exit.

Prints median and p90 in ms and the ratio b/a of the medians (``--json`` for machine-readable
output). Run with ``python -m bench.askpass [--rounds N]``; ``figures(rounds)`` gives figure 9
to ``python -m bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from hy2fa_lab.core.asks import Ask, AskBridge

ANSWER = "bench-answer"  # not a secret: the bench's own fixed answer
QUESTION = "(bench@host) Password: "
HELPER = str(Path(sys.executable).parent / "hy2fa-askpass")
WARMUP = 3


class Answering:
    """An AskBridge on its own event loop that answers every question at once."""

    def __init__(self, directory: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.bridge = AskBridge(os.path.join(directory, "ask"), timeout=10, limit=4)
        self.bridge.subscribe(self._asked)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def _asked(self, ask: Ask, action: str) -> None:
        if action == "asked":
            self.loop.call_soon(self.bridge.answer, ask.id, ANSWER)

    def __enter__(self) -> Answering:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.bridge.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.bridge.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _timed(argv: Sequence[str], env: dict[str, str], expect: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=20, start_new_session=True
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or result.stdout != expect:
        raise RuntimeError(f"{argv[0]} failed: {result.returncode} {result.stderr.strip()}")
    return elapsed * 1000


def measure(rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"a": [], "b": []}
    with (
        tempfile.TemporaryDirectory(prefix="hy2fa-bench-", dir="/tmp") as directory,
        Answering(directory) as answering,
    ):
        env = {**os.environ, "HY2FA_ASKPASS_SOCKET": answering.bridge.path}
        plain = [sys.executable, "-c", "pass"]
        helper = [HELPER, QUESTION]
        for index in range(rounds + WARMUP):
            a = _timed(plain, env, "")
            b = _timed(helper, env, ANSWER + "\n")
            if index >= WARMUP:
                times["a"].append(a)
                times["b"].append(b)
    return times


def summarize(times: dict[str, list[float]]) -> dict[str, object]:
    def p90(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]

    rows = {
        key: {"median_ms": statistics.median(values), "p90_ms": p90(values), "n": len(values)}
        for key, values in times.items()
    }
    ratio = rows["b"]["median_ms"] / rows["a"]["median_ms"]
    return {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "operations": {"a": "python -c pass", "b": "hy2fa-askpass round trip"},
        "results": rows,
        "b/a": ratio,
    }


GOAL = 2.0  # at most about twice the interpreter's own start-up


def figures(rounds: int = 20) -> list[dict[str, object]]:
    """Figure 9 for ``python -m bench``: ``rounds * 2`` interleaved rounds (5 to 1000)."""
    from ._harness import row

    result = summarize(measure(max(5, min(1000, rounds * 2))))
    rows: dict[str, dict[str, float]] = result["results"]  # type: ignore[assignment]
    a, b = rows["a"], rows["b"]
    ratio: float = result["b/a"]  # type: ignore[assignment]
    return [
        row(
            9,
            "one question through hy2fa-askpass (whole process) over python -c pass",
            f"python -c pass: {a['median_ms']:.1f} ms (p90 {a['p90_ms']:.1f})",
            f"{ratio:.2f}x; askpass {b['median_ms']:.1f} ms (p90 {b['p90_ms']:.1f})",
            f"<= {GOAL:.0f}x",
            ratio <= GOAL,
            **result,
        )
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.askpass")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 5 <= args.rounds <= 1000:
        parser.error("--rounds must be 5 to 1000")
    result = summarize(measure(args.rounds))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"machine: {result['machine']}")
    for key, name in result["operations"].items():  # type: ignore[attr-defined]
        row = result["results"][key]  # type: ignore[index]
        print(f"({key}) {name:<28} median {row['median_ms']:7.2f} ms  p90 {row['p90_ms']:7.2f} ms")
    print(f"b/a = {result['b/a']:.2f} (goal: at most about 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
