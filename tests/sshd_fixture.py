"""A real OpenSSH ``sshd`` on 127.0.0.1 asking a pam_google_authenticator code after a key.

Everything lives in one short temp dir: host key, sshd_config, client key pair, authorized_keys,
the google_authenticator secret and the PAM file. The PAM file is bind-mounted over
``/etc/pam.d/sshd`` inside ``unshare -m --propagation private``, so the system's files are never
changed and the mount disappears with the last process of the namespace. Needs root.

    sshd = RealSshd(tmpdir).start()
    sshd.write_client_config(tmpdir / "ssh_config")   # then: ssh -F tmpdir/ssh_config fixture
    code = sshd.totp()                                 # what the PAM prompt accepts now
    sshd.stop()                                        # kills sshd and every session it forked
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pyotp

try:  # tests/ may or may not be a package
    from .procs import process_alive
except ImportError:
    from procs import process_alive  # type: ignore[no-redef]

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
PAM_MODULE = "pam_google_authenticator.so"
PAM_DIRS = ("/lib/x86_64-linux-gnu/security", "/usr/lib/x86_64-linux-gnu/security",
            "/lib/security", "/usr/lib/security", "/lib64/security")  # fmt: skip
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def require_sshd() -> None:
    """Skip the test where the real sshd cannot run (a developer machine without root or
    unshare); under CI that is a failure instead, since CI installs everything."""
    import pytest

    reason = missing_requirements()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the real sshd fixture cannot run in CI: {reason}")
        pytest.skip(reason)


def missing_requirements() -> str | None:
    """Why the fixture cannot run here, or None."""
    if os.geteuid() != 0:
        return "the real sshd fixture needs root"
    for tool in (SSHD, "unshare", "mount", "ssh-keygen", "ssh"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not any(Path(d, PAM_MODULE).exists() for d in PAM_DIRS):
        return "libpam-google-authenticator is not installed"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mnt_namespace(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _parent_pids() -> dict[int, int]:
    """Every process's parent, through psutil."""
    return {proc.pid: proc.info["ppid"] for proc in psutil.process_iter(["ppid"])}


def _pam_arg(key: str, value: str) -> str:
    """A PAM module argument; one with spaces or brackets goes in [...] with ] escaped."""
    arg = f"{key}={value}"
    if any(c in arg for c in " \t[]"):
        return "[" + arg.replace("]", "\\]") + "]"
    return arg


class RealSshd:
    """OpenSSH sshd with ``AuthenticationMethods publickey,keyboard-interactive:pam``.

    ``prompt`` replaces pam_google_authenticator's ``Verification code: `` (its
    ``authtok_prompt`` option), e.g. a Duo-like text.

    ``trusted_user_ca`` (a CA's public key file) makes it a certificate site instead:
    ``TrustedUserCAKeys`` that file, ``AuthorizedKeysFile none`` and ``AuthenticationMethods
    publickey``, so only a key with a certificate that CA signed logs in.
    """

    def __init__(
        self,
        tmpdir: str | os.PathLike[str],
        prompt: str | None = None,
        *,
        trusted_user_ca: str | os.PathLike[str] | None = None,
    ) -> None:
        self.dir = Path(tmpdir)
        self.prompt = prompt
        self.trusted_user_ca = Path(trusted_user_ca) if trusted_user_ca is not None else None
        self.user = getpass.getuser()
        self.secret = pyotp.random_base32()
        self.host_key = self.dir / "ssh_host_ed25519_key"
        self.client_key = self.dir / "id_ed25519"
        self.authorized_keys = self.dir / "authorized_keys"
        self.known_hosts = self.dir / "known_hosts"
        self.secret_file = self.dir / "ga_secret"
        self.pam_file = self.dir / "pam_sshd"
        self.config_file = self.dir / "sshd_config"
        self.pid_file = self.dir / "sshd.pid"
        self.log_file = self.dir / "sshd.log"
        self.port = 0
        self.host_key_fingerprint = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._namespace: str | None = None
        self._prepared = False

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> RealSshd:
        """Write the files (first time), start sshd on a free port, wait until it listens."""
        if self._proc is not None:
            raise RuntimeError("sshd is already running")
        reason = missing_requirements()
        if reason:
            raise RuntimeError(reason)
        if not self._prepared:
            self._prepare()
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privsep chroot
        keep_port = self.port  # rotate_host_key() restarts on the same port
        for _attempt in range(5):
            self.port = keep_port or free_port()
            self._write_sshd_config()
            if self._launch():
                self._write_known_hosts_once()
                return self
            if keep_port:
                break
        raise RuntimeError(f"sshd did not start:\n{self.log()}")

    def stop(self) -> None:
        """Kill sshd and everything it forked (all processes of its mount namespace)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        victims = self._processes(proc.pid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + STOP_TIMEOUT
            while time.monotonic() < deadline:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(0.05)
                victims = {pid for pid in victims if process_alive(pid)} | self._processes(None)
                if not victims:
                    break
            if not victims:
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT)
        self._namespace = None

    def rotate_host_key(self) -> None:
        """A new host key and a restart on the same port; known_hosts keeps the old key."""
        self.stop()
        self.host_key.unlink(missing_ok=True)
        self.host_key.with_name(self.host_key.name + ".pub").unlink(missing_ok=True)
        self._keygen(self.host_key, "hy2fa-fixture-host")
        self.host_key_fingerprint = self._fingerprint(self.host_key)
        self.start()

    def __enter__(self) -> RealSshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def processes(self) -> set[int]:
        """Live pids of sshd and its children (empty after stop())."""
        return self._processes(self.pid)

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    # ---- codes ------------------------------------------------------------------------------

    def totp(self) -> str:
        """The code pam_google_authenticator accepts right now."""
        return str(pyotp.TOTP(self.secret).now())

    def wrong_code(self) -> str:
        """A six-digit code that is surely wrong now (outside every nearby time step)."""
        generator = pyotp.TOTP(self.secret)
        now = time.time()
        near = {generator.at(now + step * 30) for step in range(-5, 6)}
        base = int(generator.now())
        for offset in range(500_000, 500_100):
            candidate = f"{(base + offset) % 1_000_000:06d}"
            if candidate not in near:
                return candidate
        raise AssertionError("unreachable: 100 candidates, at most 11 codes to avoid")

    # ---- client side ------------------------------------------------------------------------

    def known_hosts_line(self) -> str:
        public = self.host_key.with_name(self.host_key.name + ".pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n"

    def write_client_config(
        self,
        path: str | os.PathLike[str],
        alias: str = "fixture",
        known_hosts: str | os.PathLike[str] | None = None,
        *,
        trust_host_key: bool = True,
        strict_host_key_checking: str = "ask",
        extra: dict[str, str] | None = None,
    ) -> Path:
        """Write an ssh client config with ``Host alias`` pointing at this sshd.

        With ``trust_host_key`` (default) the host key is written into ``known_hosts`` (default
        ``self.known_hosts``) so there is no first-contact question. With
        ``trust_host_key=False`` the known_hosts file (default ``<path>.known_hosts``) starts
        empty, so ssh asks "Are you sure you want to continue connecting" (with the default
        ``StrictHostKeyChecking ask``).
        """
        path = Path(path)
        if known_hosts is None:
            kh = self.known_hosts if trust_host_key else path.with_name(path.name + ".known_hosts")
        else:
            kh = Path(known_hosts)
        if trust_host_key:
            line = self.known_hosts_line()
            existing = kh.read_text() if kh.exists() else ""
            if line not in existing:
                with kh.open("a") as fh:
                    fh.write(line)
        elif not kh.exists():
            kh.touch()
        options = {
            "HostName": "127.0.0.1",
            "Port": str(self.port),
            "User": self.user,
            "IdentityFile": str(self.client_key),
            "IdentitiesOnly": "yes",
            "UserKnownHostsFile": str(kh),
            "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": strict_host_key_checking,
            "CheckHostIP": "no",
            "BatchMode": "no",
            "ConnectTimeout": "10",
        }
        options.update(extra or {})
        body = "".join(f"    {key} {value}\n" for key, value in options.items())
        path.write_text(f"Host {alias}\n{body}")
        return path

    # ---- internals --------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._keygen(self.host_key, "hy2fa-fixture-host")
        self.host_key_fingerprint = self._fingerprint(self.host_key)
        self._keygen(self.client_key, "hy2fa-fixture-client")
        shutil.copyfile(self.client_key.with_name(self.client_key.name + ".pub"),
                        self.authorized_keys)  # fmt: skip
        self.secret_file.write_text(f'{self.secret}\n" TOTP_AUTH\n" WINDOW_SIZE 3\n')
        self.secret_file.chmod(0o400)  # pam_google_authenticator refuses a readable file
        args = ["auth", "required", PAM_MODULE, f"secret={self.secret_file}", "user=root"]
        if self.prompt is not None:
            args.append(_pam_arg("authtok_prompt", self.prompt))
        self.pam_file.write_text(
            " ".join(args) + "\n"
            "@include common-account\n"
            "@include common-session\n"
            "password required pam_deny.so\n"
        )
        self._prepared = True

    def _write_known_hosts_once(self) -> None:
        line = self.known_hosts_line()
        if not self.known_hosts.exists():
            self.known_hosts.write_text(line)

    def _write_sshd_config(self) -> None:
        if self.trusted_user_ca is not None:
            methods = (
                f"TrustedUserCAKeys {self.trusted_user_ca}\n"
                "AuthorizedKeysFile none\n"
                "AuthenticationMethods publickey\n"
                "KbdInteractiveAuthentication no\n"
            )
        else:
            methods = (
                f"AuthorizedKeysFile {self.authorized_keys}\n"
                "AuthenticationMethods publickey,keyboard-interactive:pam\n"
                "KbdInteractiveAuthentication yes\n"
            )
        self.config_file.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.pid_file}\n"
            f"{methods}"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "UsePAM yes\n"
            "StrictModes no\n"
            "PermitRootLogin yes\n"
            "UseDNS no\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
            "MaxAuthTries 10\n"
            "LoginGraceTime 60\n"
            "X11Forwarding no\n"
            "LogLevel VERBOSE\n"
            f"Subsystem sftp {SFTP_SERVER}\n"
        )

    def _launch(self) -> bool:
        """Start sshd in a private mount namespace; True once it listens on self.port."""
        script = 'mount --bind "$1" /etc/pam.d/sshd && exec "$2" -D -e -f "$3"'
        argv = ["unshare", "-m", "--propagation", "private", "--", "/bin/sh", "-c", script,
                "sh", str(self.pam_file), SSHD, str(self.config_file)]  # fmt: skip
        with self.log_file.open("wb") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self._proc = proc
        ready = f"Server listening on 127.0.0.1 port {self.port}"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if ready in self.log():
                namespace = _mnt_namespace(proc.pid)
                if namespace is not None and namespace != _mnt_namespace("self"):
                    self._namespace = namespace
                return True
            if proc.poll() is not None:
                break
            time.sleep(0.01)
        self.stop()
        return False

    def _processes(self, root: int | None) -> set[int]:
        """Live processes of sshd's mount namespace, plus descendants of ``root``."""
        found: set[int] = set()
        parents = _parent_pids()
        if self._namespace is not None:
            found |= {pid for pid in parents if _mnt_namespace(pid) == self._namespace}
        if root is not None:
            found.add(root)
            grew = True
            while grew:
                more = {pid for pid, ppid in parents.items() if ppid in found} - found
                found |= more
                grew = bool(more)
        found.discard(os.getpid())
        return {pid for pid in found if process_alive(pid)}

    @staticmethod
    def _keygen(path: Path, comment: str) -> None:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
        )  # fmt: skip

    @staticmethod
    def _fingerprint(path: Path) -> str:
        out = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)],
            check=True, capture_output=True, text=True, timeout=20,
        ).stdout  # fmt: skip
        return out.split()[1]
