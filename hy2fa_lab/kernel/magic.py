"""``%hy2fa``: connect (with a widget), status, disconnect and path, from a notebook cell."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import HTML, display

from ..core import validate
from ..core.errors import Hy2faError
from .api import socket_path
from .backends import choose_backend
from .widget import ConnectWidget

USAGE = """\
%hy2fa connect CLUSTER [--user USER] [--persist DURATION] [--control-path PATH]
%hy2fa status
%hy2fa disconnect CLUSTER
%hy2fa path CLUSTER [--user USER]"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the kernel's process
        raise UsageError(f"{message}\n{USAGE}")


def _parser() -> _Parser:
    parser = _Parser(prog="hy2fa", add_help=False, usage=USAGE.replace("%", "%%"))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    connect = commands.add_parser("connect", add_help=False)
    connect.add_argument("cluster")
    connect.add_argument("--user", "-l")
    connect.add_argument("--persist")
    connect.add_argument("--control-path", dest="control_path")
    commands.add_parser("status", add_help=False)
    disconnect = commands.add_parser("disconnect", add_help=False)
    disconnect.add_argument("cluster")
    path = commands.add_parser("path", add_help=False)
    path.add_argument("cluster")
    path.add_argument("--user", "-l")
    return parser


@magics_class
class Hy2faMagics(Magics):
    @line_magic
    def hy2fa(self, line: str) -> Any:
        """Open, list and close 2FA ControlMaster sockets. ``%hy2fa connect saga``."""
        try:
            words = shlex.split(line)
        except ValueError as error:  # an unterminated quote
            raise UsageError(f"{error} in {validate.shown(line)}\n{USAGE}") from None
        try:
            args = _parser().parse_args(words)
            return getattr(self, "_" + args.command)(args)
        except Hy2faError as error:
            raise UsageError(f"{error.message} ({error.reason})") from None

    def _connect(self, args: argparse.Namespace) -> None:
        validate.host(args.cluster)
        if args.user is not None:
            validate.user(args.user)
        if args.persist is not None:
            validate.persist(args.persist)
        backend = choose_backend()
        if args.control_path is not None:
            validate.control_path_template(args.control_path)
        # The widget is on the page before the login starts: Lab skips its dialog for a prompt
        # a widget shows, and a fast server may ask before a widget shown afterwards renders.
        name = args.cluster if args.user is None else f"{args.user}@{args.cluster}"
        widget = ConnectWidget(backend, {"name": name, "state": "starting"}, follow=False)
        display(widget.box)  # type: ignore[no-untyped-call]
        try:
            view = backend.connect(args.cluster, args.user, args.persist, args.control_path)
        except BaseException:
            widget.close()
            widget.box.close()
            ConnectWidget.instances.remove(widget)
            raise
        widget.follow(view)

    def _status(self, args: argparse.Namespace) -> None:
        views = choose_backend().connections()
        if not views:
            print("No connections")
            return
        rows = "".join(
            f"<tr><td>{_e(v['name'])}</td><td>{_e(v['state'])}</td>"
            f"<td>{_e(v.get('master_pid') or '')}</td><td><code>{_e(v['control_path'])}</code>"
            f"</td><td>{_e(v.get('message') or '')}</td></tr>"
            for v in views
        )
        display(  # type: ignore[no-untyped-call]
            HTML(  # type: ignore[no-untyped-call]
                "<table><tr><th>connection</th><th>state</th><th>pid</th><th>socket</th>"
                f"<th></th></tr>{rows}</table>"
            )
        )

    def _disconnect(self, args: argparse.Namespace) -> None:
        view = choose_backend().disconnect(args.cluster)
        print(f"{view['name']}: {view['state']}")

    def _path(self, args: argparse.Namespace) -> str:
        return socket_path(args.cluster, user=args.user)


def _e(value: object) -> str:
    import html

    return html.escape(str(value))


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(Hy2faMagics)
