"""A certificate issuer on 127.0.0.1 that behaves as NERSC's sshproxy does: the demo's
(``hy2fa demo``, cluster ``demo-cert``) and the tests'.

``POST /create_pair/<scope>/`` with HTTP Basic ``user:password+TOTP``: 200 with a PEM private
key directly followed by one ``ssh-rsa-cert-v01@openssh.com ... <user> serial:<n>`` line (no
trailing newline), signed with ``ssh-keygen -s CA -I user_<u> -n <u> -V +<lifetime>``; 401
``Authentication failed. Failed login: <user>`` with ``WWW-Authenticate: Basic``; five
failures lock the user out (403). ``mode`` makes it answer 500 or a garbage body instead.
``lifetimes`` is each scope's ``ssh-keygen -V`` interval; a test sets one to hand out a
certificate already expired (``"-2h:-1m"``) or running out soon (``"+5m"``) at once. Every
request's Authorization header is kept (``seen``) so a test can check what was sent, and
``journal`` says what became of each connection (accepted, answered with which status, or the
error that ended it), for a failing test's report.

    service = CertService(tmpdir, user="ola", password="pw").start()
    service.url, service.ca_public, service.totp()
    service.stop()
"""

from __future__ import annotations

import base64
import collections
import hmac
import secrets
import subprocess
import tempfile
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyotp

LOCK_AFTER = 5
JOURNAL_LINES = 200
SCOPES = {"default": "+1h", "short": "+2m"}  # each scope's ssh-keygen -V interval


class CertService:
    def __init__(
        self,
        tmpdir: str | Path,
        *,
        user: str,
        password: str,
        digits: int = 6,
        valid_window: int = 0,
    ) -> None:
        self.dir = Path(tmpdir)
        self.user = user
        self.password = password
        self.secret = pyotp.random_base32()
        self.digits = digits
        self.valid_window = valid_window  # codes this many steps early or late count too
        self.lifetimes = dict(SCOPES)
        self.ca = self.dir / "ca"
        self.ca_public = self.dir / "ca.pub"
        self.mode = "ok"  # or "500", "garbage"
        self.failures = 0
        self.requests = 0
        self.serial = 0
        self.seen: list[str] = []  # the Authorization headers received
        # What became of each connection, in order: the newest, in a demo that runs for days.
        self.journal: collections.deque[str] = collections.deque(maxlen=JOURNAL_LINES)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def totp(self) -> str:
        return str(pyotp.TOTP(self.secret, digits=self.digits).now())

    def wrong_code(self) -> str:
        """A code of the right length that this issuer refuses now and a step later (random:
        never found by chance)."""
        totp = pyotp.TOTP(self.secret, digits=self.digits)
        while True:
            code = f"{secrets.randbelow(10**self.digits):0{self.digits}d}"
            if not totp.verify(code, valid_window=self.valid_window + 1):
                return code

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> CertService:
        self.dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hy2fa-demo-ca", "-f",
             str(self.ca)],
            check=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                service.journal.append(f"accepted from port {self.client_address[1]}")

            def do_POST(self) -> None:
                service.requests += 1
                # Read what the client sent before answering: a reply that closes with the
                # body unread makes the kernel reset the connection, and the client may then
                # see the reset instead of the reply.
                length = int(self.headers.get("Content-Length") or 0)
                if 0 < length <= 65536:
                    self.rfile.read(length)
                parts = self.path.strip("/").split("/")
                scopes = service.lifetimes
                if len(parts) != 2 or parts[0] != "create_pair" or parts[1] not in scopes:
                    self._send(404, "Not found")
                    return
                header = self.headers.get("Authorization", "")
                service.seen.append(header)
                user, given = _basic(header)
                if service.failures >= LOCK_AFTER:
                    self._send(403, f"User {user} is locked out")
                    return
                if not (
                    hmac.compare_digest(user.encode(), service.user.encode())
                    and service._accepts(given)
                ):
                    service.failures += 1
                    self._send(
                        401,
                        f"Authentication failed. Failed login: {user}",
                        {"WWW-Authenticate": 'Basic realm="sshproxy"'},
                    )
                    return
                service.failures = 0
                if service.mode == "500":
                    self._send(500, "Internal Server Error")
                    return
                if service.mode == "garbage":
                    self._send(200, "<html>maintenance</html>")
                    return
                self._send(200, service._pair(user, service.lifetimes[parts[1]]))

            def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
                service.journal.append(f"answered {status} to port {self.client_address[1]}")

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                service.journal.append(f"failed: {traceback.format_exc(limit=3)}")
                super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="hy2fa-issuer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _accepts(self, given: str) -> bool:
        """Whether ``given`` is the password directly followed by a code valid now."""
        password = given[: -self.digits] if len(given) > self.digits else ""
        code = given[-self.digits :]
        right_password = hmac.compare_digest(password.encode(), self.password.encode())
        totp = pyotp.TOTP(self.secret, digits=self.digits)
        return (
            right_password and code.isdigit() and totp.verify(code, valid_window=self.valid_window)
        )

    def _pair(self, user: str, lifetime: str) -> str:
        self.serial += 1
        with tempfile.TemporaryDirectory(dir=self.dir) as work:
            key = Path(work, "key")
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "",
                 "-C", user, "-f", str(key)],
                check=True, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            subprocess.run(
                ["ssh-keygen", "-q", "-s", str(self.ca), "-I", f"user_{user}", "-n", user,
                 "-V", lifetime, "-z", str(self.serial), str(key) + ".pub"],
                check=True, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            private = key.read_text()
            cert = Path(str(key) + "-cert.pub").read_text().split()
        return private + f"{cert[0]} {cert[1]} {user} serial:{self.serial}"


def _basic(header: str) -> tuple[str, str]:
    if not header.startswith("Basic "):
        return "", ""
    try:
        user, _, given = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return "", ""
    return user, given
