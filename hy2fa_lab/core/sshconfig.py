"""What the user's ssh configuration says, asked of ssh itself (``ssh -G``).

Only the list of ``Host`` aliases is read from the file directly: ssh has no command for it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import subprocess
from collections.abc import Iterator, Sequence

from .environment import ssh_environment
from .errors import Hy2faError, InvalidInput

_G_TIMEOUT = 10.0
_MAX_INCLUDE_DEPTH = 16
SYSTEM_CONFIG_FILE = "/etc/ssh/ssh_config"


def ssh_g(
    destination: str,
    *,
    user: str | None = None,
    port: int | None = None,
    options: Sequence[tuple[str, str]] = (),
    config_file: str | None = None,
    ssh: str = "ssh",  # the program, as on a command line; Settings.ssh says which one
) -> dict[str, str]:
    """The effective client settings for ``destination``: lower-case keys, first value each."""
    args = command_line(destination, user=user, port=port, options=options, config_file=config_file)
    return ssh_g_args(args, destination, ssh=ssh)


def command_line(
    destination: str,
    *,
    user: str | None = None,
    port: int | None = None,
    options: Sequence[tuple[str, str]] = (),
    config_file: str | None = None,
) -> list[str]:
    """ssh's options for ``destination`` as :func:`ssh_g` gives them (checked already),
    ending with ``--`` and the destination."""
    args = []
    if config_file:
        args += ["-F", config_file]
    if user is not None:
        args += ["-l", user]
    if port is not None:
        args += ["-p", str(port)]
    for key, value in options:
        args += ["-o", f"{key}={value}"]
    return [*args, "--", destination]


def ssh_g_args(args: Sequence[str], destination: str, *, ssh: str = "ssh") -> dict[str, str]:
    """``ssh -G`` with the options of a command line as given (``args`` ends with the
    destination); ``destination`` names it in error messages."""
    try:
        result = subprocess.run(
            [ssh, "-G", *args],
            capture_output=True,
            text=True,
            timeout=_G_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env=ssh_environment(),
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


# ssh's options that take a value (OpenSSH 9's getopt string), for reading a command line.
_WITH_VALUE = frozenset("BDEFIJLOPQRSWbceilmopw")


def split_ssh_argv(argv: Sequence[str]) -> tuple[list[str], str] | None:
    """(options, destination) of an ssh command line, without the remote command; ``None``
    when it names no destination or only controls a master (``-O``)."""
    options: list[str] = []
    words = list(argv[1:])
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            break
        if not word.startswith("-") or word == "-":
            return (options, word) if "-O" not in options else None
        options.append(word)
        for position, letter in enumerate(word[1:], start=1):
            if letter in _WITH_VALUE:
                if position == len(word) - 1 and index < len(words):
                    options.append(words[index])
                    index += 1
                if letter == "O":
                    return None
                break
    if index < len(words) and "-O" not in options:
        return options, words[index]
    return None


def passwd_home() -> str:
    """The home directory ssh uses: the passwd entry's, not ``$HOME`` (ssh ignores it)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:  # no passwd entry (some containers): ssh would fail; $HOME is a guess
        return os.path.expanduser("~")


def user_ssh_dir() -> str:
    """``~/.ssh`` as ssh finds it."""
    return os.path.join(passwd_home(), ".ssh")


def user_config_file() -> str:
    """The per-user config ssh reads when no ``-F`` is given."""
    return os.path.join(user_ssh_dir(), "config")


def default_config_file() -> str:
    """Kept for callers of the old name: the user's config file, as ssh finds it."""
    return user_config_file()


def config_hosts(config_file: str | None = None) -> list[str]:
    """Concrete ``Host`` aliases (no wildcards or negations), in file order, Includes followed.

    Without ``config_file`` these are the files ssh itself reads: the user's config, then the
    system-wide one; with it, only that file (as ``ssh -F``).
    """
    if config_file:
        roots = [(config_file, user_ssh_dir())]
    else:
        roots = [
            (user_config_file(), user_ssh_dir()),
            (SYSTEM_CONFIG_FILE, os.path.dirname(SYSTEM_CONFIG_FILE)),
        ]
    seen: list[str] = []
    for path, include_dir in roots:
        for name in _hosts_in(path, include_dir, depth=0):
            if name not in seen:
                seen.append(name)
    return seen


def _hosts_in(path: str, include_dir: str, depth: int) -> Iterator[str]:
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
                for included in sorted(glob.glob(_include_path(pattern, include_dir))):
                    yield from _hosts_in(included, include_dir, depth + 1)


def _include_path(pattern: str, include_dir: str) -> str:
    """Relative Include paths are relative to ~/.ssh in a user config and to /etc/ssh in the
    system one, however deeply included (ssh_config(5)); ``~`` is the passwd home."""
    if pattern == "~" or pattern.startswith("~/"):
        pattern = passwd_home() + pattern[1:]
    else:
        pattern = os.path.expanduser(pattern)  # ~user: from the passwd database as well
    if os.path.isabs(pattern):
        return pattern
    return os.path.join(include_dir, pattern)
