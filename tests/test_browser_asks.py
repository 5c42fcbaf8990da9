"""Questions of a kernel's own ssh, asked in JupyterLab (the askpass bridge), in Debian's
Chromium: a notebook cell runs ssh against the real sshd, and its host-key and code questions
pop up in Lab, where Trust, a typed code and Cancel reach that ssh.

The cells run ssh as a workflow tool does (``subprocess``, no terminal) and as a person
types it (``!ssh``: IPython runs it under a pseudo-terminal of its own, and the server, which
sees the kernel above that ssh, still asks in Lab).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import (
    Lab,
    expect_hostkey_question,
    keys_ready,
    open_sidebar,
    set_theme,
    shot,
    shot_of,
)
from playwright.sync_api import Locator, Page, expect

from hy2fa_lab.core import mux

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd
except ImportError:
    from sshd_fixture import RealSshd  # type: ignore[no-redef]

pytestmark = pytest.mark.sshd

NOTEBOOK = "Analysis.ipynb"
BANG_NOTEBOOK = "Bang.ipynb"  # a kernel of its own: a hung !ssh there blocks no other test
DIALOG = ".jp-hy2fa-ask-dialog"
PLUGIN_SETTINGS = "/lab/api/settings/hy2fa-lab:plugin"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    server = Lab().start()
    for name in (NOTEBOOK, BANG_NOTEBOOK):
        server.write_notebook(name)
    yield server
    server.stop()


@pytest.fixture
def control_path(lab: Lab) -> Iterator[Path]:
    """The cell's own ControlPath (as a workflow tool picks one); its master is stopped after."""
    path = lab.dir / "x.sock"
    yield path
    if path.exists():
        mux.stop(str(path))


def open_notebook(page: Page, lab: Lab, workspace: str, notebook: str = NOTEBOOK) -> None:
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={lab.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle")


def run_cell(page: Page, source: str) -> Locator:
    """Type ``source`` into the notebook's last cell and run it; returns that cell."""
    cells = page.locator(".jp-Notebook .jp-Cell")
    cell = cells.nth(cells.count() - 1)  # fixed: Shift+Enter appends a new last cell
    cell.locator(".cm-content").click()
    page.keyboard.insert_text(source)  # no key events: no auto-closed brackets
    page.keyboard.press("Shift+Enter")
    return cell


def finished(cell: Locator) -> None:
    expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"))


def ssh_argv(config: Path, control_path: Path, alias: str) -> list[str]:
    return [
        "ssh", "-F", str(config), "-o", "ControlMaster=auto",
        "-o", f"ControlPath={control_path}", "-o", "ControlPersist=60", alias, "echo", "ok",
    ]  # fmt: skip


def ssh_cell(config: Path, control_path: Path, alias: str) -> str:
    """One line of Python that runs ssh without a terminal and prints what it said."""
    return (
        f"import subprocess; r = subprocess.run({ssh_argv(config, control_path, alias)!r}, "
        "stdin=subprocess.DEVNULL, capture_output=True, text=True); "
        "print(r.stdout + r.stderr + f'STATUS={r.returncode}')"
    )


def set_ask_dialogs(lab: Lab, on: bool) -> None:
    lab.api("PUT", PLUGIN_SETTINGS, {"raw": json.dumps({"askDialogs": on})})


def test_a_cells_ssh_asks_in_a_dialog_trust_then_code(
    page: Page, lab: Lab, real_sshd: RealSshd, control_path: Path, test_name: str
) -> None:
    config = real_sshd.write_client_config(lab.dir / "fx.conf", alias="fx", trust_host_key=False)
    open_notebook(page, lab, "asks-dialog")
    cell = run_cell(page, ssh_cell(config, control_path, "fx"))

    dialog = page.locator(DIALOG)
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-label", re.compile("^Unknown host key for "))
    expect(dialog.locator(".jp-hy2fa-prompt-text")).to_contain_text(real_sshd.host_key_fingerprint)
    expect(dialog.locator(".jp-hy2fa-fingerprint")).to_have_text(real_sshd.host_key_fingerprint)
    expect(dialog.locator(".jp-hy2fa-prompt-text")).to_contain_text(
        "Are you sure you want to continue connecting"
    )
    expect(dialog.locator(".jp-hy2fa-ask-origin")).to_have_text(f"from {NOTEBOOK}")
    expect(dialog.locator(".jp-hy2fa-ask-command")).to_contain_text(
        f"ssh -F {config} -o ControlMaster=auto -o ControlPath={control_path}"
    )
    expect(dialog.locator("input")).to_have_count(0)  # no field for a host key
    expect(dialog.locator(".jp-Dialog-footer .jp-Dialog-button")).to_have_text(
        ["Cancel", "Reject", "Trust"]
    )
    keys_ready(dialog)
    page.keyboard.press("Enter")  # a stray Enter does not trust a host key
    expect(dialog).to_be_visible()  # an answer would have closed it at once
    assert [ask["prompt"]["kind"] for ask in lab.api("GET", "/hy2fa/asks")["asks"]] == ["hostkey"]
    shot(page, test_name, "hostkey-dialog")
    dialog.get_by_role("button", name="Trust").click()

    field = page.locator(f"{DIALOG} input[type='password']")
    expect(field).to_be_visible()
    expect(dialog).to_have_attribute("aria-label", "ssh to 127.0.0.1 asks")
    expect(dialog.locator(".jp-hy2fa-prompt-text")).to_have_text(
        f"({real_sshd.user}@127.0.0.1) Verification code: "
    )
    expect(dialog.locator(".jp-hy2fa-ask-origin")).to_have_text(f"from {NOTEBOOK}")
    expect(field).to_have_attribute("autocomplete", "off")
    expect(field).to_be_focused()
    # How long the cell's ssh still waits, counting down as a connection's login does.
    timer = dialog.get_by_role("timer")
    left = re.compile(r"^Waiting for your answer: (\d+ s|1 min( \d+ s)?) left$")
    expect(timer).to_have_text(left)
    assert 0 < int(timer.get_attribute("data-seconds") or 0) <= 60  # prompt_timeout, browser.py
    expect(page.locator(".jp-hy2fa-status-asks")).to_have_text("?1")
    keys_ready(dialog)  # past the guard against Enter typed for the notebook
    page.keyboard.type(real_sshd.totp())
    expect(field).not_to_have_value("")
    shot(page, test_name, "code-dialog")
    page.keyboard.press("Enter")
    expect(dialog).to_have_count(0)

    finished(cell)
    output = cell.locator(".jp-OutputArea-output")
    expect(output).to_contain_text("ok")
    expect(output).to_contain_text("STATUS=0")
    assert re.search(r"^ok$", output.inner_text(), re.MULTILINE), output.inner_text()
    expect(page.locator(".jp-hy2fa-status-asks")).to_have_count(0)
    assert lab.api("GET", "/hy2fa/asks")["asks"] == []
    assert mux.alive(str(control_path)) is not None  # the cell's own master stays up


def test_cancel_in_the_dialog_ends_the_cells_ssh(
    page: Page, lab: Lab, real_sshd: RealSshd, control_path: Path, test_name: str
) -> None:
    config = real_sshd.write_client_config(lab.dir / "fy.conf", alias="fy")
    open_notebook(page, lab, "asks-cancel")
    set_theme(page, "JupyterLab Dark")
    try:
        cell = run_cell(page, ssh_cell(config, control_path, "fy"))
        dialog = page.locator(DIALOG)
        field = dialog.locator("input[type='password']")
        expect(field).to_be_visible()
        shot(page, test_name, "code-dialog-dark")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_have_count(0)
        finished(cell)
        output = cell.locator(".jp-OutputArea-output")
        expect(output).to_contain_text("Cancelled in JupyterLab")
        text = output.inner_text()
        status = re.search(r"STATUS=(-?\d+)", text)
        assert status and status.group(1) != "0", text
        assert not re.search(r"^ok$", text, re.MULTILINE), text
        assert lab.api("GET", "/hy2fa/asks")["asks"] == []

        # Escape is Cancel too (at once: it is no key typed for the notebook).
        cell = run_cell(page, ssh_cell(config, control_path, "fy"))
        expect(field).to_be_visible()
        page.keyboard.press("Escape")
        expect(dialog).to_have_count(0)
        finished(cell)
        expect(cell.locator(".jp-OutputArea-output")).to_contain_text("Cancelled in JupyterLab")
    finally:
        set_theme(page, "JupyterLab Light")


def test_the_sidebar_lists_the_questions_and_answers_them(
    page: Page, lab: Lab, real_sshd: RealSshd, control_path: Path, test_name: str
) -> None:
    config = real_sshd.write_client_config(lab.dir / "fz.conf", alias="fz", trust_host_key=False)
    set_ask_dialogs(lab, False)
    try:
        open_notebook(page, lab, "asks-sidebar")
        open_sidebar(page)
        cell = run_cell(page, ssh_cell(config, control_path, "fz"))
        section = page.locator("#hy2fa-sidebar .jp-hy2fa-asks")
        expect(section.get_by_role("heading", name="Questions from ssh")).to_be_visible()
        item = section.locator(".jp-hy2fa-ask-item[data-prompt-kind='hostkey']")
        expect_hostkey_question(item, real_sshd.host_key_fingerprint)
        expect(item.locator(".jp-hy2fa-ask-origin")).to_have_text(f"from {NOTEBOOK}")
        # The same two buttons as a connection's login to a new host (test_browser.py).
        trust = item.get_by_role("button", name="Trust", exact=True)
        expect(trust).to_have_class(re.compile(r"\bjp-mod-accept\b"))
        expect(item.get_by_role("button", name="Reject", exact=True)).to_have_class(
            re.compile(r"\bjp-mod-warn\b")
        )
        expect(item.get_by_role("button", name="Cancel", exact=True)).to_be_visible()
        expect(page.locator(DIALOG)).to_have_count(0)  # dialogs are off
        sidebar = page.locator("#hy2fa-sidebar")
        shot_of(sidebar, test_name, "hostkey-ask-row-light")
        set_theme(page, "JupyterLab Dark")
        shot_of(sidebar, test_name, "hostkey-ask-row-dark")
        set_theme(page, "JupyterLab Light")
        trust.click()

        item = section.locator(".jp-hy2fa-ask-item[data-prompt-kind='otp']")
        field = item.locator("input[type='password']")
        expect(field).to_be_visible()
        expect(field).to_have_attribute("autocomplete", "off")
        expect(item.get_by_role("button", name="Cancel")).to_be_visible()
        expect(item.get_by_role("timer")).to_contain_text("Waiting for your answer")
        set_theme(page, "JupyterLab Dark")
        shot(page, test_name, "sidebar-code-dark")
        set_theme(page, "JupyterLab Light")
        field.fill(real_sshd.totp())
        field.press("Enter")
        expect(section).to_have_count(0)
        finished(cell)
        expect(cell.locator(".jp-OutputArea-output")).to_contain_text("STATUS=0")
    finally:
        set_ask_dialogs(lab, True)


def test_asks_queue_one_dialog_at_a_time_and_close_when_settled_elsewhere(
    page: Page, lab: Lab, real_sshd: RealSshd, test_name: str
) -> None:
    config = real_sshd.write_client_config(lab.dir / "fq.conf", alias="fq")
    paths = [lab.dir / "q1.sock", lab.dir / "q2.sock"]
    open_notebook(page, lab, "asks-queue")
    argvs = [ssh_argv(config, path, "fq") for path in paths]
    cell = run_cell(
        page,
        "import subprocess; ps = []\n"
        f"for argv in {argvs!r}: ps.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, "
        "stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))\n"
        "for p in ps: print(p.communicate()[0].strip(), f'STATUS={p.returncode}')",
    )
    try:
        dialog = page.locator(DIALOG)
        expect(page.locator(".jp-hy2fa-status-asks")).to_have_text("?2")
        expect(dialog).to_have_count(1)  # one at a time: the other waits its turn
        first = dialog.get_attribute("data-ask-id")
        waiting = [ask["id"] for ask in lab.api("GET", "/hy2fa/asks")["asks"]]
        assert first in waiting and len(waiting) == 2, waiting
        # Settled elsewhere (another tab, the REST API): the dialog closes, the next one shows.
        lab.api("DELETE", f"/hy2fa/asks/{first}")
        expect(dialog).to_have_count(1)
        expect(dialog).not_to_have_attribute("data-ask-id", first or "")
        second = dialog.get_attribute("data-ask-id")
        assert second in waiting and second != first
        expect(page.locator(".jp-hy2fa-status-asks")).to_have_text("?1")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_have_count(0)
        finished(cell)
        text = cell.locator(".jp-OutputArea-output").inner_text()
        assert text.count("Cancelled in JupyterLab") == 2, text
        assert "STATUS=0" not in text, text
    finally:
        for path in paths:
            if path.exists():
                mux.stop(str(path))


def test_bang_ssh_asks_in_lab(
    page: Page, lab: Lab, real_sshd: RealSshd, control_path: Path, test_name: str
) -> None:
    """A kernel's ``!ssh`` to a host not yet known: its host-key question is the one a
    connection's login to a new host asks (test_browser.py), with the same buttons."""
    config = real_sshd.write_client_config(lab.dir / "fb.conf", alias="fb", trust_host_key=False)
    open_notebook(page, lab, "asks-bang", BANG_NOTEBOOK)
    try:
        argv = " ".join(ssh_argv(config, control_path, "fb"))
        cell = run_cell(page, f"!{argv}; echo STATUS=$?")
        dialog = page.locator(DIALOG)
        expect(dialog).to_have_attribute("data-prompt-kind", "hostkey")
        expect_hostkey_question(
            dialog.locator(".jp-hy2fa-question"), real_sshd.host_key_fingerprint
        )
        expect(dialog.locator(".jp-hy2fa-ask-origin")).to_have_text(f"from {BANG_NOTEBOOK}")
        footer = dialog.locator(".jp-Dialog-footer .jp-Dialog-button")
        expect(footer).to_have_text(["Cancel", "Reject", "Trust"])
        expect(footer.nth(1)).to_have_class(re.compile(r"\bjp-mod-warn\b"))
        expect(footer.nth(2)).to_have_class(re.compile(r"\bjp-mod-accept\b"))
        expect(dialog.locator(".jp-hy2fa-question button")).to_have_count(0)  # the footer answers
        content = dialog.locator(".jp-Dialog-content")
        shot_of(content, test_name, "hostkey-ask-light")
        set_theme(page, "JupyterLab Dark")
        shot_of(content, test_name, "hostkey-ask-dark")
        set_theme(page, "JupyterLab Light")
        dialog.get_by_role("button", name="Trust", exact=True).click()
        dialog = page.locator(f"{DIALOG}[data-prompt-kind='otp']")
        expect(dialog.locator("input[type='password']")).to_be_focused()
        keys_ready(dialog)
        page.keyboard.type(real_sshd.totp())
        page.keyboard.press("Enter")
        finished(cell)
        expect(cell.locator(".jp-OutputArea-output")).to_contain_text("STATUS=0")
    finally:
        for session in lab.api("GET", "/api/sessions"):
            if session["path"] == BANG_NOTEBOOK:
                lab.api("DELETE", f"/api/sessions/{session['id']}")
