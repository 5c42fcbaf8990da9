"""The engine against a real OpenSSH sshd with pam_google_authenticator (publickey, then a code)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from procs import answer_and_next, next_prompt, process_alive, ssh_processes

from hy2fa_lab.core import mux
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.types import PromptKind, Reason, State

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd
except ImportError:
    from sshd_fixture import RealSshd  # type: ignore[no-redef]

pytestmark = pytest.mark.sshd

ALIAS = "fixture"


def make_manager(sshd: RealSshd, directory: Path, **config: Any) -> Manager:
    client_config = sshd.write_client_config(directory / "ssh_config", **config)
    return Manager(Settings(ssh_config=str(client_config), control_path=f"{directory}/%C"))


def ssh_via(manager: Manager, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Plain ssh through the socket; BatchMode proves nothing is asked."""
    config = manager.settings.ssh_config
    assert config is not None
    argv = ["ssh", "-F", config, "-S", path, "-o", "BatchMode=yes", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)


async def connect_with_code(manager: Manager, sshd: RealSshd) -> MasterSession:
    session = await manager.connect(ALIAS)
    prompt = await next_prompt(session, 0)
    assert prompt.kind is PromptKind.OTP
    await session.answer(sshd.totp())
    assert await session.wait(20) is State.CONNECTED, session.message
    return session


async def test_connect_check_use_and_disconnect(real_sshd: RealSshd, short_tmp: Path) -> None:
    manager = make_manager(real_sshd, short_tmp)
    session = await manager.connect(ALIAS)
    prompt = await next_prompt(session, 0)
    assert prompt.kind is PromptKind.OTP
    assert prompt.text == f"({real_sshd.user}@127.0.0.1) Verification code: "
    assert prompt.secret
    code = real_sshd.totp()
    await session.answer(code)
    assert await session.wait(20) is State.CONNECTED, session.message
    path = session.target.control_path
    assert path.startswith(str(short_tmp))

    # The mux client and OpenSSH agree on the master.
    pid = mux.alive(path)
    assert pid is not None and pid == session.master_pid
    check = ssh_via(manager, path, "-O", "check", ALIAS)
    assert check.returncode == 0
    assert f"Master running (pid={pid})" in check.stderr
    assert os.stat(path).st_mode & 0o077 == 0
    assert os.stat(os.path.dirname(path)).st_mode & 0o077 == 0

    # A command runs through the socket with nothing asked, as the user it logged in as.
    run = ssh_via(manager, path, ALIAS, "echo via-socket $(id -un)")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"via-socket {real_sshd.user}"
    assert real_sshd.log().count("Accepted keyboard-interactive/pam") == 1  # one login only

    assert code not in repr(session.to_json())
    assert ssh_processes(code) == {}

    await manager.disconnect(session.name)
    assert session.state is State.DISCONNECTED
    assert mux.alive(path) is None
    assert not os.path.exists(path)
    assert ssh_via(manager, path, "-O", "check", ALIAS).returncode != 0
    deadline = time.monotonic() + 5
    while process_alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not process_alive(pid)


async def test_wrong_code_then_right_code(real_sshd: RealSshd, short_tmp: Path) -> None:
    manager = make_manager(real_sshd, short_tmp)
    session = await manager.connect(ALIAS)
    await next_prompt(session, 0)
    again = await answer_and_next(session, real_sshd.wrong_code())
    assert again.kind is PromptKind.OTP
    assert session.message == "Wrong code — try again"
    await session.answer(real_sshd.totp())
    assert await session.wait(20) is State.CONNECTED, session.message
    assert mux.alive(session.target.control_path) == session.master_pid
    await manager.disconnect(session.name)


async def test_three_wrong_codes_fail_with_auth_failed(
    real_sshd: RealSshd, short_tmp: Path
) -> None:
    manager = make_manager(real_sshd, short_tmp)
    session = await manager.connect(ALIAS)
    after = 0
    for _ in range(3):
        await next_prompt(session, after)
        after = session.prompt_id
        await session.answer(real_sshd.wrong_code())
    assert await session.wait(30) is State.FAILED
    assert session.reason is Reason.AUTH_FAILED
    assert "Permission denied" in session.message
    path = session.target.control_path
    assert mux.alive(path) is None and not os.path.exists(path)
    assert ssh_processes(path) == {}


async def test_first_contact_rejected(real_sshd: RealSshd, short_tmp: Path) -> None:
    manager = make_manager(real_sshd, short_tmp, trust_host_key=False)
    session = await manager.connect(ALIAS)
    prompt = await next_prompt(session, 0)
    assert prompt.kind is PromptKind.HOSTKEY
    assert not prompt.secret
    assert real_sshd.host_key_fingerprint in prompt.text
    await session.answer("no")
    assert await session.wait(20) is State.FAILED
    assert session.reason is Reason.HOSTKEY_REJECTED
    known_hosts = short_tmp / "ssh_config.known_hosts"
    assert known_hosts.read_text() == ""
    assert ssh_processes(session.target.control_path) == {}


async def test_first_contact_trusted_then_code(real_sshd: RealSshd, short_tmp: Path) -> None:
    manager = make_manager(real_sshd, short_tmp, trust_host_key=False)
    session = await manager.connect(ALIAS)
    prompt = await next_prompt(session, 0)
    assert prompt.kind is PromptKind.HOSTKEY
    assert re.search(r"continue connecting \(yes/no", prompt.text)
    otp = await answer_and_next(session, "yes")
    assert otp.kind is PromptKind.OTP
    await session.answer(real_sshd.totp())
    assert await session.wait(20) is State.CONNECTED, session.message
    assert "127.0.0.1" in (short_tmp / "ssh_config.known_hosts").read_text()
    await manager.disconnect(session.name)


async def test_changed_host_key_is_refused_before_any_prompt(
    real_sshd: RealSshd, short_tmp: Path
) -> None:
    manager = make_manager(real_sshd, short_tmp)
    real_sshd.rotate_host_key()
    session = await manager.connect(ALIAS)
    assert await session.wait(20) is State.FAILED
    assert session.reason is Reason.HOSTKEY_CHANGED
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in session.message
    assert session.prompt_id == 0  # no code was ever asked for
    path = session.target.control_path
    assert mux.alive(path) is None and not os.path.exists(path)
    assert ssh_processes(path) == {}


async def test_killed_master_leaves_a_stale_socket_that_is_replaced(
    real_sshd: RealSshd, short_tmp: Path
) -> None:
    manager = make_manager(real_sshd, short_tmp)
    session = await connect_with_code(manager, real_sshd)
    path = session.target.control_path
    old_pid = session.master_pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while process_alive(old_pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert os.path.exists(path)  # SIGKILL leaves the socket file behind
    assert mux.status(path).liveness is mux.Liveness.STALE
    assert mux.alive(path) is None

    await manager.refresh()
    assert session.state is State.DISCONNECTED

    again = await connect_with_code(manager, real_sshd)
    assert again.master_pid not in (None, old_pid)
    assert mux.alive(path) == again.master_pid
    check = ssh_via(manager, path, "-O", "check", ALIAS)
    assert f"Master running (pid={again.master_pid})" in check.stderr
    await manager.disconnect(again.name)


async def test_a_new_manager_finds_the_running_master(real_sshd: RealSshd, short_tmp: Path) -> None:
    first = make_manager(real_sshd, short_tmp)
    session = await connect_with_code(first, real_sshd)
    second = Manager(first.settings)
    found = await second.discover()
    assert [s.name for s in found] == [ALIAS]
    assert found[0].state is State.CONNECTED
    assert found[0].master_pid == session.master_pid
    # Asking it to connect returns the live master without a new login.
    joined = await second.connect(ALIAS)
    assert joined.state is State.CONNECTED and joined.prompt_id == 0
    await second.disconnect(ALIAS)
    assert mux.alive(session.target.control_path) is None


async def test_two_connects_at_once_start_one_login(real_sshd: RealSshd, short_tmp: Path) -> None:
    manager = make_manager(real_sshd, short_tmp)
    one, two = await asyncio.gather(manager.connect(ALIAS), manager.connect(ALIAS))
    assert one is two
    await next_prompt(one, 0)
    assert len(ssh_processes(one.target.control_path)) == 1
    await one.answer(real_sshd.totp())
    assert await one.wait(20) is State.CONNECTED
    await manager.disconnect(one.name)
