"""The person's own cluster settings from the sidebar, in JupyterLab in Debian's Chromium: a row's
edit form (a user name that every open Lab and the server then show, a refused value said beside
its field and nothing stored, "Reset to the site's values", "Also use it in terminals" written
only once agreed), "Add a cluster" from a pasted ssh line pointing at the real sshd fixture and
a login to it with its code, the first Connect to a built-in cluster asking the user name there
once, and a browser notification of a question while the tab is hidden."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import (
    Lab,
    add_prompt_host,
    new_page,
    open_lab_in,
    open_sidebar,
    row,
    set_theme,
    shot,
    wait_for_state,
)
from helpers import SECRET
from playwright.sync_api import Browser, Locator, Page, Request, expect

from hy2fa_lab.demo import sshserver

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd
except ImportError:
    from sshd_fixture import RealSshd  # type: ignore[no-redef]

PLUGIN_SETTINGS = "/lab/api/settings/hy2fa-lab:plugin"


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A Lab of its own per test, with its own file of the person's settings."""
    server = Lab().start()
    # No poll during the test: what a page shows of another's change came as an event.
    server.api("PUT", PLUGIN_SETTINGS, {"raw": json.dumps({"pollSeconds": 600})})
    yield server
    server.disconnect_all()
    server.stop()


def clusters(lab: Lab) -> dict[str, Any]:
    """The server's rows, by name."""
    return {r["name"]: r for r in lab.api("GET", "/hy2fa/clusters")["clusters"]}


def mine_file(lab: Lab) -> Path:
    return Path(lab.api("GET", "/hy2fa/clusters")["mine_file"]["path"])


def light_and_dark(page: Page, test: str, name: str, *, whole: bool = False) -> None:
    """The sidebar's part of the page (``whole``: the page, for a dialog), in both themes:
    ``<name>-light.png`` and ``<name>-dark.png``."""
    clip = None
    if not whole:
        box = page.locator("#hy2fa-sidebar").bounding_box()
        assert box is not None
        clip = {"x": 0, "y": 0, "width": box["x"] + box["width"] + 8, "height": 800}
    set_theme(page, "JupyterLab Light")
    shot(page, test, f"{name}-light", clip)
    set_theme(page, "JupyterLab Dark")
    shot(page, test, f"{name}-dark", clip)
    set_theme(page, "JupyterLab Light")


def field(form: Locator, label: str) -> Locator:
    return form.get_by_role("textbox", name=label, exact=True)


def test_edit_a_user_name_every_lab_shows_it_and_reset_it(
    browser: Browser, page: Page, lab: Lab, test_name: str
) -> None:
    local = getpass.getuser()
    other = new_page(browser)  # another open Lab: it hears the change as an event
    open_lab_in(other, lab, "other")
    open_sidebar(other)
    expect(other.locator(row("saga")).locator(".jp-hy2fa-where")).to_have_text(
        f"{local}@saga.sigma2.no"
    )

    open_lab_in(page, lab, "edit")
    open_sidebar(page)
    saga = page.locator(row("saga"))
    edit = saga.get_by_role("button", name="Your settings for Saga (Sigma2)")
    expect(edit).to_have_attribute("aria-expanded", "false")
    edit.click()
    expect(edit).to_have_attribute("aria-expanded", "true")
    form = page.get_by_role("form", name="Your settings for Saga (Sigma2)")
    user = field(form, "Your user name on Saga (Sigma2)")
    expect(user).to_be_focused()
    expect(user).to_have_value(local)  # the local login name, as the row shows it
    expect(field(form, "Keep the connection open when idle for")).to_have_value("1h")
    expect(field(form, "Label")).to_have_value("Saga (Sigma2)")
    expect(form.get_by_role("textbox", name="Port")).to_have_count(0)  # the site's
    expect(form.get_by_role("button", name="Reset to the site's values")).to_have_count(0)

    # Refused by the server: its words beside the field, and nothing is stored.
    user.fill("o la")
    user.press("Enter")
    error = form.locator(f"#{user.get_attribute('id')}-error")
    expect(error).to_contain_text("user must not contain whitespace")
    expect(error).to_have_attribute("role", "alert")
    expect(user).to_have_attribute("aria-invalid", "true")
    expect(user).to_be_focused()
    assert clusters(lab)["saga"]["mine"] == []
    assert not mine_file(lab).exists()
    user.fill("olan")
    expect(error).to_have_count(0)  # typing again takes the error away
    light_and_dark(page, test_name, "edit-form")

    user.press("Enter")
    expect(form).to_have_count(0)
    saga = page.locator(row("saga"))
    expect(saga.locator(".jp-hy2fa-where")).to_have_text("olan@saga.sigma2.no")
    expect(saga.locator(".jp-hy2fa-yours")).to_have_text("Your settings: user name")
    expect(saga).to_have_attribute("data-mine", "user")
    # Theirs now: it is one of "Your clusters"; the focus is back on its edit button.
    expect(page.locator(".jp-hy2fa-mine " + row("saga"))).to_have_count(1)
    expect(saga.get_by_role("button", name="Your settings for Saga (Sigma2)")).to_be_focused()
    row_json = clusters(lab)["saga"]
    assert row_json["user"] == "olan" and row_json["mine"] == ["user"]
    assert json.loads(mine_file(lab).read_text())["clusters"] == {"saga": {"user": "olan"}}
    # The other Lab shows it too (its poll is off: the event brought it).
    expect(other.locator(row("saga")).locator(".jp-hy2fa-where")).to_have_text(
        "olan@saga.sigma2.no"
    )
    expect(other.locator(row("saga")).locator(".jp-hy2fa-yours")).to_have_text(
        "Your settings: user name"
    )

    # Also use it in terminals: the block first; Cancel writes nothing, Write it writes it.
    saga.get_by_role("button", name="Your settings for Saga (Sigma2)").click()
    form = page.get_by_role("form", name="Your settings for Saga (Sigma2)")
    expect(field(form, "Your user name on Saga (Sigma2)")).to_have_value("olan")
    expect(form.locator(".jp-hy2fa-yours-mark")).to_have_text(["yours"])
    form.get_by_role("button", name="Also use it in terminals…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".jp-hy2fa-block")).to_contain_text("Host saga")
    expect(dialog.locator(".jp-hy2fa-block")).to_contain_text("User olan")
    expect(dialog).to_contain_text(str(lab.ssh_config))
    # The block has the focus, to be read first: an Enter there writes nothing.
    expect(dialog.locator(".jp-hy2fa-block")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    light_and_dark(page, test_name, "terminals", whole=True)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert lab.ssh_config.read_text() == ""  # nothing without consent
    form.get_by_role("button", name="Also use it in terminals…").click()
    page.get_by_role("dialog").get_by_role("button", name="Write it").click()
    expect(page.locator(".jp-toast-message", has_text="ssh saga in a terminal")).to_be_visible()
    written = lab.ssh_config.read_text()
    assert "Host saga" in written and "User olan" in written
    # Asked again, it says the block is there, and takes it out if told to (ssh's config
    # would otherwise keep olan as the user of plain `ssh saga`, whatever Lab says).
    form.get_by_role("button", name="Also use it in terminals…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("A block for saga is there already: it is replaced.")
    dialog.get_by_role("button", name="Take it out").click()
    expect(page.locator(".jp-toast-message", has_text="The block for saga is out")).to_be_visible()
    assert "Host saga" not in lab.ssh_config.read_text()

    # Reset to the site's values: the user is the local login again, everywhere.
    form.get_by_role("button", name="Reset to the site's values").click()
    expect(form).to_have_count(0)
    saga = page.locator(row("saga"))
    expect(saga.locator(".jp-hy2fa-where")).to_have_text(f"{local}@saga.sigma2.no")
    expect(saga.locator(".jp-hy2fa-yours")).to_have_count(0)
    assert clusters(lab)["saga"]["mine"] == []
    expect(other.locator(row("saga")).locator(".jp-hy2fa-where")).to_have_text(
        f"{local}@saga.sigma2.no"
    )
    other.context.close()


def add_fixture_keys(lab: Lab, sshd: RealSshd) -> None:
    """What the person's ssh config says for the fixture's address: its key and known host,
    not its port or user (they give those in Lab). A ``Match``, not a ``Host`` line: the
    sidebar lists no cluster for it."""
    known = lab.dir / "fixture_known_hosts"
    known.write_text(sshd.known_hosts_line())
    lab.add_host(
        f"Match host 127.0.0.1\n    IdentityFile {sshd.client_key}\n    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {known}\n    GlobalKnownHostsFile /dev/null\n"
        "    StrictHostKeyChecking ask\n    CheckHostIP no\n    BatchMode no\n"
    )


def paste(page: Page, target: Locator, text: str) -> None:
    """Paste ``text`` into ``target`` as the person does: the page's clipboard, then Ctrl+V."""
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    target.focus()
    page.keyboard.press("Control+V")


def test_add_a_cluster_from_a_pasted_ssh_line_and_log_in_with_its_code(
    browser: Browser, lab: Lab, real_sshd: RealSshd, test_name: str
) -> None:
    add_fixture_keys(lab, real_sshd)
    page = new_page(browser, permissions=["clipboard-read", "clipboard-write"])
    open_lab_in(page, lab, "add")
    open_sidebar(page)
    sidebar = page.locator("#hy2fa-sidebar")
    sidebar.get_by_role("button", name="Add a cluster").click()
    form = sidebar.get_by_role("form", name="Add a cluster")
    host = field(form, "Host")
    expect(host).to_be_focused()
    paste(page, host, f"ssh -p {real_sshd.port} {real_sshd.user}@127.0.0.1")
    # Split into its fields, and said so.
    expect(host).to_have_value("127.0.0.1")
    expect(field(form, "Your user name there")).to_have_value(real_sshd.user)
    expect(field(form, "Port")).to_have_value(str(real_sshd.port))
    expect(form.get_by_role("status")).to_have_text(
        f"Read as user {real_sshd.user}, host 127.0.0.1, port {real_sshd.port}."
    )
    name = field(form, "Name")
    expect(name).to_have_value("")  # nothing to suggest for an address
    form.get_by_role("button", name="Add").click()
    expect(form.locator(f"#{name.get_attribute('id')}-error")).to_contain_text("Give it a name")
    expect(name).to_be_focused()

    # The server's refusals, beside the name; nothing is added.
    name.fill("my lab")
    name.press("Enter")
    expect(form.locator(f"#{name.get_attribute('id')}-error")).to_contain_text(
        "cluster name must not contain whitespace"
    )
    name.fill("saga")
    name.press("Enter")
    expect(form.locator(f"#{name.get_attribute('id')}-error")).to_contain_text(
        "There is a cluster named 'saga' already"
    )
    assert {n for n, r in clusters(lab).items() if r["source"] == "mine"} == set()

    name.fill("mylab")
    light_and_dark(page, test_name, "add-form")
    name.press("Enter")
    expect(form).to_have_count(0)
    mylab = page.locator(row("mylab"))
    expect(mylab).to_have_attribute("data-source", "mine")
    expect(mylab.locator(".jp-hy2fa-yours")).to_have_text("Added by you")
    expect(mylab.locator(".jp-hy2fa-where")).to_have_text(
        f"{real_sshd.user}@127.0.0.1:{real_sshd.port}"
    )
    connect = mylab.get_by_role("button", name="Connect to mylab")
    expect(connect).to_be_focused()  # the new cluster's Connect takes the focus
    server_row = clusters(lab)["mylab"]
    assert server_row["source"] == "mine" and server_row["port"] == real_sshd.port
    assert server_row["user"] == real_sshd.user and server_row["host"] == "127.0.0.1"

    # Log in to it with its code (no user name question: it is theirs).
    connect.press("Enter")
    code = page.locator(row("mylab", "prompting")).get_by_role("textbox")
    expect(code).to_be_focused()
    expect(page.get_by_role("dialog")).to_have_count(0)
    code.fill(real_sshd.totp())
    code.press("Enter")
    expect(page.locator(row("mylab", "connected"))).to_be_visible()
    view = wait_for_state(lab, "mylab", ("connected", "failed"))
    assert view["state"] == "connected", view
    assert view["user"] == real_sshd.user and view["port"] == real_sshd.port

    # Its own settings have a port; Remove takes it away once confirmed.
    mylab.get_by_role("button", name="Your settings for mylab").click()
    edit = page.get_by_role("form", name="Your settings for mylab")
    expect(field(edit, "Port")).to_have_value(str(real_sshd.port))
    page.keyboard.press("Escape")
    expect(edit).to_have_count(0)
    expect(mylab.get_by_role("button", name="Your settings for mylab")).to_be_focused()
    page.context.close()


def path_of(request: Request) -> str:
    """A request's path under hy2fa/ (Lab adds a query against caches)."""
    return request.url.split("?")[0].split("/hy2fa/", 1)[1]


def is_connect(request: Request) -> bool:
    return request.method == "POST" and path_of(request) == "connections"


def test_the_first_connect_to_a_builtin_cluster_asks_the_user_name_once(
    page: Page, lab: Lab, test_name: str
) -> None:
    local = getpass.getuser()
    requests: list[str] = []
    page.on(
        "request",
        lambda r: (
            "/hy2fa/" in r.url
            and r.method != "GET"
            and requests.append(f"{r.method} {path_of(r)} {r.post_data or ''}")
        ),
    )
    open_lab_in(page, lab, "first")
    open_sidebar(page)
    saga = page.locator(row("saga"))
    saga.get_by_role("button", name="Connect to Saga (Sigma2)").click()
    dialog = page.get_by_role("dialog", name="Your user name on Saga (Sigma2)")
    user = dialog.get_by_role("textbox", name="User name")
    expect(user).to_have_value(local)  # prefilled with the local login name
    expect(user).to_be_focused()
    light_and_dark(page, test_name, "first-connect", whole=True)

    # Cancel: nothing is saved, nothing connects.
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert requests == []
    assert lab.api("GET", "/hy2fa/connections")["connections"] == []
    assert clusters(lab)["saga"]["mine"] == []

    # Asked again (nothing was kept); a refused name is said in the dialog, which stays.
    saga.get_by_role("button", name="Connect to Saga (Sigma2)").click()
    expect(dialog).to_be_visible()
    user.fill("o la")
    dialog.get_by_role("button", name="Save and connect").click()
    expect(dialog.get_by_role("alert")).to_contain_text("user must not contain whitespace")
    expect(user).to_have_attribute("aria-invalid", "true")
    assert clusters(lab)["saga"]["mine"] == []
    assert lab.api("GET", "/hy2fa/connections")["connections"] == []

    user.fill("olan")
    with page.expect_request(is_connect, timeout=0):
        user.press("Enter")
    expect(dialog).to_have_count(0)
    assert requests[-2:] == [
        'PATCH clusters/saga {"user":"olan"}',
        'POST connections {"cluster":"saga"}',
    ], requests
    row_json = clusters(lab)["saga"]
    assert row_json["user"] == "olan" and row_json["mine"] == ["user"]
    # The login started, as olan (no network here: cancel it, or it fails by itself).
    (view,) = lab.api("GET", "/hy2fa/connections")["connections"]
    assert view["cluster"] == "saga" and view["user"] == "olan", view
    cancel = page.locator(row("saga")).get_by_role("button", name="Cancel the login to Saga")
    if view["state"] in ("starting", "prompting", "verifying"):
        cancel.click()
    wait_for_state(lab, view["id"], ("failed", "disconnected"))

    # Once: the next Connect (Retry) connects without asking.
    retry = page.locator(row("saga")).get_by_role("button", name="Retry Saga (Sigma2)")
    with page.expect_request(is_connect, timeout=0):
        retry.click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert not any(r.startswith("PATCH") for r in requests[2:]), requests


NOTED = """
window.__notes = [];
const Real = window.Notification;
window.Notification = class extends Real {
  constructor(title, options) {
    super(title, options);
    window.__notes.push({title, body: options.body, tag: options.tag});
    window.__last = this;
  }
  close() {
    this.closed = true;
    super.close();
  }
};
let hidden = false;
Object.defineProperty(Document.prototype, 'hidden', {get: () => hidden, configurable: true});
window.__hide = value => { hidden = value; document.dispatchEvent(new Event('visibilitychange')); };
"""


def test_a_question_while_the_tab_is_hidden_is_a_browser_notification(
    browser: Browser, lab: Lab, prompt_server: Callable[..., Any]
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(lab, "noted", server.port, "kari")
    lab.api(
        "PUT",
        PLUGIN_SETTINGS,
        {"raw": json.dumps({"pollSeconds": 600, "browserNotifications": True})},
    )
    page = new_page(browser, permissions=["notifications"])
    page.add_init_script(NOTED)
    open_lab_in(page, lab, "noted")
    assert page.evaluate("Notification.permission") == "granted"

    # In view: a question pops up as a dialog and nothing else.
    lab.api("POST", "/hy2fa/connections", {"cluster": "noted"})
    dialog = page.get_by_role("dialog", name="Log in to noted")
    expect(dialog).to_be_visible()
    assert page.evaluate("window.__notes") == []
    lab.api("DELETE", "/hy2fa/connections/noted")
    expect(dialog).to_have_count(0)

    # Hidden (the person is in another tab): a notification, with ssh's question.
    page.evaluate("window.__hide(true)")
    lab.api("POST", "/hy2fa/connections", {"cluster": "noted"})
    page.wait_for_function("window.__notes.length === 1", timeout=0)
    (note,) = page.evaluate("window.__notes")
    assert note["title"] == "Log in to noted"
    assert note["body"].endswith("Verification code:"), note
    assert note["tag"].startswith("hy2fa-login-")
    # Clicking it brings the tab back, and it closes.
    page.evaluate("window.__hide(false); window.__last.onclick({})")
    assert page.evaluate("window.__last.closed") is True
    lab.api("DELETE", "/hy2fa/connections/noted")
    page.context.close()
