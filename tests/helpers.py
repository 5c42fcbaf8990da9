"""Plain helpers many test files share: the prompt servers' TOTP secret and its codes, and the
end of a pexpect child. Fixtures live in conftest.py."""

from __future__ import annotations

import io
import time

import pexpect
import pyotp

SECRET = pyotp.random_base32()
"""The base32 TOTP secret the asyncssh prompt servers check codes against (one per test run:
each test starts its own server, and nothing remembers a code once used). The real sshd fixture
has a secret of its own: ``RealSshd.totp()`` and ``RealSshd.wrong_code()``."""


def code() -> str:
    """The code a prompt server built on :data:`SECRET` accepts right now."""
    return str(pyotp.TOTP(SECRET).now())


def otp_ok(answer: str) -> bool:
    """A prompt-server check: ``answer`` is the code of this or an adjacent 30 s step."""
    return bool(pyotp.TOTP(SECRET).verify(answer, valid_window=1))


def wrong_code() -> str:
    """A six-digit code that is surely wrong now (outside every nearby time step)."""
    generator = pyotp.TOTP(SECRET)
    near = {generator.at(time.time() + step * 30) for step in range(-3, 4)}
    base = int(generator.now())
    candidates = (f"{(base + k) % 1_000_000:06d}" for k in range(500_000, 500_020))
    return next(c for c in candidates if c not in near)


def shown(child: pexpect.spawn) -> str:
    """What the terminal showed so far (``child.logfile_read`` must be a StringIO), with
    ``\\n`` line ends."""
    text = child.logfile_read.getvalue()
    return str(text).replace("\r\n", "\n")


def finish(child: pexpect.spawn) -> tuple[int, str]:
    """Wait for ``child`` to exit; its exit status and output. The output is everything the
    terminal showed when ``child.logfile_read`` records it (a StringIO, see :func:`shown`),
    else what came after the last ``expect``. A child killed by a signal fails the test."""
    child.expect(pexpect.EOF)
    after_last_expect = str(child.before)
    child.close()
    recorded = isinstance(child.logfile_read, io.StringIO)
    output = shown(child) if recorded else after_last_expect
    assert child.signalstatus is None, f"killed by signal {child.signalstatus}: {output}"
    return child.exitstatus, output
