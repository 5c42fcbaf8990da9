"""``hy2fa-askpass``: the program OpenSSH runs as ``SSH_ASKPASS`` to ask in JupyterLab.

ssh runs it with its question as the one argument (a password, a keyboard-interactive prompt
such as a one-time code, a key passphrase, a host-key confirmation) and reads the answer
from its stdout. Asked from a terminal a person is looking at, it asks there, as ssh would
have; otherwise (a kernel has no terminal) it hands the question to the Jupyter server over
the Unix socket named by ``HY2FA_ASKPASS_SOCKET`` and prints the answer that comes back.

It runs once per question, so it imports almost nothing: no asyncio, no Jupyter, not even
the rest of this package. The answer goes only to stdout (ssh's pipe): never argv, the
environment, a file or a log.
"""

from __future__ import annotations

# The C module, not socket.py: that pulls in enum (its IntEnums), milliseconds at every
# question for names this helper does not need. signal is imported only to cancel.
import _socket
import os
import sys

SOCKET_ENV = "HY2FA_ASKPASS_SOCKET"
CONNECT_TIMEOUT = 1.0  # no server: say so within a second
MAX_REPLY = 64 * 1024
PROTOCOL = 1


def _fail(message: str) -> int:
    sys.stderr.write(f"hy2fa-askpass: {message}\n")
    sys.stderr.flush()
    return 1


def _end_the_ssh() -> None:
    """A cancelled or refused question ends the ssh that asked (its parent) at once: an
    empty answer would only make the server ask again. Only an ssh is ever signalled: run by
    hand, or orphaned, the helper's parent is something else (a shell, init)."""
    parent = os.getppid()
    try:
        with open(f"/proc/{parent}/comm", encoding="utf-8", errors="replace") as handle:
            name = handle.read().strip()
    except OSError:
        return
    if parent <= 1 or not name.startswith("ssh"):
        return
    try:
        import signal

        os.kill(parent, signal.SIGTERM)
    except OSError:
        pass


def _confirmation(question: str) -> bool:
    """A yes/no question (a host key) is read with echo; everything else without."""
    return "(yes/no" in question or question.rstrip().endswith("?")


def ask_terminal(tty: int, question: str) -> int:
    """Ask on the controlling terminal, as ssh does without SSH_ASKPASS."""
    import termios

    saved = None
    try:
        os.write(tty, question.encode(errors="replace"))
        if not _confirmation(question):
            saved = termios.tcgetattr(tty)
            quiet = termios.tcgetattr(tty)
            quiet[3] &= ~termios.ECHO
            termios.tcsetattr(tty, termios.TCSAFLUSH, quiet)
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(tty, 1024)
            if not chunk:
                break
            line += chunk
    finally:
        if saved is not None:
            termios.tcsetattr(tty, termios.TCSAFLUSH, saved)
            os.write(tty, b"\n")
        os.close(tty)
    if not line:
        return 1  # Ctrl-D: no answer
    sys.stdout.write(line.decode(errors="replace").rstrip("\r\n") + "\n")
    return 0


def ask_server(path: str, question: str, tty: int = -1) -> int:
    """Hand the question to the Jupyter server and print its answer.

    The exchange is two framed messages: ``b"1 <length>[ t]\n" + question`` one way, then a
    line ``b"A<answer>\n"`` (the answer), ``b"E<reason>\n"`` (cancelled, refused) or, when
    the helper has a terminal (`` t``), ``b"T\n"``: "ask on your terminal" — the server knows
    whether the asking ssh runs under a kernel (IPython's ``!`` gives it a pty nobody looks
    at) or in a terminal a person uses. No JSON: json pulls in re, and this runs for every
    question.
    """
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(path)
    except OSError as error:
        sock.close()
        if tty >= 0:
            return ask_terminal(tty, question)  # no server: as ssh itself would have asked
        return _fail(f"cannot reach the Jupyter server to ask {question.strip()!r} ({error})")
    body = question.encode(errors="replace")
    try:
        sock.settimeout(None)  # the person may take their time; the server bounds the wait
        flag = b" t" if tty >= 0 else b""
        sock.sendall(b"%d %d%s\n" % (PROTOCOL, len(body), flag) + body)
        reply = b""
        while not reply.endswith(b"\n") and len(reply) < MAX_REPLY:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    except OSError as error:
        return _fail(f"the Jupyter server stopped answering ({error})")
    finally:
        sock.close()
    if reply == b"T\n" and tty >= 0:
        return ask_terminal(tty, question)
    if tty >= 0:
        os.close(tty)
    if reply.startswith(b"A") and reply.endswith(b"\n"):
        sys.stdout.write(reply[1:-1].decode(errors="replace") + "\n")
        del reply
        return 0
    _end_the_ssh()
    if reply.startswith(b"E"):
        return _fail(reply[1:].decode(errors="replace").strip() or "cancelled in JupyterLab")
    return _fail("the question was withdrawn (the Jupyter server stopped)")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    question = args[0] if args else ""
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        tty = -1  # no controlling terminal: a kernel, a service
    path = os.environ.get(SOCKET_ENV)
    if not path:
        if tty >= 0:
            return ask_terminal(tty, question)
        return _fail(f"{SOCKET_ENV} is not set: no Jupyter server to ask in")
    return ask_server(path, question, tty)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
