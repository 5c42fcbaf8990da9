"""Certificate logins (issue 21) through the server's REST API: a real Jupyter server, the
project's own issuer (``hy2fa_lab.demo.issuer``) and a real sshd that trusts only its CA."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cert_site import CertSite
from procs import ssh_processes
from test_server_api import answer, call, run_through, wait_for

from hy2fa_lab.core import mux

Fetch = Callable[..., Any]


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], site: CertSite, client_config: Path
) -> dict[str, Any]:
    """conftest.py's, with two certificate clusters on the site: ``nersc`` (renewed 10 min
    before it runs out) and ``nersc-2h`` (renewed 2 h before: its 1 h certificate is always
    renewed)."""
    site.add_host(client_config)
    jp_server_config["Hy2faLab"].update(
        prompt_timeout=30,
        clusters={
            "nersc": site.profile(),
            "nersc-2h": site.profile(renew_before="2h"),
        },
    )
    return jp_server_config


async def connect_asking(fetch: Fetch, site: CertSite, name: str) -> dict[str, Any]:
    await call(fetch, "POST", "connections", body={"cluster": name})
    view = await wait_for(fetch, name, {"prompting"})
    prompt = view["prompt"]
    assert prompt["kind"] == "password" and prompt["secret"] is True
    assert prompt["text"] == f"Password + OTP for {site.sshd.user} at 127.0.0.1"
    return view


@pytest.mark.sshd
@pytest.mark.timeout(120)
async def test_wrong_code_then_right_connects_and_a_command_runs(
    jp_fetch: Fetch, site: CertSite, client_config: Path
) -> None:
    first = await connect_asking(jp_fetch, site, "nersc")
    assert first["certificate"] == {
        "issuer": "sshproxy",
        "valid_before": None,
        "principals": [],
        "key": str(site.key),
    }
    await answer(jp_fetch, "nersc", site.wrong(), first["prompt"]["id"])
    again = await wait_for(jp_fetch, "nersc", {"prompting"}, first["prompt"]["id"])
    assert again["message"] == (
        f"Authentication failed. Failed login: {site.sshd.user} — try again"
    )
    assert not site.key.exists()
    await answer(jp_fetch, "nersc", site.secret(), again["prompt"]["id"])
    done = await wait_for(jp_fetch, "nersc", {"connected"})
    assert done["master_pid"] == mux.alive(done["control_path"])
    view = done["certificate"]
    assert view["principals"] == [site.sshd.user] and view["key"] == str(site.key)
    assert view["valid_before"].endswith("+00:00")
    out = run_through(client_config, done["control_path"], "fixture", "echo via-cert $(id -un)")
    assert out == f"via-cert {site.sshd.user}\n"
    assert "Accepted publickey" in site.sshd.log()
    assert site.service.requests == 2
    gone = await call(jp_fetch, "DELETE", "connections", "nersc")
    assert gone["state"] == "disconnected"
    assert ssh_processes(done["control_path"]) == {}


@pytest.mark.sshd
@pytest.mark.timeout(120)
async def test_a_valid_certificate_asks_nothing(jp_fetch: Fetch, site: CertSite) -> None:
    issued = site.issue()
    before, asked = site.files(), site.service.requests
    await call(jp_fetch, "POST", "connections", body={"cluster": "nersc"})
    done = await wait_for(jp_fetch, "nersc", {"connected"})  # a question would stop it here
    assert site.service.requests == asked and site.files() == before
    assert done["certificate"]["valid_before"] == issued.view("sshproxy")["valid_before"]
    await call(jp_fetch, "DELETE", "connections", "nersc")


@pytest.mark.sshd
@pytest.mark.timeout(120)
@pytest.mark.parametrize("lifetime", ["-2h:-1m", "+5m"], ids=["expired", "within-renew-before"])
async def test_an_expired_or_expiring_certificate_asks_again(
    jp_fetch: Fetch, site: CertSite, client_config: Path, lifetime: str
) -> None:
    site.service.lifetimes["default"] = lifetime
    old = site.issue()
    assert old.unusable(site.sshd.user, 600)
    site.service.lifetimes["default"] = "+1h"
    before = site.files()
    view = await connect_asking(jp_fetch, site, "nersc")
    assert view["certificate"]["valid_before"] == old.view("sshproxy")["valid_before"]
    await answer(jp_fetch, "nersc", site.secret(), view["prompt"]["id"])
    done = await wait_for(jp_fetch, "nersc", {"connected"})
    assert done["certificate"]["valid_before"] > view["certificate"]["valid_before"]
    assert site.files().keys() == before.keys()
    assert all(site.files()[name] != data for name, data in before.items())
    assert run_through(client_config, done["control_path"], "fixture", "echo", "ok") == "ok\n"
    await call(jp_fetch, "DELETE", "connections", "nersc")


@pytest.mark.sshd
@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["500", "garbage"])
async def test_a_bad_answer_leaves_the_old_files_byte_identical(
    jp_fetch: Fetch, site: CertSite, mode: str
) -> None:
    site.issue()
    before = site.files()
    assert len(before) == 3
    stamps = {name: os.stat(site.key.parent / name).st_mtime_ns for name in before}
    site.service.mode = mode
    view = await connect_asking(jp_fetch, site, "nersc-2h")  # 1 h < 2 h: renewed
    await answer(jp_fetch, "nersc-2h", site.secret(), view["prompt"]["id"])
    failed = await wait_for(jp_fetch, "nersc-2h", {"failed"})
    assert failed["reason"] == "error" and "127.0.0.1" in failed["message"]
    assert site.files() == before
    assert {n: os.stat(site.key.parent / n).st_mtime_ns for n in before} == stamps
    assert sorted(os.listdir(site.key.parent)) == sorted(before)  # no temp file left
    assert mux.alive(failed["control_path"]) is None
