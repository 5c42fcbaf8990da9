"""The askpass bridge's wire format, defined once for both ends: ``hy2fa-askpass`` (the
helper OpenSSH runs, ``askpass.py``) and the server's listener (``core/asks.py``).

The helper runs once per question, so this module imports nothing and the format is not
JSON (json pulls in re). One exchange per connection:

- the helper sends ``b"2 <length> <parent> <session>[ t]\\n"`` and the question's
  ``<length>`` bytes (UTF-8): ``<parent>`` is the helper's parent pid (``os.getppid()``: the
  ssh that asks), ``<session>`` its session id (``os.getsid(0)``, the ssh's too), so the
  server knows which ssh asks even where it can learn nothing of processes (0 where the
  session's leader is outside the helper's pid namespace, as in a container entered with
  ``docker exec``: the system says 0 there); `` t``: the helper has a controlling terminal;
- the server replies with one line: ``b"A<answer>\\n"`` (the answer, for ssh's pipe),
  ``b"E<reason>\\n"`` (cancelled, expired, refused: the helper exits non-zero and ends its
  ssh where it can tell that its parent is one; the server refuses every further question of
  a cancelled or expired ssh at once) or ``b"T\\n"`` ("ask on your terminal": an ssh in a
  terminal a person uses). No reply (the connection closed) means the question was withdrawn.
"""

from __future__ import annotations

SOCKET_ENV = "HY2FA_ASKPASS_SOCKET"  # the listener's path, in every kernel's environment
PROTOCOL = 2
MAX_QUESTION = 64 * 1024  # bytes of a question the server takes
MAX_ANSWER = 1024  # characters of an answer
MAX_REPLY = 64 * 1024  # bytes the helper reads back (an answer line, or a reason)
ASK_ON_TERMINAL = b"T\n"


def request(question: str, terminal: bool, parent: int, session: int) -> bytes:
    """What the helper sends: the header line and the question."""
    body = question.encode(errors="replace")
    flag = b" t" if terminal else b""
    return b"%d %d %d %d%s\n" % (PROTOCOL, len(body), parent, session, flag) + body


def parse_header(line: bytes) -> tuple[int, bool, int, int] | None:
    """(the question's length, whether the helper has a terminal, its parent pid, its
    session id) from a request's first line, or None for anything this version does not
    speak."""
    if not line.endswith(b"\n"):
        return None
    words = line[:-1].split(b" ")
    if len(words) not in (4, 5) or words[0] != b"%d" % PROTOCOL:
        return None
    if not all(_number(word) for word in words[1:4]):
        return None
    if len(words) == 5 and words[4] != b"t":
        return None
    size, parent, session = (int(word) for word in words[1:4])
    if size > MAX_QUESTION or parent < 1:  # session 0: its leader is out of sight
        return None
    return size, len(words) == 5, parent, session


def _number(word: bytes) -> bool:
    """ASCII digits, at most 10 of them (``int()`` would take ``+4`` or ``4_0``)."""
    return 0 < len(word) <= 10 and word.isdigit()


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
