"""The password + OTP a certificate login sends to the issuer (issue 21) is in no log, event,
API response, argv, environment or file: ``test_secrecy.py``'s harness, with a certificate
site (the project's own issuer and a real sshd that trusts its CA)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_secrecy
from cert_site import CertSite, started_site
from test_secrecy import Secrecy, a_password, settle_and_check
from test_server_api import answer, call, run_through, wait_for

secrecy = test_secrecy.secrecy  # the harness's fixture, used here under its own name


@pytest.fixture
def site() -> Iterator[CertSite]:
    """Eight-digit codes (unlikely to turn up by chance) and a password of its own."""
    yield from started_site(password=a_password(), digits=8)


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], site: CertSite, client_config: Path
) -> dict[str, Any]:
    """conftest.py's, logging at DEBUG, with the certificate cluster ``nersc``."""
    site.add_host(client_config)
    jp_server_config["ServerApp"]["log_level"] = "DEBUG"
    jp_server_config["Hy2faLab"].update(prompt_timeout=60, clusters={"nersc": site.profile()})
    return jp_server_config


@pytest.mark.sshd
@pytest.mark.timeout(120)
async def test_the_password_and_code_for_the_issuer_leave_no_trace(
    secrecy: Secrecy,
    site: CertSite,
    client_config: Path,
    short_tmp: Path,
) -> None:
    fetch = secrecy.fetch
    await call(fetch, "POST", "connections", body={"cluster": "nersc"})
    first = await wait_for(fetch, "nersc", {"prompting"})
    assert first["prompt"]["kind"] == "password" and first["prompt"]["secret"] is True
    wrong_code = site.service.wrong_code()
    await answer(fetch, "nersc", site.password + wrong_code, first["prompt"]["id"])
    again = await wait_for(fetch, "nersc", {"prompting"}, first["prompt"]["id"])
    assert "Authentication failed" in again["message"]
    code = site.service.totp()
    await answer(fetch, "nersc", site.password + code, again["prompt"]["id"])
    done = await wait_for(fetch, "nersc", {"connected"})
    assert run_through(client_config, done["control_path"], "fixture", "echo", "ok") == "ok\n"
    # What went over the wire: the Authorization header, twice, and nothing else of it.
    user = site.sshd.user
    sent = [f"{user}:{site.password}{wrong_code}", f"{user}:{site.password}{code}"]
    basic = [base64.b64encode(text.encode()).decode() for text in sent]
    assert site.service.seen == [f"Basic {value}" for value in basic]
    assert len(site.files()) == 3  # the pair was stored (and is searched below)

    await call(fetch, "GET", "connections")
    await call(fetch, "GET", "clusters")
    assert done["master_pid"] in secrecy.snapshot_processes()
    await call(fetch, "DELETE", "connections", "nersc")
    await settle_and_check(
        secrecy, short_tmp, done, site.password, code, wrong_code,
        site.password + code, site.password + wrong_code, *basic,
    )  # fmt: skip
