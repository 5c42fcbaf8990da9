"""JupyterLab in Debian's Chromium: the sidebar, the dialog and the status bar, for real."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
from browser import (
    Lab,
    answer_in_row,
    expect_hostkey_question,
    keys_ready,
    new_page,
    open_lab,
    open_lab_in,
    open_sidebar,
    row,
    set_theme,
    shot,
    shot_of,
    wait_for_state,
)
from helpers import SECRET, code, otp_ok
from playwright.sync_api import Browser, Page, expect

from hy2fa_lab.core import mux
from hy2fa_lab.demo import sshserver

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd
except ImportError:
    from sshd_fixture import RealSshd  # type: ignore[no-redef]

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    server = Lab().start()
    yield server
    server.stop()


def prompt_host(lab: Lab, alias: str, port: int, user: str) -> None:
    lab.add_host(
        f"Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n"
        f"  UserKnownHostsFile {lab.dir}/known_hosts\n  StrictHostKeyChecking no\n"
        "  PreferredAuthentications keyboard-interactive\n"
    )


def sshd_host(lab: Lab, sshd: RealSshd, alias: str, **options: Any) -> None:
    block = sshd.write_client_config(lab.dir / f"{alias}.conf", alias=alias, **options)
    lab.add_host(block.read_text())


def type_code(page: Page, cluster: str, value: str) -> None:
    field = page.locator(f'{row(cluster, "prompting")} input[type="password"]')
    expect(field).to_have_attribute("autocomplete", "one-time-code")
    answer_in_row(page, cluster, value)  # the code stays nowhere


@pytest.mark.sshd
def test_connect_and_disconnect_in_the_sidebar(
    page: Page, lab: Lab, real_sshd: RealSshd, test_name: str
) -> None:
    sshd_host(lab, real_sshd, "fixture")
    open_lab(page, lab)
    open_sidebar(page)
    fixture = page.locator(row("fixture"))
    expect(fixture).to_have_attribute("data-state", "idle")
    expect(fixture.locator(".jp-hy2fa-where")).to_contain_text("127.0.0.1")
    fixture.locator('[data-action="connect"]').click()
    prompting = page.locator(row("fixture", "prompting"))
    expect(prompting.locator(".jp-hy2fa-prompt-text")).to_have_text(
        f"({real_sshd.user}@127.0.0.1) Verification code: "
    )
    expect(prompting.locator("input")).to_have_attribute("inputmode", "numeric")
    type_code(page, "fixture", real_sshd.totp())
    connected = page.locator(row("fixture", "connected"))
    expect(connected).to_be_visible()
    expect(connected.locator(".jp-hy2fa-since")).to_contain_text("Connected for")
    expect(page.locator(".jp-hy2fa-status-count")).to_have_text("1")
    shot(page, test_name, "sidebar-connected-light")
    # The status bar item opens the sidebar.
    page.click('[data-id="hy2fa-sidebar"]')  # collapse it first
    expect(page.locator("#hy2fa-sidebar")).to_be_hidden()
    page.click(".jp-hy2fa-status-item")
    expect(page.locator("#hy2fa-sidebar")).to_be_visible()
    set_theme(page, "JupyterLab Dark")
    shot(page, test_name, "sidebar-connected-dark")
    set_theme(page, "JupyterLab Light")

    path = lab.api("GET", "/hy2fa/connections/fixture")["control_path"]
    assert mux.alive(path) is not None
    connected.locator('[data-action="disconnect"]').click()
    expect(page.locator(row("fixture"))).to_have_attribute("data-state", "disconnected")
    expect(page.locator(".jp-hy2fa-status-count")).to_have_text("0")
    assert mux.alive(path) is None


def test_wrong_code_then_right_code(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    prompt_host(lab, "otp", server.port, "wrongfirst")
    open_lab(page, lab)
    open_sidebar(page)
    page.locator(f'{row("otp")} [data-action="connect"]').click()
    type_code(page, "otp", f"{(int(code()) + 500000) % 1000000:06d}")
    message = page.locator(f"{row('otp', 'prompting')} .jp-hy2fa-message")
    expect(message).to_have_text("Wrong code — try again")
    shot(page, test_name, "wrong-code")
    type_code(page, "otp", code())
    expect(page.locator(row("otp", "connected"))).to_be_visible()


def test_three_wrong_codes_show_the_failure_and_a_retry(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    prompt_host(lab, "refuses", server.port, "threewrong")
    open_lab(page, lab)
    open_sidebar(page)
    page.locator(f'{row("refuses")} [data-action="connect"]').click()
    wrong = f"{(int(code()) + 500000) % 1000000:06d}"
    for attempt in range(3):
        field = page.locator(f'{row("refuses", "prompting")} input[type="password"]')
        expect(field).to_be_visible()
        if attempt:
            expect(page.locator(f"{row('refuses')} .jp-hy2fa-message")).to_be_visible()
        field.fill(wrong)
        field.press("Enter")
        if attempt < 2:
            expect(page.locator(f"{row('refuses')} .jp-hy2fa-checking")).to_be_hidden()
    failed = page.locator(row("refuses", "failed"))
    expect(failed).to_be_visible()
    expect(failed.locator(".jp-hy2fa-error")).to_contain_text("Login refused")
    expect(failed.locator('[data-action="connect"]')).to_have_text("Retry")
    shot(page, test_name, "failed")


def test_sigma2_two_prompts_in_a_row(
    page: Page, lab: Lab, prompt_server: Callable[..., Any]
) -> None:
    server = prompt_server(sshserver.sigma2(otp_ok, PASSWORD))
    prompt_host(lab, "sigma", server.port, "kari")
    open_lab(page, lab)
    open_sidebar(page)
    page.locator(f'{row("sigma")} [data-action="connect"]').click()
    text = page.locator(f"{row('sigma', 'prompting')} .jp-hy2fa-prompt-text")
    expect(text).to_contain_text("One-time password (OATH) for `kari'")
    type_code(page, "sigma", code())
    expect(text).to_have_text("(kari@127.0.0.1) Password: ")
    type_code(page, "sigma", PASSWORD)
    expect(page.locator(row("sigma", "connected"))).to_be_visible()
    assert PASSWORD not in page.content()


def test_duo_menu_shows_its_options(
    page: Page, lab: Lab, prompt_server: Callable[..., Any]
) -> None:
    server = prompt_server(sshserver.duo("424242", push_delay=0.3))
    prompt_host(lab, "duo", server.port, "duouser")
    open_lab(page, lab)
    open_sidebar(page)
    page.locator(f'{row("duo")} [data-action="connect"]').click()
    option = page.locator(f'{row("duo", "prompting")} [data-option="1"]')
    expect(option).to_contain_text("Duo Push")
    option.click()
    expect(page.locator(row("duo", "connected"))).to_be_visible()


@pytest.mark.sshd
def test_new_host_key_is_trusted_with_a_button(
    page: Page, lab: Lab, real_sshd: RealSshd, test_name: str
) -> None:
    sshd_host(lab, real_sshd, "newhost", trust_host_key=False)
    open_lab_in(page, lab, "hostkey-row")
    open_sidebar(page)
    page.locator(f'{row("newhost")} [data-action="connect"]').click()
    prompting = page.locator(row("newhost", "prompting"))
    expect_hostkey_question(prompting.locator(".jp-hy2fa-question"), real_sshd.host_key_fingerprint)
    # The same two buttons as a kernel's ssh gets (test_browser_asks.py), in the same style.
    trust = prompting.get_by_role("button", name="Trust", exact=True)
    reject = prompting.get_by_role("button", name="Reject", exact=True)
    expect(trust).to_have_class(re.compile(r"\bjp-mod-accept\b"))
    expect(reject).to_have_class(re.compile(r"\bjp-mod-warn\b"))
    sidebar = page.locator("#hy2fa-sidebar")
    shot_of(sidebar, test_name, "hostkey-connection-row-light")
    set_theme(page, "JupyterLab Dark")
    shot_of(sidebar, test_name, "hostkey-connection-row-dark")
    set_theme(page, "JupyterLab Light")
    trust.click()
    expect(page.locator(f'{row("newhost", "prompting")} input[type="password"]')).to_be_visible()
    type_code(page, "newhost", real_sshd.totp())
    expect(page.locator(row("newhost", "connected"))).to_be_visible()


@pytest.mark.sshd
def test_new_host_key_in_the_login_dialog_is_the_same_question(
    page: Page, lab: Lab, real_sshd: RealSshd, test_name: str
) -> None:
    """A connection's login to a host not yet known, asked in its dialog (the sidebar is
    closed): the question a kernel's ssh gets in its own dialog, with the same buttons."""
    sshd_host(lab, real_sshd, "newhostdialog", trust_host_key=False)
    open_lab_in(page, lab, "hostkey-dialog")  # the sidebar stays closed
    lab.api("POST", "/hy2fa/connections", {"cluster": "newhostdialog"})  # as ensure() does
    dialog = page.get_by_role("dialog", name="Log in to newhostdialog")
    expect(dialog).to_have_attribute("data-prompt-kind", "hostkey")
    expect_hostkey_question(dialog.locator(".jp-hy2fa-question"), real_sshd.host_key_fingerprint)
    footer = dialog.locator(".jp-Dialog-footer .jp-Dialog-button")
    expect(footer).to_have_text(["Not now", "Reject", "Trust"])
    expect(footer.nth(1)).to_have_class(re.compile(r"\bjp-mod-warn\b"))
    expect(footer.nth(2)).to_have_class(re.compile(r"\bjp-mod-accept\b"))
    expect(dialog.locator(".jp-hy2fa-question button")).to_have_count(0)  # the footer answers
    keys_ready(dialog)
    page.keyboard.press("Enter")  # a stray Enter does not trust a host key
    expect(dialog).to_be_visible()
    assert lab.api("GET", "/hy2fa/connections/newhostdialog")["state"] == "prompting"
    content = dialog.locator(".jp-Dialog-content")
    shot_of(content, test_name, "hostkey-connection-light")
    set_theme(page, "JupyterLab Dark")
    shot_of(content, test_name, "hostkey-connection-dark")
    set_theme(page, "JupyterLab Light")
    dialog.get_by_role("button", name="Trust", exact=True).click()

    # ssh asks for the code next: a dialog of its own (other buttons than a host key's).
    dialog = page.locator(".jp-hy2fa-prompt-dialog[data-prompt-kind='otp']")
    field = dialog.locator("input[type='password']")
    expect(field).to_be_focused()
    keys_ready(dialog)
    page.keyboard.type(real_sshd.totp())
    page.keyboard.press("Enter")
    assert wait_for_state(lab, "newhostdialog", ("connected",))["master_pid"]


@pytest.mark.sshd
def test_a_login_started_elsewhere_pops_up_a_dialog(
    page: Page, lab: Lab, real_sshd: RealSshd, test_name: str
) -> None:
    sshd_host(lab, real_sshd, "kernelside")
    open_lab(page, lab)  # the sidebar stays closed
    lab.api("POST", "/hy2fa/connections", {"cluster": "kernelside"})  # as ensure() does
    dialog = page.locator(".jp-hy2fa-prompt-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".jp-Dialog-header")).to_contain_text("kernelside")
    expect(dialog.locator(".jp-hy2fa-prompt-text")).to_contain_text("Verification code")
    shot(page, test_name, "dialog")
    field = dialog.locator('input[type="password"]')
    field.fill(real_sshd.totp())
    keys_ready(dialog)
    field.press("Enter")
    expect(dialog).to_be_hidden()
    wait_for_state(lab, "kernelside", ("connected",))
    expect(page.locator(".jp-hy2fa-status-count")).to_have_text("1")


def test_a_prompt_answered_elsewhere_closes_the_dialog(
    page: Page, lab: Lab, prompt_server: Callable[..., Any]
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    prompt_host(lab, "elsewhere", server.port, "elsewhere")
    open_lab(page, lab)
    lab.api("POST", "/hy2fa/connections", {"cluster": "elsewhere"})
    dialog = page.locator(".jp-hy2fa-prompt-dialog")
    expect(dialog).to_be_visible()
    wait_for_state(lab, "elsewhere", ("prompting",))
    lab.api("POST", "/hy2fa/connections/elsewhere/answer", {"response": code()})
    expect(dialog).to_be_hidden()


def test_palette_commands_exist(page: Page, lab: Lab) -> None:
    open_lab_in(page, lab, "palette")  # the shortcut is heard once Lab has the focus
    palette = page.locator("#command-palette")
    page.keyboard.press("Control+Shift+C")
    expect(palette.locator("input")).to_be_visible()
    palette.locator("input").fill("2FA")
    items = palette.locator(".lm-CommandPalette-itemLabel")
    # Each once (more 2FA commands may come: this test is about these).
    for label in (
        "Connect to a 2FA Cluster…",
        "Disconnect a 2FA Cluster…",
        "Show 2FA Connections",
    ):
        expect(items.filter(has_text=re.compile(f"^{re.escape(label)}$"))).to_have_count(1)


def test_without_the_server_extension_the_sidebar_says_so(browser: Browser) -> None:
    lab = Lab(extension=False).start()
    try:
        page = new_page(browser)
        open_lab(page, lab)
        open_sidebar(page)
        banner = page.locator('.jp-hy2fa-banner[data-status="missing"]')
        expect(banner).to_contain_text("server extension is not running")
        shot(page, "test_without_the_server_extension", "missing")
        page.context.close()
    finally:
        lab.stop()


def test_demo_cluster_says_its_code_and_typing_it_connects(
    browser: Browser, short_tmp: Path, test_name: str
) -> None:
    hy2fa = str(Path(sys.executable).parent / "hy2fa")
    env = {**os.environ, "HOME": str(short_tmp)}
    demo = pexpect.spawn(hy2fa, ["demo", "--no-browser"], env=env, encoding="utf-8", timeout=None)
    try:
        demo.expect(r"JupyterLab: (http://\S+)")
        url = demo.match.group(1)
        demo.expect(r"demo code: \d{6}")
        page = new_page(browser)
        page.goto(url)
        page.wait_for_selector("#jupyterlab-splash", state="detached")
        open_sidebar(page)
        demo_row = page.locator(row("demo"))
        demo_row.locator('[data-action="connect"]').click()
        field = page.locator(f'{row("demo", "prompting")} input[type="password"]')
        expect(field).to_be_visible()
        # The product shows the cluster's question word for word; the demo puts its code in it.
        question = page.locator(f"{row('demo', 'prompting')} .jp-hy2fa-prompt-text")
        expect(question).to_contain_text("One-time password (OATH)")
        said = re.search(r"the code now is (\d{6})", question.inner_text())
        assert said is not None, question.inner_text()
        field.fill(said.group(1))
        field.press("Enter")
        expect(page.locator(row("demo", "connected"))).to_be_visible()
        shot(page, test_name, "demo-connected")
        # The README's picture (docs/sidebar-connected.png is copied from this one).
        shot(page, test_name, "sidebar", clip={"x": 0, "y": 0, "width": 560, "height": 330})
        page.context.close()
        demo.kill(signal.SIGINT)
        demo.expect(pexpect.EOF)
    finally:
        if demo.isalive():
            demo.kill(signal.SIGKILL)
        demo.close()
    assert demo.exitstatus == 0


def test_notebook_magic_widget_connects_without_a_dialog(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    prompt_host(lab, "nb", server.port, "notebook")
    page.goto(f"{lab.url}/lab/workspaces/magic?reset&token={lab.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    page.locator('.jp-LauncherCard[title*="Python 3"]').first.click()
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle")

    def run(code_text: str) -> None:
        cells = page.locator(".jp-Notebook .jp-Cell")
        cell = cells.nth(cells.count() - 1)  # fixed: Shift+Enter appends a new last cell
        cell.locator(".cm-content").click()
        page.keyboard.type(code_text)
        page.keyboard.press("Shift+Enter")
        expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"))

    run("%load_ext hy2fa_lab")
    run("%hy2fa connect nb")
    field = page.locator(".hy2fa-widget input[type='password']")
    expect(field).to_be_visible()
    expect(page.locator(".hy2fa-widget")).to_contain_text("Verification code")
    # The status bar says a question waits once the page's model has the prompt: the
    # dialogs looked at it in the same change (the widget shows it, so none pops up).
    expect(page.locator(".jp-hy2fa-status-item")).to_have_attribute("data-state", "waiting")
    expect(page.locator(".jp-hy2fa-prompt-dialog")).to_have_count(0)
    shot(page, test_name, "widget")
    field.fill(code())
    field.press("Enter")
    expect(page.locator(".hy2fa-widget [data-state='connected']")).to_be_visible()
    path = lab.api("GET", "/hy2fa/connections/nb")["control_path"]
    run(f"!ssh -S {path} -o BatchMode=yes nb echo through-the-socket")
    expect(page.locator(".jp-OutputArea-output").last).to_contain_text("through-the-socket")
    shot(page, test_name, "widget-connected")
