"""What asking the control socket directly saves, measured side by side against a real master.

Starts the demo asyncssh server on loopback, opens a real OpenSSH ControlMaster on it
(non-interactively, answering the keyboard-interactive prompt under pexpect), then times, in one
run and interleaved round by round so machine noise hits every operation alike:

(a) ``hy2fa_lab.core.mux.alive(path)``: our mux client on the socket, no process spawned;
(b) ``ssh -S path -O check dest``: what people used before;
(f) the floor of any mux client in Python: connect, HELLO, ALIVE_CHECK on a bare socket, with
    none of (a)'s checks (the socket's owner and directory, the request id, the deadline): a
    profile of (a), not a figure.

Prints median and p90 in ms per operation and the ratio b/a of the medians (figure 2, goal at
least 50x), with b/f and a/f (``--json`` for machine-readable output). Run with
``python -m bench.mux_check [--rounds N]``. ``figures(rounds)`` gives figure 2 to
``python -m bench``.
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
import socket
import statistics
import struct
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
    "f": "bare HELLO + ALIVE_CHECK, no checks",
}
RATIOS = (("b", "a"), ("b", "f"), ("a", "f"))


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


def bare_alive(path: str) -> int:
    """The least any mux client does (ssh's PROTOCOL.mux): HELLO both ways, then ALIVE_CHECK
    and its reply, on a blocking socket, trusting every length and id. Only a profile of
    ``mux.alive``: it checks nothing, so the product never uses it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(path)
        sock.sendall(struct.pack(">III", 8, mux.MUX_MSG_HELLO, mux.PROTOCOL_VERSION))
        hello = sock.recv(64)
        sock.sendall(struct.pack(">III", 8, mux.MUX_C_ALIVE_CHECK, 1))
        reply = sock.recv(64)
    if len(hello) < 12 or len(reply) < 16:
        raise BenchError("the master did not answer the bare mux exchange")
    return int(struct.unpack(">I", reply[12:16])[0])


def measure(lab: Lab, rounds: int) -> dict[str, list[float]]:
    """Interleave a, b and f each round, rotating their order."""
    path = str(lab.sock)
    expected_pid = lab.master_pid

    def op_a() -> None:
        if mux.alive(path) != expected_pid:
            raise BenchError("mux.alive lost the master")

    def op_b() -> None:
        _run(lab.via_socket("-O", "check", *lab.dest()))

    def op_f() -> None:
        if bare_alive(path) != expected_pid:
            raise BenchError("the bare exchange lost the master")

    ops: dict[str, Callable[[], None]] = {"a": op_a, "b": op_b, "f": op_f}

    # (b) must really see this master: same pid as our client reports
    check = _run(lab.via_socket("-O", "check", *lab.dest())).stderr.decode(errors="replace")
    if f"pid={expected_pid}" not in check:
        raise BenchError(f"ssh -O check disagrees with mux.alive: {check!r}")

    for _ in range(WARMUP):
        for op in ops.values():
            op()

    samples: dict[str, list[float]] = {key: [] for key in OPERATIONS}
    order = list(ops)
    for index in range(rounds):
        shift = index % len(order)
        for key in order[shift:] + order[:shift]:
            samples[key].append(_timed(ops[key]))
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: an observed value, well defined even for 5 samples."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


def summarize(samples: dict[str, list[float]], rounds: int, setup_ms: float) -> dict[str, object]:
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
        "master_setup_ms": setup_ms,
        "operations": ops,
        "ratios_of_medians": ratios,
    }


def render(result: dict[str, object]) -> str:
    ops: dict[str, dict[str, object]] = result["operations"]  # type: ignore[assignment]
    lines = [
        f"{result['ssh_version']}, Python {result['python']}, {result['cpus']} CPUs, "
        f"{result['rounds']} rounds, loopback",
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
    return _harness.processes_mentioning(needle, ssh_only=True)


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


def run(rounds: int) -> tuple[dict[str, object] | None, list[str]]:
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
        samples = measure(lab, rounds)
        result = summarize(samples, rounds, setup_ms)
    except (BenchError, pexpect.ExceptionPexpect, subprocess.TimeoutExpired) as exc:
        problems.append(f"benchmark failed: {exc}")
    finally:
        problems.extend(teardown(lab))
    return result, problems


# The goal: asking the socket without a process beats spawning ``ssh -O check`` by
# at least 50x (the manager checks every master this way, 200 of them in figure 5).
GOAL_FIG2 = 50.0


def figures(rounds: int = 20) -> list[dict[str, object]]:
    """Figure 2 (b over a) for ``python -m bench``: ``rounds * 10`` rounds of (a), (b) and
    (f), between 50 and 2000."""
    if shutil.which("ssh") is None:
        raise _harness.BenchError("the OpenSSH client (ssh) is not installed")
    result, problems = run(max(50, min(2000, rounds * 10)))
    if result is None or problems:
        raise _harness.BenchError("; ".join(problems))
    ops: dict[str, dict[str, float]] = result["operations"]  # type: ignore[assignment]
    ratios: dict[str, float] = result["ratios_of_medians"]  # type: ignore[assignment]

    def ms(key: str) -> str:
        return f"{ops[key]['median_ms']:.2f} ms (p90 {ops[key]['p90_ms']:.2f})"

    fig2 = ratios["b/a"]
    return [
        _harness.row(
            2,
            "is the master alive? ssh -O check (process) over mux.alive (socket)",
            f"(a) mux.alive: {ms('a')}",
            f"{fig2:.1f}x; (b) ssh -O check {ms('b')}; (f) bare exchange {ms('f')}, "
            f"b/f {ratios['b/f']:.1f}x",
            f">= {GOAL_FIG2:.0f}x",
            fig2 >= GOAL_FIG2,
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
    signal.signal(signal.SIGTERM, _exit_on_signal)  # run()'s clean-up runs on SIGTERM too
    result, problems = run(args.rounds)
    if result is not None:
        print(json.dumps(result, indent=2) if args.json else render(result))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
