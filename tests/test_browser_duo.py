"""Duo, bastions and the wait, in JupyterLab in Debian's Chromium: a Duo menu as buttons and a
passcode field (in a row and in the dialog), a push waiting for the phone with the seconds and
ssh's own lines, a push that times out, a typed passcode; which host a bastion's question is
for; "Connecting to …" and "Checking…" with their seconds; and a master that goes away on its
own (a notification with Reconnect)."""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from browser import (
    Lab,
    add_prompt_host,
    keys_ready,
    open_lab_in,
    open_sidebar,
    row,
    row_fields_cleared,
    seconds,
    set_theme,
    shot,
    shot_of,
    wait_for_state,
)
from helpers import SECRET, code
from playwright.sync_api import Locator, Page, expect

from hy2fa_lab.demo import sshserver

PASSCODE = "424242"
VERIFIED_PUSH = "Enter this code in Duo Mobile: 318604"
PUSH_OPTION = "Duo Push to XXX-XXX-1234"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    server = Lab().start()
    yield server
    server.stop()


def duo_push(delay: float = 4, approve: bool = True) -> sshserver.PromptScript:
    return sshserver.duo(
        PASSCODE,
        push=sshserver.Push(
            lines=(sshserver.DUO_PUSHED, VERIFIED_PUSH), delay=delay, approve=approve
        ),
    )


def connect_in_sidebar(page: Page, lab: Lab, alias: str, workspace: str) -> Locator:
    open_lab_in(page, lab, workspace)
    open_sidebar(page)
    page.locator(row(alias)).get_by_role("button", name=f"Connect to {alias}").click()
    prompting = page.locator(row(alias, "prompting"))
    expect(prompting).to_be_visible()
    return prompting


def expect_ticking(timer: Locator) -> None:
    """The seconds go up by themselves, without anything else happening, and say so."""
    expect(timer).to_have_attribute("data-seconds", re.compile(r"^\d+$"))
    first = seconds(timer)
    expect(timer).not_to_have_attribute("data-seconds", str(first))
    later, text = timer.evaluate("el => [Number(el.dataset.seconds), el.textContent]")
    assert later > first, (first, later)
    assert text == f"{later} s", text


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_duo_menu_is_buttons_and_a_push_shows_the_wait_and_ssh_lines(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str, theme: str
) -> None:
    alias = f"duo{theme}"
    server = prompt_server(duo_push(delay=4))
    add_prompt_host(lab, alias, server.port, "duouser")
    open_lab_in(page, lab, f"duo-{theme}")
    if theme == "dark":
        set_theme(page, "JupyterLab Dark")
    open_sidebar(page)
    page.locator(row(alias)).get_by_role("button", name=f"Connect to {alias}").click()
    prompting = page.locator(row(alias, "prompting"))
    expect(prompting).to_be_visible()

    # One button per option, in ssh's words, and a passcode field; the menu itself folded.
    push = prompting.get_by_role("button", name=PUSH_OPTION)
    expect(push).to_be_visible()
    expect(prompting.get_by_role("group", name="Log in with").get_by_role("button")).to_have_count(
        1
    )
    passcode = prompting.get_by_role("textbox", name="Passcode")
    expect(passcode).to_be_visible()
    expect(passcode).to_have_attribute("inputmode", "numeric")
    expect(prompting.locator(".jp-hy2fa-prompt-title")).to_have_text(
        "Duo two-factor login for duouser"
    )
    expect(prompting.locator(".jp-hy2fa-prompt-text")).to_be_hidden()  # in "What ssh asked"
    left = prompting.get_by_role("timer")
    expect(left).to_contain_text("Waiting for your answer:")
    assert 0 < seconds(left) <= 60  # of the Lab's prompt_timeout (60 s), however busy the machine
    sidebar = page.locator("#hy2fa-sidebar")
    shot_of(sidebar, test_name, "duo-buttons")

    push.click()
    waiting = page.locator(row(alias, "verifying"))
    expect(waiting).to_be_visible()
    expect(waiting.locator(".jp-hy2fa-progress-text")).to_have_text(
        "Approve the request on your phone"
    )
    expect(waiting.locator(".jp-hy2fa-choice")).to_have_text(f"You chose {PUSH_OPTION}")
    expect(waiting.locator(".jp-hy2fa-state")).to_have_text("On your phone")
    lines = waiting.get_by_role("log", name="What ssh says").locator("li")
    expect(lines).to_have_text([sshserver.DUO_PUSHED, VERIFIED_PUSH])
    expect_ticking(waiting.get_by_role("timer"))
    shot_of(sidebar, test_name, "push-waiting")
    shot(page, test_name, "push-waiting-page")
    expect(page.locator(".jp-hy2fa-status-item")).to_have_attribute("data-state", "pending")

    # The phone said yes: ssh goes on, and the row says so.
    connected = page.locator(row(alias, "connected"))
    expect(connected).to_be_visible()
    expect(connected.locator(".jp-hy2fa-lines")).to_have_count(0)
    expect(page.locator(".jp-hy2fa-status-item")).to_have_attribute("data-state", "connected")
    if theme == "dark":
        set_theme(page, "JupyterLab Light")


def test_a_push_that_times_out_says_so(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(duo_push(delay=1, approve=False))
    add_prompt_host(lab, "duonope", server.port, "duouser")
    prompting = connect_in_sidebar(page, lab, "duonope", "duo-timeout")
    prompting.get_by_role("button", name=PUSH_OPTION).click()
    row_ = page.locator(row("duonope"))
    # ssh's own words, verbatim, once the "phone" gave up: in the next prompt's message, or
    # in the failure when ssh asks no more.
    expect(row_).to_contain_text(sshserver.DUO_TIMED_OUT)
    expect(row_).to_have_attribute("data-state", "prompting")
    expect(row_.locator(".jp-hy2fa-message")).to_have_text(f"{sshserver.DUO_TIMED_OUT} — try again")
    expect(row_.get_by_role("button", name=PUSH_OPTION)).to_be_visible()  # asked again
    shot_of(page.locator("#hy2fa-sidebar"), test_name, "push-timed-out")


def test_a_typed_passcode_shows_checking_then_connects(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    async def slow_check(answer: str) -> bool:
        await asyncio.sleep(3)  # the server takes its time: "Checking…" shows meanwhile
        return answer == PASSCODE

    server = prompt_server(sshserver.duo(slow_check))
    add_prompt_host(lab, "duocode", server.port, "duouser")
    prompting = connect_in_sidebar(page, lab, "duocode", "duo-code")
    passcode = prompting.get_by_role("textbox", name="Passcode")
    expect(passcode).to_be_focused()  # the person clicked Connect here: the field is theirs
    passcode.fill(PASSCODE)
    passcode.press("Enter")
    row_fields_cleared(page, "duocode")  # the code stays nowhere
    checking = page.locator(row("duocode", "verifying"))
    expect(checking.locator(".jp-hy2fa-progress-text")).to_have_text("Checking…")
    expect(checking.locator(".jp-hy2fa-choice")).to_have_count(0)  # a code, not an option
    expect_ticking(checking.get_by_role("timer"))
    shot_of(page.locator("#hy2fa-sidebar"), test_name, "checking")
    expect(page.locator(row("duocode", "connected"))).to_be_visible()
    assert PASSCODE not in page.locator("body").inner_text()
    assert (
        page.evaluate("() => [...document.querySelectorAll('input')].map(i => i.value)").count(
            PASSCODE
        )
        == 0
    )


def test_duo_in_the_dialog_stays_open_for_the_push_then_closes(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(duo_push(delay=4))
    add_prompt_host(lab, "duodialog", server.port, "duouser")
    open_lab_in(page, lab, "duo-dialog")  # the sidebar stays closed
    set_theme(page, "JupyterLab Dark")  # the row's test has the light one
    lab.api("POST", "/hy2fa/connections", {"cluster": "duodialog"})  # as ensure() does
    dialog = page.get_by_role("dialog", name="Log in to duodialog")
    expect(dialog).to_be_visible()
    push = dialog.get_by_role("button", name=PUSH_OPTION)
    expect(push).to_be_visible()
    expect(dialog.get_by_role("textbox", name="Passcode")).to_be_focused()  # the dialog's
    shot_of(dialog.locator(".jp-Dialog-content"), test_name, "duo-buttons-dark")

    push.click()
    expect(dialog.locator(".jp-hy2fa-progress-text")).to_have_text(
        "Approve the request on your phone"
    )
    expect(dialog.get_by_role("log", name="What ssh says").locator("li")).to_have_text(
        [sshserver.DUO_PUSHED, VERIFIED_PUSH]
    )
    expect_ticking(dialog.get_by_role("timer"))
    expect(dialog.get_by_role("button", name="Submit")).to_be_disabled()
    shot_of(dialog.locator(".jp-Dialog-content"), test_name, "push-waiting-dark")
    expect(dialog).to_have_count(0)  # approved: the login is over
    expect(page.locator(".jp-toast-message", has_text="Connected to duodialog")).to_be_visible()
    assert wait_for_state(lab, "duodialog", ("connected",))["master_pid"]
    set_theme(page, "JupyterLab Light")


def test_a_bastion_question_says_which_host_it_is_for(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    bastion_secret = pyotp.random_base32()
    bastion = prompt_server(
        sshserver.PromptScript(
            [
                sshserver.PromptStep(
                    "Verification code: ", expected=sshserver.totp_check(bastion_secret)
                )
            ],
            bastion=True,
        ),
        allow_commands=False,
    )
    inner = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(lab, "hop", bastion.port, "hopper", "  LogLevel ERROR\n")
    add_prompt_host(lab, "inner", inner.port, "tester", "  ProxyJump hop\n  LogLevel ERROR\n")

    # In the row: the jump host asks first, then the cluster.
    prompting = connect_in_sidebar(page, lab, "inner", "bastion-row")
    host = prompting.locator(".jp-hy2fa-prompt-host")
    expect(host).to_have_text("for hopper@127.0.0.1")
    shot_of(page.locator("#hy2fa-sidebar"), test_name, "bastion-row")
    field = prompting.get_by_role("textbox")
    field.fill(pyotp.TOTP(bastion_secret).now())
    field.press("Enter")
    expect(host).to_have_text("for tester@127.0.0.1")
    page.locator(row("inner", "prompting")).get_by_role("button", name="Cancel").click()
    wait_for_state(lab, "inner", ("failed", "disconnected"))

    # In the dialog: the same words.
    page.locator('[data-id="hy2fa-sidebar"]').click()  # the sidebar closes
    expect(page.locator("#hy2fa-sidebar")).to_be_hidden()
    lab.api("POST", "/hy2fa/connections", {"cluster": "inner"})
    dialog = page.get_by_role("dialog", name="Log in to inner")
    expect(dialog.locator(".jp-hy2fa-prompt-host")).to_have_text("for hopper@127.0.0.1")
    shot_of(dialog.locator(".jp-Dialog-content"), test_name, "bastion-dialog")
    dialog.get_by_role("textbox").fill(pyotp.TOTP(bastion_secret).now())
    keys_ready(dialog)
    dialog.get_by_role("textbox").press("Enter")
    # The same dialog asks the cluster's question next.
    expect(dialog.locator(".jp-hy2fa-prompt-host")).to_have_text("for tester@127.0.0.1")
    dialog.get_by_role("textbox").fill(code())
    dialog.get_by_role("textbox").press("Enter")
    expect(dialog).to_have_count(0)
    assert wait_for_state(lab, "inner", ("connected",))["master_pid"]


def test_starting_says_where_it_connects_with_the_seconds(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    slow = sshserver.PromptScript(
        [sshserver.PromptStep("Verification code: ", expected=sshserver.totp_check(SECRET))],
        delay=4,  # before its question: the login stays "starting"
    )
    server = prompt_server(slow)
    add_prompt_host(lab, "slow", server.port, "slowpoke")
    open_lab_in(page, lab, "starting")
    open_sidebar(page)
    page.locator(row("slow")).get_by_role("button", name="Connect to slow").click()
    starting = page.locator(row("slow", "starting"))
    expect(starting.locator(".jp-hy2fa-progress-text")).to_have_text("Connecting to 127.0.0.1…")
    expect_ticking(starting.get_by_role("timer"))
    shot_of(page.locator("#hy2fa-sidebar"), test_name, "starting")
    expect(page.locator(row("slow", "prompting"))).to_be_visible()


def test_a_master_that_goes_away_notifies_with_reconnect(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(lab, "saga2", server.port, "kari")
    open_lab_in(page, lab, "lost")
    lab.api("POST", "/hy2fa/connections", {"cluster": "saga2"})
    dialog = page.get_by_role("dialog", name="Log in to saga2")
    expect(dialog.get_by_role("textbox")).to_be_focused()
    page.keyboard.type(code())
    keys_ready(dialog)
    page.keyboard.press("Enter")
    view = wait_for_state(lab, "saga2", ("connected",))
    status = page.locator(".jp-hy2fa-status-item")
    expect(status).to_have_attribute("data-live", "1")
    expect(page.locator(".jp-toast-message", has_text="Connected to saga2")).to_be_visible()

    # Killed behind everyone's back; the server notices (it waits on the master's exit too).
    master = os.pidfd_open(view["master_pid"])
    try:
        os.kill(view["master_pid"], signal.SIGTERM)
        select.select([master], [], [])  # readable once the master has exited
    finally:
        os.close(master)
    lab.api("GET", "/hy2fa/connections")  # a look, as a poll would take
    toast = page.locator(".jp-toast-message", has_text="saga2 disconnected")
    expect(toast).to_be_visible()
    expect(status).to_have_attribute("data-live", "0")
    expect(status).to_have_attribute("data-lost", "1")
    expect(status).to_have_attribute(
        "aria-label", "2FA connections, 0 connected, 1 connection lost"
    )
    expect(page.locator(".jp-hy2fa-status-lost")).to_have_text("!1")
    reconnect = page.get_by_role("button", name="Reconnect")
    expect(reconnect).to_be_in_viewport(ratio=1)  # the toast has slid in
    shot(page, test_name, "disconnect-notification")
    set_theme(page, "JupyterLab Dark")
    shot(page, test_name, "disconnect-notification-dark")
    set_theme(page, "JupyterLab Light")

    # Reconnect: a new login, whose prompt pops up (the sidebar is closed).
    reconnect.click()
    dialog = page.get_by_role("dialog", name="Log in to saga2")
    expect(dialog.get_by_role("textbox")).to_be_visible()
    expect(toast).to_have_count(0)
    expect(status).to_have_attribute("data-lost", "0")
    dialog.get_by_role("button", name="Cancel login").click()
    wait_for_state(lab, "saga2", ("failed", "disconnected"))
    expect(page.locator(".jp-toast-message", has_text="saga2 disconnected")).to_have_count(0)


def test_a_disconnect_asked_for_does_not_notify(
    page: Page, lab: Lab, prompt_server: Callable[..., Any]
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(lab, "asked", server.port, "kari")
    prompting = connect_in_sidebar(page, lab, "asked", "asked")
    field = prompting.get_by_role("textbox")
    field.fill(code())
    field.press("Enter")
    connected = page.locator(row("asked", "connected"))
    expect(connected).to_be_visible()
    connected.get_by_role("button", name="Disconnect asked").click()
    expect(page.locator(row("asked", "disconnected"))).to_be_visible()
    # The page's model took the change the row shows: a master it counted as lost would be
    # in the status bar by now, with the notification made from the same signal.
    expect(page.locator(".jp-hy2fa-status-item")).to_have_attribute("data-live", "0")
    expect(page.locator(".jp-hy2fa-status-item")).to_have_attribute("data-lost", "0")
    expect(page.locator(".jp-toast-message", has_text="disconnected")).to_have_count(0)
