"""``hy2fa doctor`` and ``GET hy2fa/doctor``: what a person runs when a login fails.

Each :class:`Check` is one line: ``ok``, a ``problem`` (with what to do about it), or ``info``
(worth knowing, nothing to do). Without a cluster only this machine's lines are made; with one
also its resolution, socket, ssh config lines, host key and whether it answers.

The doctor never asks a question and never logs in: it runs ``ssh -V``, ``ssh -G`` (with
``-vvv``, whose debug lines say which ``Host``/``Match`` blocks apply), ``ssh-keygen -F``, and
one TCP connection that reads the server's ``SSH-2.0-`` banner and closes. Every step is
bounded in time; the whole is blocking (a server runs it in a thread). Nothing it shows is
secret: versions, paths, config lines, a public host key's type, a banner.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from . import controlpath, openssh, platform, profiles, sshconfig, trust, validate
from .environment import ssh_environment
from .errors import Hy2faError, InvalidInput, UnknownCluster
from .profiles import ClusterProfile
from .sshconfig import passwd_home
from .targets import Targets
from .types import Target

OK, PROBLEM, INFO = "ok", "problem", "info"
STATUSES = (OK, PROBLEM, INFO)
REACH_TIMEOUT = 5.0  # seconds for a name lookup, a TCP connect and the banner, together
_RUN_TIMEOUT = 10.0  # seconds for ssh -G and each ssh-keygen -F
_CONFIG_BYTES = 1 << 20  # an ssh config file read for its option lines: at most this much
_SHOWN_LINE = 120  # characters of a config line or banner shown
CONTROL_OPTIONS = ("ControlMaster", "ControlPath", "ControlPersist")
# The SOCKET variable the askpass bridge sets in its kernels' environment
# (askwire.SOCKET_ENV: core does not import the helper's module).
_BRIDGE_SOCKET_ENV = "HY2FA_ASKPASS_SOCKET"

TITLES = {
    "openssh": "OpenSSH client",
    "askpass": "Questions of ssh in notebooks (askpass bridge)",
    "cluster": "Cluster",
    "control_path": "Control path length",
    "socket_dir": "Socket directory",
    "ssh_config:ControlMaster": "ssh config: ControlMaster",
    "ssh_config:ControlPath": "ssh config: ControlPath",
    "ssh_config:ControlPersist": "ssh config: ControlPersist",
    "host_key": "Host key",
    "reachable": "Answers on its port",
}
"""A person's title of each check (the CLI's words; Lab has its own, translated)."""


def title(check: str) -> str:
    if check.startswith("platform:"):
        return f"This machine: {check.partition(':')[2]}"
    return TITLES.get(check, check)


@dataclasses.dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    check: str  # what was checked: an id ("host_key"), or "platform:<capability>"
    status: str  # ok | problem | info
    detail: str  # what was found, in words
    fix: str = ""  # what to do (a problem always says; empty when there is nothing to do)

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclasses.dataclass
class Report:
    cluster: str | None
    checks: list[Check]

    @property
    def problems(self) -> list[Check]:
        return [check for check in self.checks if check.status == PROBLEM]

    def to_json(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "checks": [check.to_json() for check in self.checks]}


@dataclasses.dataclass(frozen=True)
class Bridge:
    """What a running Jupyter server says of its askpass bridge (``why_off`` when off)."""

    on: bool
    why_off: str | None = None


# ---- the report ------------------------------------------------------------------------------


def run(
    targets: Targets,
    cluster: str | None = None,
    *,
    user: str | None = None,
    port: int | None = None,
    ssh_options: Sequence[tuple[str, str]] = (),
    profiles_only: bool = False,
    bridge: Bridge | None = None,
) -> Report:
    """The doctor's report (blocking: runs ssh and connects; call it off an event loop).

    ``profiles_only``: ``cluster`` must be a cluster of ``targets`` (REST), not any host
    name (the CLI's targets); an unknown one is :class:`UnknownCluster`. ``bridge`` is what
    a running server says of its askpass bridge; without it (the CLI) the doctor says what
    the config and this machine allow.
    """
    settings = targets.settings
    profile = None
    if cluster is not None:
        profile = _profile(targets, cluster, profiles_only=profiles_only)  # raises before any work
    client = openssh.client(settings.ssh)
    checks = [_openssh(client, settings.ssh)]
    checks.append(_askpass(targets, client, bridge))
    if profile is not None:
        checks += _cluster_checks(targets, profile, user, port, ssh_options)
    else:
        checks += _machine_socket_checks(targets)
    checks += [_capability(capability) for capability in platform.capabilities()]
    return Report(profile.name if profile is not None else None, checks)


def _profile(targets: Targets, name: str, *, profiles_only: bool) -> ClusterProfile:
    found = targets.profiles(reload=True).get(name)  # the config files as they are now
    if found is not None:
        return found
    if profiles_only:
        raise UnknownCluster(f"No cluster named {validate.shown(name)}")
    return ClusterProfile(name=validate.host(name), host=name, source="host")


# ---- machine-wide lines ----------------------------------------------------------------------


def _openssh(client: openssh.Client | None, program: str) -> Check:
    if client is None:
        return Check(
            "openssh",
            PROBLEM,
            f"The OpenSSH client {validate.shown(program)} does not run here.",
            "Install the OpenSSH client (Debian/Ubuntu: apt install openssh-client; macOS has "
            "it), or set c.Hy2faLab.ssh to its full path.",
        )
    problem = client.masters_problem()
    if problem is not None:
        return Check(
            "openssh",
            PROBLEM,
            problem,
            "Run JupyterLab where a recent OpenSSH client is installed, or set c.Hy2faLab.ssh "
            "to one.",
        )
    if client.version is None:
        return Check(
            "openssh",
            INFO,
            f"{_cut(client.banner) or 'ssh -V said nothing'}: not a version of OpenSSH this "
            "can read; hy2fa-lab needs OpenSSH 6.8 or newer (8.4 to ask in JupyterLab).",
        )
    major, minor = client.version
    return Check(
        "openssh",
        OK,
        f"OpenSSH {major}.{minor} ({_cut(client.name, 60)}) can keep a login open (ControlMaster).",
    )


_FIX_HELPER = (
    "Reinstall hy2fa-lab in the Jupyter server's environment (pip install --force-reinstall "
    "hy2fa-lab), so that hy2fa-askpass is beside its python, then restart JupyterLab."
)
_FIX_OLD_SSH = (
    "Install OpenSSH 8.4 or newer and point c.Hy2faLab.ssh at it. Meanwhile %hy2fa, ensure() "
    "and the sidebar still log in; only ssh run by a notebook cannot ask."
)
_FIX_SWITCH = (
    "If ssh run by notebooks should ask in JupyterLab, set c.Hy2faLab.askpass = True in "
    "jupyter_server_config.py and restart JupyterLab."
)


def _askpass(targets: Targets, client: openssh.Client | None, bridge: Bridge | None) -> Check:
    settings = targets.settings
    if bridge is not None:  # a running server: what it did at start
        if bridge.on:
            return Check(
                "askpass",
                OK,
                "On: ssh run by this server's notebooks and terminals asks in JupyterLab "
                "(SSH_ASKPASS=hy2fa-askpass).",
            )
        why = bridge.why_off or "c.Hy2faLab.askpass is False"
        if not settings.askpass:
            return Check("askpass", INFO, f"Off: {why}.", _FIX_SWITCH)
        if why.startswith("SSH_ASKPASS is already set"):
            return Check("askpass", INFO, f"Off: {why}.")
        fix = "See the Jupyter server's log for the lines of hy2fa_lab, then restart JupyterLab."
        if openssh.helper_program() is None:
            fix = _FIX_HELPER
        elif client is not None and client.askpass_problem() is not None:
            fix = _FIX_OLD_SSH
        return Check("askpass", PROBLEM, f"Off: {why}", fix)
    # No server: what the config and this machine allow a server started now to do.
    if not settings.askpass:
        return Check(
            "askpass", INFO, "Off in the Jupyter config (c.Hy2faLab.askpass = False).", _FIX_SWITCH
        )
    if openssh.helper_program() is None:
        return Check(
            "askpass",
            PROBLEM,
            "On in the Jupyter config, but hy2fa-askpass is not installed: the Jupyter server "
            "will leave it off.",
            _FIX_HELPER,
        )
    problem = client.askpass_problem() if client is not None else "no OpenSSH client runs"
    if problem is not None:
        return Check("askpass", PROBLEM, f"The Jupyter server will leave it off: {problem}", "")
    if os.environ.get(_BRIDGE_SOCKET_ENV):
        return Check(
            "askpass",
            OK,
            "On: this runs under a Jupyter server whose bridge is on, so ssh asks in JupyterLab.",
        )
    return Check(
        "askpass",
        OK,
        "A Jupyter server started with this config turns it on (hy2fa-askpass is installed, "
        "OpenSSH is 8.4 or newer): ssh run by notebooks asks in JupyterLab.",
    )


def _limit_words() -> str:
    system = "Linux" if sys.platform == "linux" else sys.platform
    temporary = controlpath.SUN_PATH - controlpath.MAX_LENGTH
    return (
        f"at most {controlpath.MAX_LENGTH} bytes here ({system}: a Unix socket's path has "
        f"{controlpath.SUN_PATH} bytes, and ssh needs {temporary} of them for the temporary "
        "name it binds first)"
    )


def _machine_socket_checks(targets: Targets) -> list[Check]:
    """Without a cluster: the directory of the socket template, and the path limit here."""
    template = targets.settings.control_path or controlpath.DEFAULT_TEMPLATE
    checks = []
    directory = os.path.dirname(template)
    if "%" not in directory:
        if directory == "~" or directory.startswith("~/"):
            directory = passwd_home() + directory[1:]
        if os.path.isabs(directory):
            checks.append(_socket_dir(directory))
    checks.append(
        Check(
            "control_path",
            INFO,
            f"A control socket's path may be {_limit_words()}. A path from the template "
            f"({template}) that is longer falls back to a short hashed name, cm-%C; a "
            "ControlPath of your ssh config is used as it is.",
        )
    )
    return checks


def _socket_dir(directory: str) -> Check:
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        return Check(
            "socket_dir",
            INFO,
            f"{directory} does not exist yet: it is made (0700, yours) at the first login.",
        )
    except OSError as error:
        return Check(
            "socket_dir",
            PROBLEM,
            f"Cannot inspect {directory}: {error.strerror}.",
            "Choose a ControlPath in a directory of your own, such as ~/.ssh/cm-%C.",
        )
    problem = trust.directory_problem(directory)
    if problem is not None:
        fix = "Choose a ControlPath in a directory of your own, such as ~/.ssh/cm-%C."
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
            fix = f"chmod 700 {directory} (or choose a ControlPath in a private directory)."
        return Check("socket_dir", PROBLEM, f"Not used: {problem}.", fix)
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return Check(
            "socket_dir",
            INFO,
            f"{directory} is yours and only you can write there, but others can look inside "
            f"(mode {mode:04o}): socket names say which user logs in where.",
            f"chmod 700 {directory}",
        )
    return Check("socket_dir", OK, f"{directory} is yours and private (mode {mode:04o}).")


def _capability(capability: platform.Capability) -> Check:
    check = f"platform:{capability.name}"
    if capability.available:
        how = f" ({capability.how})" if capability.how else ""
        return Check(check, OK, f"Available{how}.")
    return Check(check, INFO, f"Not on this machine: {capability.without}.")


# ---- a cluster's lines -----------------------------------------------------------------------


def _cluster_checks(
    targets: Targets,
    profile: ClusterProfile,
    user: str | None,
    port: int | None,
    ssh_options: Sequence[tuple[str, str]],
) -> list[Check]:
    settings = targets.settings
    if profile.error:
        return [
            Check(
                "cluster",
                PROBLEM,
                f"{profile.name} cannot be used: {profile.error}",
                "Correct or remove this entry of c.Hy2faLab.clusters (jupyter --paths lists "
                "the config directories), then restart JupyterLab.",
            )
        ]
    args = _ssh_args(profile, user, port, ssh_options, settings.ssh_config)
    try:
        resolved, debug = _ssh_g_verbose(settings.ssh, args, profile.host)
    except Hy2faError as error:
        return [
            Check(
                "cluster",
                PROBLEM,
                f"ssh cannot resolve {profile.name}: {error.message}",
                f"Run ssh -G {profile.host} to see ssh's own words; correct the ssh config "
                "line it names.",
            )
        ]
    target: Target | None = None
    resolve_error: Hy2faError | None = None
    try:
        target = targets.resolve(profile.name, user=user, port=port, ssh_options=ssh_options)
    except Hy2faError as error:
        resolve_error = error
    hostname = resolved.get("hostname", profile.host)
    remote_user = resolved.get("user", "")
    remote_port = int(resolved.get("port", "22") or 22)
    source = {
        "builtin": "built in",
        "config": "from the Jupyter config",
        "ssh_config": "a Host of your ssh config",
        "host": "a host name",
    }.get(profile.source, profile.source)
    configured = resolved.get("controlpath", "none")
    configured = "" if configured.lower() == "none" else configured
    path_problem = _path_problem(configured) if configured else None
    checks = []
    if resolve_error is not None and path_problem is None:
        checks.append(Check("cluster", PROBLEM, resolve_error.message, _fix_for(resolve_error)))
    else:
        checks.append(
            Check(
                "cluster",
                OK,
                f"{profile.name} ({source}) is {remote_user}@{hostname}, port {remote_port}, "
                "as ssh -G resolves it.",
            )
        )
    lines = config_lines(debug)
    checks.append(_control_path(target, configured, path_problem, lines))
    path = target.control_path if target is not None else configured
    if path:
        checks.append(_socket_dir(os.path.dirname(path)))
    persist = target.persist if target is not None else (profile.persist or "")
    checks += _ssh_config(profile.name, resolved, lines, persist, target)
    checks.append(_host_key(resolved, hostname, remote_port, profile, settings.ssh))
    checks.append(_reachable(resolved, hostname, remote_port, settings.ssh, settings.ssh_config))
    return checks


def _ssh_args(
    profile: ClusterProfile,
    user: str | None,
    port: int | None,
    ssh_options: Sequence[tuple[str, str]],
    config_file: str | None,
) -> list[str]:
    """ssh's options for ``profile`` as :func:`profiles.resolve` gives them to ``ssh -G``."""
    user, port, options = profiles.explicit_settings(profile, user, port, ssh_options)
    return sshconfig.command_line(
        profile.host, user=user, port=port, options=options, config_file=config_file
    )


def _ssh_g_verbose(ssh: str, args: Sequence[str], destination: str) -> tuple[dict[str, str], str]:
    """``ssh -G -vvv``: the effective settings, and the debug lines that say which blocks of
    which files applied."""
    try:
        result = subprocess.run(
            [ssh, "-G", "-vvv", *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_RUN_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env=ssh_environment(),
            check=False,
        )
    except FileNotFoundError:
        raise Hy2faError(f"OpenSSH client not found: {ssh}", reason="ssh_missing") from None
    except subprocess.TimeoutExpired:
        raise Hy2faError(f"'ssh -G {destination}' did not answer in time") from None
    if result.returncode != 0:
        lines = [
            line
            for line in result.stderr.splitlines()
            if line.strip() and not line.startswith(("debug", "OpenSSH_"))
        ]
        detail = lines[-1] if lines else f"exit status {result.returncode}"
        raise InvalidInput(f"ssh refuses the settings for {destination}: {_cut(detail)}")
    settings: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key:
            settings.setdefault(key.lower(), value)
    return settings, result.stderr


def _path_problem(path: str) -> str | None:
    try:
        controlpath.checked(path)
    except InvalidInput as error:
        return error.message
    if not controlpath.fits(path):
        return f"{path} is {len(os.fsencode(path))} bytes, {_limit_words()}"
    return None


def _fix_for(error: Hy2faError) -> str:
    if "control path" in error.message.lower() or "controlpath" in error.message.lower():
        return "Choose a shorter ControlPath, such as ControlPath ~/.ssh/cm-%C."
    return "Check the cluster's settings in the Jupyter config and your ssh config."


def _control_path(
    target: Target | None,
    configured: str,
    path_problem: str | None,
    lines: Mapping[str, ConfigLine],
) -> Check:
    where = lines.get("controlpath")
    said = f" (set at {where.where}: {where.text})" if where else ""
    if path_problem is not None:
        return Check(
            "control_path",
            PROBLEM,
            f"The ControlPath of your ssh config cannot be used{said}: {path_problem}.",
            "Choose a shorter ControlPath in that line, such as ControlPath ~/.ssh/cm-%C "
            "(ssh uses it as it is, so hy2fa cannot shorten it).",
        )
    if target is None:
        return Check(
            "control_path",
            INFO,
            f"Not resolved, so not checked; a control socket's path may be {_limit_words()}.",
        )
    size = len(os.fsencode(target.control_path))
    return Check(
        "control_path",
        OK,
        f"{target.control_path} is {size} bytes, {_limit_words()}.",
    )


# ---- which line of which ssh config sets an option -------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConfigLine:
    file: str
    line: int
    text: str  # the line as written (stripped, cut short, hidden characters escaped)

    @property
    def where(self) -> str:
        home = passwd_home().rstrip("/") + "/"
        shown = "~/" + self.file[len(home) :] if self.file.startswith(home) else self.file
        return f"{shown}:{self.line}"


_APPLYING = re.compile(r"^debug\d: (.+) line (\d+): Applying options for ")
_CRITERION = re.compile(r"^debug\d: (.+) line (\d+): (?:not )?matched ")
_CHECKING = re.compile(r"^debug\d: checking match for '(.*)' host ")
_INCLUDING = re.compile(
    r"^debug\d: (.+) line (\d+): Including file (.+) depth \d+( \(parse only\))?$"
)
_READING = re.compile(r"^debug\d: Reading configuration data (.+)$")
_KEYWORD = re.compile(r"^\s*([A-Za-z]+)\s*(?:=|\s|$)")


@dataclasses.dataclass
class _Pass:
    """What ssh's debug lines said in one pass over its config files."""

    roots: list[str] = dataclasses.field(default_factory=list)
    applied: set[tuple[str, int]] = dataclasses.field(default_factory=set)
    matches: list[tuple[str, set[tuple[str, int]], bool | None]] = dataclasses.field(
        default_factory=list
    )
    includes: dict[tuple[str, int], list[tuple[str, bool]]] = dataclasses.field(
        default_factory=dict
    )


def _passes(debug: str) -> list[_Pass]:
    passes = [_Pass()]
    included: set[str] = set()
    for line in debug.splitlines():
        current = passes[-1]
        if line.startswith("debug1: re-parsing configuration"):
            passes.append(_Pass())
            included = set()
        elif found := _APPLYING.match(line):
            current.applied.add((found.group(1), int(found.group(2))))
        elif found := _CHECKING.match(line):
            current.matches.append((" ".join(found.group(1).lower().split()), set(), None))
        elif (found := _CRITERION.match(line)) and current.matches:
            current.matches[-1][1].add((found.group(1), int(found.group(2))))
        elif line.startswith("debug2: match found") or line.startswith("debug2: match not found"):
            if current.matches:
                criteria, where, _ = current.matches[-1]
                current.matches[-1] = (criteria, where, "not found" not in line)
        elif found := _INCLUDING.match(line):
            key = (found.group(1), int(found.group(2)))
            current.includes.setdefault(key, []).append((found.group(3), bool(found.group(4))))
            included.add(found.group(3))
        elif (found := _READING.match(line)) and found.group(1) not in {
            *included,
            *current.roots,
        }:
            current.roots.append(found.group(1))
    return passes


def config_lines(debug: str, options: Sequence[str] = CONTROL_OPTIONS) -> dict[str, ConfigLine]:
    """The file and line that set each of ``options`` (lower-case keys), from the debug lines
    of ``ssh -G -vvv``: ssh says which files it reads (Includes too) and which ``Host`` and
    ``Match`` blocks apply; the files say which line of those blocks sets an option first
    (ssh takes the first value it reads)."""
    wanted = {option.lower() for option in options}
    found: dict[str, ConfigLine] = {}
    for each in _passes(debug):
        unplaced = [(criteria, ok) for criteria, where, ok in each.matches if not where]
        for root in each.roots:
            _walk(root, each, unplaced, wanted, found, active=True, never=False, depth=0)
    return found


def _walk(
    path: str,
    seen: _Pass,
    unplaced: list[tuple[str, bool | None]],
    wanted: set[str],
    found: dict[str, ConfigLine],
    *,
    active: bool,
    never: bool,
    depth: int,
) -> None:
    if depth > 16 or wanted <= set(found):
        return
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(_CONFIG_BYTES)
    except OSError:
        return
    for number, raw in enumerate(text.splitlines(), start=1):
        keyword_match = _KEYWORD.match(raw)
        if keyword_match is None or raw.lstrip().startswith("#"):
            continue
        keyword = keyword_match.group(1).lower()
        if keyword == "host":
            active = not never and (path, number) in seen.applied
        elif keyword == "match":
            active = not never and _match_applied(path, number, raw, seen, unplaced)
        elif keyword == "include":
            for included, parse_only in seen.includes.get((path, number), []):
                _walk(
                    included,
                    seen,
                    unplaced,
                    wanted,
                    found,
                    active=active and not parse_only,
                    never=never or parse_only,
                    depth=depth + 1,
                )
        elif keyword in wanted and active and keyword not in found:
            found[keyword] = ConfigLine(path, number, _cut(raw.strip()))


def _match_applied(
    path: str, number: int, raw: str, seen: _Pass, unplaced: list[tuple[str, bool | None]]
) -> bool:
    for _criteria, where, ok in seen.matches:
        if (path, number) in where:
            return bool(ok)
    # "Match all" names no line in ssh's debug output: take the next check of these words.
    criteria = " ".join(raw.strip()[len("match") :].lstrip(" =").lower().split())
    for index, (words, ok) in enumerate(unplaced):
        if words == criteria:
            del unplaced[index]
            return bool(ok)
    return False


def _ssh_config(
    name: str,
    resolved: Mapping[str, str],
    lines: Mapping[str, ConfigLine],
    persist: str,
    target: Target | None,
) -> list[Check]:
    checks = []
    # ControlPath: the config's wins, so every ssh shares one socket.
    where = lines.get("controlpath")
    value = resolved.get("controlpath", "none")
    if value.lower() != "none":
        at = f" at {where.where} ({where.text})" if where else " (on ssh's command line)"
        checks.append(
            Check(
                "ssh_config:ControlPath",
                OK,
                f"Set{at}: ssh -G gives {value}. hy2fa puts {name}'s socket there, so every ssh "
                "that reads this config uses the login.",
            )
        )
    else:
        at = f" ({where.where}: {where.text})" if where else ""
        path = f" at {target.control_path}" if target is not None else ""
        checks.append(
            Check(
                "ssh_config:ControlPath",
                INFO,
                f"Your ssh config sets none for {name}{at}: hy2fa keeps the socket{path}, and a "
                f"plain ssh {name} does not look there.",
                f'Run hy2fa config-ssh {name} to add one, or use ssh -S "$(hy2fa path {name})" '
                f"{name}.",
            )
        )
    # ControlMaster: yes/ask never use a master that runs.
    where = lines.get("controlmaster")
    value = resolved.get("controlmaster", "false")
    at = f", set at {where.where}" if where else " (the default: your ssh config sets none)"
    if value in ("true", "ask"):
        checks.append(
            Check(
                "ssh_config:ControlMaster",
                PROBLEM,
                f"ControlMaster {'yes' if value == 'true' else 'ask'}{at}: every ssh {name} then "
                "makes a login of its own (asking for a code again) instead of using the one "
                "hy2fa keeps.",
                "Change that line to ControlMaster auto: ssh then uses a login that is open "
                "and starts one only when none is.",
            )
        )
    else:
        shown = {"false": "no", "auto": "auto", "autoask": "autoask"}.get(value, value)
        checks.append(
            Check(
                "ssh_config:ControlMaster",
                OK,
                f"ControlMaster {shown}{at}: ssh uses the login hy2fa keeps when it finds its "
                "socket.",
            )
        )
    # ControlPersist: hy2fa's own master takes its persist from the command line.
    where = lines.get("controlpersist")
    value = resolved.get("controlpersist", "no")
    ours = f" hy2fa's own login stays {persist} when idle (its setting)." if persist else ""
    if where is not None:
        checks.append(
            Check(
                "ssh_config:ControlPersist",
                INFO,
                f"Set at {where.where} ({where.text}; ssh -G gives {value}): it applies to "
                f"logins a plain ssh starts.{ours}",
            )
        )
    else:
        checks.append(Check("ssh_config:ControlPersist", OK, f"Your ssh config sets none.{ours}"))
    return checks


# ---- host key --------------------------------------------------------------------------------


def _keygen(ssh: str) -> str:
    """``ssh-keygen`` of the same installation as ``ssh`` when that is a path."""
    if os.sep in ssh:
        beside = os.path.join(os.path.dirname(ssh), "ssh-keygen")
        if os.access(beside, os.X_OK):
            return beside
    return "ssh-keygen"


def _host_key(
    resolved: Mapping[str, str], hostname: str, port: int, profile: ClusterProfile, ssh: str
) -> Check:
    alias = resolved.get("hostkeyalias", "")
    name = alias if alias and alias.lower() != "none" else hostname
    lookup = name if port == 22 else f"[{name}]:{port}"
    files = [
        path
        for key in ("userknownhostsfile", "globalknownhostsfile")
        for path in resolved.get(key, "").split()
        if path.lower() != "none"
    ]
    program = _keygen(ssh)
    for path in files:
        if not os.path.isfile(path):
            continue
        try:
            result = subprocess.run(
                [program, "-F", lookup, "-f", path],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=_RUN_TIMEOUT,
                stdin=subprocess.DEVNULL,
                env=ssh_environment(),
                check=False,
            )
        except FileNotFoundError:
            return Check(
                "host_key", INFO, "ssh-keygen is not installed: the host key is not checked."
            )
        except subprocess.TimeoutExpired:
            continue
        if result.returncode != 0:
            continue
        number = re.search(r"found: line (\d+)", result.stdout)
        entries = [line for line in result.stdout.splitlines() if not line.startswith("#")]
        where = ConfigLine(path, int(number.group(1)) if number else 0, "").where
        if entries and entries[0].startswith("@revoked"):
            return Check(
                "host_key",
                PROBLEM,
                f"The key of {lookup} is marked revoked at {where}: ssh refuses it.",
                "Ask the site whether the host key changed; remove the line once you have its "
                "new fingerprint.",
            )
        kind = entries[0].split()[1] if entries and len(entries[0].split()) > 1 else "a"
        return Check("host_key", OK, f"Known: {lookup} has {kind} key at {where}.")
    checking = resolved.get("stricthostkeychecking", "ask")
    shown = ", ".join(files) or "none"
    detail = f"{lookup} is not in your known_hosts files ({shown})."
    docs = f" ({profile.docs})" if profile.docs else ""
    fix = (
        f"Connect once (hy2fa connect {profile.name}, or Connect in the sidebar): ssh shows "
        f"the host key's fingerprint; compare it with the one the site publishes{docs}, and "
        "answer yes. ssh then remembers it."
    )
    if checking == "true":
        fix = (
            "StrictHostKeyChecking yes refuses an unknown key without asking. Connect once "
            f"with hy2fa connect {profile.name} -o StrictHostKeyChecking=ask, compare the "
            f"fingerprint ssh shows with the one the site publishes{docs}, and answer yes."
        )
    elif checking in ("accept-new", "false", "off"):
        return Check(
            "host_key",
            INFO,
            f"{detail} StrictHostKeyChecking {checking} takes it at the first login without "
            "asking.",
        )
    return Check("host_key", PROBLEM, detail, fix)


# ---- does the host answer --------------------------------------------------------------------


def _reachable(
    resolved: Mapping[str, str], hostname: str, port: int, ssh: str, config_file: str | None
) -> Check:
    command = resolved.get("proxycommand", "none")
    if command.lower() != "none":
        return Check(
            "reachable",
            INFO,
            f"ssh reaches {hostname} through a ProxyCommand of your ssh config: the direct "
            "check does not apply, and the doctor does not run that command (nor show it: it "
            "may hold a token).",
        )
    jump = resolved.get("proxyjump", "none")
    if jump.lower() != "none":
        hop = _first_hop(jump)
        lead = (
            f"ssh reaches {hostname} through ProxyJump {_cut(jump, 60)}: the direct check "
            "does not apply"
        )
        if hop is None:
            return Check("reachable", INFO, f"{lead}, and the jump host is not one this reads.")
        args = ["-F", config_file] if config_file else []
        if hop[1] is not None:
            args += ["-p", str(hop[1])]
        try:
            jumped, _ = _ssh_g_verbose(ssh, [*args, "--", hop[0]], hop[0])
        except Hy2faError as error:
            return Check(
                "reachable", INFO, f"{lead}, and ssh cannot resolve the jump host: {error.message}"
            )
        if any(jumped.get(key, "none").lower() != "none" for key in ("proxyjump", "proxycommand")):
            return Check(
                "reachable", INFO, f"{lead}; the jump host is itself reached through another."
            )
        jump_host = jumped.get("hostname", hop[0])
        jump_port = int(jumped.get("port", "22") or 22)
        status, said = probe(jump_host, jump_port)
        if status == OK:
            return Check("reachable", OK, f"{lead}; the jump host {jump_host} {said}.")
        return Check(
            "reachable",
            PROBLEM,
            f"{lead}; the jump host {jump_host} {said}.",
            _reach_fix(jump_host, jump_port, status),
        )
    status, said = probe(hostname, port)
    if status == OK:
        return Check("reachable", OK, f"{hostname} {said}.")
    return Check("reachable", PROBLEM, f"{hostname} {said}.", _reach_fix(hostname, port, status))


def _first_hop(jump: str) -> tuple[str, int | None] | None:
    """``(host, port)`` of the first hop of a ProxyJump (``[user@]host[:port]`` or an
    ``ssh://`` URI)."""
    hop = jump.split(",", 1)[0].strip().removeprefix("ssh://")
    hop = hop.rpartition("@")[2]
    found = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:]+)(?::(\d+))?", hop)
    if not found or hop.startswith("-"):
        return None
    host = found.group(1) or found.group(3)
    port = found.group(2) or found.group(4)
    return host, int(port) if port else None


def _reach_fix(host: str, port: int, status: str) -> str:
    if status == "unknown_name":
        return (
            f"Check the host name (ssh -G shows it as hostname {host}); a site's name may "
            "resolve only on its own network or VPN."
        )
    if status == "refused":
        return (
            f"Nothing listens on port {port} of {host}: check the port in your ssh config or "
            "the cluster's settings, and the site's documentation."
        )
    if status == "not_ssh":
        return f"Check the port: port {port} of {host} is not an SSH server's."
    return (
        "Check that this machine may reach it: many clusters accept logins only from their "
        "institution's or country's networks (connect the VPN the site asks for), or only "
        "through a jump host (ProxyJump)."
    )


def _lookup(host: str, port: int, deadline: float) -> list[Any] | str:
    """getaddrinfo bounded in time (it has no timeout of its own): addresses, or a status."""
    result: list[Any] = []
    failed: list[str] = []

    def work() -> None:
        try:
            result.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError):
            failed.append("unknown_name")

    thread = threading.Thread(target=work, name="hy2fa-doctor-lookup", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        return "timeout"
    return failed[0] if failed else result


def probe(host: str, port: int, timeout: float = REACH_TIMEOUT) -> tuple[str, str]:
    """Whether an SSH server answers at ``host:port`` within ``timeout`` seconds, all of a
    name lookup, the connection and its banner: ``(status, words)``, status ``ok``,
    ``unknown_name``, ``refused``, ``timeout``, ``not_ssh`` or ``error``. Nothing is sent;
    the connection is closed once the banner is read."""
    started = time.monotonic()
    deadline = started + timeout
    found = _lookup(host, port, deadline)
    if isinstance(found, str):
        if found == "unknown_name":
            return found, "is not a name this machine can look up"
        return found, f"was not looked up within {timeout:g} s (the name service does not answer)"
    status, said = "timeout", f"does not answer on port {port} within {timeout:g} s"
    for family, kind, proto, _name, address in found:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        with socket.socket(family, kind, proto) as conn:
            conn.settimeout(left)
            try:
                conn.connect(address)
            except ConnectionRefusedError:
                status, said = "refused", f"refuses connections on port {port}"
                continue
            except TimeoutError:
                break
            except OSError as error:
                status, said = "error", f"cannot be reached on port {port}: {error.strerror}"
                continue
            banner = _banner(conn, deadline)
        elapsed = time.monotonic() - started
        if banner is None:
            return "timeout", f"accepts on port {port} but says nothing within {timeout:g} s"
        if banner.startswith("SSH-"):
            return OK, f"answers on port {port} in {elapsed:.2f} s: {_cut(banner, 80)}"
        return "not_ssh", f"answers on port {port}, but not as an SSH server ({_cut(banner, 60)})"
    return status, said


def _banner(conn: socket.socket, deadline: float) -> str | None:
    """The first ``SSH-`` line (RFC 4253 lets a server say other lines first), else the
    first line, else None when nothing came in time."""
    data = b""
    while len(data) < 8192:
        lines = data.split(b"\n")
        for line in lines[:-1]:
            if line.startswith(b"SSH-"):
                return line.rstrip(b"\r").decode("utf-8", "replace")
        left = deadline - time.monotonic()
        if left <= 0:
            break
        conn.settimeout(left)
        try:
            chunk = conn.recv(1024)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    return first.decode("utf-8", "replace") if first else None


# ---- words -----------------------------------------------------------------------------------


def _cut(text: str, limit: int = _SHOWN_LINE) -> str:
    """``text`` with hidden characters escaped, cut short."""
    shown = validate.visible(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def lines(report: Report) -> list[str]:
    """The report for a terminal: a mark, the check's title and what was found, then what
    to do, indented; a last line counts the problems."""
    out = []
    for check in report.checks:
        out.append(f"{check.status:<8} {title(check.check)}: {check.detail}")
        if check.fix:
            out.append(f"{'':<8} what to do: {check.fix}")
    problems = len(report.problems)
    out.append(
        "no problems found" if problems == 0 else f"{problems} problem{'s' if problems > 1 else ''}"
    )
    return out


__all__ = [
    "Bridge",
    "Check",
    "Report",
    "config_lines",
    "lines",
    "probe",
    "run",
    "title",
]
