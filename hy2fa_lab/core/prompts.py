"""Reading what ssh is waiting for out of its terminal output.

Only the pending prompt is classified (the text after the last completed line, grown
back over the lines that belong to the same question), never banner text: TACC's
banner says "password" and "token" long before any prompt.
"""

from __future__ import annotations

import re

from .types import Prompt, PromptKind

# OpenSSH >= 8.5 puts "(user@host) " in front of keyboard-interactive prompts.
_PREFIX = re.compile(r"\([^()\s]+@[^()\s]+\) ")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

_HOSTKEY = re.compile(
    r"continue connecting \(yes/no(/\[fingerprint\])?\)\?"
    r"|Please type 'yes', 'no' or the fingerprint",
    re.I,
)
_HOSTKEY_START = re.compile(r"The authenticity of host|Warning: the \S+ host key for", re.I)
_DUO = re.compile(r"Passcode or option \((\d+)-(\d+)\)", re.I)
# The lines of Duo's menu above its options ("Duo two-factor login for u", "Enter a passcode
# or select one of the following options:").
_DUO_HEADER = re.compile(r"two-factor login|Enter a passcode|following options", re.I)
_DUO_OPTION = re.compile(r"^\s*(\d+)\.\s+(.+?)\s*$")
_PASSPHRASE = re.compile(r"passphrase", re.I)
_OTP = re.compile(
    r"one[- ]?time|verification code|passcode|token|\boath\b|\btotp\b|\botp\b|"
    r"authenticator|2fa|two[- ]factor|security code|\bcode\b",
    re.I,
)
_PASSWORD = re.compile(r"password|passwd", re.I)
_ONE_TIME_PASSWORD = re.compile(r"one[- ]?time password", re.I)


def clean(text: str) -> str:
    """Terminal output as plain text: ANSI escapes gone, CR/LF normalised."""
    text = _ANSI.sub("", text)
    text = text.replace("\r\n", "\n")
    # ssh writes "\r" before a prompt to return to column 0; keep what follows it.
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


def pending_line(output: str) -> str | None:
    """The unterminated last line ssh is waiting on, or None when output ends a line."""
    text = clean(output)
    if not text or text.endswith("\n"):
        return None
    last = text.rsplit("\n", 1)[-1]
    return last if last.strip() else None


def is_prompt_line(line: str) -> bool:
    """A keyboard-interactive question ssh printed (it carries the ``(user@host)`` prefix)."""
    return bool(_PREFIX.match(line))


def asked_for(text: str) -> str | None:
    """``user@host`` of OpenSSH's ``(user@host)`` prefix (on the line where the question, or a
    Duo menu, starts): through
    a bastion (ProxyJump) the jump host and the target each ask, and this says which."""
    found = [_PREFIX.match(line) for line in text.split("\n")]
    matches = [match for match in found if match]
    return matches[-1].group(0).strip()[1:-1] if matches else None


def strip_prefix(text: str) -> str:
    return _PREFIX.sub("", text, count=1) if _PREFIX.match(text) else text


def classify(output: str) -> Prompt | None:
    """The prompt ssh is waiting on at the end of ``output`` (since the last answer)."""
    line = pending_line(output)
    if line is None:
        return None
    lines = clean(output).split("\n")
    bare = strip_prefix(line)
    if _HOSTKEY.search(bare):
        text = "\n".join(lines[_last_match(lines, _HOSTKEY_START) :])
        return Prompt(PromptKind.HOSTKEY, text, ("yes", "no"), secret=False)
    duo = _DUO.search(bare)
    if duo:
        block = lines[_duo_start(lines, int(duo.group(1)), int(duo.group(2))) :]
        options = tuple(
            match.group(2) for match in (_DUO_OPTION.match(item) for item in block) if match
        )
        return Prompt(PromptKind.DUO, "\n".join(block), options, secret=True)
    return Prompt(_kind_of(bare), line, (), secret=True)


def _duo_start(lines: list[str], first: int, last: int) -> int:
    """Index of the line where a Duo question (the menu and ``Passcode or option (1-N)``,
    the last line) starts. Two shapes: sshd with pam_duo asks the whole menu as the prompt,
    so it starts at OpenSSH's ``(user@host)`` prefix; a server that sends the menu as
    keyboard-interactive instruction text gets it printed on the lines before the prefixed
    prompt line (so does an ssh older than 8.5, which adds no prefix). Lines above the
    question are taken as its menu only when they are one: options numbered ``first`` to
    ``last`` right above the prompt, under Duo's header; banner text never is."""
    end = len(lines) - 1
    for index in range(end - 1, -1, -1):
        if _PREFIX.match(lines[index]):
            if _DUO.search(lines[index]):
                break  # an earlier question's last line: this one starts below it
            return index  # the question itself holds the menu (pam_duo)
    index = end - 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    numbers: list[int] = []
    while index >= 0 and (option := _DUO_OPTION.match(lines[index])):
        numbers.insert(0, int(option.group(1)))
        index -= 1
    if numbers != list(range(first, last + 1)):
        return end
    start = end
    while index >= 0 and (not lines[index].strip() or _DUO_HEADER.search(lines[index])):
        if lines[index].strip():
            start = index
        index -= 1
    return start


def _last_match(lines: list[str], *patterns: re.Pattern[str]) -> int:
    """Index of the line where the question starts: the first pattern that is found wins."""
    for pattern in patterns:
        for index in range(len(lines) - 1, -1, -1):
            if pattern.match(lines[index]) if pattern is _PREFIX else pattern.search(lines[index]):
                return index
    return len(lines) - 1


def _kind_of(question: str) -> PromptKind:
    if _PASSPHRASE.search(question):
        return PromptKind.PASSPHRASE
    # "One-time password (OATH)" asks for a code; "Password + OTP:" (NERSC) and
    # "Password & verification code:" ask for a password with the code appended.
    without_otp_phrase = _ONE_TIME_PASSWORD.sub("", question)
    if _PASSWORD.search(without_otp_phrase):
        return PromptKind.PASSWORD
    if _OTP.search(question):
        return PromptKind.OTP
    return PromptKind.OTHER


def is_complete(prompt: Prompt, output: str) -> bool:
    """Whether ``prompt`` is a whole question of a known shape, to be raised without waiting
    for quiet: a known kind, or OpenSSH's ``(user@host)`` prefix, and ending as questions do
    (``": "``, ``"? "``). A line cut in the middle ("One-time pass") waits for the rest."""
    line = pending_line(output)
    if line is None or not line.endswith((": ", "? ")):
        return False
    return prompt.kind is not PromptKind.OTHER or is_prompt_line(line)


def is_same_question(a: Prompt, b: Prompt) -> bool:
    """Whether ``b`` asks what ``a`` asked: ssh asking again means the answer was wrong."""
    return a.kind == b.kind and strip_prefix(a.text.split("\n")[-1]) == strip_prefix(
        b.text.split("\n")[-1]
    )
