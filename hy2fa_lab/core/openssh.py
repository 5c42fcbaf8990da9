"""Which OpenSSH client runs, and whether it can do what hy2fa-lab needs of it.

A master needs ControlMaster, which Windows' OpenSSH does not have, and ``ssh -G`` (6.8);
the askpass bridge needs ``SSH_ASKPASS_REQUIRE`` (8.4). Each surface says so once, in the
same words, with the version it found, instead of failing later in a way nobody can read.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .environment import ssh_environment
from .errors import Hy2faError

MASTERS = (6, 8)  # ssh -G, which resolves every target
ASKPASS = (8, 4)  # SSH_ASKPASS_REQUIRE=force
_VERSION = re.compile(r"OpenSSH(_for_Windows)?_(\d+)\.(\d+)")
_WSL = "Run JupyterLab in WSL (the Windows Subsystem for Linux), where OpenSSH has it."


class Unsupported(Hy2faError):
    """This machine's ssh cannot make or share a master."""

    reason = "unsupported"


@dataclass(frozen=True)
class Client:
    """What ``ssh -V`` said."""

    banner: str  # "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024"
    version: tuple[int, int] | None  # None: not OpenSSH, or it did not say
    windows: bool

    @property
    def name(self) -> str:
        return self.banner.split(",")[0].strip() or "an unknown ssh"

    def masters_problem(self) -> str | None:
        """Why no master can be made with this client, in words for a person; None if it can."""
        if self.windows or sys.platform == "win32":
            return (
                f"Windows' OpenSSH ({self.name}) has no ControlMaster, which hy2fa-lab needs "
                f"to keep a login open. {_WSL}"
            )
        if self.version is not None and self.version < MASTERS:
            return (
                f"{self.name} is too old: hy2fa-lab needs OpenSSH "
                f"{MASTERS[0]}.{MASTERS[1]} or newer (for ssh -G)."
            )
        return None

    def askpass_problem(self) -> str | None:
        """Why ssh a kernel runs cannot ask in JupyterLab; None if it can."""
        masters = self.masters_problem()
        if masters is not None:
            return masters
        if self.version is not None and self.version < ASKPASS:
            return (
                f"{self.name} cannot ask in JupyterLab: that needs OpenSSH "
                f"{ASKPASS[0]}.{ASKPASS[1]} or newer (SSH_ASKPASS_REQUIRE); ssh run by kernels "
                "cannot ask for codes, but %hy2fa, ensure() and the sidebar still work."
            )
        return None


def parse(banner: str) -> Client:
    match = _VERSION.search(banner)
    version = (int(match.group(2)), int(match.group(3))) if match else None
    return Client(banner.strip(), version, windows=bool(match and match.group(1)))


@functools.lru_cache(maxsize=8)
def client(ssh: str = "ssh") -> Client | None:
    """``ssh -V`` of the program ``ssh`` (blocking, bounded, once per program); None when it
    does not run (the login then fails as ``ssh_missing``, with its own message)."""
    try:
        run = subprocess.run(
            [ssh, "-V"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            env=ssh_environment(),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse(run.stderr or run.stdout)


def check_masters(ssh: str = "ssh") -> None:
    """Raise :class:`Unsupported` when ``ssh`` cannot make a master."""
    found = client(ssh)
    problem = found.masters_problem() if found is not None else None
    if problem is None and sys.platform == "win32":
        problem = f"Windows' OpenSSH has no ControlMaster, which hy2fa-lab needs. {_WSL}"
    if problem is not None:
        raise Unsupported(problem)


def helper_program() -> str | None:
    """``hy2fa-askpass`` of this installation (beside this Python), else one on PATH: the
    helper the askpass bridge sets as ``SSH_ASKPASS``, None where it is not installed."""
    beside = Path(sys.executable).parent / "hy2fa-askpass"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("hy2fa-askpass")
