"""Shared fixtures. Socket paths must stay short (about 90 bytes), so temp dirs live in /tmp."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hy2fa_lab.core import mux
from hy2fa_lab.demo.sshserver import PromptScript, ServerThread

try:  # tests/ may or may not be a package
    from .kernel_ws import KernelWS
except ImportError:
    from kernel_ws import KernelWS  # type: ignore[no-redef]

pytest_plugins = ["pytest_jupyter.jupyter_server"]

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd, require_sshd
except ImportError:
    from sshd_fixture import RealSshd, require_sshd  # type: ignore[no-redef]


@pytest.fixture(autouse=True, scope="session")
def _private_jupyter_data_dir() -> Iterator[None]:
    """The person's own cluster settings live in the Jupyter data dir (``config.clusters_file``):
    no test, and no ``hy2fa``, kernel or server a test starts, reads or writes the real one.
    pytest-jupyter's servers and some tests set a data dir of their own on top of this one."""
    path = tempfile.mkdtemp(prefix="hy2fa-data-", dir="/tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_DATA_DIR", path)
        yield
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture
async def jp_asyncio_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    """pytest-jupyter's server must live on the loop pytest-asyncio runs the test in."""
    yield asyncio.get_running_loop()


def stop_masters_under(path: Path) -> list[str]:
    """Stop every ControlMaster whose socket lives under ``path``; returns their paths."""
    stopped = []
    for candidate in path.rglob("*"):
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(candidate.lstat().st_mode):
                with contextlib.suppress(OSError, mux.MuxError):
                    if mux.stop(str(candidate)):
                        stopped.append(str(candidate))
    return stopped


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short /tmp dir (socket paths must fit); masters left in it are stopped afterwards."""
    path = Path(tempfile.mkdtemp(prefix="hy2fa-", dir="/tmp"))
    try:
        yield path
    finally:
        stop_masters_under(path)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def client_config(short_tmp: Path) -> Path:
    """An ssh client config for a Jupyter server under test; tests append Host blocks."""
    path = short_tmp / "ssh_config"
    path.write_text("")
    return path


@pytest.fixture
def jp_server_config(client_config: Path, short_tmp: Path) -> dict[str, Any]:
    """pytest-jupyter's server config: the extension on, with ``client_config`` as its ssh
    config and its sockets in ``short_tmp``.

    A test file that needs more settings overrides this fixture with one of the same name that
    asks for it and adds to ``config["Hy2faLab"]`` (or ``config["ServerApp"]``).
    """
    return {
        "ServerApp": {"jpserver_extensions": {"hy2fa_lab": True}},
        "Hy2faLab": {"ssh_config": str(client_config), "control_path": f"{short_tmp}/%C"},
    }


@pytest.fixture
def prompt_server() -> Iterator[Callable[..., ServerThread]]:
    """Factory: ``prompt_server(script, **start_server_options)`` -> a running ServerThread.

    Every server started through it is stopped after the test.
    """
    started: list[ServerThread] = []

    def start(script: PromptScript, **options: Any) -> ServerThread:
        server = ServerThread(script, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def real_sshd() -> Iterator[RealSshd]:
    """A fresh OpenSSH sshd (publickey + pam_google_authenticator) per test (starts in ~40 ms).

    Its files live in their own short /tmp dir; ``real_sshd.write_client_config(path)`` writes a
    client config for ``Host fixture``. Skipped on a developer machine where it cannot run
    (needs root and unshare); under CI that is a failure, since CI installs everything.
    """
    require_sshd()
    path = Path(tempfile.mkdtemp(prefix="hy2fa-", dir="/tmp"))
    sshd = RealSshd(path)
    try:
        yield sshd.start()
    finally:
        sshd.stop()
        shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture
async def kernel(jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any) -> AsyncIterator[KernelWS]:
    """A kernel started by the server (POST /api/kernels), driven over its websocket."""
    jp_serverapp.write_server_info_file()  # what list_running_servers() reads in the kernel
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    kernel_id = json.loads(response.body)["id"]
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    client = KernelWS(ws)
    await client.run("1", timeout=120)
    yield client
    await client.close()
    await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    jp_serverapp.remove_server_info_file()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright, for the browser tests (never a downloaded one).
    Function-scoped: Playwright's sync API runs a loop of its own, which must not overlap
    the per-test loop pytest-asyncio sets up for pytest-jupyter's fixtures."""
    from browser import CHROMIUM
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def site() -> Iterator[Any]:
    """A certificate site (``cert_site.CertSite``: the stand-in sshproxy and an sshd that
    trusts only its CA), started, then stopped and removed."""
    from cert_site import started_site

    yield from started_site()


@pytest.fixture
def page(browser: Any, lab: Any) -> Iterator[Any]:
    """A page of the browser tests (``browser.new_page``) on the test module's ``lab``; after
    the test, every live connection of that Lab is stopped, each by its id."""
    from browser import new_page

    page = new_page(browser)
    yield page
    page.context.close()
    lab.disconnect_all()


@pytest.fixture
def test_name(request: pytest.FixtureRequest) -> str:
    """The test's name: where its screenshots go under test-artifacts."""
    return str(request.node.name)


@pytest.fixture
def hide_proc() -> list[str]:
    """argv that runs a command (appended) with no process information at all: in a private
    mount namespace whose /proc is an empty tmpfs (``unshare -m``, then ``mount``; root).
    Only that command and its children see it; files, sockets and the network are shared."""
    if sys.platform != "linux":  # the simulation of a system without /proc, on one that has it
        pytest.skip(f"hides Linux's /proc in a mount namespace; {sys.platform} has no /proc")
    reason = None
    if os.geteuid() != 0:
        reason = "hiding /proc needs root (unshare -m)"
    elif shutil.which("unshare") is None or shutil.which("mount") is None:
        reason = "unshare and mount (util-linux) are not installed"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root with util-linux: {reason}")
        pytest.skip(reason)
    script = 'mount -t tmpfs hy2fa-no-proc /proc && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "--", "sh", "-c", script, "sh"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test's report also says what the certificate issuer saw and how loaded the
    machine was: a failure seen once in CI then explains itself."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    site = getattr(item, "funcargs", {}).get("site")
    journal = getattr(getattr(site, "service", None), "journal", None)
    if journal is not None:
        report.sections.append(("issuer journal", "\n".join(journal) or "(no connection)"))
    try:
        machine = _machine_summary()
    except Exception as error:  # the report must not fail on what it adds
        machine = f"not read: {error!r}"
    report.sections.append(("machine", machine))


def _machine_summary() -> str:
    import psutil

    me = psutil.Process()
    limit = "unknown"
    with contextlib.suppress(OSError):
        limit = Path("/sys/fs/cgroup/pids.max").read_text().strip()
    return (
        f"load {os.getloadavg()}, processes {len(psutil.pids())} (cgroup pids.max {limit}), "
        f"this process: {me.num_threads()} threads, {me.num_fds()} fds, "
        f"{len(me.children(recursive=True))} descendants"
    )
