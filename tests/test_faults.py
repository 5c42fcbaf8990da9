"""Faults against the real OpenSSH sshd and the Jupyter server: killed and stopped masters, an
sshd that goes away, a host that never says a word, nobody answering, a burst of connects, a
Jupyter server killed under a live master, control paths too long to bind.

Every wait is bounded, and every test ends with no ssh process of its own left (no child, no
zombie, no master): see :func:`assert_clean`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from procs import process_alive, ssh_processes
from test_server_api import add_sshd_host, answer, wait_for

from hy2fa_lab.core import controlpath, mux

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd, free_port
except ImportError:
    from sshd_fixture import RealSshd, free_port  # type: ignore[no-redef]

Fetch = Callable[..., Any]
ALIAS = "fixture"
LOGIN = "Accepted keyboard-interactive/pam"
REQUEST_TIMEOUT = 10.0  # no route may take longer, whatever state the master is in


# ---- helpers ------------------------------------------------------------------------------


async def rest(
    fetch: Fetch, method: str, *parts: str, body: Any = None, timeout: float = REQUEST_TIMEOUT
) -> tuple[int, Any]:
    """``(status, json)`` of one request to the extension; an error status does not raise."""
    kwargs: dict[str, Any] = {"method": method, "request_timeout": timeout, "raise_error": False}
    if body is not None or method == "POST":
        kwargs["body"] = json.dumps(body if body is not None else {})
    response = await fetch("hy2fa", *parts, **kwargs)
    return response.code, json.loads(response.body) if response.body else None


async def ok(fetch: Fetch, method: str, *parts: str, body: Any = None) -> Any:
    status, data = await rest(fetch, method, *parts, body=body)
    assert 200 <= status < 300, (method, parts, status, data)
    return data


async def connect(fetch: Fetch, sshd: RealSshd, name: str = ALIAS) -> Any:
    """POST a login, answer the code once, return the connected view."""
    status, view = await rest(fetch, "POST", "connections", body={"cluster": name})
    assert status == 202, view
    asked = await wait_for(fetch, name, {"prompting"})
    assert asked["prompt"]["kind"] == "otp"
    await answer(fetch, name, sshd.totp(), asked["prompt"]["id"])
    return await wait_for(fetch, name, {"connected"})


def _children() -> dict[int, tuple[str, str]]:
    """Processes whose parent is this test process: pid -> (command name, state), the state
    as /proc says it ("Z" for a zombie), through psutil."""
    found = {}
    for child in psutil.Process().children():
        try:
            name, status = child.name(), child.status()
        except psutil.NoSuchProcess:
            continue
        found[child.pid] = (name, "Z" if status == psutil.STATUS_ZOMBIE else status)
    return found


def leftovers(directory: Path) -> list[str]:
    """ssh processes started for this test (their argv names its temp dir: masters included),
    ssh children of this process, and zombie children of any kind."""
    found = [f"{pid}: {' '.join(argv)}" for pid, argv in ssh_processes(str(directory)).items()]
    found += [
        f"child {pid}: {comm} ({state})"
        for pid, (comm, state) in _children().items()
        if comm == "ssh" or state == "Z"
    ]
    return found


def wait_clean(directory: Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (left := leftovers(directory)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"left behind: {left}"


async def assert_clean(directory: Path) -> None:
    await asyncio.to_thread(wait_clean, directory)


async def gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs after {timeout} s"
        await asyncio.sleep(0.02)


def ssh_check(config: Path, path: str) -> subprocess.CompletedProcess[str]:
    """OpenSSH's own opinion of the master on ``path``."""
    argv = ["ssh", "-F", str(config), "-S", path, "-o", "BatchMode=yes", "-O", "check", ALIAS]
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)


class SilentTcpServer:
    """Accepts TCP connections on 127.0.0.1 and never says a word (no SSH banner)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)  # open and silent: the client must give up by itself

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], short_tmp: Path) -> dict[str, Any]:
    """%n (the alias) in the template: each alias of the one sshd gets its own control path."""
    jp_server_config["Hy2faLab"].update(
        control_path=f"{short_tmp}/cm-%n", prompt_timeout=20, connect_timeout=20
    )
    return jp_server_config


@pytest.fixture
def short_prompt_timeout(jp_server_config: dict[str, Any]) -> None:
    jp_server_config["Hy2faLab"]["prompt_timeout"] = 2


@pytest.fixture
def short_connect_timeout(jp_server_config: dict[str, Any]) -> None:
    jp_server_config["Hy2faLab"]["connect_timeout"] = 2


@pytest.fixture
def ssh_calls(jp_server_config: dict[str, Any], short_tmp: Path) -> Path:
    """The server runs ssh through a wrapper that logs every command line; returns the log."""
    log = short_tmp / "ssh-calls.log"
    log.touch()
    wrapper = short_tmp / "ssh-logged"
    real = shutil.which("ssh")
    assert real is not None
    wrapper.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{log}'\nexec '{real}' \"$@\"\n")
    wrapper.chmod(0o700)
    jp_server_config["Hy2faLab"]["ssh"] = str(wrapper)
    return log


@pytest.fixture
def long_template(jp_server_config: dict[str, Any], short_tmp: Path) -> str:
    """A template whose expansion is too long for a Unix socket (its directory is not)."""
    template = f"{short_tmp}/{'x' * 80}-%n"
    jp_server_config["Hy2faLab"]["control_path"] = template
    return template


@pytest.fixture
def silent_tcp() -> Iterator[SilentTcpServer]:
    server = SilentTcpServer()
    yield server
    server.close()


# ---- 1. a master killed ---------------------------------------------------------------------


@pytest.mark.sshd
@pytest.mark.timeout(60)
async def test_a_master_killed_while_listed_is_disconnected_and_a_new_login_works(
    jp_fetch: Fetch, real_sshd: RealSshd, client_config: Path, short_tmp: Path
) -> None:
    add_sshd_host(client_config, real_sshd)
    live = await connect(jp_fetch, real_sshd)
    path, old_pid = live["control_path"], live["master_pid"]
    assert mux.alive(path) == old_pid

    os.kill(old_pid, signal.SIGKILL)
    await gone(old_pid)
    assert mux.status(path).liveness is mux.Liveness.STALE  # the socket file stays behind

    started = time.monotonic()
    listing = (await ok(jp_fetch, "GET", "connections"))["connections"]
    assert [(c["name"], c["state"], c["master_pid"]) for c in listing] == [
        (ALIAS, "disconnected", None)
    ]
    view = await ok(jp_fetch, "GET", "connections", ALIAS)
    assert view["state"] == "disconnected" and view["master_pid"] is None
    assert time.monotonic() - started < 3  # at once, not at the next periodic refresh

    # A new POST asks again and logs in: the stale socket is replaced.
    again = await connect(jp_fetch, real_sshd)
    assert again["control_path"] == path
    assert again["master_pid"] not in (None, old_pid)
    assert mux.alive(path) == again["master_pid"]
    check = ssh_check(client_config, path)
    assert f"Master running (pid={again['master_pid']})" in check.stderr
    assert real_sshd.log().count(LOGIN) == 2

    done = await ok(jp_fetch, "DELETE", "connections", ALIAS)
    assert done["state"] == "disconnected"
    await gone(again["master_pid"])
    await assert_clean(short_tmp)


# ---- 2. a master stopped --------------------------------------------------------------------


@pytest.mark.sshd
@pytest.mark.timeout(60)
async def test_a_stopped_master_is_unresponsive_on_every_route_and_recovers(
    jp_fetch: Fetch, real_sshd: RealSshd, client_config: Path, short_tmp: Path
) -> None:
    add_sshd_host(client_config, real_sshd)
    live = await connect(jp_fetch, real_sshd)
    path, pid = live["control_path"], live["master_pid"]

    os.kill(pid, signal.SIGSTOP)
    try:
        answers: dict[str, tuple[int, Any]] = {}
        for label, method, parts, body in [
            ("version", "GET", ("version",), None),
            ("list", "GET", ("connections",), None),
            ("one", "GET", ("connections", ALIAS), None),
            ("clusters", "GET", ("clusters",), None),
            ("connect", "POST", ("connections",), {"cluster": ALIAS}),
            ("answer", "POST", ("connections", ALIAS, "answer"), {"response": "123456"}),
            ("delete", "DELETE", ("connections", ALIAS), None),
        ]:
            started = time.monotonic()
            answers[label] = await rest(jp_fetch, method, *parts, body=body)
            assert time.monotonic() - started < 5, label  # mux calls are bounded (1 s each)
        statuses = {label: status for label, (status, _) in answers.items()}
        assert statuses == {
            "version": 200,
            "list": 200,
            "one": 200,
            "clusters": 200,
            "connect": 200,  # the session as it is: no second login over a hung socket
            "answer": 409,  # nothing is asked
            "delete": 502,  # the master does not answer: it is left alone, and said so
        }
        listed = answers["list"][1]["connections"]
        assert [(c["name"], c["state"]) for c in listed] == [(ALIAS, "unresponsive")]
        assert "does not answer" in listed[0]["message"]
        assert answers["one"][1]["state"] == "unresponsive"
        rows = {row["name"]: row for row in answers["clusters"][1]["clusters"]}
        assert rows[ALIAS]["state"] == "unresponsive"
        assert answers["connect"][1]["state"] == "unresponsive"
        assert answers["answer"][1]["reason"] == "no_prompt"
        assert answers["delete"][1]["reason"] == "unresponsive"
        assert list(ssh_processes(path)) == [pid]  # no new login was started
        assert os.path.exists(path) and process_alive(pid)
    finally:
        os.kill(pid, signal.SIGCONT)

    view = await ok(jp_fetch, "GET", "connections", ALIAS)
    assert (view["state"], view["master_pid"]) == ("connected", pid)
    assert mux.alive(path) == pid
    assert real_sshd.log().count(LOGIN) == 1
    done = await ok(jp_fetch, "DELETE", "connections", ALIAS)
    assert done["state"] == "disconnected"
    await gone(pid)
    assert not os.path.exists(path)
    await assert_clean(short_tmp)


# ---- 3. the sshd goes away ------------------------------------------------------------------


@pytest.mark.sshd
@pytest.mark.timeout(60)
async def test_sshd_stopped_while_prompting_fails_the_login_and_leaves_no_child(
    jp_fetch: Fetch, real_sshd: RealSshd, client_config: Path, short_tmp: Path
) -> None:
    add_sshd_host(client_config, real_sshd)
    view = await ok(jp_fetch, "POST", "connections", body={"cluster": ALIAS})
    await wait_for(jp_fetch, ALIAS, {"prompting"})
    assert ssh_processes(view["control_path"])

    real_sshd.stop()
    started = time.monotonic()
    done = await wait_for(jp_fetch, ALIAS, {"failed"}, timeout=15)
    assert time.monotonic() - started < 10
    assert done["reason"] == "unreachable", done
    assert done["message"].startswith("127.0.0.1 closed the connection while the prompt")
    assert done["prompt"] is None and done["master_pid"] is None
    assert not os.path.exists(view["control_path"])
    await assert_clean(short_tmp)


@pytest.mark.sshd
@pytest.mark.timeout(60)
async def test_sshd_stopped_while_connected_ends_the_master_and_the_next_check_says_so(
    jp_fetch: Fetch, real_sshd: RealSshd, client_config: Path, short_tmp: Path
) -> None:
    add_sshd_host(client_config, real_sshd)
    live = await connect(jp_fetch, real_sshd)
    pid = live["master_pid"]

    real_sshd.stop()
    await gone(pid, timeout=10)  # the master notices the connection is gone and exits
    view = await ok(jp_fetch, "GET", "connections", ALIAS)
    assert (view["state"], view["master_pid"]) == ("disconnected", None), view
    listing = (await ok(jp_fetch, "GET", "connections"))["connections"]
    assert [c["state"] for c in listing] == ["disconnected"]
    assert mux.alive(live["control_path"]) is None
    await assert_clean(short_tmp)


# ---- 4. a host that accepts and says nothing ------------------------------------------------


@pytest.mark.timeout(30)
async def test_a_silent_tcp_server_fails_unreachable_within_the_connect_timeout(
    short_connect_timeout: None,
    jp_fetch: Fetch,
    silent_tcp: SilentTcpServer,
    client_config: Path,
    short_tmp: Path,
) -> None:
    with client_config.open("a") as handle:
        handle.write(
            f"Host silent\n  HostName 127.0.0.1\n  Port {silent_tcp.port}\n  User nobody\n"
            f"  UserKnownHostsFile {short_tmp}/known_hosts\n  StrictHostKeyChecking no\n"
        )
    started = time.monotonic()
    status, view = await rest(jp_fetch, "POST", "connections", body={"cluster": "silent"})
    assert status == 202, view
    done = await wait_for(jp_fetch, "silent", {"failed"}, timeout=12)
    elapsed = time.monotonic() - started
    assert done["reason"] in ("unreachable", "timeout"), done
    assert 1 <= elapsed < 2 + 6, elapsed  # connect_timeout is 2 s
    assert silent_tcp.accepted == 1  # it did get through to the listener, which said nothing
    assert done["prompt"] is None
    await assert_clean(short_tmp)


# ---- 5. nobody answers ----------------------------------------------------------------------


@pytest.mark.sshd
@pytest.mark.timeout(30)
async def test_nobody_answers_the_real_sshd_so_the_login_times_out(
    short_prompt_timeout: None,
    jp_fetch: Fetch,
    real_sshd: RealSshd,
    client_config: Path,
    short_tmp: Path,
) -> None:
    add_sshd_host(client_config, real_sshd)
    view = await ok(jp_fetch, "POST", "connections", body={"cluster": ALIAS})
    asked = await wait_for(jp_fetch, ALIAS, {"prompting"})
    started = time.monotonic()
    done = await wait_for(jp_fetch, ALIAS, {"failed"}, after_prompt=asked["prompt"]["id"])
    assert 1 <= time.monotonic() - started < 2 + 5  # prompt_timeout is 2 s
    assert done["reason"] == "timeout"
    assert "Nobody answered" in done["message"]
    assert not os.path.exists(view["control_path"])
    assert LOGIN not in real_sshd.log()
    await assert_clean(short_tmp)


# ---- 6. a burst of connects -----------------------------------------------------------------


@pytest.mark.sshd
@pytest.mark.timeout(90)
async def test_twenty_connects_to_five_clusters_from_three_clients_start_five_logins(
    ssh_calls: Path,
    jp_fetch: Fetch,
    real_sshd: RealSshd,
    client_config: Path,
    short_tmp: Path,
) -> None:
    names = [f"c{i}" for i in range(5)]
    for name in names:
        add_sshd_host(client_config, real_sshd, alias=name)
    plan = [names[i % len(names)] for i in range(20)]
    clients = [plan[0::3], plan[1::3], plan[2::3]]  # three request streams, 7 + 7 + 6 POSTs

    async def client(batch: list[str]) -> list[tuple[int, Any]]:
        return await asyncio.gather(
            *(rest(jp_fetch, "POST", "connections", body={"cluster": n}) for n in batch)
        )

    results = [r for batch in await asyncio.gather(*(client(b) for b in clients)) for r in batch]
    assert len(results) == 20
    assert all(status in (200, 202) for status, _ in results), results
    paths = {view["name"]: view["control_path"] for _, view in results}
    assert sorted(paths) == names and len(set(paths.values())) == 5

    asked = {name: await wait_for(jp_fetch, name, {"prompting"}, timeout=30) for name in names}
    masters = [a for a in ssh_processes(str(short_tmp)).values() if "-M" in a]
    assert len(masters) == 5, masters
    logins = [line for line in ssh_calls.read_text().splitlines() if " -M " in f" {line} "]
    assert len(logins) == 5, logins

    for name in names:  # each prompt is answered once
        await answer(jp_fetch, name, real_sshd.totp(), asked[name]["prompt"]["id"])
    views = {name: await wait_for(jp_fetch, name, {"connected"}, timeout=30) for name in names}
    pids = {view["master_pid"] for view in views.values()}
    assert len(pids) == 5 and None not in pids
    for name, view in views.items():
        assert mux.alive(view["control_path"]) == view["master_pid"], name
    assert real_sshd.log().count(LOGIN) == 5
    lines = ssh_calls.read_text().splitlines()
    assert len([line for line in lines if " -M " in f" {line} "]) == 5  # still five

    stopped = await asyncio.gather(*(ok(jp_fetch, "DELETE", "connections", n) for n in names))
    assert {view["state"] for view in stopped} == {"disconnected"}
    for pid in pids:
        await gone(pid)
    await assert_clean(short_tmp)


# ---- 7. the Jupyter server killed under a live master ---------------------------------------


class JupyterServer:
    """A real ``jupyter server`` process with its own config, data and runtime dirs and token."""

    TOKEN = "faults-token"

    def __init__(self, directory: Path, hy2fa: dict[str, Any]) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = directory / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ)
        for kind in ("config", "data", "runtime"):
            path = directory / kind
            path.mkdir()
            self.env[f"JUPYTER_{kind.upper()}_DIR"] = str(path)
        config = {
            "ServerApp": {
                "ip": "127.0.0.1",
                "port": self.port,
                "port_retries": 0,
                "open_browser": False,
                "allow_root": True,
                "root_dir": str(directory),
                "jpserver_extensions": {"hy2fa_lab": True},
            },
            "IdentityProvider": {"token": self.TOKEN},
            "Hy2faLab": hy2fa,
        }
        (directory / "config" / "jupyter_server_config.json").write_text(json.dumps(config))

    def start(self, timeout: float = 30) -> None:
        """Start it (same config every time) and wait until it answers."""
        assert self.proc is None
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            status = urllib.request.Request(
                self.url + "api/status", headers={"Authorization": f"token {self.TOKEN}"}
            )
            try:
                with urllib.request.urlopen(status, timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + "hy2fa/" + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.TOKEN}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def wait_for(self, name: str, state: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            status, view = self.request("GET", f"connections/{name}")
            if status == 200 and view["state"] == state:
                return view
            assert status in (200, 404), (status, view)
            assert time.monotonic() < deadline, (status, view)
            time.sleep(0.05)


@pytest.fixture
def jupyter_server(short_tmp: Path, client_config: Path) -> Iterator[JupyterServer]:
    directory = short_tmp / "jupyter"
    directory.mkdir()
    server = JupyterServer(
        directory,
        {
            "ssh_config": str(client_config),
            "control_path": f"{short_tmp}/cm-%n",
            "prompt_timeout": 20,
        },
    )
    yield server
    server.stop()


@pytest.mark.sshd
@pytest.mark.timeout(90)
def test_a_jupyter_server_killed_and_restarted_finds_the_live_master(
    jupyter_server: JupyterServer, real_sshd: RealSshd, client_config: Path, short_tmp: Path
) -> None:
    add_sshd_host(client_config, real_sshd)
    jupyter_server.start()
    status, view = jupyter_server.request("POST", "connections", {"cluster": ALIAS})
    assert status == 202, view
    asked = jupyter_server.wait_for(ALIAS, "prompting")
    status, _ = jupyter_server.request(
        "POST",
        f"connections/{ALIAS}/answer",
        {"response": real_sshd.totp(), "prompt_id": asked["prompt"]["id"]},
    )
    assert status == 200
    live = jupyter_server.wait_for(ALIAS, "connected")
    path, pid = live["control_path"], live["master_pid"]

    jupyter_server.kill()
    assert process_alive(pid) and mux.alive(path) == pid  # the master is a daemon of its own

    jupyter_server.start()
    status, listing = jupyter_server.request("GET", "connections")  # its first request
    assert status == 200
    found = [(c["name"], c["state"], c["master_pid"]) for c in listing["connections"]]
    assert found == [(ALIAS, "connected", pid)], jupyter_server.log.read_text()
    assert listing["connections"][0]["control_path"] == path
    assert real_sshd.log().count(LOGIN) == 1  # found, not logged in again

    status, done = jupyter_server.request("DELETE", f"connections/{ALIAS}")
    assert (status, done["state"]) == (200, "disconnected")
    deadline = time.monotonic() + 5
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not process_alive(pid)
    assert mux.alive(path) is None and not os.path.exists(path)
    jupyter_server.stop()
    wait_clean(short_tmp)


# ---- 8. control paths too long --------------------------------------------------------------


@pytest.mark.sshd
@pytest.mark.timeout(60)
async def test_a_template_too_long_falls_back_to_a_short_hashed_name_that_works(
    long_template: str,
    jp_fetch: Fetch,
    real_sshd: RealSshd,
    client_config: Path,
    short_tmp: Path,
) -> None:
    add_sshd_host(client_config, real_sshd)
    assert len(long_template.replace("%n", ALIAS)) > controlpath.MAX_LENGTH
    live = await connect(jp_fetch, real_sshd)
    path = live["control_path"]
    local = socket.gethostname()
    digest = hashlib.sha1(
        f"{local}127.0.0.1{real_sshd.port}{real_sshd.user}".encode(), usedforsecurity=False
    ).hexdigest()
    assert path == f"{short_tmp}/cm-{digest}"  # ssh's %C, in the template's directory
    assert controlpath.fits(path)
    check = ssh_check(client_config, path)
    assert f"Master running (pid={live['master_pid']})" in check.stderr
    await ok(jp_fetch, "DELETE", "connections", ALIAS)
    await gone(live["master_pid"])
    await assert_clean(short_tmp)


@pytest.mark.sshd
@pytest.mark.timeout(30)
async def test_a_configured_control_path_too_long_is_refused_before_ssh_runs(
    jp_fetch: Fetch, real_sshd: RealSshd, client_config: Path, short_tmp: Path
) -> None:
    """ssh uses a ControlPath from the ssh config as it is: there is no fallback for it."""
    deep = f"{short_tmp}/{'d' * 80}/cm-%C"
    block = real_sshd.write_client_config(
        short_tmp / "toolong.conf", alias="toolong", extra={"ControlPath": deep}
    ).read_text()
    with client_config.open("a") as handle:
        handle.write(block)
    started = time.monotonic()
    status, error = await rest(jp_fetch, "POST", "connections", body={"cluster": "toolong"})
    assert time.monotonic() - started < 5
    assert (status, error["reason"]) == (422, "invalid"), error
    assert "too long" in error["message"] and len(error["message"]) < 400
    assert (await ok(jp_fetch, "GET", "connections"))["connections"] == []
    rows = {row["name"]: row for row in (await ok(jp_fetch, "GET", "clusters"))["clusters"]}
    assert rows["toolong"]["state"] == "error"
    assert "too long" in rows["toolong"]["error"]["message"]
    assert LOGIN not in real_sshd.log() and "Accepted publickey" not in real_sshd.log()
    assert not Path(deep).parent.exists()  # no socket directory was made for it
    await assert_clean(short_tmp)
