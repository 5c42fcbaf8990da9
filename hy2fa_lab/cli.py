"""The ``hy2fa`` command: the same engine as the Jupyter server, prompting on the terminal.

``status``, ``path`` and ``list`` only ask sockets, so they import only the profiles, ``ssh -G``
and the mux client: the manager (asyncio, pexpect, the session engine) is imported by the
commands that log in or stop a master, when they run. ``python -m bench.cli_start`` times it.
"""

from __future__ import annotations

import argparse
import sys

from ._version import __version__
from .core import validate
from .core.errors import Hy2faError, InvalidInput

TYPE_CHECKING = False  # not typing's: importing typing costs every command milliseconds
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Sequence
    from typing import Any, TextIO

    from .core.manager import Manager
    from .core.session import MasterSession
    from .core.settings import Settings
    from .core.targets import ClusterRow, Targets
    from .core.types import PromptKind, State, Target

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MINE_SETTINGS = ("user", "port", "persist", "label", "ssh_options")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {validate.shown(text)}")
    try:
        return validate.ssh_option(key.strip(), value.strip())
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _persist(text: str) -> str:
    try:
        return validate.persist(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        return validate.port(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    target_options = argparse.ArgumentParser(add_help=False)
    group = target_options.add_argument_group("target options (as for ssh)")
    group.add_argument("-l", "--user", help="remote user name")
    group.add_argument("-p", "--port", type=_port, help="remote port")
    group.add_argument(
        "-o",
        dest="ssh_options",
        metavar="KEY=VALUE",
        action="append",
        type=_key_value,
        default=[],
        help="an ssh option, as for ssh -o (repeatable)",
    )
    group.add_argument(
        "--control-path",
        metavar="TEMPLATE",
        help="control socket template (default: the ssh config's, else ~/.ssh/cm-%%r@%%h:%%p)",
    )
    group.add_argument("-F", "--ssh-config", metavar="FILE", help="ssh client config file")

    parser = argparse.ArgumentParser(
        prog="hy2fa",
        description="Open, check and close 2FA SSH ControlMaster sockets.",
    )
    parser.add_argument("--version", action="version", version=f"hy2fa {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    connect = commands.add_parser(
        "connect",
        parents=[target_options],
        help="log in once (answering the prompts) and keep a master socket",
        description="Log in once, answering the cluster's prompts, and keep a master socket.",
    )
    connect.add_argument("target", nargs="?", help="cluster name or ssh host/alias")
    connect.add_argument("--host", help="host name (the old create_ssh_socket flag)")
    connect.add_argument(
        "--persist",
        type=_persist,
        metavar="DURATION",
        help="how long an idle master stays: seconds, 10m, 2h, 1h40m or yes (forever)",
    )
    connect.add_argument(
        "--timeout",
        type=_persist,
        metavar="DURATION",
        help="same as --persist (the old create_ssh_socket flag, which took seconds)",
    )
    connect.add_argument(
        "--prompt-timeout",
        type=float,
        metavar="SECONDS",
        help="give up when a prompt is not answered in this time (default 120)",
    )

    status = commands.add_parser(
        "status", parents=[target_options], help="is a master alive? (exit 0 if so)"
    )
    status.add_argument("target", nargs="?", help="cluster name or ssh host/alias")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    listing = commands.add_parser("list", help="known clusters and their state")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("-F", "--ssh-config", metavar="FILE", help="ssh client config file")
    listing.add_argument("--control-path", metavar="TEMPLATE", help="control socket template")

    path = commands.add_parser("path", parents=[target_options], help="print the socket path")
    path.add_argument("target", help="cluster name or ssh host/alias")

    disconnect = commands.add_parser("disconnect", parents=[target_options], help="stop the master")
    disconnect.add_argument("target", help="cluster name or ssh host/alias")

    doctor = commands.add_parser(
        "doctor",
        parents=[target_options],
        help="check this machine's setup (and a cluster's): what works, and what to do",
        description=(
            "Check what a login needs, without logging in: the OpenSSH client, the askpass "
            "bridge, the socket directory and path length, and with a TARGET the ssh config "
            "lines that set ControlMaster/ControlPath/ControlPersist for it, whether its host "
            "key is known and whether it answers on its port. Exit 1 when a problem is found."
        ),
    )
    doctor.add_argument("target", nargs="?", help="cluster name or ssh host/alias")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")

    config_ssh = commands.add_parser(
        "config-ssh",
        help="add (or --remove) a managed Host block (ControlMaster, ControlPath) in ~/.ssh/config",
        description=(
            "Write a Host block with ControlMaster auto, ControlPath and ControlPersist into "
            "your ssh config, between marker comments (a backup is kept), so every ssh client "
            "shares the socket hy2fa opens. The block goes just before the first Host or Match "
            "line, so options above it still apply to every host."
        ),
    )
    config_ssh.add_argument("target", help="cluster name (becomes the Host alias)")
    config_ssh.add_argument(
        "--remove", action="store_true", help="take the managed block for TARGET out again"
    )
    config_ssh.add_argument("-l", "--user", help="remote user name")
    config_ssh.add_argument("--persist", type=_persist, metavar="DURATION", help="ControlPersist")
    config_ssh.add_argument(
        "-F", "--ssh-config", metavar="FILE", help="the file to write (default ~/.ssh/config)"
    )
    config_ssh.add_argument("--control-path", metavar="TEMPLATE", help="ControlPath template")

    yours = argparse.ArgumentParser(add_help=False)
    group = yours.add_argument_group("your settings for it (kept for Lab, kernels and hy2fa)")
    group.add_argument("-l", "--user", help="your user name on it")
    group.add_argument("-p", "--port", type=_port, help="its port")
    group.add_argument(
        "--persist",
        type=_persist,
        metavar="DURATION",
        help="how long an idle master stays: seconds, 10m, 2h, 1h40m or yes (forever)",
    )
    group.add_argument("--label", help="what the sidebar shows for it")
    group.add_argument(
        "-o",
        dest="ssh_options",
        metavar="KEY=VALUE",
        action="append",
        type=_key_value,
        default=[],
        help="an ssh option, as for ssh -o (repeatable; replaces your ssh options for it)",
    )
    setting = commands.add_parser(
        "set",
        parents=[yours],
        help="your user name (port, persist, label, ssh options) for a cluster, kept",
        description=(
            "Keep your own values for a cluster (built-in, configured, an ssh config alias or "
            "your own), in your Jupyter data dir: JupyterLab, kernels and every hy2fa command "
            "use them, on top of what the site gives."
        ),
    )
    setting.add_argument("target", metavar="CLUSTER", help="cluster name")
    setting.add_argument(
        "--unset",
        action="append",
        default=[],
        choices=MINE_SETTINGS,
        metavar="SETTING",
        help=f"forget one of your values ({', '.join(MINE_SETTINGS)}; repeatable)",
    )
    adding = commands.add_parser(
        "add",
        parents=[yours],
        help="add a cluster of your own",
        description="Add a cluster of your own, kept in your Jupyter data dir.",
    )
    adding.add_argument("name", metavar="NAME", help="its name (letters, digits, '.', '_', '-')")
    adding.add_argument("host", metavar="HOST", help="its host name (or an ssh config alias)")
    forgetting = commands.add_parser(
        "forget",
        help="forget your values for a cluster (a cluster of your own goes)",
        description=(
            "Forget your values for a cluster, which is then as the site gives it; a cluster "
            "of your own goes."
        ),
    )
    forgetting.add_argument("target", metavar="CLUSTER", help="cluster name")

    demo = commands.add_parser(
        "demo",
        help="try it without an HPC account: a demo cluster on this machine, and JupyterLab",
        description=(
            "Start a demo SSH server on 127.0.0.1 that asks for a one-time code (shown here), "
            "register it as cluster 'demo', and start JupyterLab. Ctrl-C stops everything."
        ),
    )
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.add_argument("--port", type=_port, help="JupyterLab's port (default: a free one)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    """The Jupyter config's settings (as the server has them), then the flags on top.

    A bad value of the config costs that value alone, as in the server: one warning line
    each on stderr, naming the setting and what is used instead (a bad cluster is listed by
    ``hy2fa list`` with its error). A bad flag is refused (exit 2).
    """
    from .config import settings_from_jupyter_config

    flags = {
        key: getattr(args, key)
        for key in ("control_path", "ssh_config", "prompt_timeout")
        if getattr(args, key, None) is not None
    }
    settings = settings_from_jupyter_config(warn=False, **flags)
    for problem in settings.problems:
        print(f"hy2fa: warning: {problem.message}", file=sys.stderr)
    return settings


def _manager(args: argparse.Namespace) -> Manager:
    from .core.manager import Manager

    manager = Manager(_settings(args))
    _said(manager)
    return manager


def _targets(args: argparse.Namespace) -> Targets:
    """Resolution only (no engine): for the commands that just ask a socket."""
    from .core.targets import Targets

    targets = Targets(_settings(args))
    _said(targets)
    return targets


def _said(targets: Targets) -> None:
    """Say the problems of the file of your own cluster settings (a warning line each; a
    bad entry is listed by ``hy2fa list`` with its error)."""
    targets.profiles()
    for problem in targets.mine.problems:
        print(f"hy2fa: warning: {problem}", file=sys.stderr)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The target options every subcommand that names a target takes (as ``ssh -O`` does)."""
    return {
        "user": args.user,
        "port": args.port,
        "persist": getattr(args, "persist", None),
        "ssh_options": args.ssh_options,
    }


def _target(manager: Targets, args: argparse.Namespace) -> Target:
    return manager.resolve(args.target, **_options(args))


def _duration(seconds: float) -> str:
    """23 h 12 min, 5 min, less than a minute."""
    minutes = int(seconds // 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes} min" if minutes else "less than a minute"


def _certificate_words(row: ClusterRow) -> str:
    """The certificate's validity, beside the master's state (two different things)."""
    from .core import mux

    cert = row.certificate
    if cert is None:
        spec = row.profile.certificate
        return f"no certificate yet: a login gets one from {spec.issuer_name}" if spec else ""
    left = cert.seconds_left()
    if left == float("inf"):
        return "certificate never expires"
    if left > 0:
        return f"certificate valid for {_duration(left)}"
    said = f"certificate expired {_duration(-left)} ago"
    if row.liveness is mux.Liveness.ALIVE:
        return f"{said}; the master still runs"
    return said


def _state_line(row: ClusterRow) -> str:
    from .core import mux

    assert row.target is not None
    name, path = row.target.name, row.target.control_path
    cert = _certificate_words(row)
    cert = f"; {cert}" if cert else ""
    if row.liveness is mux.Liveness.ALIVE:
        return f"{name}: connected (master pid {row.master_pid}{cert}) {path}"
    if row.liveness is mux.Liveness.UNRESPONSIVE:
        return f"{name}: unresponsive ({row.message}{cert}) {path}"
    if row.liveness is mux.Liveness.UNTRUSTED:
        return f"{name}: not used ({row.message})"
    stale = " (stale socket)" if row.liveness is mux.Liveness.STALE else ""
    cert = f" ({cert[2:]})" if cert else ""
    return f"{name}: not connected{stale}{cert} {path}"


class _TerminalReader:
    """Reads one answer in a daemon thread, so a failing session never waits on the tty."""

    def __init__(self, out: TextIO) -> None:
        import contextlib

        self.out = out
        self._saved: Any = None
        with contextlib.suppress(Exception):
            import termios

            self._saved = termios.tcgetattr(sys.stdin.fileno())

    def ask(self, read: Callable[[], str]) -> asyncio.Future[str]:
        import asyncio
        import threading

        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()

        def work() -> None:
            try:
                value = read()
            except BaseException as exc:  # EOF, Ctrl-D, Ctrl-C in the reader
                error = exc if isinstance(exc, Exception) else EOFError()
                loop.call_soon_threadsafe(_settle, future, None, error)
            else:
                loop.call_soon_threadsafe(_settle, future, value, None)

        threading.Thread(target=work, name="hy2fa-prompt", daemon=True).start()
        return future

    def restore(self) -> None:
        """Put the terminal back (echo on) if a reader was left waiting."""
        import contextlib

        if self._saved is not None:
            with contextlib.suppress(Exception):
                import termios

                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)


def _question(kind: PromptKind, text: str, out: TextIO) -> Callable[[], str]:
    """Host-key questions are read with echo (yes/no); everything else without."""
    import getpass

    from .core.types import PromptKind

    if kind is PromptKind.HOSTKEY:
        return lambda: input(text)
    return lambda: getpass.getpass(text, stream=out)


def _settle(future: asyncio.Future[str], value: str | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value or "")


async def _drive(session: MasterSession, out: TextIO, reader: _TerminalReader) -> State:
    """Show each prompt and pass the answer on, until the session settles."""
    import asyncio

    from .core.types import SETTLED_STATES, State

    answered = 0
    said = 0  # lines ssh printed since the last answer that are on the terminal already
    asking: asyncio.Future[str] | None = None
    if session.state is State.STARTING:
        target = session.target
        print(f"Connecting to {target.user}@{target.hostname}…", file=out, flush=True)
    while session.state not in SETTLED_STATES:
        prompt = session.prompt
        if session.state is State.VERIFYING:
            view = session.to_json()["verifying"]
            if view["choice"] and said == 0:
                print(f"Approve the request on your phone ({view['choice']})", file=out)
                said = -1  # said, and no line yet
            lines = view["lines"][max(said, 0) :]
            if lines:
                print("\n".join(lines), file=out, flush=True)  # verbatim, as they arrive
                said = len(view["lines"])
        if session.state is State.PROMPTING and prompt and session.prompt_id != answered:
            answered = session.prompt_id
            said = 0
            if session.message:
                print(session.message, file=out, flush=True)
            *lead, last = prompt.text.split("\n")
            if lead:
                print("\n".join(lead), file=out, flush=True)
            asking = reader.ask(_question(prompt.kind, last, out))
        changed = asyncio.ensure_future(session.changed())
        waiting: set[asyncio.Future[Any]] = {changed}
        if asking is not None:
            waiting.add(asking)
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if asking is not None and asking in done:
            finished, asking = asking, None
            changed.cancel()
            try:
                await session.answer(finished.result(), answered)
            except InvalidInput as exc:
                print(f"hy2fa: {exc}", file=out, flush=True)
                answered = 0  # ask the same prompt again
            except EOFError:
                print(file=out, flush=True)  # Ctrl-D left the prompt's line open
                await session.cancel()
            except Hy2faError:
                pass  # answered elsewhere meanwhile; the next change tells what follows
    if asking is not None:
        print(file=out, flush=True)  # the session ended (e.g. timed out) under an open prompt
    return session.state


async def _connect(args: argparse.Namespace, out: TextIO) -> int:
    import asyncio

    from .core import mux
    from .core.types import State

    manager = _manager(args)
    persist = args.persist or args.timeout
    destination = args.target or args.host
    if destination is None:
        print("hy2fa connect: give a TARGET or --host", file=sys.stderr)
        return EXIT_USAGE
    if args.target and args.host:
        print("hy2fa connect: give either TARGET or --host, not both", file=sys.stderr)
        return EXIT_USAGE
    options: dict[str, Any] = {
        "user": args.user,
        "port": args.port,
        "persist": persist,
        "ssh_options": args.ssh_options,
    }
    # A fresh Manager has no sessions yet: ask the socket itself whether a master runs.
    target = await manager.resolve_async(destination, **options)
    try:
        pid = await asyncio.to_thread(mux.alive, target.control_path)
    except (OSError, mux.MuxError):
        pid = None  # not a master we can talk to: the session looks again and says why
    if pid is not None:
        print(
            f"{target.name}: already connected (master pid {pid}) {target.control_path}", file=out
        )
        return EXIT_OK
    reader = _TerminalReader(out)
    try:
        session = await manager.connect(destination, **options)
        name = session.name
        state = await _drive(session, out, reader)
        if state is State.CONNECTED:
            print(
                f"{name}: connected (master pid {session.master_pid}, "
                f"persist {session.target.persist}) {session.target.control_path}",
                file=out,
            )
            # The certificate as its files say now (a row of hy2fa status).
            row = await asyncio.to_thread(manager.survey_target, session.target)
            if row.certificate is not None:
                print(f"{name}: {_certificate_words(row)}", file=out)
            return EXIT_OK
        from .core import messages

        print(f"hy2fa: {name}: {messages.of_view(session.to_json())}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await manager.shutdown()
        reader.restore()


def _status(args: argparse.Namespace, out: TextIO) -> int:
    from .core import mux

    manager = _targets(args)
    if args.target is not None:  # "" is a (refused) target, not "every cluster"
        rows = [manager.survey_target(_target(manager, args))]
    else:
        rows = [
            row
            for row in manager.survey()
            if row.target is not None and row.liveness is not mux.Liveness.ABSENT
        ]
    if args.json:
        import json

        json.dump([row.to_json() for row in rows], out, indent=2)
        out.write("\n")
    elif not rows:
        print("no live masters", file=out)
    for row in rows if not args.json else []:
        print(_state_line(row), file=out)
    alive = [row for row in rows if row.liveness is mux.Liveness.ALIVE]
    if args.target is not None:
        return EXIT_OK if alive else EXIT_FAILED
    return EXIT_OK


def _list(args: argparse.Namespace, out: TextIO) -> int:
    rows = _targets(args).survey()
    if args.json:
        import json

        json.dump([row.to_json() for row in rows], out, indent=2)
        out.write("\n")
        return EXIT_OK
    width = max((len(row.name) for row in rows), default=4)
    for row in rows:
        print(_row_line(row, width), file=out)
    return EXIT_OK


def _row_line(row: ClusterRow, width: int = 0) -> str:
    """A cluster as ``hy2fa list`` shows it, with the values you set yourself."""
    yours = f"  [yours: {', '.join(row.profile.mine)}]" if row.profile.mine else ""
    if row.target is None:
        message = row.error.message if row.error else "not resolved"
        return f"{row.name:<{width}}  error: {message}{yours}"
    where = f"{row.target.user}@{row.target.hostname}:{row.target.port}"
    notes = [note for note in (row.message, _certificate_words(row)) if note]
    note = f"  ({'; '.join(notes)})" if notes else ""
    return f"{row.name:<{width}}  {row.state.value:<12}  {where}{note}{yours}"


def _yours(args: argparse.Namespace) -> dict[str, Any]:
    """The values of ``set``/``add`` given on the command line (as REST takes them)."""
    values: dict[str, Any] = {
        key: getattr(args, key)
        for key in ("user", "port", "persist", "label")
        if getattr(args, key) is not None
    }
    if args.ssh_options:
        values["ssh_options"] = dict(args.ssh_options)
    return values


def _set(args: argparse.Namespace, out: TextIO) -> int:
    changes = _yours(args)
    both = sorted(set(changes) & set(args.unset))
    if both:
        raise InvalidInput(f"both set and --unset: {', '.join(both)}")
    if not changes and not args.unset:
        raise InvalidInput("nothing to set: give --user, --port, --persist, --label, -o or --unset")
    targets = _targets(args)
    targets.set_mine(args.target, {**changes, **dict.fromkeys(args.unset)})
    print(_row_line(targets.survey([args.target])[0]), file=out)
    return EXIT_OK


def _add(args: argparse.Namespace, out: TextIO) -> int:
    targets = _targets(args)
    targets.add_mine(args.name, {"host": args.host, **_yours(args)})
    print(_row_line(targets.survey([args.name])[0]), file=out)
    return EXIT_OK


def _forget(args: argparse.Namespace, out: TextIO) -> int:
    targets = _targets(args)
    if targets.forget_mine(args.target):
        print(_row_line(targets.survey([args.target])[0]), file=out)
    else:
        print(f"{args.target}: forgotten", file=out)
    return EXIT_OK


def _path(args: argparse.Namespace, out: TextIO) -> int:
    print(_target(_targets(args), args).control_path, file=out)
    return EXIT_OK


async def _disconnect(args: argparse.Namespace, out: TextIO) -> int:

    from .core.types import State

    manager = _manager(args)
    session = await manager.disconnect(args.target, **_options(args))
    if session.state is not State.DISCONNECTED:
        print(f"{session.name}: not connected", file=out)
        return EXIT_FAILED  # as `hy2fa status` does for a target with no master
    print(f"{session.name}: disconnected", file=out)
    return EXIT_OK


def _doctor(args: argparse.Namespace, out: TextIO) -> int:
    from .core import doctor

    report = doctor.run(
        _targets(args),
        args.target,
        user=args.user,
        port=args.port,
        ssh_options=args.ssh_options,
    )
    if args.json:
        import json

        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    else:
        print("\n".join(doctor.lines(report)), file=out)
    return EXIT_FAILED if report.problems else EXIT_OK


def _config_ssh(args: argparse.Namespace, out: TextIO) -> int:
    import os

    from .core.managed_config import (
        check_config_path,
        overridden,
        remove_block,
        write_block,
    )

    alias = validate.cluster_name(args.target)
    check_config_path(args.ssh_config)  # before ssh -G reads it: a directory, a FIFO, -F none
    if args.remove:
        extra = [
            flag
            for flag, value in (
                ("-l", args.user),
                ("--persist", args.persist),
                ("--control-path", args.control_path),
            )
            if value is not None
        ]
        if extra:
            raise InvalidInput(f"--remove takes no {', '.join(extra)}")
        path, backup = remove_block(alias, args.ssh_config)
        print(f"{alias}: removed the managed Host block from {path}", file=out)
        print(f"  previous version kept in {backup}", file=out)
        return EXIT_OK
    if args.ssh_config and not os.path.exists(args.ssh_config):
        args.ssh_config_to_write, args.ssh_config = args.ssh_config, os.devnull  # a new file
    # Your user and port for it (hy2fa set), unless -l says otherwise.
    block = _targets(args).host_block(args.target, user=args.user, persist=args.persist)
    path, backup = write_block(block, getattr(args, "ssh_config_to_write", args.ssh_config))
    print(f"{alias}: wrote a managed Host block to {path}", file=out)
    if backup:
        print(f"  previous version kept in {backup}", file=out)
    try:
        lost = overridden(block, path)
    except Hy2faError as exc:
        print(f"hy2fa: warning: could not check the result with ssh -G: {exc}", file=sys.stderr)
        lost = []
    for option in lost:
        print(
            f"hy2fa: warning: ssh does not take {option} for {alias} from the managed block: "
            f"a line that ssh reads earlier (in {path} above the block, or in a file included "
            f"there) sets it first; to keep it for other hosts, move it into a 'Host *' block "
            "at the end of the file",
            file=sys.stderr,
        )
    if not any(option.startswith("Control") for option in lost):
        print(f"  ssh {alias} now shares the socket; hy2fa connect {alias}", file=out)
    return EXIT_OK


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        if args.command == "connect":
            import asyncio

            return asyncio.run(_connect(args, out))
        if args.command == "status":
            return _status(args, out)
        if args.command == "list":
            return _list(args, out)
        if args.command == "path":
            return _path(args, out)
        if args.command == "disconnect":
            import asyncio

            return asyncio.run(_disconnect(args, out))
        if args.command == "doctor":
            return _doctor(args, out)
        if args.command == "config-ssh":
            return _config_ssh(args, out)
        if args.command == "set":
            return _set(args, out)
        if args.command == "add":
            return _add(args, out)
        if args.command == "forget":
            return _forget(args, out)
        if args.command == "demo":
            try:
                from .demo.app import run
            except ImportError as missing:
                print(
                    f"hy2fa demo needs the demo extra ({missing.name} is missing): "
                    "pip install 'hy2fa_lab[demo]'",
                    file=sys.stderr,
                )
                return EXIT_FAILED

            return run(port=args.port, open_browser=not args.no_browser, out=out)
    except InvalidInput as exc:
        print(f"hy2fa: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Hy2faError as exc:
        print(f"hy2fa: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\nhy2fa: cancelled", file=sys.stderr)
        return 130
    raise AssertionError(args.command)  # argparse enforces the choices


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
