"""What the user's ssh configuration says, asked of ssh itself (``ssh -G``).

Only the list of ``Host`` aliases is read from the file directly: ssh has no command for it.
"""

from __future__ import annotations

import glob
import os
import shlex
import subprocess
from collections.abc import Iterator, Sequence

from .errors import Hy2faError, InvalidInput

_G_TIMEOUT = 10.0
_MAX_INCLUDE_DEPTH = 16


def ssh_g(
    destination: str,
    *,
    user: str | None = None,
    port: int | None = None,
    options: Sequence[tuple[str, str]] = (),
    config_file: str | None = None,
    ssh: str = "ssh",
) -> dict[str, str]:
    """The effective client settings for ``destination``: lower-case keys, first value each."""
    args = [ssh, "-G"]
    if config_file:
        args += ["-F", config_file]
    if user is not None:
        args += ["-l", user]
    if port is not None:
        args += ["-p", str(port)]
    for key, value in options:
        args += ["-o", f"{key}={value}"]
    args += ["--", destination]
    try:
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=_G_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        raise Hy2faError(f"OpenSSH client not found: {ssh}", reason="ssh_missing") from None
    except subprocess.TimeoutExpired:
        raise Hy2faError(f"'ssh -G {destination}' did not answer in time") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit status {result.returncode}"
        raise InvalidInput(f"ssh refuses the settings for {destination}: {detail}")
    settings: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key:
            settings.setdefault(key.lower(), value)
    return settings


def default_config_file() -> str:
    return os.path.expanduser("~/.ssh/config")


def config_hosts(config_file: str | None = None) -> list[str]:
    """Concrete ``Host`` aliases (no wildcards or negations), in file order, Includes followed."""
    path = config_file or default_config_file()
    seen: list[str] = []
    for name in _hosts_in(path, depth=0):
        if name not in seen:
            seen.append(name)
    return seen


def _hosts_in(path: str, depth: int) -> Iterator[str]:
    if depth > _MAX_INCLUDE_DEPTH:
        return
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.readlines()
    except OSError:
        return
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.replace("=", " ", 1).partition(" ")
        keyword = keyword.lower()
        try:
            words = shlex.split(rest, comments=True)
        except ValueError:
            continue
        if keyword == "host":
            for word in words:
                if not any(char in word for char in "*?!") and not word.startswith("-"):
                    yield word
        elif keyword == "include":
            for pattern in words:
                for included in sorted(glob.glob(_include_path(pattern))):
                    yield from _hosts_in(included, depth + 1)


def _include_path(pattern: str) -> str:
    """Relative Include paths are relative to ~/.ssh for a user config (ssh_config(5))."""
    pattern = os.path.expanduser(pattern)
    if os.path.isabs(pattern):
        return pattern
    return os.path.join(os.path.expanduser("~/.ssh"), pattern)
