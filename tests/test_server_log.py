"""The server's log (hy2fa_lab/server/log.py): every state change with its reason, through the
extension's logger (a child of the Jupyter server's), an unexpected error with its traceback,
and never an answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import SECRET, wrong_code
from test_server_api import add_prompt_host, answer, call, call_error, wait_for

from hy2fa_lab.core import login_ssh as session_module
from hy2fa_lab.demo import sshserver

Fetch = Any


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.endswith(".hy2fa_lab")]


def _text(record: logging.LogRecord) -> str:
    """Everything a handler could write: the message, its arguments and any traceback."""
    parts = [record.getMessage(), repr(record.args)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


async def test_a_failed_login_at_debug_says_why_and_never_the_codes(
    jp_fetch: Fetch,
    jp_serverapp: Any,
    prompt_server: Callable[..., Any],
    client_config: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "otp", server.port)
    await call(jp_fetch, "POST", "connections", body={"cluster": "otp"})
    typed = []
    seen = 0
    for _ in range(3):  # OpenSSH asks three times, then gives up
        view = await wait_for(jp_fetch, "otp", {"prompting"}, seen)
        seen = view["prompt"]["id"]
        typed.append(wrong_code())
        await answer(jp_fetch, "otp", typed[-1], seen)
    failed = await wait_for(jp_fetch, "otp", {"failed"})
    assert failed["reason"] == "auth_failed"

    records = _ours(caplog)
    assert {r.name for r in records} == {f"{jp_serverapp.log.name}.hy2fa_lab"}
    lines = [(r.levelno, r.getMessage()) for r in records]
    assert any(level == logging.INFO and ": starting: ssh to tester@" in m for level, m in lines)
    assert any(level == logging.INFO and "ssh asks (otp" in m for level, m in lines)
    assert any(
        level == logging.WARNING and "otp: failed [auth_failed]" in m for level, m in lines
    ), lines
    everything = "\n".join(_text(r) for r in caplog.records)  # every logger, not only ours
    for code in typed:
        assert code not in everything


async def test_an_unexpected_error_is_logged_with_its_traceback(
    jp_fetch: Fetch,
    prompt_server: Callable[..., Any],
    client_config: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> dict[str, str]:
        raise TypeError("a bug in the environment")

    monkeypatch.setattr(session_module, "ssh_environment", broken)
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "otp", server.port)
    await call(jp_fetch, "POST", "connections", body={"cluster": "otp"})
    failed = await wait_for(jp_fetch, "otp", {"failed"})
    assert failed["reason"] == "error"
    traced = [r for r in _ours(caplog) if r.exc_info and r.levelno == logging.ERROR]
    assert traced, [r.getMessage() for r in _ours(caplog)]
    assert "TypeError: a bug in the environment" in _text(traced[0])
    assert "ssh_environment" in _text(traced[0]) or "broken" in _text(traced[0])


async def test_an_expected_refusal_is_not_logged_as_a_server_error(
    jp_fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, error = await call_error(jp_fetch, "GET", "connections", "nothing-here")
    assert (status, error["reason"]) == (404, "unknown_cluster")
    assert not [r for r in caplog.records if r.exc_info]  # no "Uncaught exception" traceback
    assert any("-> 404 (unknown_cluster)" in r.getMessage() for r in _ours(caplog))
