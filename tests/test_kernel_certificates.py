"""``ensure()`` in a kernel the server started, for a certificate cluster (issue 21).

The choice (``ensure()``'s docstring, README): a live master is used as it is, whatever its
certificate says now, since ssh multiplexes over the master and the certificate was checked
when the master logged in; a certificate is renewed only when a login is needed (the master
is gone), and then the password + OTP is asked in Lab like any question.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cert_site import CertSite
from kernel_ws import KernelWS
from test_server_api import answer, call, wait_for

from hy2fa_lab.core import mux

pytestmark = pytest.mark.sshd
Fetch = Callable[..., Any]

ENSURE = (
    "from hy2fa_lab import ensure\n"
    "import hy2fa_lab.kernel.api as api\n"
    "calls = []\n"
    "real = api.choose_backend\n"
    "api.choose_backend = lambda: calls.append(1) or real()\n"
    "try:\n"
    "    print('PATH=' + ensure('nersc', timeout=60), 'HTTP=%d' % len(calls))\n"
    "finally:\n"
    "    api.choose_backend = real\n"
)


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], site: CertSite, client_config: Path
) -> dict[str, Any]:
    site.add_host(client_config)
    jp_server_config["Hy2faLab"].update(prompt_timeout=60, clusters={"nersc": site.profile()})
    return jp_server_config


def printed_path(stdout: str) -> str:
    found = re.search(r"PATH=(\S+) HTTP=(\d+)", stdout)
    assert found is not None, stdout
    return found.group(1)


async def run_via(kernel: KernelWS, config: Path, path: str) -> str:
    ssh = await kernel.run(f"!ssh -F {config} -S {path} -o BatchMode=yes fixture echo via-cert")
    return ssh.stdout.strip()


@pytest.mark.timeout(180)
async def test_ensure_with_a_valid_certificate_asks_nothing_and_renews_only_for_a_login(
    kernel: KernelWS, jp_fetch: Fetch, site: CertSite, client_config: Path
) -> None:
    site.issue()
    asked = site.service.requests
    first = await kernel.run(ENSURE, timeout=60)
    assert first.error is None, first.error
    path = printed_path(first.stdout)
    assert "asking" not in first.stdout  # nothing asked, nothing said
    assert site.service.requests == asked
    view = await call(jp_fetch, "GET", "connections", "nersc")
    assert view["state"] == "connected" and view["control_path"] == path
    assert view["certificate"]["principals"] == [site.sshd.user]

    # The certificate on disk runs out while the master lives: the master is used as it is.
    site.service.lifetimes["default"] = "-2h:-1m"
    expired = site.issue()
    assert expired.unusable(site.sshd.user, 0) == "the certificate has expired"
    asked = site.service.requests
    live = await kernel.run(ENSURE, timeout=60)
    assert printed_path(live.stdout) == path and "HTTP=0" in live.stdout  # the mux check alone
    assert await run_via(kernel, client_config, path) == "via-cert"
    assert site.service.requests == asked

    # The master is gone: a login is needed, and with an expired certificate it asks.
    await call(jp_fetch, "DELETE", "connections", "nersc")
    assert mux.alive(path) is None
    site.service.lifetimes["default"] = "+1h"
    execution = kernel.start(ENSURE)
    deadline = asyncio.get_running_loop().time() + 30
    while "nersc is asking for a password" not in execution.stdout:  # the new login's line
        assert asyncio.get_running_loop().time() < deadline, execution.stdout
        await asyncio.sleep(0.05)
    prompt = await wait_for(jp_fetch, "nersc", {"prompting"})
    assert prompt["prompt"]["text"] == f"Password + OTP for {site.sshd.user} at 127.0.0.1"
    await answer(jp_fetch, "nersc", site.secret(), prompt["prompt"]["id"])
    await kernel.finish(execution, 60)
    assert execution.error is None, execution.error
    renewed = printed_path(execution.stdout)
    assert mux.alive(renewed) is not None
    assert await run_via(kernel, client_config, renewed) == "via-cert"
    view = await call(jp_fetch, "GET", "connections", "nersc")
    assert view["certificate"]["valid_before"] > expired.view("sshproxy")["valid_before"]
    await call(jp_fetch, "DELETE", "connections", "nersc")
