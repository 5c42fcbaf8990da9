"""A master a notebook's own ssh made, in Debian's Chromium: listed as what it is ("made by
ssh in Analysis.ipynb"), apart from the row of the cluster of the same name, with a
Disconnect of its own that stops that master and nothing else.

The cell runs ssh as HSP does (its own ControlPath, no terminal); its questions go through
the askpass bridge and are answered over REST (the dialogs have tests of their own).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import Lab, open_sidebar, row, set_theme, shot
from playwright.sync_api import Page, expect
from test_browser_asks import PLUGIN_SETTINGS, finished, open_notebook, run_cell, ssh_cell

from hy2fa_lab.core import mux

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd
except ImportError:
    from sshd_fixture import RealSshd  # type: ignore[no-redef]

pytestmark = pytest.mark.sshd

NOTEBOOK = "Analysis.ipynb"
MASTERS = ".jp-hy2fa-masters"


@pytest.fixture
def lab() -> Iterator[Lab]:
    server = Lab().start()
    server.write_notebook(NOTEBOOK)
    # Questions are answered over REST here: no dialog on top of the sidebar.
    server.api("PUT", PLUGIN_SETTINGS, {"raw": json.dumps({"askDialogs": False})})
    yield server
    server.stop()


def answer_next_ask(lab: Lab, seen: set[str], response: str) -> dict[str, Any]:
    """Answer the next question the bridge holds (waits for it: no fixed bound)."""
    while True:
        fresh = [a for a in lab.api("GET", "/hy2fa/asks")["asks"] if a["id"] not in seen]
        if fresh:
            ask: dict[str, Any] = fresh[0]
            seen.add(ask["id"])
            lab.api("POST", f"/hy2fa/asks/{ask['id']}/answer", {"response": response})
            return ask
        time.sleep(0.05)


def test_a_notebooks_own_master_is_listed_as_made_by_its_ssh(
    page: Page, lab: Lab, real_sshd: RealSshd, request: pytest.FixtureRequest
) -> None:
    test_name = str(request.node.name)
    config = real_sshd.write_client_config(lab.dir / "fx.conf", alias="fx")
    lab.add_host(config.read_text())  # the cluster fx, whose own socket is another one
    socket_path: Path = lab.dir / "hsp.sock"
    try:
        open_notebook(page, lab, "masters")
        cell = run_cell(page, ssh_cell(config, socket_path, "fx"))
        ask = answer_next_ask(lab, set(), real_sshd.totp())
        assert ask["prompt"]["kind"] == "otp"
        finished(cell)
        expect(cell.locator(".jp-OutputArea-output")).to_contain_text("STATUS=0")
        pid = mux.alive(str(socket_path))
        assert pid is not None

        open_sidebar(page)
        master = page.locator(f"{MASTERS} .jp-hy2fa-row")
        expect(master).to_have_count(1)
        expect(master.locator(".jp-hy2fa-label")).to_have_text("fx")
        expect(master.locator(".jp-hy2fa-made-by")).to_have_text(f"made by ssh in {NOTEBOOK}")
        expect(master).to_have_attribute("data-state", "connected")
        expect(master.locator(".jp-hy2fa-where")).to_have_attribute("title", str(socket_path))
        # The cluster's own row is its own socket's: not connected by the notebook's master.
        expect(page.locator(row("fx"))).not_to_have_attribute("data-state", "connected")
        expect(page.locator(row("fx")).get_by_role("button", name="Connect")).to_be_visible()
        shot(page, test_name, "masters-light")
        set_theme(page, "JupyterLab Dark")
        shot(page, test_name, "masters-dark")
        set_theme(page, "JupyterLab Light")

        master.get_by_role("button", name="Disconnect fx").click()
        expect(page.locator(MASTERS)).to_have_count(0)
        assert mux.alive(str(socket_path)) is None
    finally:
        if socket_path.exists():
            mux.stop(str(socket_path))
