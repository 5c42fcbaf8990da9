"""What asking the control socket directly saves, measured side by side against a real master.

Starts the demo asyncssh server on loopback, opens a real OpenSSH ControlMaster on it
(non-interactively, answering the keyboard-interactive prompt under pexpect), then times, in one
run and interleaved round by round so machine noise hits every operation alike:

(a) ``hy2fa_lab.core.mux.alive(path)``: our mux client on the socket, no process spawned;
(b) ``ssh -S path -O check dest``: what people used before;
(c) ``ssh -S path -o ControlMaster=no dest true``: a command over the socket;
(d) a fresh login without the socket (full key exchange and keyboard-interactive answer), fewer
    rounds since each one is a whole authentication: the cost the socket avoids.

Prints median and p90 in ms per operation and the ratios b/a, c/a and d/c of the medians
(``--json`` for machine-readable output). Run with ``python -m bench.mux_check [--rounds N]``.
``figures(rounds)`` gives figures 2 (b/a) and 3 (d/c) to ``python -m bench``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pexpect

from hy2fa_lab.core import mux
from hy2fa_lab.demo.sshserver import PromptScript, PromptStep, ServerThread

from . import _harness

USER = "bench"
CODE = "123456"  # the demo server's fixed answer: nothing secret, and never put in argv
PROMPT = "Verification code: "
TIMEOUT = 20.0  # no ssh child waits longer than this for anything
MIN_ROUNDS, MAX_ROUNDS, DEFAULT_ROUNDS = 5, 5000, 200
WARMUP = 3  # unmeasured rounds first: page cache, the server's first sessions

OPERATIONS: dict[str, str] = {
    "a": "mux.alive(path)",
    "b": "ssh -O check",
    "c": "ssh -o ControlMaster=no true",
    "d": "fresh login + true (no socket)",
}
RATIOS = (("b", "a"), ("c", "a"), ("d", "c"))


class BenchError(RuntimeError):
    """Something in the set-up did not behave; the numbers would mean nothing."""


@dataclass
class Lab:
    """The temp dir, the server and the master, with the ssh argv pieces that reach them."""

    tmp: Path
    server: ServerThread
    sock: Path = field(init=False)
    master_pid: int | None = None

    def __post_init__(self) -> None:
        self.sock = self.tmp / "cm"

    def options(self) -> list[str]:
        """Options every ssh here shares: no user config, only our known_hosts, strict checking."""
        return [
            "-F", "/dev/null",
            "-o", f"UserKnownHostsFile={self.tmp / 'known_hosts'}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "PubkeyAuthentication=no",
            "-o", "PreferredAuthentications=keyboard-interactive",
            "-o", "ConnectTimeout=10",
        ]  # fmt: skip

    def dest(self) -> list[str]:
        return ["-p", str(self.server.port), "-l", USER, "--", "127.0.0.1"]

    def via_socket(self, *extra: str) -> list[str]:
        """An ssh argv using the master; BatchMode so a broken socket fails instead of prompting."""
        return ["ssh", *self.options(), "-o", "BatchMode=yes", "-S", str(self.sock), *extra]


def _env() -> dict[str, str]:
    """ssh's environment: C locale (stable prompt texts), no askpass or X11 side channels."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_ASKPASS")}
    env.pop("DISPLAY", None)
    env.update({"LC_ALL": "C", "LANG": "C", "TERM": "dumb"})
    return env


def _login(argv: Sequence[str]) -> None:
    """Run ssh under a pty, answer the one prompt, wait for it to exit; raise unless status 0."""
    child = pexpect.spawn(
        argv[0],
        list(argv[1:]),
        env=_env(),
        encoding="utf-8",
        codec_errors="replace",
        timeout=TIMEOUT,
        echo=False,
        ignore_sighup=True,  # `ssh -f`: the forked master must outlive the pty
    )
    child.delaybeforesend = None  # pexpect sleeps 50 ms before each send by default
    child.ptyproc.delayafterclose = 0
    try:
        if child.expect_exact([PROMPT, pexpect.EOF]) != 0:
            raise BenchError(f"ssh exited before the prompt: {child.before!r}")
        child.sendline(CODE)
        if child.expect_exact([pexpect.EOF, PROMPT]) != 0:
            raise BenchError("the server refused the code (ssh asked again)")
        output = child.before
        # EOF on the pty can come just before ssh exits; close() would then signal it and sleep
        # 0.1 s (ptyprocess' terminate), which both skews the timing and spoils the exit status.
        deadline = time.monotonic() + TIMEOUT
        while child.isalive() and time.monotonic() < deadline:
            time.sleep(0.0005)
        child.close()
        if child.exitstatus != 0:
            raise BenchError(f"ssh login failed (status {child.exitstatus}): {output!r}")
    finally:
        if not child.closed:
            child.close(force=True)


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, env=_env())
    if result.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed: {result.stderr.decode(errors='replace')}")
    return result


def open_master(lab: Lab) -> int:
    """Start ``ssh -M -fN`` as the product does; return the pid the socket reports."""
    argv = [
        "ssh", *lab.options(),
        "-M", "-S", str(lab.sock), "-o", "ControlPersist=60", "-fN",
        *lab.dest(),
    ]  # fmt: skip
    _login(argv)
    pid = mux.alive(str(lab.sock))
    if pid is None:
        raise BenchError("the master did not answer on its control socket")
    lab.master_pid = pid
    return pid


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000.0


def measure(lab: Lab, rounds: int, fresh: int) -> dict[str, list[float]]:
    """Interleave a, b, c each round (rotating their order), and d on ``fresh`` spread rounds."""
    path = str(lab.sock)
    expected_pid = lab.master_pid

    def op_a() -> None:
        if mux.alive(path) != expected_pid:
            raise BenchError("mux.alive lost the master")

    def op_b() -> None:
        _run(lab.via_socket("-O", "check", *lab.dest()))

    def op_c() -> None:
        _run(lab.via_socket("-o", "ControlMaster=no", *lab.dest(), "true"))

    fresh_argv = [
        "ssh", *lab.options(), "-o", "ControlMaster=no", "-o", "ControlPath=none",
        *lab.dest(), "true",
    ]  # fmt: skip

    def op_d() -> None:
        _login(fresh_argv)

    ops: dict[str, Callable[[], None]] = {"a": op_a, "b": op_b, "c": op_c}

    # (b) must really see this master: same pid as our client reports
    check = _run(lab.via_socket("-O", "check", *lab.dest())).stderr.decode(errors="replace")
    if f"pid={expected_pid}" not in check:
        raise BenchError(f"ssh -O check disagrees with mux.alive: {check!r}")

    for _ in range(WARMUP):
        for op in ops.values():
            op()
    op_d()

    fresh_rounds = {rounds * k // fresh for k in range(fresh)}
    samples: dict[str, list[float]] = {key: [] for key in OPERATIONS}
    order = list(ops)
    for index in range(rounds):
        shift = index % len(order)
        for key in order[shift:] + order[:shift]:
            samples[key].append(_timed(ops[key]))
        if index in fresh_rounds:
            samples["d"].append(_timed(op_d))
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: an observed value, well defined even for 5 samples."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


def summarize(
    samples: dict[str, list[float]], rounds: int, fresh: int, setup_ms: float
) -> dict[str, object]:
    ops = {
        key: {
            "label": OPERATIONS[key],
            "n": len(values),
            "median_ms": statistics.median(values),
            "p90_ms": percentile(values, 90),
        }
        for key, values in samples.items()
    }
    ratios = {
        f"{top}/{bottom}": ops[top]["median_ms"] / ops[bottom]["median_ms"]  # type: ignore[operator]
        for top, bottom in RATIOS
    }
    version = subprocess.run(["ssh", "-V"], capture_output=True, text=True, timeout=TIMEOUT)
    return {
        "ssh_version": (version.stderr or version.stdout).strip(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "rounds": rounds,
        "fresh_rounds": fresh,
        "master_setup_ms": setup_ms,
        "operations": ops,
        "ratios_of_medians": ratios,
    }


def render(result: dict[str, object]) -> str:
    ops: dict[str, dict[str, object]] = result["operations"]  # type: ignore[assignment]
    lines = [
        f"{result['ssh_version']}, Python {result['python']}, {result['cpus']} CPUs, "
        f"{result['rounds']} rounds (fresh logins: {result['fresh_rounds']}), loopback",
        "",
        f"{'operation':<38} {'n':>5} {'median ms':>10} {'p90 ms':>10}",
    ]
    for key, row in ops.items():
        lines.append(
            f"({key}) {row['label']:<34} {row['n']:>5} "
            f"{row['median_ms']:>10.3f} {row['p90_ms']:>10.3f}"
        )
    ratios: dict[str, float] = result["ratios_of_medians"]  # type: ignore[assignment]
    lines.append("")
    lines.append(f"master set-up (ssh -M -fN, one login): {result['master_setup_ms']:.1f} ms")
    lines.append("ratios of medians: " + ", ".join(f"{k} = {v:.1f}x" for k, v in ratios.items()))
    return "\n".join(lines)


def _ssh_children(needle: str) -> dict[int, list[str]]:
    """Live (non-zombie) ssh processes whose argv mentions ``needle`` (our temp dir)."""
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except (OSError, IndexError):
            continue
        argv = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
        if state == "Z" or not argv or not os.path.basename(argv[0]).startswith("ssh"):
            continue
        if any(needle in arg for arg in argv):
            found[int(entry.name)] = argv
    return found


def _wait_gone(needle: str, seconds: float) -> dict[int, list[str]]:
    deadline = time.monotonic() + seconds
    while (left := _ssh_children(needle)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def teardown(lab: Lab) -> list[str]:
    """Stop the master, the server, remove the temp dir; return problems (leftover ssh, …)."""
    problems: list[str] = []
    needle = str(lab.tmp)
    with contextlib.suppress(OSError, mux.MuxError):
        mux.stop(str(lab.sock))
    left = _wait_gone(needle, 5.0)
    if left:
        exit_argv = lab.via_socket("-O", "exit", *lab.dest())
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(exit_argv, capture_output=True, timeout=5)
        left = _wait_gone(needle, 3.0)
    if left:  # only processes this run started: their argv names our own temp dir
        problems.append(f"ssh processes left after stopping the master: {left}")
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        if _wait_gone(needle, 2.0):
            problems.append("and they survived SIGTERM")
    try:
        lab.server.stop()
    except TimeoutError as exc:
        problems.append(f"server: {exc}")
    shutil.rmtree(lab.tmp, ignore_errors=True)
    return problems


def _rounds(text: str) -> int:
    value = int(text)
    if not MIN_ROUNDS <= value <= MAX_ROUNDS:
        raise argparse.ArgumentTypeError(f"rounds must be between {MIN_ROUNDS} and {MAX_ROUNDS}")
    return value


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run(rounds: int, fresh: int) -> tuple[dict[str, object] | None, list[str]]:
    """Set up, measure, clean up: the result (None if the benchmark failed) and the problems."""
    tmp = Path(tempfile.mkdtemp(prefix="hy2b-"))  # short: sun_path holds 104-108 bytes
    script = PromptScript(steps=[PromptStep(PROMPT, expected=CODE)])
    try:
        server = ServerThread(script).start()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    lab = Lab(tmp, server)
    problems: list[str] = []
    result: dict[str, object] | None = None
    try:
        (tmp / "known_hosts").write_text(server.known_hosts_line())
        setup_ms = _timed(lambda: open_master(lab))
        samples = measure(lab, rounds, fresh)
        result = summarize(samples, rounds, fresh, setup_ms)
    except (BenchError, pexpect.ExceptionPexpect, subprocess.TimeoutExpired) as exc:
        problems.append(f"benchmark failed: {exc}")
    finally:
        problems.extend(teardown(lab))
    return result, problems


# Asking the socket without a process should beat spawning ``ssh -O check`` by an order of
# magnitude, or a mux client of our own is not worth having.
GOAL_FIG2 = 10.0
GOAL_FIG3 = 10.0  # a command through the socket vs a whole login answered by a script


def figures(rounds: int = 20) -> list[dict[str, object]]:
    """Figures 2 (a vs b) and 3 (c vs d) for ``python -m bench``: ``rounds * 10`` rounds of
    (a), (b), (c), between 50 and 2000, and ``rounds`` fresh logins (d), at least 5."""
    if shutil.which("ssh") is None:
        raise _harness.BenchError("the OpenSSH client (ssh) is not installed")
    cheap = max(50, min(2000, rounds * 10))
    fresh = max(5, min(cheap, rounds))
    result, problems = run(cheap, fresh)
    if result is None or problems:
        raise _harness.BenchError("; ".join(problems))
    ops: dict[str, dict[str, float]] = result["operations"]  # type: ignore[assignment]
    ratios: dict[str, float] = result["ratios_of_medians"]  # type: ignore[assignment]

    def ms(key: str) -> str:
        return f"{ops[key]['median_ms']:.2f} ms (p90 {ops[key]['p90_ms']:.2f})"

    fig2, fig3 = ratios["b/a"], ratios["d/c"]
    return [
        _harness.row(
            2,
            "is the master alive? ssh -O check (process) over mux.alive (socket)",
            f"(a) mux.alive: {ms('a')}",
            f"{fig2:.1f}x; (b) ssh -O check {ms('b')}",
            f">= {GOAL_FIG2:.0f}x",
            fig2 >= GOAL_FIG2,
            **result,
        ),
        _harness.row(
            3,
            "fresh login answered by a script over a command through the socket",
            f"(c) ssh through the socket: {ms('c')}",
            f"{fig3:.1f}x; (d) fresh login {ms('d')}",
            f">= {GOAL_FIG3:.0f}x",
            fig3 >= GOAL_FIG3,
            **result,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mux_check", description=__doc__)
    parser.add_argument("--rounds", type=_rounds, default=DEFAULT_ROUNDS, metavar="N")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if shutil.which("ssh") is None:
        print("the OpenSSH client (ssh) is not installed", file=sys.stderr)
        return 2
    fresh = max(5, args.rounds // 20)
    signal.signal(signal.SIGTERM, _exit_on_signal)  # run()'s clean-up runs on SIGTERM too
    result, problems = run(args.rounds, fresh)
    if result is not None:
        print(json.dumps(result, indent=2) if args.json else render(result))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
