"""The events (hy2fa_lab/server/events.py): validated by jupyter_events against the schemas
the extension registers, the same shape as REST, and never an answer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from jupyter_events import EventLogger

from hy2fa_lab.core.asks import Ask
from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.types import Prompt, PromptKind, State, Target
from hy2fa_lab.server.events import (
    ASK_SCHEMA_PATH,
    SCHEMA_PATH,
    EventEmitter,
)

TARGET = Target(
    name="saga",
    destination="saga",
    hostname="saga.sigma2.no",
    user="ola",
    port=22,
    control_path="/tmp/cm-ola@saga.sigma2.no:22",
    persist="1h",
    cluster="saga",
)
OTP = Prompt(PromptKind.OTP, "(ola@saga.sigma2.no) One-time password (OATH) for `ola': ", ())


@pytest.fixture
def emitted() -> tuple[EventEmitter, list[dict[str, Any]]]:
    logger = EventLogger()
    logger.register_event_schema(SCHEMA_PATH)
    logger.register_event_schema(ASK_SCHEMA_PATH)
    seen: list[dict[str, Any]] = []

    async def listen(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        seen.append({"schema_id": schema_id, **data})

    logger.add_listener(listener=listen)
    return EventEmitter(logger, logging.getLogger("test")), seen


async def test_every_state_of_a_connection_is_a_valid_event_of_the_rest_shape(
    emitted: tuple[EventEmitter, list[dict[str, Any]]],
) -> None:
    emitter, seen = emitted
    session = MasterSession(TARGET, on_change=emitter.connection_changed)
    session._set(State.STARTING)
    session.prompt_id = 1
    session._set(State.PROMPTING, OTP)
    session._answered_at, session._pending = 1.0, "Pushed a login request to your device...\r\n"
    session._set(State.VERIFYING)
    session.adopt(4242)
    session.mark_disconnected("The master exited")
    await asyncio.sleep(0.05)  # listeners run as tasks
    assert [e["state"] for e in seen] == [
        "starting", "prompting", "verifying", "connected", "disconnected"
    ]  # fmt: skip
    for event in seen:  # each was validated on emit; and it is the view, no more, no less
        assert set(event) - {"schema_id"} == set(session.to_json())
    assert seen[1]["prompt"]["kind"] == "otp" and seen[1]["prompt"]["host"] == "ola@saga.sigma2.no"
    assert seen[2]["verifying"]["lines"] == ["Pushed a login request to your device..."]


async def test_an_idle_session_is_not_an_event_and_a_bad_one_never_breaks_a_login(
    emitted: tuple[EventEmitter, list[dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    emitter, seen = emitted
    session = MasterSession(TARGET, on_change=emitter.connection_changed)
    session._set(State.IDLE)
    session.state = State.STARTING
    session.to_json = lambda: {"name": 3}  # type: ignore[method-assign]  # fails the schema
    emitter.connection_changed(session)  # logged, not raised
    await asyncio.sleep(0.05)
    assert seen == []
    assert "could not emit a connection event" in caplog.text


async def test_an_ask_event_is_the_ask_and_its_action(
    emitted: tuple[EventEmitter, list[dict[str, Any]]],
) -> None:
    emitter, seen = emitted
    ask = Ask(
        id="a1",
        prompt=OTP,
        host="saga.sigma2.no",
        command=["ssh", "saga", "squeue"],
        origin={"pid": 7, "kernel_id": "k", "notebook": "Analysis.ipynb"},
    )
    emitter.ask_changed(ask, "asked")
    emitter.ask_changed(ask, "answered")
    await asyncio.sleep(0.05)
    assert [e["action"] for e in seen] == ["asked", "answered"]
    for event in seen:
        assert {k: v for k, v in event.items() if k not in ("schema_id", "action")} == (
            ask.to_json()
        )
