"""What of the server's ``c.Hy2faLab`` config is not used, said once in JupyterLab (Debian's
Chromium): one warning notification whose Details list each problem in the server's words,
and the bad cluster's row in the sidebar with its error (issue 18)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser import Lab, open_lab_in, open_sidebar, row, shot_of
from playwright.sync_api import Page, expect

BAD = {"host": "127.0.0.1", "ssh_options": {"PKCS11Provider": "/usr/lib/x.so"}}


@pytest.fixture
def lab() -> Iterator[Lab]:
    server = Lab(
        hy2fa={
            "askpass": "no",
            "clusters": {"good": {"host": "127.0.0.1"}, "bad": BAD},
        }
    ).start()
    yield server
    server.stop()


def test_config_problems_are_said_once_and_the_bad_cluster_shows_its_error(
    page: Page, lab: Lab, request: pytest.FixtureRequest
) -> None:
    problems = lab.api("GET", "/hy2fa/settings")["problems"]
    assert [(p["setting"], p["cluster"]) for p in problems] == [
        ("clusters", "bad"),
        ("askpass", None),
    ]
    asks = lab.api("GET", "/hy2fa/asks")
    assert asks["enabled"] is False and asks["message"] == problems[1]["message"]  # "no": off

    open_lab_in(page, lab, "problems")
    toast = page.locator(".Toastify__toast", has_text="2 values of c.Hy2faLab are not used")
    expect(toast).to_have_count(1)
    toast.get_by_role("button", name="Details").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_be_visible()
    items = dialog.locator(".jp-hy2fa-config-problems li")
    expect(items).to_have_count(2)
    assert items.all_inner_texts() == [p["message"] for p in problems]
    shot_of(dialog.locator(".jp-Dialog-content"), request.node.name, "details")
    dialog.get_by_role("button", name="Close").click()

    open_sidebar(page)
    bad = page.locator(f"#hy2fa-sidebar {row('bad')}")
    expect(bad).to_contain_text("Hy2faLab.clusters['bad']: ssh_options:")
    expect(bad).to_contain_text("PKCS11Provider")
    expect(page.locator(f"#hy2fa-sidebar {row('good')}")).to_have_count(1)
    # Said once: the notice went with its Details, and none came again when the sidebar
    # asked the server again (its poll).
    with page.expect_response(lambda r: "/hy2fa/" in r.url):
        pass
    expect(page.locator(".Toastify__toast", has_text="c.Hy2faLab")).to_have_count(0)
