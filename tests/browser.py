"""A real ``jupyter lab`` in a subprocess and Debian's Chromium driven by Playwright.

Every wait of the browser tests is on the state the test needs (an element, an attribute, the
server's view of a login, a request), bounded only by pytest's own timeout (pyproject.toml):
no number of seconds is right on both a quiet and a loaded machine. Playwright's actions take
``timeout=0`` (no bound) from :func:`new_page`; its ``expect()`` takes 0 as "the default 5 s",
so its default is set past pytest's timeout instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Locator, Page, Response, expect

try:  # tests/ may or may not be a package
    from .server_process import ServerProcess
except ImportError:
    from server_process import ServerProcess  # type: ignore[no-redef]

# Debian's Chromium; a machine with another installed browser (a CI runner with Google
# Chrome) names it in HY2FA_CHROMIUM. Never a downloaded one.
CHROMIUM = os.environ.get("HY2FA_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# Past any pytest timeout: an expect() waits for its state until pytest gives up on the test.
UNBOUNDED_MS = 24 * 3600 * 1000
expect.set_options(timeout=UNBOUNDED_MS)


def new_page(browser: Browser, **options: Any) -> Page:
    """A page in a context of its own (1280x800) whose actions wait without a bound."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, **options)
    context.set_default_timeout(0)
    return context.new_page()


class Lab(ServerProcess):
    """JupyterLab with the extension, configured through a config dir of its own."""

    def __init__(self, *, hy2fa: dict[str, Any] | None = None, extension: bool = True) -> None:
        super().__init__("hy2fa-lab-")
        # The person's own cluster settings (hy2fa_lab/clusters.json) of this Lab alone: what
        # one test sets (a user name, a cluster of their own) is not another's.
        self.data_dir = self.dir / "data"
        self.env["JUPYTER_DATA_DIR"] = str(self.data_dir)
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
        self.write_config(config)
        settings = self.dir / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        # The theme follows the page's colour scheme (set_theme): no menu to click, so it
        # changes under a modal dialog too, and no setting outlives a test.
        (settings / "themes.jupyterlab-settings").write_text('{"adaptive-theme": true}')

    def start(self) -> Lab:
        self._start(
            "jupyterlab",
            f"--LabApp.user_settings_dir={self.dir / 'settings'}",
            f"--LabApp.workspaces_dir={self.dir / 'workspaces'}",
        )
        self.api("GET", "/api/status")
        return self

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read() or b"null")

    def write_notebook(self, name: str, cells: list[dict[str, Any]] | None = None) -> None:
        """A notebook (Python 3 kernel) in Lab's root dir, with ``cells`` (none by default)."""
        notebook = {
            "cells": cells or [],
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (self.dir / name).write_text(json.dumps(notebook))

    def disconnect_all(self) -> None:
        """Cancel every login under way and stop every master this Lab knows of, each by its
        id (two connections may share a name)."""
        for view in self.api("GET", "/hy2fa/connections")["connections"]:
            if view["state"] not in ("failed", "disconnected"):
                self.api("DELETE", f"/hy2fa/connections/{view['id']}")

    def add_host(self, block: str) -> None:
        with self.ssh_config.open("a") as handle:
            handle.write(block if block.endswith("\n") else block + "\n")


def open_lab(page: Page, lab: Lab) -> None:
    page.goto(f"{lab.url}/lab?token={lab.token}", timeout=0)
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=0)
    page.wait_for_selector('[data-id="hy2fa-sidebar"]', timeout=0)


def open_sidebar(page: Page) -> None:
    if not page.locator("#hy2fa-sidebar").is_visible():
        page.click('[data-id="hy2fa-sidebar"]', timeout=0)
    page.wait_for_selector("#hy2fa-sidebar .jp-hy2fa-panel", timeout=0)


def row(cluster: str, state: str | None = None) -> str:
    selector = f'[data-hy2fa-cluster="{cluster}"]'
    return selector + (f'[data-state="{state}"]' if state else "")


def shot(page: Page, test: str, name: str, clip: dict[str, float] | None = None) -> Path:
    directory = ARTIFACTS / re.sub(r"[^\w.-]", "_", test)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    # Animations (a toast sliding in) end at once: the picture is of the state, not a frame.
    if clip is None:
        page.screenshot(path=str(path), animations="disabled")
    else:
        page.screenshot(path=str(path), clip=clip, animations="disabled")  # type: ignore[arg-type]
    return path


def set_theme(page: Page, theme: str) -> None:
    """Switch Lab to "JupyterLab Light" or "JupyterLab Dark" through the page's colour scheme
    (Lab's themes follow it: see Lab), even under a modal dialog; returns once the theme's
    own colours apply (its stylesheet loaded), so a screenshot shows that theme."""
    assert theme in ("JupyterLab Light", "JupyterLab Dark"), theme
    page.emulate_media(color_scheme="dark" if "Dark" in theme else "light")
    light = "false" if "Dark" in theme else "true"
    page.wait_for_selector(f'body[data-jp-theme-light="{light}"]', state="attached", timeout=0)
    page.wait_for_function(
        """light => {
            const value = getComputedStyle(document.body)
                .getPropertyValue('--jp-layout-color0').trim().toLowerCase();
            const white = value === 'white' || value === '#fff' || value === '#ffffff';
            return value !== '' && white === light;
        }""",
        arg=light == "true",
        timeout=0,
    )


def open_lab_in(page: Page, lab: Lab, workspace: str) -> None:
    """Lab in a workspace of its own, reset: no layout left by another test. Returns once
    Lab has focused its launcher, as it does when it has started: a test's keys go where
    the test puts the focus, not to the launcher a moment later."""
    page.goto(f"{lab.url}/lab/workspaces/{workspace}?reset&token={lab.token}", timeout=0)
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=0)
    page.wait_for_selector('[data-id="hy2fa-sidebar"]', timeout=0)
    page.wait_for_function(
        "() => document.activeElement?.closest('.jp-Launcher') != null", timeout=0
    )


def add_prompt_host(lab: Lab, alias: str, port: int, user: str, extra: str = "") -> None:
    """A ``Host`` block for a scripted server on 127.0.0.1 (keyboard-interactive only)."""
    lab.add_host(
        f"Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n"
        f"  UserKnownHostsFile {lab.dir}/known_hosts\n  StrictHostKeyChecking no\n"
        f"  PreferredAuthentications keyboard-interactive\n{extra}"
    )


def answer_in_row(page: Page, cluster: str, value: str) -> None:
    """Type ``value`` in the password field of ``cluster``'s row and send it; returns once
    the answer stays nowhere on the page (``row_fields_cleared``)."""
    field = page.locator(f'{row(cluster, "prompting")} input[type="password"]')
    field.fill(value)
    field.press("Enter")
    row_fields_cleared(page, cluster)


def row_fields_cleared(page: Page, cluster: str) -> None:
    """Wait until every field of ``cluster``'s row is empty: an answer is cleared as soon as
    it is sent (or gone with its question)."""
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(el => el.value === '')",
        arg=f"{row(cluster)} input",
        timeout=0,
    )


def wait_for_state(lab: Lab, name: str, states: tuple[str, ...]) -> Any:
    """The server's view of connection ``name`` once it is in one of ``states``: each
    ``?after=<version>`` answers at the login's next change (no polling)."""
    view = lab.api("GET", f"/hy2fa/connections/{name}")
    while view["state"] not in states:
        view = lab.api("GET", f"/hy2fa/connections/{name}?after={view['version']}")
    return view


def keys_ready(dialog: Locator) -> None:
    """Once a question's dialog takes Enter and Space: right after it pops up they are
    taken for typing meant for the notebook, and dropped."""
    expect(dialog).to_have_attribute("data-keys", "ready")


@contextlib.contextmanager
def saved_setting(page: Page, key: str, value: Any) -> Iterator[None]:
    """Around what changes a setting of the plugin: waits until Lab has saved ``key`` as
    ``value`` (the server answered the PUT that holds it)."""

    def holds(response: Response) -> bool:
        request = response.request
        url = urllib.parse.unquote(request.url)
        if request.method != "PUT" or "/lab/api/settings/hy2fa-lab:plugin" not in url:
            return False
        try:
            raw = json.loads(request.post_data or "{}")["raw"]
            # Lab writes the settings as JSON with its "// " comment lines in between.
            lines = (line for line in raw.splitlines() if not line.lstrip().startswith("//"))
            return bool(response.ok and json.loads("\n".join(lines)).get(key) == value)
        except (KeyError, ValueError, AttributeError):
            return False

    with page.expect_response(holds, timeout=0):
        yield


def shot_of(locator: Any, test: str, name: str) -> Path:
    """A screenshot of one element (a row, the sidebar, a dialog)."""
    directory = ARTIFACTS / re.sub(r"[^\w.-]", "_", test)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    locator.screenshot(path=str(path), animations="disabled")
    return path


def seconds(locator: Any) -> int:
    """The whole seconds a ticking element (``data-seconds``) shows now."""
    value = locator.get_attribute("data-seconds")
    assert value is not None, "no data-seconds"
    return int(value)


def expect_hostkey_question(question: Locator, fingerprint: str) -> None:
    """A host key's question as both sources show it: ssh's words with the fingerprint set
    off and in view (never folded away), which host it is for, and no field."""
    shown = question.locator(".jp-hy2fa-fingerprint")
    expect(shown).to_have_text(fingerprint)
    expect(shown).to_be_visible()
    expect(shown).to_be_in_viewport()
    expect(question.locator("details")).to_have_count(0)
    expect(question.locator(".jp-hy2fa-prompt-text")).to_contain_text(
        "Are you sure you want to continue connecting"
    )
    expect(question.locator(".jp-hy2fa-prompt-host")).to_have_text(
        re.compile(r"^for \[127\.0\.0\.1\]:\d+$")
    )
    expect(question.locator("input")).to_have_count(0)  # no field for a host key
