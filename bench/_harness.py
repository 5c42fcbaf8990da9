"""What the bench modules share: a demo login server in a child process of its own, an ssh
config for it, a bare pexpect login (the floor any login can reach), order rotation, statistics,
the rows of the results table and a check that nothing a bench started is left running.

Not a benchmark itself. Every temp dir is ``/tmp/hy2b-*`` (short: control sockets must bind;
and findable: ``python -m bench`` looks for anything left under that prefix at the end).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pexpect
import psutil

from hy2fa_lab.core import mux
from hy2fa_lab.core.environment import ssh_environment

TMP_PREFIX = "hy2b-"
USER = "bench"
# The demo server's fixed answers: nothing secret. Sent on stdin and on the pty, never in argv.
OTP = "314159"
PASSWORD = "bench-password"
OTP_PROMPT = f"One-time password (OATH) for `{USER}': "
PASSWORD_PROMPT = "Password: "
TIMEOUT = 30.0  # no single wait (a prompt, a process, a socket) is longer than this

_SERVER = """
import sys
from hy2fa_lab.demo.sshserver import ServerThread, sigma2
otp = sys.stdin.readline().rstrip("\\n")
password = sys.stdin.readline().rstrip("\\n")
server = ServerThread(sigma2(otp, password)).start()
print(server.port, flush=True)
print(server.known_hosts_line(), end="", flush=True)
sys.stdin.read()  # until the bench closes our stdin, or exits
server.stop()
"""


class BenchError(RuntimeError):
    """Something did not behave: the numbers would mean nothing."""


# ---- statistics and rows ------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: an observed value, well defined for few samples."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


def describe(values: Sequence[float]) -> dict[str, float]:
    """n, median, p10 and p90 (ms when the values are ms)."""
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p10": percentile(values, 10),
        "p90": percentile(values, 90),
    }


def rotations(keys: Sequence[str], index: int) -> list[str]:
    """``keys`` rotated by ``index``: each operation goes first as often as the others."""
    shift = index % len(keys)
    return [*keys[shift:], *keys[:shift]]


def timed_ms(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000.0


def row(
    figure: int,
    what: str,
    baseline: str,
    value: str,
    goal: str,
    met: bool,
    **raw: Any,
) -> dict[str, Any]:
    """One line of the results table; ``raw`` holds the numbers behind it."""
    return {
        "figure": figure,
        "what": what,
        "baseline": baseline,
        "value": value,
        "goal": goal,
        "met": bool(met),
        **raw,
    }


def render_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a Markdown table (readable in a terminal too)."""
    header = ("figure", "what", "baseline", "value", "goal", "met?")
    cells = [
        (
            str(r["figure"]),
            str(r["what"]),
            str(r["baseline"]),
            str(r["value"]),
            str(r["goal"]),
            "yes" if r["met"] else "**no**",
        )
        for r in rows
    ]
    widths = [max(len(header[i]), *(len(c[i]) for c in cells)) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(c) for c in cells]
    return "\n".join(out)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import platform

    model = ""  # Linux says it in /proc/cpuinfo; elsewhere platform.processor() or the machine
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    try:
        version = subprocess.run(["ssh", "-V"], capture_output=True, text=True, timeout=10)
        ssh = (version.stderr or version.stdout).strip()
    except (OSError, subprocess.SubprocessError):
        ssh = "no ssh"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "ssh": ssh,
        "system": f"{platform.system()} {platform.release()}",
    }


# ---- temp dir, processes ------------------------------------------------------------------


def make_tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir="/tmp"))


def processes_mentioning(needle: str, *, ssh_only: bool = False) -> dict[int, list[str]]:
    """Live (non-zombie) processes other than this one whose argv mentions ``needle`` (only
    ssh clients with ``ssh_only``), through psutil: the same on Linux and macOS."""
    found: dict[int, list[str]] = {}
    for proc in psutil.process_iter(["cmdline", "status"]):
        argv = list(proc.info["cmdline"] or ())
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if ssh_only and not (argv and os.path.basename(argv[0]).startswith("ssh")):
            continue
        if any(needle in arg for arg in argv):
            found[proc.pid] = argv
    return found


def wait_gone(needle: str, seconds: float) -> dict[int, list[str]]:
    deadline = time.monotonic() + seconds
    while (left := processes_mentioning(needle)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def stop_masters(directory: Path) -> list[str]:
    """Stop every master whose socket is in ``directory``; return what would not stop."""
    problems = []
    for path in sorted(directory.rglob("*")):
        if not path.is_socket():
            continue
        try:
            stop_master(str(path))
        except (OSError, mux.MuxError, BenchError):
            problems.append(f"the master on {path.name} did not stop")
    return problems


def finish(tmp: Path) -> list[str]:
    """After a bench: nothing mentioning ``tmp`` may run (SIGTERM what does, and say so);
    then remove ``tmp``. Returns the problems."""
    problems = []
    left = wait_gone(str(tmp), 5.0)
    if left:
        problems.append(f"processes left: {left}")
        for pid in left:  # only processes of this run: their argv names our own temp dir
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        if wait_gone(str(tmp), 3.0):
            problems.append("and they survived SIGTERM")
    shutil.rmtree(tmp, ignore_errors=True)
    if tmp.exists():
        problems.append(f"could not remove {tmp}")
    return problems


def wait_until(test: Callable[[], bool], seconds: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if test():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def stop_master(path: str) -> None:
    """Stop one master and wait until its socket no longer answers."""
    mux.stop(path)
    if not wait_until(lambda: mux.alive(path) is None, 10.0):
        raise BenchError(f"the master on {path} did not stop")


# ---- the demo login server ----------------------------------------------------------------


class DemoServer:
    """``sigma2(OTP, PASSWORD)`` (a one-time code, then a password, as on Saga) on 127.0.0.1,
    in a child process: its event loop does not share this process' GIL with what is timed."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log = tmp / "demo-server.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _SERVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,  # Ctrl-C reaches the bench, which stops us in order
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(f"{OTP}\n{PASSWORD}\n")
            self.proc.stdin.flush()
            port = self.proc.stdout.readline().strip()
            self.known_hosts_line = self.proc.stdout.readline()
            if not port.isdigit() or not self.known_hosts_line.strip():
                raise BenchError(f"the demo server did not start: {self.log.read_text()[-2000:]}")
        except BaseException:
            self.stop()
            raise
        self.port = int(port)
        (tmp / "known_hosts").write_text(self.known_hosts_line)

    def stop(self) -> list[str]:
        if self.proc.poll() is not None:
            return []
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
            return []
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return ["the demo server had to be killed"]


def write_ssh_config(tmp: Path, port: int, hosts: Mapping[str, str]) -> Path:
    """A Host block per alias (``hosts`` maps the alias to extra lines), then what they share:
    the demo server, its known_hosts only, strict checking, keyboard-interactive only."""
    blocks = [f"Host {alias}\n{extra}" for alias, extra in hosts.items()]
    blocks.append(
        "Host *\n"
        "  HostName 127.0.0.1\n"
        f"  Port {port}\n"
        f"  User {USER}\n"
        f"  UserKnownHostsFile {tmp / 'known_hosts'}\n"
        "  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n"
        "  PubkeyAuthentication no\n"
        "  PreferredAuthentications keyboard-interactive\n"
    )
    path = tmp / "ssh_config"
    path.write_text("".join(blocks))
    return path


@contextlib.contextmanager
def spawned(argv: Sequence[str]) -> Iterator[pexpect.spawn]:
    """ssh under a pty as the engine runs it: its environment, SIGHUP ignored (``-f``)."""
    child = pexpect.spawn(
        argv[0],
        list(argv[1:]),
        env=ssh_environment(),
        encoding="utf-8",
        codec_errors="replace",
        timeout=TIMEOUT,
        echo=False,
        ignore_sighup=True,
    )
    child.delaybeforesend = None  # pexpect sleeps 50 ms before each send by default
    child.ptyproc.delayafterclose = 0
    try:
        yield child
    finally:
        if not child.closed:
            child.close(force=True)


def bare_login(argv: Sequence[str], marks: list[float] | None = None) -> None:
    """Run an ssh login under pexpect, answering each prompt the instant it shows, until ssh
    exits; raise unless it exits 0. ``marks`` gets the perf_counter of each prompt and of
    the exit."""
    with spawned(argv) as child:
        asked: set[int] = set()
        while True:
            index = child.expect_exact([OTP_PROMPT, PASSWORD_PROMPT, pexpect.EOF])
            if marks is not None:
                marks.append(time.perf_counter())
            if index == 2:
                break
            if index in asked:
                raise BenchError("the server refused an answer (ssh asked again)")
            asked.add(index)
            child.sendline(OTP if index == 0 else PASSWORD)
        output = child.before
        # EOF can come just before ssh exits; close() would then signal it and sleep 0.1 s.
        deadline = time.monotonic() + TIMEOUT
        while child.isalive() and time.monotonic() < deadline:
            time.sleep(0.0005)
        child.close()
        if child.exitstatus != 0:
            raise BenchError(f"ssh login failed (status {child.exitstatus}): {output!r}")


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # SIGTERM runs the same clean-up as Ctrl-C


def run_module(
    name: str,
    doc: str | None,
    argv: Sequence[str] | None,
    figure: Callable[[int], list[dict[str, Any]]],
    rounds: tuple[int, int, int],
    details: Callable[[list[dict[str, Any]]], str],
) -> int:
    """The ``main()`` of a bench module: ``--rounds N`` (``rounds`` is min, max, default),
    ``--json``, clean-up on SIGTERM, the table and the module's details."""
    import argparse
    import json

    low, high, default = rounds

    def count(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"rounds must be between {low} and {high}")
        return value

    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=doc)
    parser.add_argument("--rounds", type=count, default=default, metavar="N")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        rows = figure(args.rounds)
    except BenchError as exc:
        print(f"bench.{name}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(render_table(rows))
    print()
    print(details(rows))
    return 0
