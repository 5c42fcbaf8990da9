"""The events (hy2fa_lab/server/events.py): validated by jupyter_events against the schemas
the extension registers, the same shape as REST, and never an answer."""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jupyter_events import EventLogger

from hy2fa_lab.core.asks import Ask
from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.types import Prompt, PromptKind, Reason, State, Target
from hy2fa_lab.server.events import (
    ASK_SCHEMA_ID,
    ASK_SCHEMA_PATH,
    SCHEMA_ID,
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


async def test_a_device_flow_link_of_a_command_issuer_is_a_valid_event(
    emitted: tuple[EventEmitter, list[dict[str, Any]]],
) -> None:
    from hy2fa_lab.core.issuer_command import CommandLogin
    from hy2fa_lab.core.login_ssh import SshLogin
    from hy2fa_lab.core.types import CertificateSpec

    emitter, seen = emitted
    spec = CertificateSpec(issuer="command", key="/nonexistent/cscs", argv=("cscs-key",))
    method = CommandLogin(spec, SshLogin())
    session = MasterSession(TARGET, on_change=emitter.connection_changed, method=method)
    session._set(State.STARTING)
    method.tool.device, method._running = {"url": "https://x.example/d", "code": None}, True
    session._set(State.VERIFYING)
    method._running = False
    session._fail(Reason.CANCELLED, "Cancelled")
    await asyncio.sleep(0.05)  # listeners run as tasks
    assert [e["state"] for e in seen] == ["starting", "verifying", "failed"]  # none refused
    devices = [e["certificate"]["device"] for e in seen]
    assert devices == [None, {"url": "https://x.example/d", "code": None}, None]


async def test_every_reason_of_a_failure_is_a_valid_event(
    emitted: tuple[EventEmitter, list[dict[str, Any]]],
) -> None:
    emitter, seen = emitted
    for reason in Reason:
        session = MasterSession(TARGET, on_change=emitter.connection_changed)
        session._set(State.STARTING)
        session._fail(reason, "it failed")
    await asyncio.sleep(0.05)
    failed = [e["reason"] for e in seen if e["state"] == "failed"]
    assert failed == [reason.value for reason in Reason]  # none refused by the schema


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


# ---- the lists typed by hand: types.py, the schemas, src/tokens.ts ---------------------------

ROOT = Path(__file__).resolve().parent.parent
TOKENS = (ROOT / "src" / "tokens.ts").read_text(encoding="utf-8")
SCHEMAS = {"connection": SCHEMA_PATH, "ask": ASK_SCHEMA_PATH}


def schema(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def ts_union(name: str, text: str = TOKENS) -> list[str]:
    """The string literals of ``export type <name> = 'a' | 'b' ...;`` in tokens.ts, which
    must be nothing but string literals."""
    found = re.search(rf"^export type {name} =([^;]+);", text, re.M)
    assert found, f"src/tokens.ts has no type {name}"
    members = [member.strip() for member in found.group(1).split("|") if member.strip()]
    literals = [re.fullmatch(r"'([a-z_]+)'", member) for member in members]
    assert all(literals), f"{name} in src/tokens.ts is not a union of string literals: {members}"
    return sorted(literal.group(1) for literal in literals if literal)


def ts_const(name: str) -> str:
    found = re.search(rf"^export const {name} =\s*'([^']+)';", TOKENS, re.M)
    assert found, f"src/tokens.ts has no string constant {name}"
    return found.group(1)


def values(kind: type[enum.Enum]) -> list[str]:
    return sorted(member.value for member in kind)


@pytest.mark.parametrize(
    ("name", "schema_id", "ts_name"),
    [("connection", SCHEMA_ID, "EVENT_SCHEMA"), ("ask", ASK_SCHEMA_ID, "ASK_EVENT_SCHEMA")],
    ids=["connection", "ask"],
)
def test_an_event_schemas_id_file_and_version_say_one_version(
    name: str, schema_id: str, ts_name: str
) -> None:
    path = SCHEMAS[name]
    loaded = schema(path)
    assert path.parent.name == name
    assert path.stem == f"v{loaded['version']}", f"{path} says version {loaded['version']}"
    assert loaded["$id"] == f"https://events.hy2fa-lab.org/hy2fa_lab/{name}/{path.stem}"
    assert schema_id == loaded["$id"]  # what events.py emits
    assert ts_const(ts_name) == loaded["$id"]  # what the frontend listens for
    assert list((path.parent).glob("*.yaml")) == [path]  # one version shipped, this one


def test_the_state_kind_and_reason_lists_are_the_enums_of_types_py() -> None:
    connection = schema(SCHEMA_PATH)["properties"]
    ask = schema(ASK_SCHEMA_PATH)["properties"]
    assert sorted(connection["state"]["enum"]) == values(State)
    assert sorted(connection["prompt"]["properties"]["kind"]["enum"]) == values(PromptKind)
    assert sorted(ask["prompt"]["properties"]["kind"]["enum"]) == values(PromptKind)
    reasons = connection["reason"].get("enum")
    assert reasons is not None, "the connection schema lists no reasons"
    assert None in reasons  # null while not failed
    assert sorted(r for r in reasons if r is not None) == values(Reason)
    assert ts_union("ConnectionState") == values(State)
    assert ts_union("PromptKind") == values(PromptKind)
    assert ts_union("FailureReason") == values(Reason)
    assert ts_union("AskAction") == sorted(ask["action"]["enum"])


def test_the_union_parser_sees_a_type_that_drifts() -> None:
    grown = TOKENS.replace("  | 'unresponsive';", "  | 'unresponsive'\n  | 'paused';")
    assert "paused" in ts_union("ConnectionState", grown)
    widened = TOKENS.replace("'otp' | ", "'otp' | string | ")
    with pytest.raises(AssertionError, match="not a union of string literals"):
        ts_union("PromptKind", widened)
