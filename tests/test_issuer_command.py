"""Issuer ``command`` (issue 21, item 4): the site's own device-flow tool hands out the key and
certificate. A stand-in tool (``device_tool.py``) prints a link to an endpoint of its own and
a code, waits until the code is posted there, then signs a new key with a CA that a real sshd
trusts (``RealSshd(trusted_user_ca=…)``); through the engine and through REST the view shows
the link and code while it waits, and the master opens and runs a command. Its questions go
through ``answer()``, its failure and its silence fail the login with its words, a cancel
ends its process group, and no REST body, own-settings file or remembered master can name a
command."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from procs import cmdlines, next_prompt, process_alive, ssh_processes
from test_server_api import call, call_error

from hy2fa_lab.core import mine, mux, processes, remembered
from hy2fa_lab.core.errors import InvalidInput
from hy2fa_lab.core.issuer_command import device_of
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.profiles import certificate_spec, load_profiles
from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.types import PromptKind, Reason, State, Target

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd, require_sshd
except ImportError:
    from sshd_fixture import RealSshd, require_sshd  # type: ignore[no-redef]

TOOL = str(Path(__file__).with_name("device_tool.py"))
CODE = "WDJB-MJHT"
Fetch = Callable[..., Any]


# ---- what is taken from the tool's words ----------------------------------------------------


def test_the_link_and_code_are_read_from_what_the_tool_prints() -> None:
    said = (
        "Contacting…\r\nTo sign in, open https://auth.cscs.ch/device. Then enter code ABCD-1234\n"
    )
    assert device_of(said) == {"url": "https://auth.cscs.ch/device", "code": "ABCD-1234"}
    smallstep = "Visit http://127.0.0.1:8/activate and enter the code:\nQWER-TYUI\n"
    assert device_of(smallstep) == {"url": "http://127.0.0.1:8/activate", "code": "QWER-TYUI"}
    in_query = "Open https://id.example/d?user_code=ZXCV-BNMA (a browser may open)\n"
    assert device_of(in_query) == {"url": "https://id.example/d?user_code=ZXCV-BNMA",
                                   "code": "ZXCV-BNMA"}  # fmt: skip
    spoken = device_of("Your one-time code is 7788-9900, go to https://x.example/")
    assert spoken == {"url": "https://x.example/", "code": "7788-9900"}
    assert device_of("https://x.example/go") == {"url": "https://x.example/go", "code": None}
    for hostile in (
        "Open javascript:alert(document.cookie) and enter code ABCD-1234",
        "Open data:text/html,<script>x</script> now",
        "Open https://auth.cscs.ch@evil.example/ now",  # a user name that reads as the host
        "Open ftp://files.example/ now",
        "Open https:///nohost now",
        "no link at all, code ABCD-1234",
    ):
        assert device_of(hostile) is None, hostile
    shown = device_of("open https://x.example/\u202egpj.exe and enter code AB\u202eCD-1234")
    assert shown == {"url": "https://x.example/", "code": None}  # nothing that reorders text


def test_a_command_issuer_is_checked_and_only_the_jupyter_config_names_one() -> None:
    spec = certificate_spec({"issuer": "command", "argv": ["~/bin/cscs-key", "sign"],
                             "key": "~/.ssh/cscs", "renew_before": "1h"})  # fmt: skip
    assert spec.argv == (os.path.expanduser("~/bin/cscs-key"), "sign")
    assert (spec.key, spec.url, spec.renew_before) == (os.path.expanduser("~/.ssh/cscs"), "", 3600)
    good = {"issuer": "command", "argv": ["step"], "key": "/k"}
    for bad in (
        {**good, "argv": "step ssh certificate"},  # a shell line is never run
        {**good, "argv": []},
        {**good, "argv": [" "]},
        {**good, "argv": ["step", 3]},
        {**good, "argv": ["step", "a\x00b"]},
        {**good, "argv": ["x"] * 65},
        {**good, "url": "https://x.example"},
        {"issuer": "command", "key": "/k"},
    ):
        with pytest.raises(InvalidInput):
            certificate_spec(bad)
    # Jupyter config: taken. The person's own-settings file (what Lab and REST write): never.
    profiles = load_profiles({"cscs": {"host": "ela.cscs.ch", "certificate": good}},
                             include_ssh_config_hosts=False)  # fmt: skip
    assert profiles["cscs"].certificate is not None
    assert profiles["cscs"].certificate.argv == ("step",)
    with pytest.raises(InvalidInput, match="unknown settings: certificate"):
        mine.entry({"host": "x.example", "certificate": good})


def test_a_remembered_master_never_brings_a_command(tmp_path: Path) -> None:
    spec = certificate_spec({"issuer": "command", "argv": ["/bin/touch", str(tmp_path / "ran")],
                             "key": str(tmp_path / "k")})  # fmt: skip
    target = Target(name="cscs", destination="ela", hostname="ela", user="ola", port=22,
                    control_path=str(tmp_path / "cm"), persist="60s", certificate=spec)  # fmt: skip
    path = str(tmp_path / "masters.json")
    remembered.save(path, [target])
    assert "/bin/touch" in Path(path).read_text()  # the file may say so...
    (loaded,) = remembered.load(path)
    assert loaded.certificate is None  # ...but what is read from it never runs a command
    row = json.loads(Path(path).read_text())[0]
    assert remembered.target_of(row).certificate is None


def test_the_own_settings_file_never_brings_a_command(short_tmp: Path) -> None:
    ran = short_tmp / "ran"
    planted = {"issuer": "command", "argv": ["/bin/touch", str(ran)], "key": f"{short_tmp}/k"}
    path = short_tmp / "clusters.json"
    path.write_text(json.dumps({"version": mine.VERSION, "clusters": {
        "evil": {"host": "127.0.0.1", "certificate": planted},
        "saga": {"user": "ola", "certificate": planted},
    }}))  # fmt: skip
    path.chmod(0o600)
    manager = Manager(Settings(control_path=f"{short_tmp}/%C", include_ssh_config_hosts=False,
                               clusters_file=str(path)))  # fmt: skip
    profiles = manager.profiles(reload=True)
    for name in ("evil", "saga"):
        assert "unknown settings: certificate" in profiles[name].error
        assert profiles[name].certificate is None
    with pytest.raises(InvalidInput, match="certificate"):
        asyncio.run(manager.connect("evil"))
    assert not ran.exists()


# ---- the engine -------------------------------------------------------------------------------


class Site:
    """A CA, a real sshd that trusts only it, and the key the tool writes."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ca = directory / "ca"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.ca)],
                       check=True, stdin=subprocess.DEVNULL)  # fmt: skip
        self.sshd = RealSshd(directory / "sshd", trusted_user_ca=f"{self.ca}.pub")
        self.key = directory / "home" / ".ssh" / "cscs"

    def argv(self, *extra: str, principal: str | None = None) -> list[str]:
        return [sys.executable, TOOL, "--key", str(self.key), "--ca", str(self.ca),
                "--principal", principal or self.sshd.user, *extra]  # fmt: skip

    def certificate(self, *extra: str, principal: str | None = None) -> dict[str, Any]:
        return {"issuer": "command", "argv": self.argv(*extra, principal=principal),
                "key": str(self.key)}  # fmt: skip

    def manager(self, *extra: str, principal: str | None = None, **settings: Any) -> Manager:
        config = self.sshd.write_client_config(self.dir / "ssh_config")
        cluster = {"host": "fixture", "certificate": self.certificate(*extra, principal=principal)}
        return Manager(
            Settings(ssh_config=str(config), control_path=f"{self.dir}/%C",
                     clusters={"cscs": cluster}, include_ssh_config_hosts=False, **settings)
        )  # fmt: skip


@pytest.fixture
def site() -> Iterator[Site]:
    require_sshd()
    directory = Path(tempfile.mkdtemp(prefix="hy2fa-d", dir="/tmp"))
    made = Site(directory)
    made.sshd.start()
    try:
        yield made
    finally:
        made.sshd.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def offline(short_tmp: Path) -> Callable[..., Manager]:
    """A manager whose cluster is never reached (the tool's end is what is tested)."""

    def make(*extra: str, **settings: Any) -> Manager:
        certificate = {
            "issuer": "command",
            "argv": [
                sys.executable,
                TOOL,
                "--key",
                f"{short_tmp}/k",
                "--ca",
                "/nonexistent",
                "--principal",
                "ola",
                *extra,
            ],
            "key": f"{short_tmp}/k",
        }
        return Manager(
            Settings(control_path=f"{short_tmp}/%C", include_ssh_config_hosts=False,
                     clusters={"cscs": {"host": "127.0.0.1", "port": 1, "user": "ola",
                                        "certificate": certificate}}, **settings)
        )  # fmt: skip

    return make


async def until(session: MasterSession, test: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """The session's view once ``test`` holds for it (woken by its changes, never a timer)."""

    async def wait() -> dict[str, Any]:
        while not test(view := session.to_json()):
            if session.state in (State.CONNECTED, State.FAILED):
                raise AssertionError(f"settled as {session.state}: {session.message}")
            await session.changed()
        return view

    return await asyncio.wait_for(wait(), 20)


def device(view: dict[str, Any]) -> Any:
    return (view.get("certificate") or {}).get("device")


def approve(shown: dict[str, Any], code: str | None = None) -> int:
    """What the person does in the browser: the link shown, with the code shown."""
    query = urllib.parse.urlencode({"user_code": code or shown["code"]})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{shown['url']}?{query}", timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def run_via(config: str, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["ssh", "-F", config, "-S", path, "-o", "BatchMode=yes", "fixture", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)


@pytest.mark.sshd
async def test_the_link_and_code_show_while_it_waits_then_the_master_opens(site: Site) -> None:
    manager = site.manager()
    session = await manager.connect("cscs")
    view = await until(session, device)
    shown = device(view)
    assert shown["code"] == CODE and shown["url"].startswith("http://127.0.0.1:")
    assert view["state"] == "verifying"
    assert any("To sign in, open" in line for line in view["verifying"]["lines"])
    assert view["certificate"]["issuer"] == "command"
    assert not site.key.exists()
    assert await asyncio.to_thread(approve, shown, "AAAA-BBBB") == 400  # not yet approved
    assert session.pending
    assert await asyncio.to_thread(approve, shown) == 200
    assert await session.wait(30) is State.CONNECTED, session.message
    view = session.to_json()
    assert view["certificate"]["device"] is None
    assert view["certificate"]["principals"] == [site.sshd.user]
    assert view["certificate"]["valid_before"].endswith("+00:00")
    config = manager.settings.ssh_config
    assert config is not None
    run = run_via(config, session.target.control_path, "echo via-device $(id -un)")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"via-device {site.sshd.user}"
    assert "Accepted publickey" in site.sshd.log()
    master = session.master_pid
    assert master is not None
    exited = processes.process_exit(master)  # the socket goes a moment before the process
    await manager.disconnect(session.id)
    if exited is not None:
        await asyncio.wait_for(exited, 10)
    assert ssh_processes(session.target.control_path) == {}

    again = await manager.connect("cscs")  # valid: the tool does not run again
    assert await again.wait(30) is State.CONNECTED, again.message
    assert again.to_json()["certificate"]["device"] is None and again.prompt_id == 0
    await manager.disconnect(again.id)


@pytest.mark.sshd
async def test_the_tools_question_is_answered_through_answer(site: Site) -> None:
    manager = site.manager("--ask", "Password: ", "--expect", "s3cret pass")
    session = await manager.connect("cscs")
    prompt = await next_prompt(session, 0)
    assert (prompt.kind, prompt.text, prompt.secret) == (PromptKind.PASSWORD, "Password: ", True)
    await session.answer("wrong")
    await next_prompt(session, 1)
    assert session.message == "Wrong password — try again"
    assert "s3cret" not in json.dumps(session.to_json())
    await session.answer("s3cret pass")
    view = await until(session, device)
    assert view["message"] == "" and view["state"] == "verifying"  # the answer was taken
    assert await asyncio.to_thread(approve, device(view)) == 200
    assert await session.wait(30) is State.CONNECTED, session.message
    assert "s3cret" not in json.dumps(session.to_json()) and "s3cret" not in session._pending
    await manager.disconnect(session.id)


async def test_a_tool_that_fails_fails_the_login_with_its_words(
    offline: Callable[..., Manager],
) -> None:
    session = await offline("--fail", "Error: your project has no access to this system").connect(
        "cscs"
    )
    assert await session.wait(20) is State.FAILED
    assert session.reason is Reason.ERROR
    assert "exited with status 3" in session.message
    assert "your project has no access to this system" in session.message
    assert session.child_pid is None or not process_alive(session.child_pid)


async def test_a_tool_that_says_nothing_fails_after_connect_timeout(
    offline: Callable[..., Manager], short_tmp: Path
) -> None:
    began = time.monotonic()
    session = await offline("--silent", connect_timeout=1).connect("cscs")
    assert await session.wait(20) is State.FAILED
    assert 1 <= time.monotonic() - began < 10
    assert session.reason is Reason.TIMEOUT
    assert session.message == f"{os.path.basename(sys.executable)} printed nothing within 1 s"
    left = [argv for argv in cmdlines().values() if TOOL in argv and f"{short_tmp}/k" in argv]
    assert left == []  # the tool is gone with the login


async def test_an_exit_0_without_a_certificate_for_the_user_fails(
    site: Site,
) -> None:
    session = await site.manager(principal="somebody-else").connect("cscs")
    shown = device(await until(session, device))
    assert await asyncio.to_thread(approve, shown) == 200
    assert await session.wait(30) is State.FAILED
    assert session.reason is Reason.ERROR
    assert f"cannot log in as {site.sshd.user}" in session.message
    assert mux.alive(session.target.control_path) is None


async def test_cancel_ends_the_tools_process_group(offline: Callable[..., Manager]) -> None:
    session = await offline("--helper").connect("cscs")
    view = await until(session, device)
    tool = session.child_pid
    helper = int(
        next(line for line in view["verifying"]["lines"] if "helper pid" in line).split()[-1]
    )
    assert tool is not None and process_alive(tool) and process_alive(helper)
    await session.cancel()
    assert session.state is State.FAILED and session.reason is Reason.CANCELLED
    assert not process_alive(tool) and not process_alive(helper)
    assert session.to_json()["certificate"]["device"] is None


# ---- through REST -----------------------------------------------------------------------------


@pytest.fixture
def rest_site(site: Site) -> Site:
    """The site a REST test's server is configured with (``jp_server_config`` needs it)."""
    return site


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], client_config: Path, rest_site: Site
) -> dict[str, Any]:
    """conftest.py's, with a cluster whose issuer is the stand-in tool (Jupyter config)."""
    block = rest_site.sshd.write_client_config(client_config.parent / "fixture.conf")
    with client_config.open("a") as handle:
        handle.write(block.read_text())
    jp_server_config["Hy2faLab"].update(
        prompt_timeout=30,
        clusters={"cscs": {"host": "fixture", "certificate": rest_site.certificate()}},
    )
    return jp_server_config


async def follow(fetch: Fetch, view: dict[str, Any], test: Callable[[dict[str, Any]], Any]) -> Any:
    """GET the connection at each change (``?after=<version>``) until ``test`` holds."""
    for _ in range(50):
        if test(view):
            return view
        if view["state"] in ("connected", "failed"):
            raise AssertionError(f"settled as {view['state']}: {view['message']}")
        response = await fetch("hy2fa", "connections", view["id"], method="GET",
                               params={"after": str(view["version"]), "wait": "20"})  # fmt: skip
        view = json.loads(response.body)
    raise AssertionError(f"still {view['state']}")


@pytest.mark.sshd
async def test_over_rest_the_link_shows_then_the_master_opens(
    jp_fetch: Fetch, client_config: Path, rest_site: Site
) -> None:
    started = await call(jp_fetch, "POST", "connections", body={"cluster": "cscs"})
    view = await follow(jp_fetch, started, device)
    assert view["state"] == "verifying" and device(view)["code"] == CODE
    assert await asyncio.to_thread(approve, device(view)) == 200
    view = await follow(jp_fetch, view, lambda v: v["state"] == "connected")
    assert view["certificate"]["device"] is None
    assert view["certificate"]["principals"] == [rest_site.sshd.user]
    run = run_via(str(client_config), view["control_path"], "echo over-rest")
    assert run.returncode == 0 and run.stdout.strip() == "over-rest", run.stderr
    await call(jp_fetch, "DELETE", "connections", view["id"])


@pytest.mark.sshd
async def test_no_rest_body_can_name_a_command(
    jp_fetch: Fetch, rest_site: Site, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    planted = {"issuer": "command", "argv": ["/bin/touch", str(ran)], "key": str(tmp_path / "k")}
    refused = [
        ("POST", ("connections",), {"cluster": "cscs", "certificate": planted}),
        ("POST", ("clusters",), {"name": "evil", "host": "x.example", "certificate": planted}),
        ("PATCH", ("clusters", "cscs"), {"certificate": planted}),
        ("PATCH", ("clusters", "saga"), {"certificate": planted}),
    ]
    for method, parts, body in refused:
        status, error = await call_error(jp_fetch, method, *parts, body=body)
        assert status == 400, (method, parts, error)
        assert "certificate" in error["message"]
    rows = {row["name"]: row for row in (await call(jp_fetch, "GET", "clusters"))["clusters"]}
    assert "evil" not in rows and not ran.exists()
