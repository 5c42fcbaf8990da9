"""The engine against the asyncssh prompt server: each site's prompts, real OpenSSH client."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import SECRET, code, otp_ok, wrong_code
from procs import answer_and_next, cmdlines, next_prompt, ssh_processes

from hy2fa_lab.core import environment, mux
from hy2fa_lab.core import login_ssh as session_module
from hy2fa_lab.core.errors import Hy2faError, InvalidInput, NoPrompt
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.prompts import classify, is_complete
from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.types import PromptKind, Reason, State
from hy2fa_lab.demo import sshserver

PASSWORD = "correct horse battery staple"
ALIAS = "promptsrv"


def write_client_config(directory: Path, port: int) -> Path:
    """A client config that never touches the machine's ~/.ssh."""
    config = directory / "ssh_config"
    config.write_text(
        f"Host {ALIAS}\n"
        "  HostName 127.0.0.1\n"
        f"  Port {port}\n"
        "  User tester\n"
        f"  UserKnownHostsFile {directory}/known_hosts\n"
        "  StrictHostKeyChecking no\n"
        "  PreferredAuthentications keyboard-interactive\n"
        "  LogLevel ERROR\n"
    )
    return config


def make_manager(directory: Path, port: int, **settings: Any) -> Manager:
    config = write_client_config(directory, port)
    return Manager(Settings(ssh_config=str(config), control_path=f"{directory}/%C", **settings))


async def answer_all(session: MasterSession, answers: list[str], after: int = 0) -> list[Any]:
    """Answer each prompt newer than ``after`` in turn; returns the prompts seen."""
    prompts = []
    for response in answers:
        prompts.append(await next_prompt(session, after))
        after = session.prompt_id
        await session.answer(response)
    return prompts


def run_through(config: str, path: str, *command: str) -> str:
    result = subprocess.run(
        ["ssh", "-F", config, "-S", path, "-o", "BatchMode=yes", ALIAS, *command],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return result.stdout


@pytest.fixture
def server(prompt_server: Callable[..., Any]) -> Callable[..., Any]:
    return prompt_server


async def test_sigma2_otp_then_password_connects_and_serves_commands(
    server: Callable[..., Any], short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    srv = server(sshserver.sigma2(otp_ok, PASSWORD))
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    otp = code()
    prompts = await answer_all(session, [otp, PASSWORD])
    assert await session.wait(20) is State.CONNECTED, session.message
    assert [p.kind for p in prompts] == [PromptKind.OTP, PromptKind.PASSWORD]
    assert prompts[0].text == "(tester@127.0.0.1) One-time password (OATH) for `tester': "
    assert prompts[1].text == "(tester@127.0.0.1) Password: "
    path = session.target.control_path
    assert mux.alive(path) == session.master_pid
    assert Path(path).stat().st_mode & 0o077 == 0
    config = manager.settings.ssh_config
    assert config is not None
    assert run_through(config, path, "echo", "through-the-socket").strip() == "through-the-socket"
    # The secrets are nowhere: not in the API view, the logs, or any process's argv.
    view = repr(session.to_json())
    everything = " ".join(" ".join(argv) for argv in cmdlines().values())
    for secret in (otp, PASSWORD):
        assert secret not in view
        assert secret not in caplog.text
        assert secret not in everything
    await manager.disconnect(session.name)
    assert session.state is State.DISCONNECTED
    assert mux.alive(path) is None
    assert ssh_processes(path) == {}


async def test_wrong_code_then_right_code(server: Callable[..., Any], short_tmp: Path) -> None:
    srv = server(sshserver.totp(SECRET))
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    first = await next_prompt(session, 0)
    assert first.kind is PromptKind.OTP
    second = await answer_and_next(session, wrong_code())
    assert second.kind is PromptKind.OTP
    assert session.message == "Wrong code — try again"
    await session.answer(code())
    assert await session.wait(20) is State.CONNECTED
    await manager.disconnect(session.name)


async def test_three_wrong_codes_fail_with_auth_failed(
    server: Callable[..., Any], short_tmp: Path
) -> None:
    srv = server(sshserver.totp(SECRET))
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    await answer_all(session, [wrong_code()] * 3)
    assert await session.wait(20) is State.FAILED
    assert session.reason is Reason.AUTH_FAILED
    assert "Permission denied" in session.message
    assert ssh_processes(session.target.control_path) == {}


async def test_duo_menu_passcode_and_push(server: Callable[..., Any], short_tmp: Path) -> None:
    srv = server(sshserver.duo("424242"))
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    prompt = await next_prompt(session, 0)
    assert prompt.kind is PromptKind.DUO
    assert "Duo two-factor login" in prompt.text
    assert prompt.options and "Duo Push" in prompt.options[0]
    await session.answer("1")  # option 1: a push, approved by the script after a moment
    assert await session.wait(20) is State.CONNECTED, session.message
    await manager.disconnect(session.name)

    session = await manager.connect(ALIAS)
    await answer_all(session, ["424242"])
    assert await session.wait(20) is State.CONNECTED, session.message
    await manager.disconnect(session.name)


async def test_nersc_password_plus_otp(server: Callable[..., Any], short_tmp: Path) -> None:
    srv = server(sshserver.nersc(PASSWORD, otp_ok))
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    prompts = await answer_all(session, [PASSWORD + code()])
    assert prompts[0].text.endswith("Password + OTP: ")
    assert prompts[0].kind is PromptKind.PASSWORD
    assert await session.wait(20) is State.CONNECTED
    await manager.disconnect(session.name)


async def test_tacc_banner_is_not_a_prompt(server: Callable[..., Any], short_tmp: Path) -> None:
    srv = server(sshserver.tacc(PASSWORD, otp_ok))
    manager = make_manager(short_tmp, srv.port, prompt_timeout=30)
    session = await manager.connect(ALIAS)
    prompts = await answer_all(session, [PASSWORD, code()])
    assert [p.kind for p in prompts] == [PromptKind.PASSWORD, PromptKind.OTP]
    assert prompts[0].text == "(tester@127.0.0.1) Password: "
    assert prompts[1].text == "(tester@127.0.0.1) TACC Token Code: "
    assert await session.wait(20) is State.CONNECTED
    await manager.disconnect(session.name)


async def test_unanswered_prompt_times_out_and_leaves_no_child(
    server: Callable[..., Any], short_tmp: Path
) -> None:
    srv = server(sshserver.totp(SECRET))
    manager = make_manager(short_tmp, srv.port, prompt_timeout=1.5)
    session = await manager.connect(ALIAS)
    await next_prompt(session, 0)
    child = session.child_pid
    assert child is not None
    assert await session.wait(20) is State.FAILED
    assert session.reason is Reason.TIMEOUT
    assert child not in cmdlines()
    assert ssh_processes(session.target.control_path) == {}


async def test_cancel_while_prompting(server: Callable[..., Any], short_tmp: Path) -> None:
    srv = server(sshserver.totp(SECRET))
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    await next_prompt(session, 0)
    await manager.disconnect(session.name)
    assert session.state is State.FAILED
    assert session.reason is Reason.CANCELLED
    assert ssh_processes(session.target.control_path) == {}
    with pytest.raises(NoPrompt):
        await session.answer("123456")


async def test_concurrent_connects_share_one_ssh_child(
    server: Callable[..., Any], short_tmp: Path
) -> None:
    srv = server(sshserver.totp(SECRET))
    manager = make_manager(short_tmp, srv.port)
    first, second = await asyncio.gather(manager.connect(ALIAS), manager.connect(ALIAS))
    assert first is second
    await next_prompt(first, 0)
    assert len(ssh_processes(first.target.control_path)) == 1
    await first.answer(code())
    assert await first.wait(20) is State.CONNECTED
    # Asked again once connected: the live master is returned, nothing is spawned.
    third = await manager.connect(ALIAS)
    assert third is first and third.state is State.CONNECTED
    assert list(ssh_processes(first.target.control_path)) == [first.master_pid]
    await manager.disconnect(first.name)


async def test_a_new_manager_discovers_the_running_master(
    server: Callable[..., Any], short_tmp: Path
) -> None:
    srv = server(sshserver.totp(SECRET))
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    await answer_all(session, [code()])
    assert await session.wait(20) is State.CONNECTED
    later = make_manager(short_tmp, srv.port)
    found = await later.discover()
    assert [s.name for s in found] == [ALIAS]
    assert found[0].state is State.CONNECTED
    assert found[0].master_pid == session.master_pid
    await later.disconnect(ALIAS)
    assert mux.alive(session.target.control_path) is None
    await manager.refresh()
    assert session.state is State.DISCONNECTED


async def test_bad_answers_change_nothing(server: Callable[..., Any], short_tmp: Path) -> None:
    srv = server(sshserver.totp(SECRET))
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    await next_prompt(session, 0)
    before = session.prompt_id
    for bad in ["", "12\n34", "x" * 2000]:
        with pytest.raises(InvalidInput):
            await session.answer(bad)
    with pytest.raises(NoPrompt):
        await session.answer(code(), prompt_id=before + 7)
    assert session.state is State.PROMPTING and session.prompt_id == before
    await session.answer(code(), prompt_id=before)
    assert await session.wait(20) is State.CONNECTED
    await manager.disconnect(session.name)


async def test_unreachable_host(short_tmp: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    manager = make_manager(short_tmp, port)
    session = await manager.connect(ALIAS)
    assert await session.wait(20) is State.FAILED
    assert session.reason is Reason.UNREACHABLE
    assert "Connection refused" in session.message


async def test_bad_targets_are_refused_before_ssh_runs(short_tmp: Path) -> None:
    manager = make_manager(short_tmp, 22)
    for bad in ["-oProxyCommand=touch /tmp/pwned", "two words", ""]:
        with pytest.raises(InvalidInput):
            await manager.connect(bad)
    with pytest.raises(InvalidInput):
        await manager.connect(ALIAS, port=0)
    with pytest.raises(InvalidInput):
        await manager.connect(ALIAS, persist="forever")
    assert manager.sessions() == []


async def test_missing_ssh_is_reported(short_tmp: Path) -> None:
    manager = make_manager(short_tmp, 22, ssh=str(short_tmp / "no-such-ssh"))
    with pytest.raises(Hy2faError) as info:
        await manager.connect(ALIAS)
    assert info.value.reason == "ssh_missing"


async def test_the_master_sees_none_of_the_servers_secrets(
    server: Callable[..., Any], short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A master outlives the Jupyter server: its environment must not keep the server's."""
    monkeypatch.setenv("JUPYTER_TOKEN", "jupyter-token-must-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cloud-secret-must-not-leak")
    monkeypatch.setenv("SSH_ASKPASS", "/usr/bin/true")
    monkeypatch.setenv("DISPLAY", ":0")
    srv = server(sshserver.totp(SECRET))
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    await answer_all(session, [code()])
    assert await session.wait(20) is State.CONNECTED
    try:
        raw = Path(f"/proc/{session.master_pid}/environ").read_bytes()
        names = {item.split(b"=", 1)[0].decode() for item in raw.split(b"\0") if item}
        assert b"must-not-leak" not in raw
        leaked = {"JUPYTER_TOKEN", "AWS_SECRET_ACCESS_KEY", "SSH_ASKPASS", "DISPLAY"} & names
        assert leaked == set()
        assert "HOME" in names and "PATH" in names
        assert names <= set(environment.PASSED) | {"LC_ALL", "LANG", "TERM"}
    finally:
        await manager.disconnect(session.name)


async def test_a_stopped_master_is_unresponsive_and_never_an_exception(
    server: Callable[..., Any], short_tmp: Path
) -> None:
    srv = server(sshserver.totp(SECRET))
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    await answer_all(session, [code()])
    assert await session.wait(20) is State.CONNECTED
    pid = session.master_pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        await manager.refresh()
        assert session.state is State.UNRESPONSIVE
        assert "does not answer" in session.message
        again = await manager.connect(ALIAS)  # no second login over a socket that hangs
        assert again is session and session.state is State.UNRESPONSIVE
        assert list(ssh_processes(session.target.control_path)) == [pid]
        with pytest.raises(Hy2faError) as caught:
            await manager.disconnect(ALIAS)
        assert caught.value.reason == "unresponsive"
        later = make_manager(short_tmp, srv.port)  # e.g. a server started meanwhile
        await later.ready()
        assert later.discovery_error is None
        assert [(s.name, s.state) for s in later.sessions()] == [(ALIAS, State.UNRESPONSIVE)]
    finally:
        os.kill(pid, signal.SIGCONT)
    await manager.refresh()
    assert session.state is State.CONNECTED and session.master_pid == pid
    await manager.disconnect(ALIAS)
    assert session.state is State.DISCONNECTED


async def test_a_host_key_asked_again_still_shows_the_fingerprint(
    server: Callable[..., Any], short_tmp: Path
) -> None:
    srv = server(sshserver.totp(SECRET))
    config = write_client_config(short_tmp, srv.port)
    text = config.read_text().replace("StrictHostKeyChecking no", "StrictHostKeyChecking ask")
    config.write_text(text)
    manager = Manager(Settings(ssh_config=str(config), control_path=f"{short_tmp}/%C"))
    session = await manager.connect(ALIAS)
    first = await next_prompt(session, 0)
    assert first.kind is PromptKind.HOSTKEY and "fingerprint is SHA256:" in first.text
    fingerprint = next(w for w in first.text.split() if w.startswith("SHA256:")).rstrip(".")
    second = await answer_and_next(session, "SHA256:not-the-right-one")
    assert second.kind is PromptKind.HOSTKEY
    assert second.text.endswith("Please type 'yes', 'no' or the fingerprint: ")
    assert fingerprint in second.text  # the person can still compare it
    await session.answer("no")
    assert await session.wait(20) is State.FAILED
    assert session.reason is Reason.HOSTKEY_REJECTED
    assert ssh_processes(session.target.control_path) == {}


async def test_socket_directory_is_0700_and_socket_0600_under_umask_022(
    server: Callable[..., Any], short_tmp: Path
) -> None:
    srv = server(sshserver.totp(SECRET))
    config = write_client_config(short_tmp, srv.port)
    manager = Manager(Settings(ssh_config=str(config), control_path=f"{short_tmp}/cm/%C"))
    previous = os.umask(0o022)
    try:
        session = await manager.connect(ALIAS)
        await answer_all(session, [code()])
        assert await session.wait(20) is State.CONNECTED
    finally:
        os.umask(previous)
    try:
        path = Path(session.target.control_path)
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_ISSOCK(path.lstat().st_mode)
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
    finally:
        await manager.disconnect(ALIAS)


# ---- event-driven: nothing waits on a timer ----------------------------------------------

LONG = 60.0  # longer than any bound below: a wait on it would fail the test


async def test_a_known_prompt_is_raised_without_waiting_for_quiet(
    server: Callable[..., Any], short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the quiet period and the peer check an hour long, the Sigma2 prompts still show,
    and each answer is written at once: the login ends long before either timer could."""
    monkeypatch.setattr(session_module, "_SETTLE", LONG)
    monkeypatch.setattr(session_module, "_PEER_CHECK", LONG)
    srv = server(sshserver.sigma2(otp_ok, PASSWORD))
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    seen = await asyncio.wait_for(answer_all(session, [code(), PASSWORD]), LONG / 4)
    assert [prompt.kind for prompt in seen] == [PromptKind.OTP, PromptKind.PASSWORD]
    assert await session.wait(LONG / 4) is State.CONNECTED
    await manager.disconnect(session.name)


async def test_an_unknown_prompt_still_shows_after_a_short_quiet(
    server: Callable[..., Any], short_tmp: Path
) -> None:
    """No known kind and not ending like a question: raised once ssh stays quiet."""
    script = sshserver.PromptScript(
        steps=[sshserver.PromptStep("Say the magic word>", expected="xyzzy")]
    )
    srv = server(script)
    manager = make_manager(short_tmp, srv.port)
    session = await manager.connect(ALIAS)
    prompt = await next_prompt(session, 0)
    assert prompt.kind is PromptKind.OTHER
    assert prompt.text.endswith("Say the magic word>")
    await session.answer("xyzzy")
    assert await session.wait(20) is State.CONNECTED
    await manager.disconnect(session.name)


def test_complete_questions_are_told_from_cut_ones() -> None:
    for text, complete in [
        ("(u@h) One-time password (OATH) for `u': ", True),
        ("(u@h) One-time pass", False),  # cut in the middle: wait for the rest
        ("(u@h) Password: ", True),
        ("Are you sure you want to continue connecting (yes/no/[fingerprint])? ", True),
        ("(u@h) Say the magic word: ", True),  # unknown words, but OpenSSH's question shape
        ("Say the magic word>", False),
        ("banner line\n", False),
    ]:
        prompt = classify(text)
        assert (prompt is not None and is_complete(prompt, text)) is complete, text
