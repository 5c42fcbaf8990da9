"""A question's text is the cluster's words, shown verbatim, but characters that reorder or
hide text (U+202E RIGHT-TO-LEFT OVERRIDE, the bidi isolates, zero-width characters, terminal
controls) are shown escaped (``\\u202e``), so a question cannot read as another. One function
(``validate.visible``) does it for a connection's prompt and for an ask's question, whose JSON
is what Lab, the CLI and the widget show. Real OpenSSH client against the asyncssh server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from procs import next_prompt
from test_askpass import Asked, askpass_env, bridge, finished, run_ssh, ssh_config, stop_master

from hy2fa_lab.core.asks import Ask, AskBridge, host_of, prompt_of
from hy2fa_lab.core.environment import ssh_environment
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.types import Prompt, PromptKind, State
from hy2fa_lab.core.validate import shown, visible
from hy2fa_lab.demo.sshserver import PromptScript, PromptStep

__all__ = ["bridge"]  # the fixture, imported for the askpass test below

# Read in a terminal or a browser, this shows "Verification code (type: 1234) :" reordered:
# the override turns what follows it around.
RLO_QUESTION = "Verification code \u202e:edoc ruoy\u202c (\u2066old\u2069\u200b): "
ESCAPED = "Verification code \\u202e:edoc ruoy\\u202c (\\u2066old\\u2069\\u200b): "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\u202eb", "a\\u202eb"),
        ("\u202a\u202b\u202c\u202d", "\\u202a\\u202b\\u202c\\u202d"),
        ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),
        ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),
        ("zero\u200bwidth\u2060joiner\ufeff", "zero\\u200bwidth\\u2060joiner\\ufeff"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("line\u2028sep", "line\\u2028sep"),
        ("bs\x08\x08\x1b[2K\x07", "bs\\x08\\x08\\x1b[2K\\x07"),
        ("hangul\u3164filler\u115f", "hangul\\u3164filler\\u115f"),
    ],
)
def test_characters_that_reorder_or_hide_text_are_escaped(text: str, expected: str) -> None:
    assert visible(text) == expected
    assert visible(expected) == expected  # escaping twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "(ola@saga.sigma2.no) One-time password (OATH) for `ola': ",
        "Duo two-factor login for u\n\n 1. Duo Push to XXX-XXX-1234\n\tPasscode or option (1-1): ",
        "(u@h) Engangspassord for «øyvind»: ",
        "(u@h) \u05e1\u05d9\u05e1\u05de\u05d4 / "
        "\u0643\u0644\u0645\u0629 \u0627\u0644\u0645\u0631\u0648\u0631: ",
        "(u@h) Code\u00a0de v\u00e9rification\u3000: ",
    ],
)
def test_ordinary_text_in_any_script_is_left_as_it_is(text: str) -> None:
    assert visible(text) == text


def test_a_refused_value_is_quoted_with_the_same_escapes() -> None:
    assert shown("a\u202eb") == "'a\\u202eb'"
    assert shown("a\u3164b") == "'a\\u3164b'"


def test_a_prompt_shows_its_text_and_options_escaped() -> None:
    prompt = Prompt(PromptKind.DUO, "x\u202e\n 1. Push to \u202e4321", ("Push to \u202e4321",))
    assert prompt.to_json()["text"] == "x\\u202e\n 1. Push to \\u202e4321"
    assert prompt.to_json()["options"] == ["Push to \\u202e4321"]


def test_what_ssh_says_while_verifying_and_its_failure_message_are_escaped() -> None:
    from hy2fa_lab.core.session import MasterSession
    from hy2fa_lab.core.types import Target

    target = Target("c", "c", "c.example.org", "u", 22, "/tmp/hy2fa-none.sock", "1h")
    session = MasterSession(target)
    session.state = State.VERIFYING
    session._pending = "Pushed to \u202e4321 enohp\r\n"  # what ssh printed
    session.message = "Permission denied \u2066(x)\u2069"
    view = session.to_json()
    assert view["verifying"]["lines"] == ["Pushed to \\u202e4321 enohp"]
    assert view["message"] == "Permission denied \\u2066(x)\\u2069"


def test_an_asks_question_and_host_are_escaped() -> None:
    question = "(u@evil\u202ehost) " + RLO_QUESTION
    ask = Ask(
        id="1-x",
        prompt=prompt_of(question),
        host=host_of(visible(question)),
        command=["ssh", "h"],
        origin={"pid": 1},
    )
    data = ask.to_json()
    assert "\u202e" not in str(data) and "\u2066" not in str(data)
    assert data["prompt"]["text"] == visible(question)
    assert data["prompt"]["kind"] == "otp"
    assert data["host"] == "evil\\u202ehost"


# In the C locale the engine gives ssh, ssh itself writes a question's non-ASCII bytes as
# octal escapes; in a UTF-8 locale (a kernel's ssh, or the engine's should it ever run ssh so)
# it passes them through, and the escaping here is what stands between them and the screen.
@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("C", "Verification code \\342\\200\\256:edoc ruoy\\342\\200\\254 "
         "(\\342\\201\\246old\\342\\201\\251\\342\\200\\213): "),
        ("C.UTF-8", ESCAPED),
    ],
    ids=["C", "C.UTF-8"],
)  # fmt: skip
async def test_a_connections_prompt_with_a_right_to_left_override_is_shown_escaped(
    prompt_server: Callable[..., Any],
    short_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    locale: str,
    expected: str,
) -> None:
    monkeypatch.setattr(
        "hy2fa_lab.core.login_ssh.ssh_environment",
        lambda: {**ssh_environment(), "LC_ALL": locale, "LANG": locale},
    )
    script = PromptScript(steps=[PromptStep(RLO_QUESTION, expected="424242")])
    srv = prompt_server(script)
    config = short_tmp / "ssh_config"
    config.write_text(
        f"Host rlo\n  HostName 127.0.0.1\n  Port {srv.port}\n  User tester\n"
        f"  UserKnownHostsFile {short_tmp}/known_hosts\n  StrictHostKeyChecking no\n"
        "  PreferredAuthentications keyboard-interactive\n"
    )
    manager = Manager(Settings(ssh_config=str(config), control_path=f"{short_tmp}/%C"))
    session = await manager.connect("rlo")
    prompt = await next_prompt(session, 0)
    view = session.to_json()["prompt"]
    assert view["text"] == "(tester@127.0.0.1) " + expected
    assert view["kind"] == "otp" and prompt.kind is PromptKind.OTP
    await session.answer("424242")
    assert await session.wait(20) is State.CONNECTED, session.message
    await manager.disconnect(session.name)


async def test_an_askpass_question_with_a_right_to_left_override_is_shown_escaped(
    bridge: AskBridge, prompt_server: Callable[..., Any], short_tmp: Path
) -> None:
    server = prompt_server(PromptScript(steps=[PromptStep(RLO_QUESTION, expected="424242")]))
    config = ssh_config(short_tmp, server.port)
    (short_tmp / "known_hosts").write_text(server.known_hosts_line())
    asked = Asked(bridge)
    proc = await run_ssh(askpass_env(bridge), "-F", str(config), "target", "echo", "ran")
    try:
        ask = await asked.next()
        data = ask.to_json()
        assert data["prompt"]["text"] == "(tester@127.0.0.1) " + ESCAPED
        assert "\u202e" not in str(data)
        bridge.answer(ask.id, "424242")
        status, out, err = await finished(proc)
        assert (status, out) == (0, "ran\n"), err
    finally:
        if proc.returncode is None:
            proc.kill()
        stop_master(config)
