"""The askpass bridge's wire format is defined once (``hy2fa_lab/askwire.py``) and both ends
use it: what ``hy2fa-askpass`` sends is what :class:`AskBridge` reads, what the bridge
replies is what the helper reads, and the helper stays light for it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys

import pytest

from hy2fa_lab import askpass, askwire
from hy2fa_lab.core import asks
from hy2fa_lab.core.asks import AskBridge
from hy2fa_lab.server import bridge

QUESTIONS = [
    "",
    "Password: ",
    "(ola@login.saga.sigma2.no) One-time password (OATH) for 'ola': ",
    "Allow use of key /home/ola/.ssh/id_ed25519?\nKey fingerprint SHA256:abc.",
    "ünïcødé ✓ 問題: ",
    "x" * askwire.MAX_QUESTION,
]


async def bridge_reads(data: bytes) -> tuple[str, bool, int, int] | None:
    """What the bridge makes of ``data`` on its socket, by its own reading code."""
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return await AskBridge("/nonexistent/ask", timeout=1)._read_question(reader)


@pytest.mark.parametrize("terminal", [False, True], ids=["no-tty", "tty"])
@pytest.mark.parametrize("question", QUESTIONS, ids=range(len(QUESTIONS)))
async def test_what_the_helper_sends_the_bridge_reads(question: str, terminal: bool) -> None:
    # what ask_server() puts on the socket: the question, and which ssh asks
    sent = askwire.request(question, terminal, 4242, 77)
    assert await bridge_reads(sent) == (question, terminal, 4242, 77)


async def test_a_session_whose_leader_is_out_of_sight_is_read() -> None:
    """``os.getsid(0)`` is 0 where the session's leader is outside this pid namespace (a
    container entered with ``docker exec``, where CI runs): such an ssh still asks."""
    unshare = shutil.which("unshare")
    if unshare is not None and os.geteuid() == 0:  # show that the system does say 0
        seen = subprocess.run(
            [unshare, "--pid", "--fork", sys.executable, "-c", "import os; print(os.getsid(0))"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        assert seen.stdout == "0\n"
    sent = askwire.request("Password: ", False, 4242, 0)
    assert await bridge_reads(sent) == ("Password: ", False, 4242, 0)


@pytest.mark.parametrize(
    "data",
    [
        b"1 4\nabcd",  # another protocol version (no parent named)
        b"3 4 10 10\nabcd",
        b"2 4 10 10 x\nabcd",  # an unknown flag
        b"2 -1 10 10\n",
        b"2 +4 10 10\nabcd",
        b"2 4_0 10 10\n" + b"a" * 40,  # int() would take it
        b"2 4 \xd9\xa4 10\nabcd",  # not ASCII digits
        b"2 4 0 10\nabcd",  # no parent
        b"2 4 10\nabcd",
        b"2 4 10 10 t t\nabcd",
        b"2 4 99999999999 10\nabcd",
        b"2 %d 10 10\n" % (askwire.MAX_QUESTION + 1) + b"x" * (askwire.MAX_QUESTION + 1),
        b"\xff 4 10 10\nabcd",
        b"2\n",
        b"",
        b"2 9 10 10\nshort",  # fewer bytes than announced
    ],
)
async def test_the_bridge_refuses_what_the_wire_format_does_not_allow(data: bytes) -> None:
    assert await bridge_reads(data) is None


@pytest.mark.parametrize(
    ("made", "read"),
    [
        (askwire.answer("123456"), ("answer", "123456")),
        (askwire.answer("pässwörd with spaces "), ("answer", "pässwörd with spaces ")),
        (askwire.answer(""), ("answer", "")),
        (askwire.refusal("Cancelled in JupyterLab"), ("refused", "Cancelled in JupyterLab")),
        (askwire.refusal(""), ("refused", "")),
        (askwire.ASK_ON_TERMINAL, ("terminal", "")),
        (b"", ("withdrawn", "")),
        (b"A123", ("withdrawn", "")),  # cut short: not an answer
        (b"Zwhat\n", ("withdrawn", "")),
    ],
)
def test_what_the_bridge_replies_the_helper_reads(made: bytes, read: tuple[str, str]) -> None:
    assert askwire.parse_reply(made) == read


async def test_the_bridge_replies_in_the_wire_format() -> None:
    """The bridge's own replies (answer, cancel, refusal) are askwire's."""
    bridge = AskBridge("/nonexistent/ask", timeout=1)
    ask = asks.Ask("1-x", asks.prompt_of("Password: "), None, [], {})
    ask._reply = asyncio.get_running_loop().create_future()
    bridge._asks[ask.id] = ask
    bridge.answer(ask.id, "s3cret wörd")
    assert askwire.parse_reply(ask._reply.result()) == ("answer", "s3cret wörd")
    ask._reply = asyncio.get_running_loop().create_future()
    bridge.cancel(ask.id)
    assert askwire.parse_reply(ask._reply.result()) == ("refused", "Cancelled in JupyterLab")


def test_one_definition_of_the_format() -> None:
    """Neither end spells the format itself; the answer limit the REST API checks is the
    wire's."""
    for module in (askpass, asks, bridge):
        source = open(module.__file__ or "", encoding="utf-8").read()  # noqa: SIM115
        for own in (
            "PROTOCOL = ",
            "MAX_QUESTION = ",
            '"HY2FA_ASKPASS_SOCKET"',
            'b"A',
            'b"E',
            'b"T',
        ):
            assert own not in source, (module.__name__, own)
    ask = asks.Ask("1-x", asks.prompt_of("Password: "), None, [], {})
    assert asks.check_answer(ask, "x" * askwire.MAX_ANSWER)
    with pytest.raises(asks.AnswerTooLong):
        asks.check_answer(ask, "x" * (askwire.MAX_ANSWER + 1))


def test_the_helper_loads_the_wire_format_and_nothing_heavy() -> None:
    """``hy2fa-askpass`` runs for every question: importing it adds only these modules."""
    code = (
        "import sys, json; before = set(sys.modules)\n"
        "import hy2fa_lab.askpass\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert set(json.loads(out)) == {
        "__future__",
        "_socket",
        "hy2fa_lab",
        "hy2fa_lab._version",
        "hy2fa_lab.askwire",
        "hy2fa_lab.askpass",
    }
