"""The person's own cluster settings (issue 20): their user name, port, persist and label for
any cluster, and clusters of their own, set over REST (what the sidebar calls) or with
``hy2fa set``/``add``/``forget``, kept in ``<Jupyter data dir>/hy2fa_lab/clusters.json``.

Real parts: a real Jupyter server (pytest-jupyter, whose Jupyter data, config and runtime dirs
are the test's own: the real home is never touched), a second real server process on the same
data dir (the restart), real kernels, the ``hy2fa`` command in a shell, and the real OpenSSH
client against the real sshd fixture with its one-time code.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kernel_ws import KernelWS
from procs import ssh_processes
from test_mux import FakeMaster
from test_mux import _alive as alive_reply
from test_server_api import answer, call, call_error, run_through, wait_for
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

import hy2fa_lab
from hy2fa_lab.core import mine, mux
from hy2fa_lab.core.manager import Manager
from hy2fa_lab.core.settings import Settings
from hy2fa_lab.core.targets import Targets
from hy2fa_lab.kernel import api as kernel_api
from hy2fa_lab.kernel.backends import LocalBackend
from hy2fa_lab.server import events

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd, free_port
except ImportError:
    from sshd_fixture import RealSshd, free_port  # type: ignore[no-redef]

Fetch = Callable[..., Any]
HY2FA = str(Path(sys.executable).parent / "hy2fa")
# The site's cluster: its host and port, and a user name that is not the person's (a laptop's
# login name, the usual case); the person says who they are in Lab.
SITE = {"lab": {"host": "127.0.0.1", "port": 1, "user": "nosuchuser", "label": "The lab"}}


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], jp_config_dir: Path, short_tmp: Path
) -> dict[str, Any]:
    """conftest.py's, with a configured cluster and a socket template that shows the user.
    The same Hy2faLab config is in the Jupyter config dir's file, so the ``hy2fa`` command and
    a second server process read it as this server has it."""
    hy2fa = {
        **jp_server_config["Hy2faLab"],
        "control_path": f"{short_tmp}/%r@%h:%p",
        "clusters": SITE,
        "prompt_timeout": 30,
    }
    jp_server_config["Hy2faLab"] = hy2fa
    (jp_config_dir / "jupyter_server_config.json").write_text(json.dumps({"Hy2faLab": hy2fa}))
    return jp_server_config


@pytest.fixture
def store(jp_data_dir: Path) -> Path:
    """Where the server keeps the person's settings: in the test's Jupyter data dir."""
    return jp_data_dir / "hy2fa_lab" / "clusters.json"


class Heard:
    """The cluster events the server emits, in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def listener(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        if schema_id == events.CLUSTER_SCHEMA_ID:
            await self.queue.put(dict(data))

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.queue.get(), 10)


@pytest.fixture
def heard(jp_serverapp: Any) -> Heard:
    found = Heard()
    jp_serverapp.event_logger.add_listener(listener=found.listener)
    return found


async def rows(fetch: Fetch) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in (await call(fetch, "GET", "clusters"))["clusters"]}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``hy2fa`` in a shell of this test's environment (its Jupyter config and data dirs)."""
    return subprocess.run(
        [HY2FA, *args], capture_output=True, text=True, timeout=60, check=False, env=os.environ
    )


def add_fixture_keys(config: Path, sshd: RealSshd) -> None:
    """What the person's ssh config says for the fixture's address: its key and known host,
    not its port or user (the person gives those in Lab)."""
    known = config.parent / "fixture_known_hosts"
    known.write_text(sshd.known_hosts_line())
    with config.open("a") as handle:
        handle.write(
            f"Host 127.0.0.1\n    IdentityFile {sshd.client_key}\n    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {known}\n    GlobalKnownHostsFile /dev/null\n"
            "    StrictHostKeyChecking ask\n    CheckHostIP no\n    BatchMode no\n"
        )


# ---- REST: set, add, forget, and the events --------------------------------------------


async def test_set_add_and_forget_over_rest_with_their_rows_and_events(
    jp_fetch: Fetch, heard: Heard, store: Path, short_tmp: Path, client_config: Path
) -> None:
    listing = await call(jp_fetch, "GET", "clusters")
    assert listing["mine_file"] == {"path": str(store), "problems": []}
    site = {row["name"]: row for row in listing["clusters"]}
    assert site["lab"]["user"] == "nosuchuser" and site["lab"]["mine"] == []
    assert site["lab"]["source"] == "config" and site["saga"]["mine"] == []
    assert not store.exists()  # nothing is written until the person sets something

    row = await call(jp_fetch, "PATCH", "clusters", "lab", body={"user": "olan", "label": "Mine"})
    assert (row["user"], row["label"], row["source"]) == ("olan", "Mine", "config")
    assert row["mine"] == ["user", "label"]
    assert row["control_path"] == f"{short_tmp}/olan@127.0.0.1:1"
    event = await heard.next()
    assert event == {"action": "changed", **row}  # the event is the row, as REST shows it
    assert await call(jp_fetch, "GET", "clusters", "lab") == row

    row = await call(jp_fetch, "PATCH", "clusters", "lab", body={"label": None})
    assert (row["label"], row["mine"]) == ("The lab", ["user"])
    assert (await heard.next())["mine"] == ["user"]

    saga = await call(
        jp_fetch,
        "PATCH",
        "clusters",
        "saga",
        body={"user": "olan", "port": "2222", "persist": "2h"},
    )
    assert (saga["port"], saga["persist"], saga["source"]) == (2222, "7200s", "builtin")
    assert saga["mine"] == ["user", "port", "persist"]
    await heard.next()

    body = {
        "name": "mygroup",
        "host": "login.group.example.org",
        "user": "olan",
        "port": 2022,
        "label": "My group",
        "ssh_options": {"ServerAliveInterval": 30},
    }
    response = await jp_fetch("hy2fa", "clusters", method="POST", body=json.dumps(body))
    assert response.code == 201
    own = json.loads(response.body)
    assert (own["source"], own["host"], own["user"], own["port"]) == (
        "mine",
        "login.group.example.org",
        "olan",
        2022,
    )
    assert own["mine"] == ["host", "user", "port", "label", "ssh_options"]
    assert own["ssh_options"] == {"ServerAliveInterval": "30"}
    assert await heard.next() == {"action": "added", **own}
    moved = await call(
        jp_fetch, "PATCH", "clusters", "mygroup", body={"host": "login2.group.example.org"}
    )
    assert moved["host"] == "login2.group.example.org"
    await heard.next()

    with client_config.open("a") as handle:
        handle.write("Host aliased\n    HostName 127.0.0.1\n")
    for taken in ("saga", "lab", "mygroup", "aliased"):  # built-in, config, theirs, ssh config
        status, error = await call_error(
            jp_fetch, "POST", "clusters", body={"name": taken, "host": "elsewhere.example.org"}
        )
        assert (status, error["reason"]) == (409, "cluster_exists"), taken

    back = await call(jp_fetch, "DELETE", "clusters", "lab")
    assert (back["user"], back["mine"], back["label"]) == ("nosuchuser", [], "The lab")
    assert back == site["lab"]  # as the site gives it
    assert await heard.next() == {"action": "changed", **back}
    status, error = await call_error(jp_fetch, "DELETE", "clusters", "lab")
    assert (status, error["reason"]) == (404, "unknown_cluster")

    gone = await jp_fetch("hy2fa", "clusters", "mygroup", method="DELETE")
    assert gone.code == 204 and not gone.body
    removed = await heard.next()
    assert (removed["action"], removed["name"], removed["source"]) == ("removed", "mygroup", "mine")
    status, _ = await call_error(jp_fetch, "GET", "clusters", "mygroup")
    assert status == 404

    assert json.loads(store.read_text()) == {
        "version": 1,
        "clusters": {"saga": {"user": "olan", "port": 2222, "persist": "7200s"}},
    }
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    assert heard.queue.empty()


REFUSED = [
    ("PATCH", "saga", {"ssh_options": {"ProxyCommand": "nc %h %p"}}, 422, "ProxyCommand"),
    ("PATCH", "saga", {"ssh_options": {"StrictHostKeyChecking": "no"}}, 422, "refused"),
    ("PATCH", "saga", {"ssh_options": {"PKCS11Provider": "/x.so"}}, 422, "cannot be set"),
    ("PATCH", "saga", {"user": "-oProxyCommand=x"}, 422, "must not start"),
    ("PATCH", "saga", {"user": "a b"}, 422, "whitespace"),
    ("PATCH", "saga", {"user": "\u202eola"}, 422, "invisible"),
    ("PATCH", "saga", {"user": "u" * 5_000_000}, 422, "longer than 255"),
    ("PATCH", "saga", {"port": 70000}, 422, "port must be"),
    ("PATCH", "saga", {"persist": "forever"}, 422, "persist must be"),
    ("PATCH", "saga", {"label": "two\nlines"}, 422, "one line"),
    ("PATCH", "saga", {"label": "\u202eevil"}, 422, "direction"),
    ("PATCH", "saga", {"label": "x" * 101}, 422, "longer than 100"),
    ("PATCH", "saga", {"host": "elsewhere.example.org"}, 422, "the site's"),
    ("PATCH", "saga", {"colour": "red"}, 400, "Unknown fields"),
    ("PATCH", "saga", {"user": 5}, 400, "must be a string"),
    ("PATCH", "saga", {"ssh_options": "ServerAliveInterval=30"}, 400, "must be an object"),
    ("PATCH", "nowhere", {"user": "olan"}, 404, "No cluster named"),
    ("PATCH", "-oProxyCommand=x", {"user": "olan"}, 422, "cluster name"),
    ("PATCH", ".hidden", {"user": "olan"}, 422, "cluster name"),
    ("POST", "", {"name": "-bad", "host": "h.example.org"}, 422, "cluster name"),
    ("POST", "", {"name": "a@b", "host": "h.example.org"}, 422, "cluster name"),
    ("POST", "", {"name": "ok", "host": "-oProxyCommand=x"}, 422, "must not start"),
    ("POST", "", {"name": "ok", "host": "h", "ssh_options": {"LocalCommand": "id"}}, 422, "Local"),
    ("POST", "", {"name": "ok", "host": "h", "user": "%d"}, 422, "'%'"),
    ("POST", "", {"name": "ok"}, 400, "'host' is required"),
    ("POST", "", {"name": "saga", "host": "h.example.org"}, 409, "already"),
    ("DELETE", "fram", None, 404, "no settings"),
    ("DELETE", "..x", None, 422, "cluster name"),
]


async def test_refused_input_is_refused_and_stores_nothing(
    jp_fetch: Fetch, heard: Heard, store: Path
) -> None:
    """Byte for byte: the file is as it was, whatever was refused, and no event said otherwise."""
    for method, name, body, status, _words in REFUSED[:3]:  # with no file yet: none is made
        got, _ = await call_error(jp_fetch, method, "clusters", name, body=body)
        assert got == status
        assert not store.exists()
    await call(jp_fetch, "PATCH", "clusters", "saga", body={"user": "olan"})
    await heard.next()
    before = store.read_bytes()
    for method, name, body, status, words in REFUSED:
        parts = ("clusters", name) if name else ("clusters",)
        got, error = await call_error(jp_fetch, method, *parts, body=body)
        assert (got, words in error["message"]) == (status, True), (method, name, body, error)
        assert len(error["message"]) < 400  # a 5 MB value is not echoed back
        assert store.read_bytes() == before, (method, name, body)
        assert heard.queue.empty(), (method, name, body)
    assert ssh_processes("127.0.0.1") == {} and ssh_processes("saga.sigma2.no") == {}
    assert (await rows(jp_fetch))["saga"]["user"] == "olan"


# ---- what is read back -------------------------------------------------------------------


async def test_a_bad_stored_entry_costs_that_entry_alone(
    jp_fetch: Fetch, store: Path, short_tmp: Path
) -> None:
    entries = {
        "saga": {"user": "olan"},
        "fram": {"user": "bad user"},
        "lab": {"ssh_options": {"PKCS11Provider": "/tmp/evil.so"}},
        "typo": {"hots": "h.example.org", "port": 2200},
        "good": {"host": "g.example.org", "port": 2200, "user": "olan"},
        "-oProxyCommand=x": {"host": "x.example.org"},
    }
    store.parent.mkdir(mode=0o700)
    store.write_text(json.dumps({"version": 1, "clusters": entries}))
    store.chmod(0o600)
    listing = await call(jp_fetch, "GET", "clusters")
    (problem,) = listing["mine_file"]["problems"]  # a name no row can have: said, not listed
    assert str(store) in problem and "-oProxyCommand=x" in problem
    found = {row["name"]: row for row in listing["clusters"]}
    assert found["saga"]["user"] == "olan" and found["saga"]["mine"] == ["user"]
    assert (found["good"]["source"], found["good"]["port"]) == ("mine", 2200)
    for name, source, words in (
        ("fram", "builtin", "user must not contain whitespace"),
        ("lab", "config", "ssh_options: ssh option PKCS11Provider cannot be set here"),
        ("typo", "mine", "unknown settings: hots"),
    ):
        row = found[name]
        assert row["state"] == "error" and row["source"] == source, row
        message = row["error"]["message"]
        assert message.startswith(f"{store}: '{name}': ") and words in message, message
        status, error = await call_error(jp_fetch, "POST", "connections", body={"cluster": name})
        assert (status, error["message"]) == (422, message)  # never the site's values instead
    assert found["fram"]["host"] == "fram.sigma2.no"  # the built-in's description stays
    assert found["fram"]["mine"] == ["user"]
    assert ssh_processes(str(short_tmp)) == {}

    # A change to the bad entry is refused until the bad value goes; the others stay as written.
    status, error = await call_error(jp_fetch, "PATCH", "clusters", "lab", body={"label": "x"})
    assert status == 422 and "PKCS11Provider" in error["message"]
    fixed = await call(jp_fetch, "PATCH", "clusters", "lab", body={"ssh_options": None})
    assert "error" not in fixed and fixed["mine"] == []
    back = await call(jp_fetch, "DELETE", "clusters", "fram")
    assert back["state"] == "idle" and back["mine"] == []
    kept = json.loads(store.read_text())["clusters"]
    assert "lab" not in kept and "fram" not in kept
    assert kept == {k: v for k, v in entries.items() if k not in ("lab", "fram")}

    # hy2fa list says the same, and the name it cannot list once on stderr.
    shown = cli("list")
    assert shown.returncode == 0, shown.stderr
    typo = next(line for line in shown.stdout.splitlines() if line.startswith("typo "))
    assert "error:" in typo and "hots" in typo and "[yours: port]" in typo
    (warning,) = shown.stderr.splitlines()
    assert warning.startswith("hy2fa: warning: ") and "-oProxyCommand=x" in warning


async def test_a_file_that_is_not_the_persons_own_is_neither_used_nor_overwritten(
    jp_fetch: Fetch, store: Path, short_tmp: Path
) -> None:
    good = json.dumps({"version": 1, "clusters": {"saga": {"user": "olan"}}})
    elsewhere = short_tmp / "planted.json"
    elsewhere.write_text(good)
    store.parent.mkdir(mode=0o700)

    def not_json() -> None:
        store.write_text("{not json")

    def others_can_write() -> None:
        store.write_text(good)
        store.chmod(0o666)

    def a_symlink() -> None:
        store.symlink_to(elsewhere)

    def newer() -> None:
        store.write_text(json.dumps({"version": 2, "clusters": {"saga": {"user": "olan"}}}))

    for make, words in (
        (not_json, "is not JSON"),
        (others_can_write, "others can write it"),
        (a_symlink, "is not read"),
        (newer, "is version 2"),
    ):
        if store.is_symlink() or store.exists():
            store.unlink()
        make()
        before = os.readlink(store) if store.is_symlink() else store.read_bytes()
        listing = await call(jp_fetch, "GET", "clusters")
        (problem,) = listing["mine_file"]["problems"]
        assert str(store) in problem and words in problem, (make.__name__, problem)
        saga = next(row for row in listing["clusters"] if row["name"] == "saga")
        assert saga["user"] != "olan" and saga["mine"] == [], make.__name__
        status, error = await call_error(
            jp_fetch, "PATCH", "clusters", "saga", body={"label": "Mine"}
        )
        assert (status, error["reason"]) == (502, "clusters_file"), make.__name__
        after = os.readlink(store) if store.is_symlink() else store.read_bytes()
        assert after == before, make.__name__  # the person's file is never lost to a change
    assert elsewhere.read_text() == good


def test_a_kernel_sees_a_change_without_a_restart_and_no_change_is_lost(
    short_tmp: Path, client_config: Path
) -> None:
    """The engine in a kernel (or a long ``Targets``) reads the file again once it changed;
    changes made at once (Lab, ``hy2fa set``, another tab) all land."""
    settings = Settings(
        ssh_config=str(client_config),
        control_path=f"{short_tmp}/%r@%h:%p",
        clusters_file=str(short_tmp / "data" / "hy2fa_lab" / "clusters.json"),
    )
    kernel, lab = Targets(settings), Targets(settings)
    assert kernel.resolve("saga").user != "olan"
    lab.set_mine("saga", {"user": "olan"})
    assert kernel.resolve("saga").control_path == f"{short_tmp}/olan@saga.sigma2.no:22"

    names = [f"group{i}" for i in range(16)]
    threads = [
        threading.Thread(target=Targets(settings).add_mine, args=(n, {"host": f"{n}.example.org"}))
        for n in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(names) <= set(kernel.profiles())
    assert set(json.loads(Path(str(settings.clusters_file)).read_text())["clusters"]) == {
        "saga",
        *names,
    }


def test_ensure_in_a_kernel_hands_out_the_new_users_master_after_a_change_of_user(
    short_tmp: Path, client_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ensure()`` keeps the path it found, to answer with one mux check next time; once the
    person changed their user name in Lab, it must not hand out the old user's live master."""
    settings = Settings(
        ssh_config=str(client_config),
        control_path=f"{short_tmp}/%r@%h:%p",
        clusters_file=str(short_tmp / "data" / "hy2fa_lab" / "clusters.json"),
    )
    for name in ("HY2FA_SERVER_URL", "JPY_PARENT_PID"):
        monkeypatch.delenv(name, raising=False)
    backend = LocalBackend(Manager(settings))
    monkeypatch.setattr(LocalBackend, "_instance", backend)
    monkeypatch.setattr(kernel_api, "_known_paths", {})
    lab = Targets(settings)
    masters = []
    try:
        for user in ("olan", "ola"):
            lab.set_mine("saga", {"user": user})
            path = f"{short_tmp}/{user}@saga.sigma2.no:22"
            masters.append(FakeMaster(path, alive_reply(4242 + len(masters))))
            assert hy2fa_lab.ensure("saga", timeout=5) == path
            assert hy2fa_lab.ensure("saga", timeout=5) == path  # from what it kept
            assert mux.alive(masters[0].path) == 4242  # the old user's master still lives
    finally:
        for master in masters:
            master.close()
        backend.loop.call_soon_threadsafe(backend.loop.stop)
        backend.thread.join(5)


# ---- "Also use it in terminals": the managed Host block ----------------------------------


async def test_config_ssh_over_rest_writes_the_persons_user_and_port_when_asked(
    jp_fetch: Fetch, heard: Heard, client_config: Path, short_tmp: Path
) -> None:
    row = await call(jp_fetch, "PATCH", "clusters", "lab", body={"user": "olan", "port": 2222})
    await heard.next()
    before = client_config.read_text()
    preview = await call(jp_fetch, "GET", "clusters", "lab", "config-ssh")
    assert preview["written"] is False and preview["path"] == os.path.realpath(client_config)
    assert "    User olan\n" in preview["block"] and "    Port 2222\n" in preview["block"]
    assert client_config.read_text() == before  # showing it writes nothing

    done = await call(jp_fetch, "POST", "clusters", "lab", "config-ssh", body={})
    assert done["path"] == preview["path"] and done["block"] == preview["block"]
    assert done["overridden"] == []
    assert (await heard.next())["name"] == "lab"
    assert (await call(jp_fetch, "GET", "clusters", "lab", "config-ssh"))["written"] is True

    # Plain ssh in a terminal now uses the person's user and port, and the socket Lab uses.
    def ssh_g(alias: str) -> dict[str, str]:
        result = subprocess.run(
            ["ssh", "-G", "-F", str(client_config), alias],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)

    terminal = ssh_g("lab")
    assert (terminal["user"], terminal["port"], terminal["controlmaster"]) == (
        "olan",
        "2222",
        "auto",
    )
    assert terminal["controlpath"] == row["control_path"] == f"{short_tmp}/olan@127.0.0.1:2222"

    # Asked once, the block follows the person's values: a new user name in Lab, and then
    # going back to the site's values, reach terminals too.
    row = await call(jp_fetch, "PATCH", "clusters", "lab", body={"user": "olan2"})
    terminal = ssh_g("lab")
    assert (terminal["user"], terminal["port"]) == ("olan2", "2222")
    assert terminal["controlpath"] == row["control_path"] == f"{short_tmp}/olan2@127.0.0.1:2222"
    row = await call(jp_fetch, "DELETE", "clusters", "lab")
    terminal = ssh_g("lab")
    assert (terminal["user"], terminal["port"]) == ("nosuchuser", "1")
    assert terminal["controlpath"] == row["control_path"] == f"{short_tmp}/nosuchuser@127.0.0.1:1"

    gone = await call(jp_fetch, "DELETE", "clusters", "lab", "config-ssh")
    assert gone["path"] == done["path"] and client_config.read_text() == before
    await call(jp_fetch, "PATCH", "clusters", "lab", body={"user": "olan3"})
    assert client_config.read_text() == before  # no block: a change writes none
    status, error = await call_error(jp_fetch, "DELETE", "clusters", "lab", "config-ssh")
    assert (status, error["reason"]) == (404, "no_block")
    status, error = await call_error(jp_fetch, "POST", "clusters", "nowhere", "config-ssh", body={})
    assert (status, error["reason"]) == (404, "unknown_cluster")
    status, _ = await call_error(jp_fetch, "POST", "clusters", "..x", "config-ssh", body={})
    assert status == 422 and client_config.read_text() == before


# ---- the real thing: a restart, a kernel, the CLI and logins with the code ----------------


class SecondServer:
    """Another ``jupyter server`` process on this test's Jupyter config, data and runtime
    dirs (the environment pytest-jupyter set): the server after a restart."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.token = os.urandom(12).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "second-server.log"
        argv = [
            sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = HTTPRequest(
            f"{self.url}/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            body=None if body is None else json.dumps(body),
            request_timeout=60,
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        return response.code, json.loads(response.body) if response.body else None

    async def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                status, _ = await self.api("GET", "hy2fa/version")
            except OSError:
                status = 0
            if status == 200:
                return
            assert time.monotonic() < deadline, self.log.read_text()
            await asyncio.sleep(0.1)

    async def kernel(self) -> KernelWS:
        status, started = await self.api("POST", "api/kernels", {"name": "python3"})
        assert status == 201, started
        ws = await websocket_connect(
            HTTPRequest(
                f"ws://127.0.0.1:{self.port}/api/kernels/{started['id']}/channels",
                headers={"Authorization": f"token {self.token}"},
            )
        )
        client = KernelWS(ws)
        await client.run("1", timeout=120)
        return client

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
async def restarted(short_tmp: Path) -> AsyncIterator[Callable[[], Any]]:
    started: list[SecondServer] = []

    async def start() -> SecondServer:
        server = SecondServer(short_tmp)
        started.append(server)
        await server.ready()
        return server

    yield start
    for server in started:
        server.stop()


def no_server_socket_path(cluster: str) -> str:
    """``socket_path()`` in a Python with no Jupyter server to ask (the engine reads the
    files itself)."""
    env = {k: v for k, v in os.environ.items() if k not in ("JPY_PARENT_PID", "HY2FA_SERVER_URL")}
    code = f"from hy2fa_lab import socket_path; print(socket_path({cluster!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.sshd
async def test_a_user_set_in_lab_holds_after_a_restart_for_rows_kernels_the_cli_and_a_login(
    jp_fetch: Fetch,
    real_sshd: RealSshd,
    client_config: Path,
    short_tmp: Path,
    store: Path,
    restarted: Callable[[], Any],
) -> None:
    add_fixture_keys(client_config, real_sshd)
    body = {"user": real_sshd.user, "port": real_sshd.port}
    row = await call(jp_fetch, "PATCH", "clusters", "lab", body=body)
    path = f"{short_tmp}/{real_sshd.user}@127.0.0.1:{real_sshd.port}"
    assert row["control_path"] == path and row["mine"] == ["user", "port"]

    server = await restarted()  # a new server process: what it knows, it read from the file
    status, after = await server.api("GET", "hy2fa/clusters/lab")
    assert status == 200, after
    assert (after["user"], after["port"], after["control_path"]) == (
        real_sshd.user,
        real_sshd.port,
        path,
    )
    assert after["mine"] == ["user", "port"] and after["source"] == "config"

    kernel = await server.kernel()  # a new kernel of the restarted server asks it
    try:
        shown = await kernel.run("import hy2fa_lab\nprint(hy2fa_lab.socket_path('lab'))")
        assert shown.stdout.strip() == path, (shown.stdout, shown.error)
    finally:
        await kernel.close()
    result = cli("path", "lab")  # a shell
    assert (result.returncode, result.stdout.strip()) == (0, path), result.stderr
    assert no_server_socket_path("lab") == path  # a kernel with no server reads the same file

    # The person's user and port log in, through the restarted server, with the code.
    status, started = await server.api("POST", "hy2fa/connections", {"cluster": "lab"})
    assert status == 202, started
    deadline = time.monotonic() + 30
    while started["state"] != "prompting":
        assert started["state"] in ("starting", "verifying"), started
        assert time.monotonic() < deadline, started
        status, started = await server.api(
            "GET", f"hy2fa/connections/{started['id']}?after={started['version']}&wait=5"
        )
    otp = real_sshd.totp()
    status, _ = await server.api(
        "POST", f"hy2fa/connections/{started['id']}/answer", {"response": otp}
    )
    assert status == 200
    view = started
    while view["state"] not in ("connected", "failed"):
        assert time.monotonic() < deadline, view
        status, view = await server.api(
            "GET", f"hy2fa/connections/{view['id']}?after={view['version']}&wait=5"
        )
    assert view["state"] == "connected", view
    assert view["control_path"] == path and mux.alive(path) == view["master_pid"]
    assert run_through(client_config, path, "127.0.0.1", "echo", "ok") == "ok\n"
    assert otp.encode() not in store.read_bytes()
    await server.api("DELETE", f"hy2fa/connections/{view['id']}")


@pytest.mark.sshd
async def test_a_cluster_of_ones_own_at_the_fixture_logs_in_with_its_code(
    jp_fetch: Fetch, real_sshd: RealSshd, client_config: Path, store: Path, heard: Heard
) -> None:
    add_fixture_keys(client_config, real_sshd)
    body = {
        "name": "mygroup",
        "host": "127.0.0.1",
        "port": real_sshd.port,
        "user": real_sshd.user,
        "persist": "10m",
        "label": "My group",
    }
    response = await jp_fetch("hy2fa", "clusters", method="POST", body=json.dumps(body))
    assert response.code == 201
    assert (await heard.next())["action"] == "added"

    started = await call(jp_fetch, "POST", "connections", body={"cluster": "mygroup"})
    assert started["cluster"] == "mygroup"
    view = await wait_for(jp_fetch, "mygroup", {"prompting"})
    assert view["prompt"]["text"] == f"({real_sshd.user}@127.0.0.1) Verification code: "
    otp = real_sshd.totp()
    await answer(jp_fetch, "mygroup", otp, view["prompt"]["id"])
    done = await wait_for(jp_fetch, "mygroup", {"connected"})
    assert done["persist"] == "600s" and done["port"] == real_sshd.port
    assert run_through(client_config, done["control_path"], "127.0.0.1", "echo", "ok") == "ok\n"
    result = cli("path", "mygroup")
    assert (result.returncode, result.stdout.strip()) == (0, done["control_path"]), result.stderr
    row = (await rows(jp_fetch))["mygroup"]
    assert (row["state"], row["source"], row["label"]) == ("connected", "mine", "My group")

    # The file holds the person's settings, 0600, and no code.
    data = store.read_bytes()
    assert otp.encode() not in data
    assert json.loads(data)["clusters"] == {
        "mygroup": {
            "host": "127.0.0.1",
            "port": real_sshd.port,
            "user": real_sshd.user,
            "persist": "600s",
            "label": "My group",
        }
    }
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    await call(jp_fetch, "DELETE", "connections", "mygroup")


# ---- the hy2fa command -----------------------------------------------------------------------


def test_hy2fa_set_add_and_forget_keep_the_same_file_as_lab(
    tmp_path: Path, short_tmp: Path, client_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir, data_dir = tmp_path / "config", tmp_path / "data"
    config_dir.mkdir()
    hy2fa = {"ssh_config": str(client_config), "control_path": f"{short_tmp}/%r@%h:%p"}
    (config_dir / "jupyter_server_config.json").write_text(json.dumps({"Hy2faLab": hy2fa}))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HOME", str(tmp_path))
    file = data_dir / "hy2fa_lab" / "clusters.json"

    done = cli("set", "saga", "--user", "olan", "--persist", "2h", "--label", "Saga, mine")
    assert done.returncode == 0, done.stderr
    assert (
        "olan@saga.sigma2.no:22" in done.stdout and "[yours: user, persist, label]" in done.stdout
    )
    assert cli("path", "saga").stdout.strip() == f"{short_tmp}/olan@saga.sigma2.no:22"
    refused = cli("set", "saga", "-o", "ProxyCommand=nc %h %p")
    assert refused.returncode == 2 and "ProxyCommand" in refused.stderr
    before = file.read_bytes()
    for args, status in (
        (("set", "saga", "--user", "a b"), 2),
        (("set", "saga"), 2),
        (("set", "saga", "--user", "x", "--unset", "user"), 2),
        (("set", "nowhere", "--user", "x"), 1),
        (("add", "saga", "h.example.org"), 1),
        (("add", "-x", "h.example.org"), 2),
        (("forget", "fram"), 1),
    ):
        result = cli(*args)
        assert result.returncode == status, (args, result.stderr)
        assert file.read_bytes() == before, args

    added = cli("add", "mygroup", "login.group.example.org", "-p", "2022", "-l", "olan")
    assert added.returncode == 0, added.stderr
    assert "olan@login.group.example.org:2022" in added.stdout
    unset = cli("set", "saga", "--unset", "persist", "--unset", "label")
    assert unset.returncode == 0 and "[yours: user]" in unset.stdout
    listed = {row["name"]: row for row in json.loads(cli("list", "--json").stdout)}
    assert listed["mygroup"]["source"] == "mine" and listed["saga"]["mine"] == ["user"]
    assert json.loads(file.read_text())["clusters"] == {
        "saga": {"user": "olan"},
        "mygroup": {"host": "login.group.example.org", "port": 2022, "user": "olan"},
    }
    assert cli("forget", "mygroup").stdout.strip() == "mygroup: forgotten"
    back = cli("forget", "saga")
    assert back.returncode == 0 and "[yours" not in back.stdout
    assert json.loads(file.read_text())["clusters"] == {}
    assert mine.load(str(file)).problems == ()
