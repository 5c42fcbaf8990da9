"""A real ``jupyter lab`` in a subprocess and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

try:  # tests/ may or may not be a package
    from .sshd_fixture import free_port
except ImportError:
    from sshd_fixture import free_port  # type: ignore[no-redef]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


class Lab:
    """JupyterLab with the extension, configured through a config dir of its own."""

    def __init__(self, *, hy2fa: dict[str, Any] | None = None, extension: bool = True) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hy2fa-lab-", dir="/tmp"))
        self.port = free_port()
        self.token = os.urandom(12).hex()
        self.ssh_config = self.dir / "ssh_config"
        self.ssh_config.write_text("")
        config = {
            "Hy2faLab": {
                "ssh_config": str(self.ssh_config),
                "control_path": f"{self.dir}/%C",
                "prompt_timeout": 60,
                **(hy2fa or {}),
            }
        }
        if not extension:
            config["ServerApp"] = {"jpserver_extensions": {"hy2fa_lab": False}}
        config_dir = self.dir / "config"
        config_dir.mkdir()
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
        settings = self.dir / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        self.env = {
            **os.environ,
            "JUPYTER_CONFIG_PATH": str(config_dir),
            "JUPYTER_TOKEN": self.token,
            "JUPYTER_RUNTIME_DIR": str(self.dir / "runtime"),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Lab:
        argv = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", f"--ServerApp.root_dir={self.dir}",
            f"--LabApp.user_settings_dir={self.dir / 'settings'}",
            f"--LabApp.workspaces_dir={self.dir / 'workspaces'}",
        ]  # fmt: skip
        log = (self.dir / "lab.log").open("wb")
        self.proc = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                self.api("GET", "/api/status")
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not start:\n" + self.log()) from None
                time.sleep(0.2)

    def log(self) -> str:
        return (self.dir / "lab.log").read_text(errors="replace")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def add_host(self, block: str) -> None:
        with self.ssh_config.open("a") as handle:
            handle.write(block if block.endswith("\n") else block + "\n")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def open_lab(page: Page, lab: Lab) -> None:
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=90_000)
    page.wait_for_selector('[data-id="hy2fa-sidebar"]', timeout=30_000)


def open_sidebar(page: Page) -> None:
    if not page.locator("#hy2fa-sidebar").is_visible():
        page.click('[data-id="hy2fa-sidebar"]')
    page.wait_for_selector("#hy2fa-sidebar .jp-hy2fa-panel", timeout=30_000)


def row(cluster: str, state: str | None = None) -> str:
    selector = f'[data-hy2fa-cluster="{cluster}"]'
    return selector + (f'[data-state="{state}"]' if state else "")


def shot(page: Page, test: str, name: str, clip: dict[str, float] | None = None) -> Path:
    directory = ARTIFACTS / re.sub(r"[^\w.-]", "_", test)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    if clip is None:
        page.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), clip=clip)  # type: ignore[arg-type]
    return path


def set_theme(page: Page, theme: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=theme).first.click()
    light = "false" if "Dark" in theme else "true"
    page.wait_for_selector(f'body[data-jp-theme-light="{light}"]', state="attached", timeout=30_000)
    page.wait_for_timeout(500)


def open_lab_in(page: Page, lab: Lab, workspace: str) -> None:
    """Lab in a workspace of its own, reset: no layout left by another test. Returns once
    Lab has focused its launcher, as it does when it has started: a test's keys go where
    the test puts the focus, not to the launcher a moment later."""
    page.goto(f"{lab.url}/lab/workspaces/{workspace}?reset&token={lab.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=90_000)
    page.wait_for_selector('[data-id="hy2fa-sidebar"]', timeout=30_000)
    # A Lab that does not focus its launcher: nothing to wait for.
    with contextlib.suppress(PlaywrightTimeoutError):
        page.wait_for_function(
            "() => document.activeElement?.closest('.jp-Launcher') != null", timeout=10_000
        )


def add_prompt_host(lab: Lab, alias: str, port: int, user: str, extra: str = "") -> None:
    """A ``Host`` block for a scripted server on 127.0.0.1 (keyboard-interactive only)."""
    lab.add_host(
        f"Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n"
        f"  UserKnownHostsFile {lab.dir}/known_hosts\n  StrictHostKeyChecking no\n"
        f"  PreferredAuthentications keyboard-interactive\n{extra}"
    )


def wait_for_state(lab: Lab, name: str, states: tuple[str, ...], timeout: float = 20) -> Any:
    """The server's view of connection ``name`` once it is in one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        view = lab.api("GET", f"/hy2fa/connections/{name}")
        if view["state"] in states or time.monotonic() > deadline:
            assert view["state"] in states, view
            return view
        time.sleep(0.1)


def shot_of(locator: Any, test: str, name: str) -> Path:
    """A screenshot of one element (a row, the sidebar, a dialog)."""
    directory = ARTIFACTS / re.sub(r"[^\w.-]", "_", test)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    locator.screenshot(path=str(path))
    return path


def seconds(locator: Any) -> int:
    """The whole seconds a ticking element (``data-seconds``) shows now."""
    value = locator.get_attribute("data-seconds")
    assert value is not None, "no data-seconds"
    return int(value)
