"""SSH certificates a site's issuer hands out (NERSC's sshproxy): reading the key and its
certificate, asking the issuer for a new pair, and storing it.

The files are those the site's own client writes, so both tools share them: the private key
at ``key`` (0600), its public half at ``key + ".pub"`` and the certificate at
``key + "-cert.pub"``. A certificate is read with ``cryptography`` (validity in UTC, principals,
key id), never by scraping ``ssh-keygen -L``. The password + OTP goes only into the request's
Authorization header; it is never logged, stored, or put in argv or the environment.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import SSHCertificate

from . import privatefile
from .profiles import is_loopback
from .types import CertificateSpec

_MAX_FILE = 64 * 1024
_MAX_BODY = 64 * 1024
_TIMEOUT = 30.0
_FOREVER = 2**64 - 1
_PEM = re.compile(
    r"\A\s*(-----BEGIN ([A-Z ]*)PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n:,\- ]+?"
    r"-----END \2PRIVATE KEY-----)\r?\n?(.*)\Z",
    re.S,
)
_CERT_LINE = re.compile(
    r"\A(ssh-[a-z0-9-]+-cert-v01@openssh\.com|ecdsa-[a-z0-9-]+-cert-v01@"
    r"openssh\.com) [A-Za-z0-9+/=]+( [^\r\n]*)?\Z"
)


class IssuerError(Exception):
    """The issuer did not give a certificate: ``message`` in words for a person; ``retry``
    when the answer was wrong (401: ask again)."""

    def __init__(self, message: str, *, retry: bool = False, reason: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry
        self.reason = reason  # a Reason's value: auth_failed, unreachable, error


@dataclasses.dataclass(frozen=True)
class Certificate:
    """What a certificate file says, and whether the key beside it is its key."""

    key: str
    valid_after: datetime
    valid_before: datetime | None  # None: never expires
    principals: tuple[str, ...]
    key_id: str
    key_matches: bool

    def seconds_left(self, now: datetime | None = None) -> float:
        if self.valid_before is None:
            return float("inf")
        return (self.valid_before - (now or datetime.now(timezone.utc))).total_seconds()

    def unusable(self, user: str, renew_before: float, now: datetime | None = None) -> str:
        """Why this certificate cannot open a login for ``user`` now ("" when it can)."""
        now = now or datetime.now(timezone.utc)
        if not self.key_matches:
            return "the key does not match the certificate"
        if self.principals and user not in self.principals:
            return f"the certificate is not for {user}"
        if self.valid_after > now:
            return "the certificate is not valid yet"
        left = self.seconds_left(now)
        if left <= 0:
            return "the certificate has expired"
        if left <= renew_before:
            return "the certificate runs out soon"
        return ""

    def view(self, issuer: str) -> dict[str, object]:
        return {
            "issuer": issuer,
            "valid_before": self.valid_before.isoformat() if self.valid_before else None,
            "principals": list(self.principals),
            "key": self.key,
        }


def _public_bytes(key: Any) -> bytes:
    """A key's public half in OpenSSH's one-line form (``ssh-ed25519 AAAA...``)."""
    public = key.public_key() if hasattr(key, "public_key") else key
    return bytes(
        public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )


def _private_key(text: str) -> Any:
    data = text.encode()
    if b"OPENSSH PRIVATE KEY" in data:
        return serialization.load_ssh_private_key(data, password=None)
    return serialization.load_pem_private_key(data, password=None)


def _certificate(text: str) -> SSHCertificate:
    identity = serialization.load_ssh_public_identity(text.strip().encode())
    if not isinstance(identity, SSHCertificate):
        raise ValueError("not a certificate")
    return identity


def _described(key_path: str, cert: SSHCertificate, key_matches: bool) -> Certificate:
    before = cert.valid_before
    return Certificate(
        key=key_path,
        valid_after=datetime.fromtimestamp(cert.valid_after, tz=timezone.utc),
        valid_before=None
        if before >= _FOREVER
        else datetime.fromtimestamp(before, tz=timezone.utc),
        principals=tuple(p.decode("utf-8", "replace") for p in cert.valid_principals),
        key_id=cert.key_id.decode("utf-8", "replace"),
        key_matches=key_matches,
    )


def read(spec: CertificateSpec) -> Certificate | None:
    """The certificate at ``spec.certificate_file`` and whether ``spec.key`` is its key;
    ``None`` when either file is missing or cannot be read as one."""
    try:
        cert_text = _read_small(spec.certificate_file)
        key_text = _read_small(spec.key)
    except OSError:
        return None
    if cert_text is None or key_text is None:
        return None
    try:
        cert = _certificate(cert_text)
    except (ValueError, TypeError):
        return None
    try:
        matches = _public_bytes(_private_key(key_text)) == _public_bytes(cert.public_key())
    except (ValueError, TypeError):
        matches = False  # a key of another kind, or one with a passphrase: not this one's
    return _described(spec.key, cert, matches)


def _read_small(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_FILE + 1)
    except FileNotFoundError:
        return None
    if len(data) > _MAX_FILE:
        raise OSError(f"{path} is too large")
    return data.decode("utf-8", "replace")


# ---- asking the issuer --------------------------------------------------------------------


def request_pair(spec: CertificateSpec, login: str, secret: str) -> str:
    """POST ``<url>/create_pair/<scope>/`` with HTTP Basic ``login:secret``; the 200 body.

    Blocking (run it off the event loop). Raises :class:`IssuerError`: ``retry`` for a 401
    (the issuer's words), else a lock-out, a network or TLS failure, any other status.
    """
    url = f"{spec.url}/create_pair/{urllib.parse.quote(spec.scope, safe='')}/"
    host = urllib.parse.urlsplit(url).hostname or ""
    if urllib.parse.urlsplit(url).scheme != "https" and not is_loopback(host):
        raise IssuerError(f"{host} is not reached over HTTPS: nothing was sent")
    credentials = base64.b64encode(f"{login}:{secret}".encode()).decode("ascii")
    del secret
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=b"",
        method="POST",
        headers={"Authorization": f"Basic {credentials}", "User-Agent": "hy2fa-lab"},
    )
    del credentials
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.HTTPSHandler(context=ssl.create_default_context())
    ]
    if is_loopback(host):
        handlers.append(urllib.request.ProxyHandler({}))  # never a proxy for 127.0.0.1
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=_TIMEOUT) as reply:
            body: bytes = reply.read(_MAX_BODY + 1)
    except urllib.error.HTTPError as error:
        words = _words(error.read(2048) if error.fp is not None else b"")
        error.close()
        if error.code == 401 and "lock" not in words.lower():
            raise IssuerError(
                words or f"{host} refused the password and code", retry=True
            ) from None
        raise IssuerError(
            f"{host} refused the request ({error.code}){': ' + words if words else ''}",
            reason="auth_failed" if error.code in (401, 403, 429) else "error",
        ) from None
    except ssl.SSLError as error:
        raise IssuerError(f"No secure connection to {host}: {error.reason or error}") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ssl.SSLError):
            raise IssuerError(
                f"No secure connection to {host}: {reason.reason or reason}"
            ) from None
        raise IssuerError(f"Cannot reach {host}: {reason}", reason="unreachable") from None
    except (OSError, ValueError) as error:
        raise IssuerError(f"Cannot reach {host}: {error}", reason="unreachable") from None
    finally:
        request.headers.clear()
        request.unredirected_hdrs.clear()
    if len(body) > _MAX_BODY:
        raise IssuerError(f"{host} sent an answer too large to be a key and certificate")
    return body.decode("utf-8", "replace")


def _words(data: bytes) -> str:
    """An issuer's error body as one line of printable text, cut short."""
    text = data.decode("utf-8", "replace")
    text = re.sub(r"<[^>]*>", " ", text)  # an HTML error page: its words
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text[:300]


@dataclasses.dataclass(frozen=True)
class Pair:
    """A key and its certificate as the issuer sent them, checked."""

    private_key: str
    public_key: str
    certificate: str
    described: Certificate


def parse_pair(body: str, key_path: str, host: str) -> Pair:
    """The issuer's 200 body: a PEM (or OpenSSH) private key, directly followed by one
    certificate line; the key must be the certificate's. :class:`IssuerError` otherwise."""
    unexpected = f"{host} sent something that is not a key and certificate"
    match = _PEM.match(body)
    if match is None:
        raise IssuerError(unexpected)
    private_text = match.group(1).replace("\r\n", "\n") + "\n"
    line = match.group(3).strip()
    if "\n" in line or not _CERT_LINE.match(line):
        raise IssuerError(unexpected)
    try:
        cert = _certificate(line)
        private = _private_key(private_text)
        public = _public_bytes(private)
    except (ValueError, TypeError, AttributeError):
        raise IssuerError(unexpected) from None
    if not isinstance(
        private, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
    ):
        raise IssuerError(unexpected)
    if public != _public_bytes(cert.public_key()):
        raise IssuerError(f"{host} sent a certificate for another key")
    return Pair(
        private_key=private_text,
        public_key=public.decode("ascii") + "\n",
        certificate=line + "\n",
        described=_described(key_path, cert, True),
    )


def store(spec: CertificateSpec, pair: Pair) -> None:
    """Write the key (0600, atomically: never readable by others, never half a file), then
    its ``.pub`` and ``-cert.pub``; the directory is made 0700 when there is none."""
    directory = os.path.dirname(spec.key)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    privatefile.write(spec.key, pair.private_key)
    privatefile.write(spec.key + ".pub", pair.public_key)
    privatefile.write(spec.certificate_file, pair.certificate)
