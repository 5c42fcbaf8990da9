"""A cluster behind a bastion (ProxyJump): the jump host asks for its own code and the target
for another, each question says which host it is for, both are answered in one login, and
the master works. Two asyncssh servers on 127.0.0.1, the real OpenSSH client, the engine and
the REST API."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest
from helpers import SECRET, code
from procs import answer_and_next, next_prompt, ssh_processes
from test_server_api import answer, call, wait_for

from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.types import PromptKind, State
from hy2fa_lab.demo import sshserver

BASTION_SECRET = pyotp.random_base32()  # the bastion has its own: two different codes
Fetch = Any


def bastion_code() -> str:
    return str(pyotp.TOTP(BASTION_SECRET).now())


def write_config(config: Path, bastion_port: int, inner_port: int) -> None:
    """The jump host logs in as ``hopper``, the cluster as ``tester``: OpenSSH's ``(user@host)``
    prefixes then tell the two questions apart, as two real host names would."""
    common = (
        "  HostName 127.0.0.1\n"
        f"  UserKnownHostsFile {config.parent}/known_hosts\n  StrictHostKeyChecking no\n"
        "  PreferredAuthentications keyboard-interactive\n  LogLevel ERROR\n"
    )
    with config.open("a") as handle:
        handle.write(
            f"Host bastion\n  Port {bastion_port}\n  User hopper\n{common}"
            f"Host inner\n  Port {inner_port}\n  User tester\n  ProxyJump bastion\n{common}"
            f"Host inner-direct\n  Port {inner_port}\n  User tester\n{common}"
        )


@pytest.fixture
def servers(prompt_server: Callable[..., Any]) -> tuple[Any, Any]:
    bastion = prompt_server(
        sshserver.PromptScript(
            [
                sshserver.PromptStep(
                    "Verification code: ", expected=sshserver.totp_check(BASTION_SECRET)
                )
            ],
            bastion=True,
        ),
        allow_commands=False,
    )
    inner = prompt_server(sshserver.sigma2(sshserver.totp_check(SECRET), "hunter2"))
    return bastion, inner


def through(config: Path, path: str, host: str = "inner") -> str:
    run = subprocess.run(
        ["ssh", "-F", str(config), "-S", path, "-o", "BatchMode=yes", host, "echo", "via-master"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


async def test_bastion_and_cluster_each_ask_and_the_master_works(
    servers: tuple[Any, Any], short_tmp: Path
) -> None:
    bastion, inner = servers
    config = short_tmp / "ssh_config"
    write_config(config, bastion.port, inner.port)
    manager = Manager(Settings(ssh_config=str(config), control_path=f"{short_tmp}/%C"))
    session = await manager.connect("inner")
    first = await next_prompt(session, 0)
    assert first.kind is PromptKind.OTP
    assert session.to_json()["prompt"]["host"] == "hopper@127.0.0.1"  # the bastion asks
    second = await answer_and_next(session, bastion_code())
    assert second.kind is PromptKind.OTP and "One-time password (OATH)" in second.text
    assert session.to_json()["prompt"]["host"] == "tester@127.0.0.1"  # then the cluster
    third = await answer_and_next(session, code())
    assert third.kind is PromptKind.PASSWORD
    await session.answer("hunter2")
    assert await session.wait(20) is State.CONNECTED, session.message
    assert through(config, session.target.control_path) == "via-master"
    await manager.disconnect(session.name)
    assert ssh_processes(session.target.control_path) == {}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    """A cluster profile that names its jump host itself (ssh_options), not the ssh config."""
    hidden = {"host": "inner-direct", "ssh_options": {"ProxyJump": "bastion"}}
    jp_server_config["Hy2faLab"]["clusters"] = {"hidden": hidden}
    return jp_server_config


async def test_a_profile_with_proxyjump_over_rest(
    servers: tuple[Any, Any], jp_fetch: Fetch, client_config: Path
) -> None:
    bastion, inner = servers
    write_config(client_config, bastion.port, inner.port)
    await call(jp_fetch, "POST", "connections", body={"cluster": "hidden"})
    view = await wait_for(jp_fetch, "hidden", {"prompting"})
    assert view["prompt"]["host"] == "hopper@127.0.0.1"
    await answer(jp_fetch, "hidden", bastion_code(), view["prompt"]["id"])
    view = await wait_for(jp_fetch, "hidden", {"prompting"}, view["prompt"]["id"])
    assert view["prompt"]["host"] == "tester@127.0.0.1"
    await answer(jp_fetch, "hidden", code(), view["prompt"]["id"])
    view = await wait_for(jp_fetch, "hidden", {"prompting"}, view["prompt"]["id"])
    await answer(jp_fetch, "hidden", "hunter2", view["prompt"]["id"])
    view = await wait_for(jp_fetch, "hidden", {"connected"})
    assert through(client_config, view["control_path"], "inner-direct") == "via-master"
    await call(jp_fetch, "DELETE", "connections", "hidden")
