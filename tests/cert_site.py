"""A certificate site for the tests through the server, the kernel and the CLI: the project's
own issuer (``hy2fa_lab.demo.issuer``, as NERSC's sshproxy behaves) and a real sshd on
127.0.0.1 that trusts only its CA (``TrustedUserCAKeys``, ``AuthorizedKeysFile none``).

    site = CertSite(short_dir).start()   # or the fixture ``site`` (conftest.py)
    site.profile()                       # the cluster's settings, {"host": "fixture", ...}
    site.add_host(client_config)         # Host fixture in an ssh config
    site.issue("default")                # a key + certificate on disk with no login (+1h)
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hy2fa_lab.core import certificates
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.profiles import certificate_spec
from hy2fa_lab.demo.issuer import CertService

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd, require_sshd
except ImportError:
    from sshd_fixture import RealSshd, require_sshd  # type: ignore[no-redef]

PASSWORD = "correct horse"


class CertSite:
    def __init__(self, directory: Path, password: str = PASSWORD, digits: int = 6) -> None:
        self.dir = directory
        self.password = password
        self.sshd = RealSshd(directory / "sshd", trusted_user_ca=directory / "svc" / "ca.pub")
        # A code of the step before or after counts too (as at sshd's pam_google_authenticator
        # here): a code taken just before a 30 s step ends still logs in when it arrives late.
        self.service = CertService(
            directory / "svc", user=self.sshd.user, password=password, digits=digits, valid_window=1
        )
        self.key = directory / "home" / ".ssh" / "nersc"

    def start(self) -> CertSite:
        self.service.start()
        self.sshd.start()
        return self

    def stop(self) -> None:
        self.sshd.stop()
        self.service.stop()

    def spec(self, **over: Any) -> dict[str, Any]:
        spec = {"issuer": "sshproxy", "url": self.service.url, "key": str(self.key)}
        spec.update(over)
        return spec

    def profile(self, **over: Any) -> dict[str, Any]:
        return {"host": "fixture", "certificate": self.spec(**over)}

    def manager(self, **over: Any) -> Manager:
        """The engine alone, with one cluster ``nersc`` on this site (``over``: settings of
        its certificate)."""
        config = self.sshd.write_client_config(self.dir / "ssh_config")
        return Manager(
            Settings(
                ssh_config=str(config),
                control_path=f"{self.dir}/%C",
                clusters={"nersc": self.profile(**over)},
                include_ssh_config_hosts=False,
            )
        )

    def add_host(self, config: Path, alias: str = "fixture") -> None:
        block = self.sshd.write_client_config(config.parent / f"{alias}.conf", alias=alias)
        with config.open("a") as handle:
            handle.write(block.read_text())

    def secret(self) -> str:
        return self.password + self.service.totp()

    def wrong(self) -> str:
        return self.password + self.service.wrong_code()

    def files(self) -> dict[str, bytes]:
        paths = [self.key, Path(f"{self.key}.pub"), Path(f"{self.key}-cert.pub")]
        return {p.name: p.read_bytes() for p in paths if p.exists()}

    def issue(self, scope: str = "default") -> certificates.Certificate:
        """A pair from the issuer stored where the profile reads it, as a login before
        (or NERSC's own script) would have left it."""
        spec = certificate_spec(self.spec(scope=scope))
        body = certificates.request_pair(spec, self.sshd.user, self.secret())
        pair = certificates.parse_pair(body, spec.key, "127.0.0.1")
        certificates.store(spec, pair)
        return pair.described


def started_site(**options: Any) -> Iterator[CertSite]:
    """A started site in a short /tmp dir, stopped and removed afterwards (for fixtures)."""
    require_sshd()
    directory = Path(tempfile.mkdtemp(prefix="hy2fa-c", dir="/tmp"))
    site = CertSite(directory, **options)
    try:
        yield site.start()
    finally:
        site.stop()
        shutil.rmtree(directory, ignore_errors=True)
