"""The "Check my setup" view in JupyterLab in Debian's Chromium: opened from the sidebar's
header (and the command palette), driven from the keyboard, showing each of the server's doctor
lines with its mark and what to do, in the light and the dark theme (screenshots in
test-artifacts/)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser import Lab, open_lab_in, open_sidebar, set_theme, shot
from playwright.sync_api import Page, expect

from hy2fa_lab.demo import sshserver

BOUND = 60_000  # ms: a bound for a loaded machine, not a timing


@pytest.fixture
def lab() -> Iterator[Lab]:
    server = Lab().start()
    yield server
    server.stop()


def line(page: Page, check: str) -> Any:
    return page.locator(f'#hy2fa-doctor .jp-hy2fa-doctor-check[data-check="{check}"]')


def test_check_my_setup_from_the_sidebar_with_the_keyboard(
    page: Page, lab: Lab, prompt_server: Any, test_name: str
) -> None:
    server = prompt_server(
        sshserver.PromptScript([sshserver.PromptStep("Code: ", expected=lambda _: False)]),
        allow_commands=False,
    )
    known_hosts = lab.dir / "known_hosts"
    known_hosts.write_text("")  # the host key is not known yet
    lab.add_host(
        f"Host lab\n  HostName 127.0.0.1\n  Port {server.port}\n  User tester\n"
        f"  UserKnownHostsFile {known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
    )
    open_lab_in(page, lab, "doctor")
    open_sidebar(page)
    button = page.locator("#hy2fa-sidebar header").get_by_role("button", name="Check my setup")
    expect(button).to_have_attribute("title", "Check my setup")
    button.focus()
    page.keyboard.press("Enter")

    view = page.locator("#hy2fa-doctor")
    expect(view).to_be_visible()
    picker = view.get_by_label("Cluster")
    expect(picker).to_be_focused()  # the keyboard starts at the cluster picker
    summary = view.get_by_role("status")
    # This machine only, first: no cluster lines.
    expect(line(page, "openssh")).to_have_attribute("data-status", "ok", timeout=BOUND)
    expect(line(page, "host_key")).to_have_count(0)
    expect(view.locator(".jp-hy2fa-doctor-results-title")).to_have_text("This machine")

    picker.select_option("lab")
    page.keyboard.press("Tab")
    expect(view.get_by_role("button", name="Check")).to_be_focused()
    page.keyboard.press("Enter")
    key = line(page, "host_key")
    expect(key).to_have_attribute("data-status", "problem", timeout=BOUND)
    expect(view.locator(".jp-hy2fa-doctor-results-title")).to_have_text("This machine and lab")
    # Each line says its mark in words (not only a colour), what was found, and what to do.
    expect(key.locator(".jp-hy2fa-doctor-status")).to_have_text("Problem")
    expect(key.locator(".jp-hy2fa-doctor-name")).to_have_text("Host key")
    expect(key.locator(".jp-hy2fa-doctor-detail")).to_contain_text(f"[127.0.0.1]:{server.port}")
    expect(key.locator(".jp-hy2fa-doctor-fix")).to_contain_text("What to do: Connect once")
    reach = line(page, "reachable")
    expect(reach).to_have_attribute("data-status", "ok")
    expect(reach.locator(".jp-hy2fa-doctor-detail")).to_contain_text(f"port {server.port}")
    expect(line(page, "ssh_config:ControlPath")).to_have_attribute("data-status", "info")
    expect(summary).to_have_text("1 problem found: see what to do below.")
    expect(summary).to_have_attribute("data-problems", "1")
    # The mark is decoration: a screen reader reads the word.
    expect(key.locator(".jp-hy2fa-doctor-mark")).to_have_attribute("aria-hidden", "true")
    shot(page, test_name, "doctor-light")

    set_theme(page, "JupyterLab Dark")
    expect(key).to_be_visible()
    shot(page, test_name, "doctor-dark")

    # Trusted, and checked again: the line turns ok and the summary says so.
    known_hosts.write_text(server.known_hosts_line())
    view.get_by_role("button", name="Check").click()
    expect(key).to_have_attribute("data-status", "ok", timeout=BOUND)
    expect(summary).to_have_text("No problems found.", timeout=BOUND)


def test_check_my_setup_from_the_command_palette(page: Page, lab: Lab) -> None:
    open_lab_in(page, lab, "doctor-palette")
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#command-palette input")
    expect(palette).to_be_focused()
    palette.fill("Check My 2FA Setup")
    item = page.locator("#command-palette .lm-CommandPalette-item", has_text="Check My 2FA Setup")
    expect(item).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#hy2fa-doctor")).to_be_visible()
    expect(line(page, "openssh")).to_be_visible(timeout=BOUND)
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Check my setup")
    expect(tab).to_have_count(1)
    # Asked again, the one view comes forward (not a second tab).
    page.keyboard.press("Control+Shift+C")
    palette.fill("Check My 2FA Setup")
    expect(item).to_have_count(1)
    page.keyboard.press("Enter")
    expect(tab).to_have_count(1)
