"""``hy2fa-askpass``: the program OpenSSH runs as ``SSH_ASKPASS`` to ask in JupyterLab.

ssh runs it with its question as the one argument (a password, a keyboard-interactive prompt
such as a one-time code, a key passphrase, a host-key confirmation) and reads the answer
from its stdout. Asked from a terminal a person is looking at, it asks there, as ssh would
have; otherwise (a kernel has no terminal) it hands the question to the Jupyter server over
the Unix socket named by ``HY2FA_ASKPASS_SOCKET`` and prints the answer that comes back.

It runs once per question, so it imports almost nothing: no asyncio, no Jupyter, nothing of
this package but the wire format (``askwire``, which imports nothing). The answer goes only
to stdout (ssh's pipe): never argv, the environment, a file or a log.

Portability: every Linux-only call has a fallback. The helper names its parent (the ssh
that asks) to the server itself, with ``os.getppid()`` and ``os.getsid(0)``, which every
system has. ``/proc/<pid>/comm`` (is the parent an ssh client?) -> ``ps -o comm=`` where
there is no /proc (macOS) -> not known: the parent is never signalled, and the server refuses
every further question of a cancelled ssh at once instead (it gives up after its
``NumberOfPasswordPrompts``). ``os.pidfd_open`` and ``signal.pidfd_send_signal`` (signal
exactly the process checked) -> ``os.kill`` right after ``os.getppid()`` confirms the parent
is still ours (macOS, Linux before 5.3, a sandbox that refuses pidfds); a full listener
backlog is ``EAGAIN`` on Linux and ``ECONNREFUSED`` on macOS and the BSDs, retried alike.
"""

from __future__ import annotations

# The C module, not socket.py: that pulls in enum (its IntEnums), milliseconds at every
# question for names this helper does not need. signal is imported only to cancel.
import _socket
import os
import sys
import time  # loaded by the interpreter's start-up already

from .askwire import MAX_REPLY, SOCKET_ENV, parse_reply, request

CONNECT_TIMEOUT = 1.0  # no server: say so within a second
_FIRST_PAUSE, _LAST_PAUSE = 0.005, 0.1  # between tries at a listener whose backlog is full
# A full backlog: EAGAIN on Linux. macOS and the BSDs say ECONNREFUSED, which on Linux means
# that nobody listens (a server gone): there it is final at once (on macOS a server that is
# gone costs the connect deadline).
_BUSY: tuple[type[OSError], ...] = (
    (BlockingIOError,) if sys.platform == "linux" else (BlockingIOError, ConnectionRefusedError)
)


def _fail(message: str) -> int:
    sys.stderr.write(f"hy2fa-askpass: {message}\n")
    sys.stderr.flush()
    return 1


def command_name(pid: int) -> bytes | None:
    """The command name of ``pid``: the file it executed (not its argv), or ``None`` when it
    is gone or this system cannot tell. Linux: ``/proc/<pid>/comm``, set by the kernel at
    exec. Without /proc (macOS): ``ps -o comm=``, the executable's path. With neither (a
    /proc that is hidden): ``None``."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as handle:
            return handle.read().rstrip(b"\n") or None
    except OSError:
        if os.path.isdir("/proc/self"):
            return None  # /proc is there: the process is gone
    import subprocess

    try:
        shown = subprocess.run(
            ["ps", "-o", "comm=", "-p", str(pid)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=2,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return os.path.basename(shown) or None


def _is_ssh_client(pid: int) -> bool:
    """Whether ``pid`` surely runs OpenSSH's client: its command name is exactly ``ssh``.
    Not ``ssh-agent`` (an ``ssh-add -c`` confirmation: ending it would drop every key),
    ``ssh-add``, ``sshd``, ``ssh-keygen``, ``sshpass``..., nor a process this system cannot
    name."""
    return command_name(pid) == b"ssh"


def _end_the_ssh() -> None:
    """A cancelled or refused question ends the ssh that asked (its parent) at once: an
    empty answer would only make the server ask again. Only an ssh client is ever signalled:
    run by hand, or orphaned, the helper's parent is something else (a shell, init), and an
    ssh-agent asks through ``SSH_ASKPASS`` too. Where this system cannot name the parent,
    nothing is signalled: the server then refuses that ssh's further questions at once.

    The process checked is the process signalled: a pidfd of the parent is opened first;
    if ``getppid()`` is still that pid afterwards, the pidfd is our living parent (a parent
    that exits hands us to another at once), and a signal through it can reach no later
    process with a reused pid. Without pidfds (macOS, Linux before 5.3, a sandbox that
    refuses them) ``os.kill`` follows a last ``getppid()`` check: our parent's pid cannot
    be reused while it is our parent, so only its exit in the instant between the two calls
    could misdirect the signal."""
    parent = os.getppid()
    if parent <= 1:
        return
    import signal

    pidfd = -1
    try:  # noqa: SIM105 - contextlib is one more import for every question
        pidfd = os.pidfd_open(parent)
    except (AttributeError, OSError):
        pass  # the os.kill fallback below
    try:
        if os.getppid() != parent or not _is_ssh_client(parent):
            return
        if pidfd >= 0:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGTERM)
                return
            except ProcessLookupError:
                return  # it exited meanwhile
            except (AttributeError, OSError):
                pass  # no pidfd_send_signal (Python, kernel): os.kill
        if os.getppid() == parent:
            os.kill(parent, signal.SIGTERM)
    except OSError:
        pass
    finally:
        if pidfd >= 0:
            os.close(pidfd)


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


def _connect(path: str) -> _socket.socket:
    """A connection to the listener at ``path`` within :data:`CONNECT_TIMEOUT`. A listener
    whose backlog is full (many questions at once) is tried again, on a new socket, after a
    short pause that doubles: nothing tells another process when its backlog has room, and
    the whole wait stays within the deadline."""
    deadline = time.monotonic() + CONNECT_TIMEOUT
    pause = _FIRST_PAUSE
    while True:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            sock.connect(path)
            return sock
        except _BUSY:
            if time.monotonic() + pause >= deadline:
                sock.close()
                raise
        except BaseException:
            sock.close()
            raise
        time.sleep(pause)
        sock.close()  # a socket whose connect failed is not tried again (POSIX)
        pause = min(pause * 2, _LAST_PAUSE)


def ask_server(path: str, question: str, tty: int = -1) -> int:
    """Hand the question to the Jupyter server and print its answer, in the wire format of
    :mod:`hy2fa_lab.askwire`. A helper with a terminal says so, and may be told to ask there:
    the server knows whether the asking ssh runs under a kernel (IPython's ``!`` gives it a
    pty nobody looks at) or in a terminal a person uses."""
    try:
        sock = _connect(path)
    except OSError as error:
        if tty >= 0:
            return ask_terminal(tty, question)  # no server: as ssh itself would have asked
        if isinstance(error, _BUSY):
            return _fail(
                f"the Jupyter server is busy (too many questions at once) and did not take "
                f"{question.strip()!r} within {CONNECT_TIMEOUT:g} s"
            )
        return _fail(f"cannot reach the Jupyter server to ask {question.strip()!r} ({error})")
    try:
        sock.settimeout(None)  # the person may take their time; the server bounds the wait
        sock.sendall(request(question, tty >= 0, os.getppid(), os.getsid(0)))
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
    kind, text = parse_reply(reply)
    del reply
    if kind == "terminal" and tty >= 0:
        return ask_terminal(tty, question)
    if tty >= 0:
        os.close(tty)
    if kind == "answer":
        sys.stdout.write(text + "\n")
        del text
        return 0
    _end_the_ssh()
    if kind == "refused":
        return _fail(text.strip() or "cancelled in JupyterLab")
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
