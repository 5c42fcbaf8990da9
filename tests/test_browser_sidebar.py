"""The sidebar of one person's clusters, in JupyterLab in Debian's Chromium: what they use first
(connected or pending, pinned, recently used, their own config and ~/.ssh/config hosts), the
unused built-ins under a collapsed "More clusters" with a filter, and what it remembers
(pinned, recent, expanded) kept in the Lab settings across a reload."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browser import (
    Lab,
    add_prompt_host,
    new_page,
    open_lab_in,
    open_sidebar,
    row,
    saved_setting,
    set_theme,
    shot_of,
)
from helpers import SECRET, code
from playwright.sync_api import Browser, Locator, Page, expect

from hy2fa_lab.demo import sshserver

PLUGIN_SETTINGS = "/lab/api/settings/hy2fa-lab:plugin"
BUILTINS = [
    "saga", "fram", "betzy", "olivia", "narval", "rorqual", "fir", "nibi", "trillium",
    "perlmutter",
]  # fmt: skip


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A Lab of its own per test: its settings (pinned, recent, expanded) start empty."""
    server = Lab().start()
    yield server
    server.disconnect_all()
    server.stop()


def names(rows: Locator) -> list[str]:
    return [str(name) for name in rows.evaluate_all("els => els.map(e => e.dataset.hy2faCluster)")]


def mine(page: Page) -> Locator:
    return page.locator("#hy2fa-sidebar .jp-hy2fa-mine .jp-hy2fa-row")


def settings(lab: Lab) -> dict[str, Any]:
    """The person's own settings of the plugin, as the Lab saved them."""
    return dict(lab.api("GET", PLUGIN_SETTINGS)["settings"] or {})


def test_a_new_person_sees_the_builtins_at_once_with_a_filter(
    page: Page, lab: Lab, test_name: str
) -> None:
    open_lab_in(page, lab, "new")
    open_sidebar(page)
    sidebar = page.locator("#hy2fa-sidebar")
    # Nothing is theirs yet: the built-ins are shown directly, not folded away.
    expect(sidebar.get_by_role("heading", name="Clusters", exact=True)).to_be_visible()
    expect(sidebar.get_by_role("button", name="More clusters")).to_have_count(0)
    rows = sidebar.locator(".jp-hy2fa-row")
    expect(rows).to_have_count(len(BUILTINS))
    assert names(rows) == BUILTINS
    shot_of(sidebar, test_name, "new-person-light")

    search = sidebar.get_by_role("searchbox", name="Filter clusters")
    search.fill("alliance")
    expect(rows).to_have_count(5)
    assert names(rows) == ["narval", "rorqual", "fir", "nibi", "trillium"]
    search.fill("sigma2 fram")  # every word must match
    expect(rows).to_have_count(1)
    expect(rows).to_have_attribute("data-hy2fa-cluster", "fram")
    search.fill("nowhere")
    expect(rows).to_have_count(0)
    expect(sidebar.get_by_role("status")).to_have_text("No cluster matches “nowhere”.")
    search.press("Escape")
    expect(search).to_have_value("")
    expect(rows).to_have_count(len(BUILTINS))
    set_theme(page, "JupyterLab Dark")
    shot_of(sidebar, test_name, "new-person-dark")
    set_theme(page, "JupyterLab Light")


def test_own_hosts_first_and_the_rest_under_more_clusters_which_remembers_it_is_open(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(lab, "mycluster", server.port, "kari")
    add_prompt_host(lab, "other", server.port, "kari")
    open_lab_in(page, lab, "own")
    open_sidebar(page)
    sidebar = page.locator("#hy2fa-sidebar")
    expect(sidebar.get_by_role("heading", name="Your clusters")).to_be_visible()
    expect(mine(page)).to_have_count(2)
    assert names(mine(page)) == ["mycluster", "other"]
    expect(mine(page).first).to_have_attribute("data-source", "ssh_config")

    more = sidebar.get_by_role("button", name="More clusters (10)")
    expect(more).to_have_attribute("aria-expanded", "false")
    for name in BUILTINS:
        expect(page.locator(row(name))).to_have_count(0)  # folded away
    shot_of(sidebar, test_name, "more-collapsed")

    with saved_setting(page, "moreExpanded", True):
        more.click()
    expect(more).to_have_attribute("aria-expanded", "true")
    folded = sidebar.locator(".jp-hy2fa-more .jp-hy2fa-row")
    expect(folded).to_have_count(10)
    sidebar.get_by_role("searchbox", name="Filter clusters").fill("perl")
    expect(folded).to_have_count(1)
    expect(folded).to_have_attribute("data-hy2fa-cluster", "perlmutter")
    expect(mine(page)).to_have_count(2)  # the filter is for "More clusters" only
    shot_of(sidebar, test_name, "more-filtered")

    # A login under way goes to the top of their own.
    page.locator(row("other")).get_by_role("button", name="Connect to other").click()
    expect(page.locator(row("other", "prompting"))).to_be_visible()
    assert names(mine(page)) == ["other", "mycluster"]

    # Open stays open across a reload (the Lab settings keep it).
    assert settings(lab).get("moreExpanded") is True
    page.reload()
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    # The login still waits, and the sidebar is closed: its dialog pops up. Escape: not now.
    dialog = page.get_by_role("dialog", name="Log in to other")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    open_sidebar(page)
    expect(page.locator(row("other", "prompting"))).to_be_visible()  # it still waits there
    more = page.get_by_role("button", name="More clusters (10)")
    expect(more).to_have_attribute("aria-expanded", "true")
    more.click()
    expect(more).to_have_attribute("aria-expanded", "false")
    expect(sidebar.locator(".jp-hy2fa-more .jp-hy2fa-row")).to_have_count(0)


def test_a_pin_moves_a_cluster_up_and_persists_across_a_reload(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(lab, "mycluster", server.port, "kari")
    open_lab_in(page, lab, "pin")
    open_sidebar(page)
    sidebar = page.locator("#hy2fa-sidebar")
    sidebar.get_by_role("button", name="More clusters").click()
    pin = sidebar.get_by_role("button", name="Pin Betzy (Sigma2)")
    expect(pin).to_have_attribute("aria-pressed", "false")
    with saved_setting(page, "pinned", ["betzy"]):
        pin.click()
    expect(pin).to_have_attribute("aria-pressed", "true")
    # Pinned comes before their own config's hosts, and leaves "More clusters".
    assert names(mine(page)) == ["betzy", "mycluster"]
    expect(sidebar.get_by_role("button", name="More clusters (9)")).to_be_visible()
    shot_of(sidebar, test_name, "pinned")
    assert settings(lab).get("pinned") == ["betzy"]

    page.reload()
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    open_sidebar(page)
    expect(mine(page)).to_have_count(2)
    assert names(mine(page)) == ["betzy", "mycluster"]
    pin = page.get_by_role("button", name="Pin Betzy (Sigma2)")
    expect(pin).to_have_attribute("aria-pressed", "true")
    pin.click()  # unpinned: back under "More clusters"
    expect(mine(page)).to_have_count(1)
    expect(page.get_by_role("button", name="More clusters (10)")).to_be_visible()


def test_a_cluster_connected_to_is_remembered_as_recent(
    page: Page, lab: Lab, prompt_server: Callable[..., Any], test_name: str
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(lab, "mycluster", server.port, "kari")
    # Saga was used before (another day): it is near the top, under "Your clusters".
    lab.api("PUT", PLUGIN_SETTINGS, {"raw": json.dumps({"recent": ["saga"]})})
    open_lab_in(page, lab, "recent")
    open_sidebar(page)
    expect(mine(page)).to_have_count(2)
    assert names(mine(page)) == ["saga", "mycluster"]  # recent before own config
    expect(page.get_by_role("button", name="More clusters (9)")).to_be_visible()

    page.locator(row("mycluster")).get_by_role("button", name="Connect to mycluster").click()
    field = page.locator(row("mycluster", "prompting")).get_by_role("textbox")
    field.fill(code())
    with saved_setting(page, "recent", ["mycluster", "saga"]):
        field.press("Enter")  # connected: remembered as the most recent
    expect(page.locator(row("mycluster", "connected"))).to_be_visible()
    assert settings(lab).get("recent") == ["mycluster", "saga"]
    shot_of(page.locator("#hy2fa-sidebar"), test_name, "recent")


def fake_ssh(lab: Lab, banner: str) -> str:
    """An ssh that says ``banner`` to ``ssh -V`` and is the real one otherwise."""
    real = shutil.which("ssh")
    assert real is not None
    path = lab.dir / "fake-ssh"
    path.write_text(
        f'#!/bin/sh\nif [ "$1" = "-V" ]; then echo "{banner}" >&2; exit 0; fi\nexec {real} "$@"\n'
    )
    path.chmod(0o755)
    return str(path)


def lab_with_ssh(banner: str) -> Lab:
    lab = Lab()
    lab.dir.joinpath("config", "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "Hy2faLab": {
                    "ssh_config": str(lab.ssh_config),
                    "control_path": f"{lab.dir}/%C",
                    "prompt_timeout": 60,
                    "ssh": fake_ssh(lab, banner),
                }
            }
        )
    )
    return lab.start()


def test_where_controlmaster_cannot_work_the_sidebar_says_so_once(
    browser: Browser, test_name: str
) -> None:
    lab = lab_with_ssh("OpenSSH_for_Windows_8.1p1, LibreSSL 3.0.2")
    try:
        page = new_page(browser)
        open_lab_in(page, lab, "windows")
        open_sidebar(page)
        sidebar = page.locator("#hy2fa-sidebar")
        # Before any login: the askpass bridge is off, and the note says why.
        note = sidebar.get_by_role("note")
        expect(note).to_contain_text("Questions from ssh are off.")
        expect(note).to_contain_text("has no ControlMaster")
        saga = page.locator(row("saga"))
        saga.get_by_role("button", name="Connect to Saga (Sigma2)").click()
        # The first Connect to a built-in cluster asks the user name there; then it connects.
        page.get_by_role("dialog", name="Your user name on Saga (Sigma2)").get_by_role(
            "button", name="Save and connect"
        ).click()
        banner = sidebar.locator('.jp-hy2fa-banner[data-status="unsupported"]')
        expect(banner).to_have_count(1)
        expect(banner).to_have_attribute("role", "alert")
        expect(banner).to_contain_text("No connection can be made here.")
        expect(banner).to_contain_text("Windows' OpenSSH (OpenSSH_for_Windows_8.1p1)")
        expect(banner).to_contain_text("Run JupyterLab in WSL")
        expect(note).to_have_count(0)  # the same words are not said twice
        # Once for the whole sidebar: no error per row, no dialog; Connect waits for a fix.
        expect(sidebar.locator(".jp-hy2fa-row .jp-hy2fa-error")).to_have_count(0)
        expect(page.get_by_role("dialog")).to_have_count(0)
        expect(saga).to_have_attribute("data-state", "idle")
        # Saga, with the person's user name, is theirs now; the rest are under "More".
        sidebar.get_by_role("button", name="More clusters (9)").click()
        connects = sidebar.locator('[data-action="connect"]')
        assert connects.count() == 10
        for index in range(connects.count()):
            expect(connects.nth(index)).to_be_disabled()
        shot_of(sidebar, test_name, "unsupported")
        set_theme(page, "JupyterLab Dark")
        shot_of(sidebar, test_name, "unsupported-dark")
        set_theme(page, "JupyterLab Light")
        page.context.close()
    finally:
        lab.stop()


def test_an_old_openssh_says_once_why_kernels_ssh_cannot_ask(
    browser: Browser, prompt_server: Callable[..., Any], test_name: str
) -> None:
    lab = lab_with_ssh("OpenSSH_7.4p1, OpenSSL 1.0.2k-fips  26 Jan 2017")
    try:
        server = prompt_server(sshserver.totp(SECRET))
        add_prompt_host(lab, "old", server.port, "kari")
        assert lab.api("GET", "/hy2fa/asks")["enabled"] is False
        page = new_page(browser)
        open_lab_in(page, lab, "old")
        open_sidebar(page)
        sidebar = page.locator("#hy2fa-sidebar")
        note = sidebar.get_by_role("note")
        expect(note).to_have_count(1)
        expect(note).to_contain_text(
            "OpenSSH_7.4p1 cannot ask in JupyterLab: that needs OpenSSH 8.4"
        )
        # Masters still work: the sidebar connects as ever, and says it only once.
        page.locator(row("old")).get_by_role("button", name="Connect to old").click()
        field = page.locator(row("old", "prompting")).get_by_role("textbox")
        field.fill(code())
        field.press("Enter")
        expect(page.locator(row("old", "connected"))).to_be_visible()
        expect(sidebar.locator('.jp-hy2fa-banner[data-status="unsupported"]')).to_have_count(0)
        expect(sidebar.get_by_role("note")).to_have_count(1)
        shot_of(sidebar, test_name, "asks-off")
        page.context.close()
        lab.api("DELETE", "/hy2fa/connections/old")
    finally:
        lab.stop()


def test_the_view_is_asked_for_again_once_the_event_stream_is_live(page: Page, lab: Lab) -> None:
    """A login started between the first poll and the event subscription is never heard as
    an event: once the subscription is live the sidebar asks the server again, long before
    its next poll (10 s)."""
    polls: list[float] = []
    sockets: list[str] = []

    def is_poll(request: Any) -> bool:
        return bool(
            request.method == "GET" and request.url.split("?")[0].endswith("/hy2fa/connections")
        )

    page.on("request", lambda request: is_poll(request) and polls.append(time.monotonic()))
    page.on("websocket", lambda socket: sockets.append(socket.url))
    open_lab_in(page, lab, "live")
    while len(polls) < 2:
        page.wait_for_event("request", predicate=is_poll, timeout=0)
    assert any("/api/events/subscribe" in url for url in sockets), sockets
    assert len(polls) >= 2, polls
    assert polls[1] - polls[0] < 8, polls
