"""Keyboard and screen readers, in JupyterLab in Debian's Chromium: every control of the sidebar,
the prompt dialog and the status bar item found by its role and name (light and dark themes);
the field takes the focus when a prompt appears in the row being used or in the dialog, but
never from a notebook cell; Enter submits; Escape cancels the login in the row and closes the
dialog; the state is said in polite live regions."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browser import (
    Lab,
    add_prompt_host,
    keys_ready,
    open_lab_in,
    open_sidebar,
    row,
    seconds,
    set_theme,
    shot,
    shot_of,
    wait_for_state,
)
from helpers import SECRET, code
from playwright.sync_api import Page, expect

from hy2fa_lab.demo import sshserver

NOTEBOOK = "Typing.ipynb"
PLUGIN_SETTINGS = "/lab/api/settings/hy2fa-lab:plugin"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    server = Lab().start()
    server.write_notebook(NOTEBOOK, [{"cell_type": "code", "metadata": {}, "source": "",
                                      "outputs": [], "execution_count": None}])  # fmt: skip
    yield server
    server.stop()


UNNAMED = re.compile(r"^\s*- (button|textbox|searchbox|checkbox|combobox)(?: \[[^\]]*\])*:?$", re.M)


def assert_all_named(snapshot: str) -> None:
    """Every control in an ARIA snapshot has an accessible name."""
    unnamed = UNNAMED.findall(snapshot)
    assert not unnamed, f"controls without a name: {unnamed}\n{snapshot}"


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_every_control_has_a_role_and_a_name(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str, theme: str
) -> None:
    alias = "named" + theme.split()[-1].lower()
    server = prompt_server(sshserver.duo("424242"))
    add_prompt_host(lab, alias, server.port, "duouser")
    lab.api("PUT", PLUGIN_SETTINGS, {"raw": "{}"})  # "More clusters" folded, as at first
    open_lab_in(page, lab, f"a11y-{alias}")
    set_theme(page, theme)
    open_sidebar(page)
    sidebar = page.locator("#hy2fa-sidebar")
    expect(sidebar.get_by_role("heading", name="2FA connections")).to_be_visible()
    expect(sidebar.get_by_role("button", name="Refresh")).to_be_visible()
    expect(sidebar.get_by_role("heading", name="Your clusters")).to_be_visible()
    more = sidebar.get_by_role("button", name="More clusters")
    expect(more).to_have_attribute("aria-expanded", "false")
    more.click()
    expect(sidebar.get_by_role("searchbox", name="Filter clusters")).to_be_visible()
    expect(sidebar.get_by_role("button", name="Connect to Saga (Sigma2)")).to_be_visible()
    expect(sidebar.get_by_role("button", name="Pin Saga (Sigma2)")).to_have_attribute(
        "aria-pressed", "false"
    )
    expect(sidebar.get_by_role("listitem", name="Saga (Sigma2)")).to_have_count(1)
    status = page.get_by_role("button", name=re.compile(r"^2FA connections, \d+ connected"))
    expect(status).to_be_visible()

    sidebar.get_by_role("button", name=f"Connect to {alias}").click()
    item = sidebar.get_by_role("listitem", name=alias)
    expect(item.get_by_role("button", name="Duo Push to XXX-XXX-1234")).to_be_visible()
    expect(item.get_by_role("group", name="Log in with")).to_be_visible()
    expect(item.get_by_role("textbox", name="Passcode")).to_be_visible()
    expect(item.get_by_role("button", name="Submit")).to_be_visible()
    expect(item.get_by_role("button", name=f"Cancel the login to {alias}")).to_be_visible()
    expect(item.get_by_role("timer")).to_contain_text("Waiting for your answer")
    live = item.locator("[aria-live='polite']")
    expect(live).to_have_text(f"{alias} is waiting for your answer")
    assert_all_named(sidebar.aria_snapshot())
    shot_of(sidebar, test_name, "sidebar-roles")
    shot(page, test_name, "page")

    # The same login in the dialog (the sidebar closed): its controls are named too.
    item.get_by_role("button", name=f"Cancel the login to {alias}").click()
    wait_for_state(lab, alias, ("failed",))
    page.locator('[data-id="hy2fa-sidebar"]').click()
    expect(sidebar).to_be_hidden()
    lab.api("POST", "/hy2fa/connections", {"cluster": alias})
    dialog = page.get_by_role("dialog", name=f"Log in to {alias}")
    expect(dialog).to_be_visible()
    for name in ("Duo Push to XXX-XXX-1234", "Not now", "Cancel login", "Submit"):
        expect(dialog.get_by_role("button", name=name)).to_be_visible()
    expect(dialog.get_by_role("textbox", name="Passcode")).to_be_focused()
    assert_all_named(dialog.aria_snapshot())
    shot_of(dialog.locator(".jp-Dialog-content"), test_name, "dialog-roles")
    dialog.get_by_role("button", name="Cancel login").click()
    expect(dialog).to_have_count(0)
    if theme != "JupyterLab Light":
        set_theme(page, "JupyterLab Light")


def test_the_row_takes_the_focus_enter_submits_escape_cancels(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(lab, "keys", server.port, "keyboard")
    open_lab_in(page, lab, "a11y-keys")
    open_sidebar(page)
    connect = page.get_by_role("button", name="Connect to keys")
    connect.focus()
    page.keyboard.press("Enter")  # the keyboard alone
    item = page.locator(row("keys"))
    field = item.get_by_role("textbox", name=re.compile("Verification code"))
    expect(field).to_be_focused()  # the person is in the sidebar: the field is theirs
    wrong = f"{(int(code()) + 500000) % 1000000:06d}"
    page.keyboard.type(wrong)
    page.keyboard.press("Enter")
    expect(item.get_by_role("alert")).to_have_text("Wrong code — try again")
    field = item.get_by_role("textbox", name=re.compile("Verification code"))
    expect(field).to_be_focused()  # the next prompt's field, at once
    expect(field).to_have_value("")
    page.keyboard.press("Escape")  # cancels the login
    expect(page.locator(row("keys", "failed"))).to_be_visible()
    expect(item.get_by_role("alert")).to_have_text("Cancelled")
    assert wait_for_state(lab, "keys", ("failed",))["reason"] == "cancelled"
    shot_of(page.locator("#hy2fa-sidebar"), test_name, "cancelled")


def test_a_prompt_does_not_take_the_focus_from_a_notebook_cell(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(lab, "typing", server.port, "typist")
    page.goto(f"{lab.url}/lab/workspaces/a11y-typing/tree/{NOTEBOOK}?reset&token={lab.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    open_sidebar(page)  # visible, so no dialog: the row shows the prompt
    editor = page.locator(".jp-Notebook .jp-Cell .cm-content").first
    editor.click()
    page.keyboard.type("x = 1")
    lab.api("POST", "/hy2fa/connections", {"cluster": "typing"})  # as ensure() does
    item = page.locator(row("typing", "prompting"))
    field = item.get_by_role("textbox")
    expect(field).to_be_visible()
    # The row renders again when its time left ticks: by then whatever it does when the
    # prompt appears (taking the focus, wrongly) is done.
    left = item.get_by_role("timer")
    expect(left).to_have_attribute("data-seconds", re.compile(r"^\d+$"))
    expect(left).not_to_have_attribute("data-seconds", str(seconds(left)))
    expect(field).not_to_be_focused()
    page.keyboard.type("2")  # still typing in the cell
    expect(editor).to_contain_text("x = 12")
    expect(field).to_have_value("")
    expect(item.locator("[aria-live='polite']")).to_have_text("typing is waiting for your answer")
    expect(page.get_by_role("dialog")).to_have_count(0)
    shot(page, test_name, "cell-keeps-focus")


def test_the_dialog_takes_the_focus_enter_submits_escape_closes(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(lab, "dialogkeys", server.port, "keyboard")
    open_lab_in(page, lab, "a11y-dialog")
    lab.api("POST", "/hy2fa/connections", {"cluster": "dialogkeys"})
    dialog = page.get_by_role("dialog", name="Log in to dialogkeys")
    field = dialog.get_by_role("textbox", name=re.compile("Verification code"))
    expect(field).to_be_focused()
    keys_ready(dialog)  # Enter counts (right after it popped up, it was the notebook's)
    page.keyboard.press("Enter")  # empty: nothing is sent, the dialog stays
    expect(dialog).to_be_visible()
    assert wait_for_state(lab, "dialogkeys", ("prompting",))["message"] == ""
    page.keyboard.type(f"{(int(code()) + 500000) % 1000000:06d}")
    page.keyboard.press("Enter")
    # The same dialog asks again, its field focused.
    expect(dialog.get_by_role("alert")).to_have_text("Wrong code — try again")
    field = dialog.get_by_role("textbox", name=re.compile("Verification code"))
    expect(field).to_be_focused()
    expect(page.get_by_role("dialog")).to_have_count(1)
    shot_of(dialog.locator(".jp-Dialog-content"), test_name, "asks-again")
    page.keyboard.press("Escape")  # not now: the dialog closes, the login waits on
    expect(dialog).to_have_count(0)
    assert wait_for_state(lab, "dialogkeys", ("prompting",))
    open_sidebar(page)
    item = page.locator(row("dialogkeys", "prompting"))
    expect(item).to_be_visible()
    field = item.get_by_role("textbox")
    field.fill(code())
    field.press("Enter")
    expect(page.locator(row("dialogkeys", "connected"))).to_be_visible()
    expect(page.locator(row("dialogkeys")).locator("[aria-live='polite']")).to_have_text(
        "Connected to dialogkeys"
    )
