"""``%hy2fa``: connect (with a widget), status, disconnect and path, from a notebook cell."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display

from ..core import messages, validate
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
            raise UsageError(error.message) from None

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
            raise
        widget.follow(view)

    def _status(self, args: argparse.Namespace) -> ConnectionTable | None:
        views = choose_backend().connections()
        if not views:
            print("No connections")
            return None
        return ConnectionTable(views)

    def _disconnect(self, args: argparse.Namespace) -> None:
        view = choose_backend().disconnect(args.cluster)
        said = "disconnected" if view["state"] == "disconnected" else "was not connected"
        print(f"{view['name']} {said}")

    def _path(self, args: argparse.Namespace) -> str:
        return socket_path(args.cluster, user=args.user)


_COLUMNS = ("connection", "state", "pid", "socket", "note")


class ConnectionTable:
    """``%hy2fa status``'s result: a table as text (a terminal, ``jupyter console``) and as
    Markdown (Lab renders it; ``nbconvert --to markdown`` keeps it a table)."""

    def __init__(self, views: list[dict[str, Any]]) -> None:
        self.rows = [
            (
                str(v["name"]),
                str(v["state"]),
                str(v.get("master_pid") or ""),
                str(v.get("control_path") or ""),
                _note(v),
            )
            for v in views
        ]

    def __repr__(self) -> str:
        widths = [max(len(row[i]) for row in [_COLUMNS, *self.rows]) for i in range(5)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                 for row in [_COLUMNS, *self.rows]]  # fmt: skip
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def _repr_markdown_(self) -> str:
        def cell(text: str) -> str:
            return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

        head = "| " + " | ".join(_COLUMNS) + " |\n|" + "---|" * len(_COLUMNS)

        def row_of(row: tuple[str, ...]) -> str:
            cells = [f"`{cell(c)}`" if i == 3 and c else cell(c) for i, c in enumerate(row)]
            return "| " + " | ".join(cells) + " |"

        body = [row_of(row) for row in self.rows]
        return "\n".join([head, *body])


def _note(view: dict[str, Any]) -> str:
    if view.get("state") in ("failed", "disconnected", "unresponsive"):
        said = messages.of_view(view)
    else:
        said = str(view.get("message") or "")
    return "; ".join(part for part in (messages.made_by(view), said) if part)


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(Hy2faMagics)
