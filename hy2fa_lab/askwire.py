"""The askpass bridge's wire format, defined once for both ends: ``hy2fa-askpass`` (the
helper OpenSSH runs, ``askpass.py``) and the server's listener (``core/asks.py``).

The helper runs once per question, so this module imports nothing and the format is not
JSON (json pulls in re). One exchange per connection:

- the helper sends ``b"1 <length>[ t]\\n"`` and the question's ``<length>`` bytes (UTF-8);
  `` t``: the helper has a controlling terminal;
- the server replies with one line: ``b"A<answer>\\n"`` (the answer, for ssh's pipe),
  ``b"E<reason>\\n"`` (cancelled, expired, refused: the helper ends its ssh) or ``b"T\\n"``
  ("ask on your terminal": an ssh in a terminal a person uses). No reply (the connection
  closed) means the question was withdrawn.
"""

from __future__ import annotations

SOCKET_ENV = "HY2FA_ASKPASS_SOCKET"  # the listener's path, in every kernel's environment
PROTOCOL = 1
MAX_QUESTION = 64 * 1024  # bytes of a question the server takes
MAX_ANSWER = 1024  # characters of an answer
MAX_REPLY = 64 * 1024  # bytes the helper reads back (an answer line, or a reason)
ASK_ON_TERMINAL = b"T\n"


def request(question: str, terminal: bool) -> bytes:
    """What the helper sends: the header line and the question."""
    body = question.encode(errors="replace")
    return b"%d %d%s\n" % (PROTOCOL, len(body), b" t" if terminal else b"") + body


def parse_header(line: bytes) -> tuple[int, bool] | None:
    """(the question's length, whether the helper has a terminal) from a request's first
    line, or None for anything this version does not speak."""
    if not line.endswith(b"\n"):
        return None
    words = line[:-1].split(b" ")
    if len(words) not in (2, 3) or words[0] != b"%d" % PROTOCOL:
        return None
    if not words[1].isdigit() or (len(words) == 3 and words[2] != b"t"):
        return None
    size = int(words[1])
    if size > MAX_QUESTION:
        return None
    return size, len(words) == 3


def answer(text: str) -> bytes:
    """The reply that gives ssh ``text`` (one line: checked by the server before)."""
    return b"A" + text.encode() + b"\n"


def refusal(reason: str) -> bytes:
    """The reply that ends the asking ssh, with the reason the helper prints."""
    return b"E" + reason.encode(errors="replace") + b"\n"


def parse_reply(reply: bytes) -> tuple[str, str]:
    """What the helper makes of the server's reply: ``("answer", text)``,
    ``("refused", reason)``, ``("terminal", "")`` or ``("withdrawn", "")`` (no reply, or
    one cut short)."""
    if not reply.endswith(b"\n"):
        return "withdrawn", ""
    if reply == ASK_ON_TERMINAL:
        return "terminal", ""
    kind, text = reply[:1], reply[1:-1].decode(errors="replace")
    if kind == b"A":
        return "answer", text
    if kind == b"E":
        return "refused", text
    return "withdrawn", ""
