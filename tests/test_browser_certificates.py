"""Certificates in the sidebar (issue 21, item 5), in JupyterLab in Debian's Chromium: a
certificate cluster's row says how long its certificate is valid (or since when it expired)
on a line apart from the master's state; a certificate inside its renew window brings a Lab
warning with Renew, once; Renew with no master starts a login, and while the site's
device-flow tool (the tests' stand-in, ``device_tool.py``) waits, the row shows its link (a
new tab, no opener, no referrer) and its code with a Copy button. Light and dark
screenshots under test-artifacts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import (
    Lab,
    answer_in_row,
    new_page,
    open_lab_in,
    open_sidebar,
    row,
    set_theme,
    shot,
    shot_of,
)
from cert_site import CertSite, started_site
from playwright.sync_api import Browser, Page, expect

from hy2fa_lab.core import mux

TOOL = str(Path(__file__).with_name("device_tool.py"))
CODE = "WDJB-MJHT"

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="no ssh-keygen")


def keygen(*args: str) -> None:
    subprocess.run(["ssh-keygen", "-q", *args], check=True, capture_output=True, timeout=30)


def signed(directory: Path, name: str, ca: Path, validity: str) -> Path:
    """A key and its certificate (``name-cert.pub``) signed by ``ca`` for ``ola``."""
    key = directory / name
    keygen("-t", "ed25519", "-N", "", "-f", str(key))
    keygen("-s", str(ca), "-I", name, "-n", "ola", "-V", validity, f"{key}.pub")
    return key


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    keys = tmp_path_factory.mktemp("certs")
    ca = keys / "ca"
    keygen("-t", "ed25519", "-N", "", "-f", str(ca))
    soon = signed(keys, "soon", ca, "-1h:+6m")  # inside the 10 min window: a warning
    old = signed(keys, "old", ca, "-2h:-5m")  # expired 5 min ago
    good = signed(keys, "good", ca, "-1m:+23h13m")  # far from its end: no warning

    def cluster(key: Path) -> dict[str, object]:
        argv = [sys.executable, TOOL, "--key", str(key), "--ca", str(ca), "--principal", "ola"]
        return {
            "host": "127.0.0.1",
            "user": "ola",
            "certificate": {"issuer": "command", "argv": argv, "key": str(key)},
        }

    server = Lab(
        hy2fa={
            "clusters": {
                "certsoon": {**cluster(soon), "label": "Soon"},
                "certold": {**cluster(old), "label": "Old"},
                "certgood": {**cluster(good), "label": "Good"},
            }
        }
    ).start()
    yield server
    server.stop()


def test_rows_warning_renew_and_device_link(page: Page, lab: Lab) -> None:
    test = "test_browser_certificates"
    open_lab_in(page, lab, "certificates")
    open_sidebar(page)
    sidebar = page.locator("#hy2fa-sidebar")
    if sidebar.locator(".jp-hy2fa-more-toggle[aria-expanded='false']").count():
        sidebar.locator(".jp-hy2fa-more-toggle").click()

    good = page.locator(row("certgood"))
    old = page.locator(row("certold"))
    soon = page.locator(row("certsoon"))
    # The certificate's own line, apart from the master's state in the row's head.
    expect(good.locator(".jp-hy2fa-cert-text")).to_have_text("certificate valid for 23 h 12 min")
    expect(good.locator(".jp-hy2fa-state")).to_have_text("Not connected")
    expect(good.locator(".jp-hy2fa-row-head .jp-hy2fa-cert")).to_have_count(0)
    expect(old.locator(".jp-hy2fa-cert")).to_have_attribute("data-expired", "true")
    expect(old.locator(".jp-hy2fa-cert-text")).to_have_text("certificate expired 5 min ago")
    expect(soon.locator(".jp-hy2fa-cert-text")).to_have_text("certificate valid for 5 min")
    # No master: nothing claims one still runs.
    expect(old.locator(".jp-hy2fa-cert-note")).to_have_count(0)

    # The warning: once for the certificate inside its window, none for the good one.
    toasts = page.locator(".Toastify__toast")
    warning = toasts.filter(has_text="The certificate for Soon expires in")
    expect(warning).to_have_count(1)
    expect(toasts.filter(has_text="The certificate for Old has expired")).to_have_count(1)
    expect(toasts.filter(has_text="The certificate for Good")).to_have_count(0)
    expect(warning).to_contain_text("Renew logs in again for a new one.")

    for theme, suffix in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
        set_theme(page, theme)
        shot_of(sidebar.locator(".jp-hy2fa-rows").first, test, f"certificate-row-{suffix}")
        shot(page, test, f"renew-notification-{suffix}")
    set_theme(page, "JupyterLab Light")

    # Renew with no master: a login, which runs the site's tool; its link and code show.
    warning.get_by_role("button", name="Renew").click()
    link = soon.locator("a.jp-hy2fa-device-link")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", re.compile(r"^http://127\.0\.0\.1:\d+/"))
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(soon.locator("input.jp-hy2fa-device-code")).to_have_value(CODE)
    expect(soon.get_by_role("button", name=f"Copy the code {CODE}")).to_be_visible()
    expect(soon).to_contain_text(
        "Open the link, enter the code, and approve: the login goes on by itself"
    )
    # Keyboard: the link and the code field take the focus.
    link.focus()
    expect(link).to_be_focused()
    soon.locator("input.jp-hy2fa-device-code").focus()
    expect(soon.locator("input.jp-hy2fa-device-code")).to_be_focused()
    # Shown once: the same certificate is not warned about again after a change.
    expect(warning).to_have_count(1)
    for theme, suffix in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
        set_theme(page, theme)
        shot_of(soon, test, f"device-link-{suffix}")
    set_theme(page, "JupyterLab Light")


@pytest.fixture
def site_lab() -> Iterator[tuple[CertSite, Lab]]:
    """A certificate site (the stand-in sshproxy and a real sshd trusting its CA) and a Lab
    of its own whose cluster ``nersc`` logs in through it; every master it made is stopped."""
    for site in started_site():
        server = Lab(hy2fa={"clusters": {"nersc": {**site.profile(), "label": "NERSC"}}})
        site.add_host(server.ssh_config)
        server.start()
        try:
            yield site, server
        finally:
            server.disconnect_all()
            server.stop()


@pytest.mark.sshd
def test_login_in_the_sidebar_then_the_master_outlives_its_certificate(
    browser: Browser, site_lab: tuple[CertSite, Lab]
) -> None:
    test = "test_browser_certificates"
    site, lab = site_lab
    page = new_page(browser)
    try:
        open_lab_in(page, lab, "certificate-login")
        open_sidebar(page)
        sidebar = page.locator("#hy2fa-sidebar")
        nersc = page.locator(row("nersc"))
        assert not site.key.exists()  # no key yet: a login asks the issuer
        # The row says so before the first Connect, and where the certificate comes from.
        missing = nersc.locator(".jp-hy2fa-cert[data-missing='true']")
        expect(missing).to_have_text("No certificate yet: Connect gets one from 127.0.0.1")
        for suffix, theme in (("light", "JupyterLab Light"), ("dark", "JupyterLab Dark")):
            set_theme(page, theme)
            shot_of(nersc, test, f"no-certificate-yet-{suffix}")
        set_theme(page, "JupyterLab Light")
        nersc.locator('[data-action="connect"]').click()

        prompting = page.locator(row("nersc", "prompting"))
        question = f"Password + OTP for {site.sshd.user} at 127.0.0.1"
        expect(prompting.locator(".jp-hy2fa-prompt-text")).to_have_text(question)
        answer_in_row(page, "nersc", site.wrong())
        # The issuer's own words, and the same question again.
        expect(prompting.locator(".jp-hy2fa-message")).to_have_text(
            f"Authentication failed. Failed login: {site.sshd.user} — try again"
        )
        expect(prompting.locator(".jp-hy2fa-prompt-text")).to_have_text(question)
        assert not site.key.exists()
        answer_in_row(page, "nersc", site.secret())

        connected = page.locator(row("nersc", "connected"))
        expect(connected.locator(".jp-hy2fa-state")).to_contain_text("Connected")
        expect(connected.locator(".jp-hy2fa-cert-text")).to_have_text(
            re.compile(r"^certificate valid for 5\d min$")
        )
        expect(connected.locator(".jp-hy2fa-cert")).to_have_attribute("data-expired", "false")
        expect(connected.locator(".jp-hy2fa-cert-note")).to_have_count(0)
        view = lab.api("GET", "/hy2fa/connections/nersc")
        path, pid = view["control_path"], view["master_pid"]
        assert mux.alive(path) == pid
        assert site.files().keys() == {"nersc", "nersc.pub", "nersc-cert.pub"}
        assert site.service.requests == 2
        for theme, suffix in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
            set_theme(page, theme)
            shot(page, test, f"certificate-login-{suffix}")
        set_theme(page, "JupyterLab Light")

        # The certificate runs out under the live master (an expired pair in its files):
        # the row says both, the master's state and the certificate's.
        site.service.lifetimes["default"] = "-2h:-1m"
        site.issue()
        sidebar.get_by_role("button", name="Refresh", exact=True).click()
        cert = connected.locator(".jp-hy2fa-cert")
        expect(cert).to_have_attribute("data-expired", "true")
        expect(cert.locator(".jp-hy2fa-cert-text")).to_have_text("certificate expired 1 min ago")
        expect(cert.locator(".jp-hy2fa-cert-note")).to_have_text(
            "The master still runs; a new login will ask for your password + OTP"
        )
        expect(connected.locator(".jp-hy2fa-state")).to_contain_text("Connected")
        assert mux.alive(path) == pid
        for theme, suffix in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
            set_theme(page, theme)
            shot(page, test, f"certificate-expired-master-{suffix}")
        set_theme(page, "JupyterLab Light")

        connected.locator('[data-action="disconnect"]').click()
        expect(nersc).to_have_attribute("data-state", "disconnected")
        assert mux.alive(path) is None
    finally:
        page.context.close()
