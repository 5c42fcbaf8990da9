"""Duo push (hy2fa_lab/core/session.py): after a push option is chosen the connection says so,
since when, and every line ssh prints meanwhile, verbatim and as it arrives; a push that
times out says Duo's own words. Real OpenSSH client against the asyncssh Duo server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from helpers import finish
from procs import next_prompt, ssh_processes
from test_cli import Cli

from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.types import PromptKind, State
from hy2fa_lab.demo import sshserver
from hy2fa_lab.demo.sshserver import DUO_APPROVED, DUO_PUSHED, DUO_TIMED_OUT, Push

ALIAS = "narval-like"
VERIFIED = "Enter this code in Duo Mobile: 318604"


def duo_manager(directory: Path, port: int) -> Manager:
    """A client config as a person has it: OpenSSH's default LogLevel (INFO), under which it
    prints the server's keyboard-interactive notices (ERROR would hide Duo's lines)."""
    config = directory / "ssh_config"
    config.write_text(
        f"Host {ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n  User tester\n"
        f"  UserKnownHostsFile {directory}/known_hosts\n  StrictHostKeyChecking no\n"
        "  PreferredAuthentications keyboard-interactive\n"
    )
    return Manager(Settings(ssh_config=str(config), control_path=f"{directory}/%C"))


def record(manager: Manager) -> list[dict[str, Any]]:
    views: list[dict[str, Any]] = []
    manager.subscribe(lambda session: views.append(session.to_json()))
    return views


async def until(session: MasterSession, check: Callable[[], bool], timeout: float = 20) -> None:
    async def wait() -> None:
        while not check():
            await session.changed()

    await asyncio.wait_for(wait(), timeout)


async def test_a_push_says_what_it_waits_for_and_each_line_as_it_comes(
    prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    push = Push(lines=(DUO_PUSHED, VERIFIED), delay=2.0)
    srv = prompt_server(sshserver.duo("424242", push=push))
    manager = duo_manager(short_tmp, srv.port)
    views = record(manager)
    session = await manager.connect(ALIAS)
    prompt = await next_prompt(session, 0)
    assert prompt.kind is PromptKind.DUO and prompt.options == ("Duo Push to XXX-XXX-1234",)
    await session.answer("1")
    waiting = session.to_json()["verifying"]
    assert waiting["choice"] == "Duo Push to XXX-XXX-1234" and waiting["since"]
    # Both lines show while the "phone" still has the request: before the login goes on.
    await until(session, lambda: VERIFIED in session.lines_since_answer())
    assert session.state is State.VERIFYING
    assert session.lines_since_answer()[-2:] == [DUO_PUSHED, VERIFIED]
    assert await session.wait(20) is State.CONNECTED, session.message
    shown = [v["verifying"]["lines"] for v in views if v["state"] == "verifying"]
    # Each arrival was its own change: the push notice while the phone had it, then Duo's
    # "Success" once approved.
    assert [DUO_PUSHED, VERIFIED] in shown
    assert [DUO_PUSHED, VERIFIED, DUO_APPROVED] in shown
    assert all(v["verifying"] is None for v in views if v["state"] != "verifying")
    await manager.disconnect(session.name)


BANNER = "Welcome to the login node.\n 1. Read the rules\n 2. Be nice\n"


@pytest.mark.parametrize("menu_in", ["prompt", "instructions"])
async def test_both_shapes_of_the_duo_menu_give_its_options_and_never_the_banner(
    prompt_server: Callable[..., Any],
    short_tmp: Path,
    menu_in: Literal["prompt", "instructions"],
) -> None:
    """sshd with pam_duo asks the whole menu as the prompt; other servers send it as the
    keyboard-interactive instructions, which ssh prints before ``(user@host) Passcode or
    option (1-1): ``. Either way the prompt is the menu with its option, and a banner with
    numbered lines of its own is not part of it."""
    srv = prompt_server(sshserver.duo("424242", menu_in=menu_in, banner=BANNER))
    manager = duo_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    prompt = await next_prompt(session, 0)
    assert prompt.kind is PromptKind.DUO
    assert prompt.options == ("Duo Push to XXX-XXX-1234",)
    first = "Duo two-factor login for tester"
    assert prompt.text.startswith(
        first if menu_in == "instructions" else f"(tester@127.0.0.1) {first}"
    )
    assert prompt.text.endswith("Passcode or option (1-1): ")
    assert "Welcome" not in prompt.text and "rules" not in prompt.text
    assert session.to_json()["prompt"]["host"] == "tester@127.0.0.1"
    await session.answer("1")
    assert session.to_json()["verifying"]["choice"] == "Duo Push to XXX-XXX-1234"
    assert await session.wait(20) is State.CONNECTED, session.message
    await manager.disconnect(session.name)


async def test_a_push_that_times_out_says_so_in_duo_words(
    prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    push = Push(delay=0.5, approve=False)
    srv = prompt_server(sshserver.duo("424242", push=push))
    manager = duo_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    await next_prompt(session, 0)
    await session.answer("1")
    again = await next_prompt(session, 1)  # OpenSSH asks the menu again
    assert again.kind is PromptKind.DUO
    assert session.message == f"{DUO_TIMED_OUT} — try again"
    await session.answer("424242")  # the passcode is never kept as a "choice"
    assert session.to_json()["verifying"]["choice"] is None
    assert await session.wait(20) is State.CONNECTED, session.message
    await manager.disconnect(session.name)
    assert ssh_processes(session.target.control_path) == {}


async def test_a_prompt_says_when_it_stops_waiting(
    prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    srv = prompt_server(sshserver.duo("424242"))
    manager = duo_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    await next_prompt(session, 0)
    view = session.to_json()
    from datetime import datetime

    expires = datetime.fromisoformat(view["prompt"]["expires"])
    updated = datetime.fromisoformat(view["updated"])
    assert abs((expires - updated).total_seconds() - manager.settings.prompt_timeout) < 2
    await manager.disconnect(session.name)


def test_the_terminal_says_approve_on_the_phone_and_duo_lines(
    prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    push = Push(lines=(DUO_PUSHED, VERIFIED), delay=1.0)
    srv = prompt_server(sshserver.duo("424242", push=push))
    cli = Cli(short_tmp)
    try:
        config = duo_manager(short_tmp, srv.port).settings.ssh_config
        assert config is not None
        child = cli.spawn("connect", ALIAS, *cli.target_options(Path(config)))
        child.expect_exact("Passcode or option (1-1): ")
        child.sendline("1")
        status, output = finish(child)
        assert status == 0, output
        after = output.split("Passcode or option (1-1): \n", 1)[1].split("\n")
        assert after[:4] == [
            "Approve the request on your phone (Duo Push to XXX-XXX-1234)",
            DUO_PUSHED,
            VERIFIED,
            DUO_APPROVED,
        ], output
        assert after[4].startswith(f"{ALIAS}: connected")
        status, _ = cli.run("disconnect", ALIAS, *cli.target_options(Path(config)))
        assert status == 0
    finally:
        cli.cleanup()
