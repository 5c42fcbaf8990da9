"""Where ControlMaster cannot work (hy2fa_lab/core/openssh.py): Windows' OpenSSH and clients
too old for what is used are named, with their version, on every surface.

The real client is OpenSSH 9.2 here; the others are the real client behind a wrapper that
answers ``-V`` as they do (their banners, copied from those releases) and passes everything
else on to it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_server_api import add_prompt_host, call, call_error, wait_for

from hy2fa_lab.core import openssh

Fetch = Any
WINDOWS = "OpenSSH_for_Windows_8.6p1, LibreSSL 3.4.3"
OLD = "OpenSSH_7.4p1, OpenSSL 1.0.2k-fips  26 Jan 2017"
ANCIENT = "OpenSSH_6.6.1p1 Ubuntu-2ubuntu2, OpenSSL 1.0.1f 6 Jan 2014"


def wrapper(directory: Path, banner: str) -> str:
    path = directory / f"ssh-{abs(hash(banner))}"
    real = shutil.which("ssh")
    path.write_text(
        f'#!/bin/sh\nif [ "$1" = "-V" ]; then echo "{banner}" >&2; exit 0; fi\nexec {real} "$@"\n'
    )
    path.chmod(0o755)
    return str(path)


def test_the_real_client_can_do_everything() -> None:
    found = openssh.client("ssh")
    assert found is not None and found.version is not None
    assert found.version >= openssh.ASKPASS
    assert found.masters_problem() is None and found.askpass_problem() is None


@pytest.mark.parametrize(
    ("banner", "masters", "askpass"),
    [
        ("OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024", None, None),
        (WINDOWS, "Windows' OpenSSH (OpenSSH_for_Windows_8.6p1) has no ControlMaster", "WSL"),
        (OLD, None, "OpenSSH_7.4p1 cannot ask in JupyterLab: that needs OpenSSH 8.4"),
        (ANCIENT, "OpenSSH_6.6.1p1 Ubuntu-2ubuntu2 is too old", "needs OpenSSH 6.8"),
    ],
)
def test_banners_are_read(banner: str, masters: str | None, askpass: str | None) -> None:
    found = openssh.parse(banner)
    if masters is None:
        assert found.masters_problem() is None
    else:
        assert masters in (found.masters_problem() or "")
    if askpass is None:
        assert found.askpass_problem() is None
    else:
        assert askpass in (found.askpass_problem() or "")


def _with_ssh(tmp: Path, ssh: str) -> dict[str, str]:
    config = tmp / "jupyter"
    config.mkdir(exist_ok=True)
    (config / "jupyter_server_config.json").write_text(json.dumps({"Hy2faLab": {"ssh": ssh}}))
    return {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_CONFIG_PATH": ""}


def test_the_cli_and_ensure_name_windows_openssh(short_tmp: Path) -> None:
    env = _with_ssh(short_tmp, wrapper(short_tmp, WINDOWS))
    hy2fa = str(Path(sys.executable).parent / "hy2fa")
    run = subprocess.run(
        [hy2fa, "connect", "saga"], capture_output=True, text=True, timeout=60, env=env
    )
    assert run.returncode == 1
    assert "Windows' OpenSSH (OpenSSH_for_Windows_8.6p1) has no ControlMaster" in run.stderr
    assert "WSL" in run.stderr and "Traceback" not in run.stderr
    code = "from hy2fa_lab import ensure\ntry:\n ensure('saga')\nexcept Exception as e: print(e)"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert "has no ControlMaster" in run.stdout and "WSL" in run.stdout, run


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], short_tmp: Path) -> dict[str, Any]:
    jp_server_config["Hy2faLab"]["ssh"] = wrapper(short_tmp, OLD)
    return jp_server_config


async def test_the_server_names_an_old_openssh_for_asks_and_still_logs_in(
    jp_fetch: Fetch, client_config: Path
) -> None:
    asks = await call(jp_fetch, "GET", "asks")
    assert asks["enabled"] is False
    assert "OpenSSH_7.4p1 cannot ask in JupyterLab: that needs OpenSSH 8.4" in asks["message"]
    # Masters work with 7.4: a connect is not refused (nothing listens on port 9, so the
    # login itself then fails as unreachable).
    add_prompt_host(client_config, "local", 9)
    await call(jp_fetch, "POST", "connections", body={"cluster": "local"})
    failed = await wait_for(jp_fetch, "local", {"failed"})
    assert failed["reason"] == "unreachable"


async def test_the_server_refuses_windows_openssh_with_501(
    jp_fetch: Fetch, jp_serverapp: Any, short_tmp: Path
) -> None:
    jp_serverapp.web_app.settings["hy2fa_manager"].settings.ssh = wrapper(short_tmp, WINDOWS)
    status, error = await call_error(jp_fetch, "POST", "connections", body={"cluster": "saga"})
    assert (status, error["reason"]) == (501, "unsupported")
    assert "has no ControlMaster" in error["message"] and "WSL" in error["message"]
    connections = await call(jp_fetch, "GET", "connections")
    assert connections["connections"] == []  # nothing was started
