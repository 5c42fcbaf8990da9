"""``hy2fa demo``: a Saga-like login node on loopback, registered as cluster ``demo``, and
JupyterLab with the extension, so anyone can try the whole product without an HPC account.

Beside it, an sshproxy-like certificate issuer (:class:`~.issuer.CertService`) and a login node
that trusts its CA, registered as cluster ``demo-cert`` (a NERSC-like site): its password is
``demo`` and its code the demo's code, typed together.

Everything lives in one private temp dir (keys, ssh config, Jupyter config, the socket);
Ctrl-C stops Lab, the demo master and the server, and removes it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

import asyncssh
import pyotp

from ..core import mux
from .issuer import CertService
from .sshserver import PromptScript, PromptStep, ServerThread, totp_check

SAGA_LIKE_PROMPT = "One-time password (OATH) for `{{user}}' (demo: the code now is {code}): "
_STEP = 30
CERT_PASSWORD = "demo"  # noqa: S105 - the demo issuer's password, printed for anyone to type


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Demo:
    """The demo's parts, each stopped by :meth:`stop` whatever happened before."""

    def __init__(self, *, port: int | None = None, open_browser: bool = True) -> None:
        self.lab_port = port or _free_port()
        self.open_browser = open_browser
        self.dir = Path(tempfile.mkdtemp(prefix="hy2fa-demo-"))  # 0700, short: sockets fit
        self.secret = pyotp.random_base32()
        self.token = secrets.token_hex(24)
        self.user = getpass.getuser()
        self.server: ServerThread | None = None
        self.issuer: CertService | None = None
        self.cert_server: ServerThread | None = None
        self.lab: subprocess.Popen[bytes] | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.lab_port}/lab?token={self.token}"

    def code(self) -> str:
        return str(pyotp.TOTP(self.secret).now())

    # ---- start ---------------------------------------------------------------------------

    def start(self) -> None:
        key = asyncssh.generate_private_key("ssh-ed25519")
        key_path = self.dir / "id_ed25519"
        key.write_private_key(key_path)
        key_path.chmod(0o600)
        public = key.export_public_key("openssh").decode().strip()
        # The demo says its own code in its question (a real cluster never does): the product
        # shows what a cluster asks, word for word, so it needs to know nothing of demos.
        step = PromptStep(
            lambda: SAGA_LIKE_PROMPT.format(code=self.code()),
            expected=totp_check(self.secret, valid_window=1),
        )
        script = PromptScript(
            [step],
            username=self.user,
            client_key=public,
        )
        self.server = ServerThread(script).start()
        # The NERSC-like site: an issuer taking the password + the demo's code, and a node
        # trusting its CA; the product's certificate login stores the pair in the temp dir.
        self.issuer = CertService(
            self.dir / "issuer", user=self.user, password=CERT_PASSWORD, valid_window=1
        )
        self.issuer.secret = self.secret  # one code for both clusters
        self.issuer.start()
        ca_public = self.issuer.ca_public.read_text().strip()
        self.cert_server = ServerThread(
            PromptScript([], username=self.user, user_ca=ca_public)
        ).start()
        (self.dir / "known_hosts").write_text(
            self.server.known_hosts_line() + self.cert_server.known_hosts_line()
        )
        (self.dir / "ssh_config").write_text(
            "Host demo\n"
            "    HostName 127.0.0.1\n"
            f"    Port {self.server.port}\n"
            f"    User {self.user}\n"
            f"    IdentityFile {key_path}\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {self.dir}/known_hosts\n"
            "    StrictHostKeyChecking yes\n"
            "    PreferredAuthentications publickey,keyboard-interactive\n"
            "Host demo-cert\n"
            "    HostName 127.0.0.1\n"
            f"    Port {self.cert_server.port}\n"
            f"    User {self.user}\n"
            f"    UserKnownHostsFile {self.dir}/known_hosts\n"
            "    StrictHostKeyChecking yes\n"
            "    PreferredAuthentications publickey\n"
        )
        config_dir = self.dir / "jupyter-config"
        config_dir.mkdir()
        (config_dir / "jupyter_server_config.json").write_text(
            json.dumps(
                {
                    "Hy2faLab": {
                        "ssh_config": str(self.dir / "ssh_config"),
                        "control_path": f"{self.dir}/cm-%C",
                        "clusters": {
                            "demo": {
                                "host": "demo",
                                "label": "Demo cluster (this machine)",
                                "asks": "A one-time code, shown in the terminal and the prompt",
                                "persist": "1h",
                            },
                            "demo-cert": {
                                "host": "demo-cert",
                                "label": "Demo certificate cluster (this machine)",
                                "asks": f"Password {CERT_PASSWORD} + the one-time code,"
                                " at the demo's certificate issuer",
                                "persist": "1h",
                                "certificate": {
                                    "issuer": "sshproxy",
                                    "url": self.issuer.url,
                                    "scope": "default",
                                    "key": str(self.dir / "demo-key"),
                                },
                            },
                        },
                    }
                },
                indent=2,
            )
        )
        self._start_lab(config_dir)

    def _start_lab(self, config_dir: Path) -> None:
        env = dict(os.environ)
        # Kernels inherit this too, so hy2fa_lab.socket_path("demo") works in notebooks.
        extra = env.get("JUPYTER_CONFIG_PATH")
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(filter(None, [str(config_dir), extra]))
        env["JUPYTER_TOKEN"] = self.token  # not in argv, where `ps` would show it
        # `!python ...` and `!hy2fa ...` in a notebook find this environment, as if activated.
        bin_dir = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
        # util-linux's setpriv: Lab gets SIGTERM should the demo itself be killed (SIGKILL).
        setpriv = shutil.which("setpriv")
        argv = [setpriv, "--pdeathsig", "TERM"] if setpriv else []
        argv += [
            sys.executable,
            "-m",
            "jupyterlab",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.lab_port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={Path.cwd()}",
        ]
        if not self.open_browser:
            argv.append("--no-browser")
        if os.geteuid() == 0:
            argv.append("--allow-root")
        log = (self.dir / "lab.log").open("wb")
        # A session of its own: the terminal's Ctrl-C reaches only us, and we stop Lab without
        # its "Shutdown this Jupyter server (y/[n])?" question.
        self.lab = subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_until_ready(self, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.lab is None or self.lab.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.lab_port), timeout=1),
            ):
                return True
            time.sleep(0.2)
        return False

    def lab_log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = (self.dir / "lab.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    # ---- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.lab is not None and self.lab.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.lab.pid, signal.SIGTERM)
            try:
                self.lab.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.lab.pid, signal.SIGKILL)
                self.lab.wait()
        for path in self.dir.glob("cm-*"):
            with contextlib.suppress(OSError, mux.MuxError):
                mux.stop(str(path))
        if self.server is not None:
            self.server.stop()
        if self.cert_server is not None:
            self.cert_server.stop()
        if self.issuer is not None:
            self.issuer.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def run(*, port: int | None = None, open_browser: bool = True, out: TextIO | None = None) -> int:
    """Run the demo until Ctrl-C (or SIGTERM); returns the exit status."""
    out = out or sys.stdout
    demo = Demo(port=port, open_browser=open_browser)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        demo.start()
        if not demo.wait_until_ready():
            print("hy2fa demo: JupyterLab did not start:\n" + demo.lab_log_tail(), file=out)
            return 1
        if os.geteuid() == 0:
            print("hy2fa demo: running as root, so JupyterLab runs with --allow-root", file=out)
        server_port = demo.server.port if demo.server else 0
        cert_port = demo.cert_server.port if demo.cert_server else 0
        issuer_url = demo.issuer.url if demo.issuer else ""
        print(
            f"hy2fa demo: a demo cluster 'demo' (an SSH server on 127.0.0.1:{server_port}"
            " that asks for a one-time code), a certificate cluster 'demo-cert' (an SSH server"
            f" on 127.0.0.1:{cert_port} trusting the certificates of the issuer at"
            f" {issuer_url}) and JupyterLab are running.\n"
            f"  JupyterLab: {demo.url}\n"
            f"  'demo-cert' asks for a password + OTP: type {CERT_PASSWORD} then the code,"
            f" as in {CERT_PASSWORD}123456.\n"
            "  Open the '2FA connections' sidebar and click Connect on 'demo', or run\n"
            "  %load_ext hy2fa_lab / %hy2fa connect demo in a notebook, then\n"
            "  !ssh -S $(python -c 'import hy2fa_lab;print(hy2fa_lab.socket_path(\"demo\"))')"
            " demo hostname\n"
            f"  Demo files (keys, ssh config, socket, Lab's log): {demo.dir}\n"
            "  Ctrl-C stops everything and removes them.",
            file=out,
            flush=True,
        )
        shown = ""
        while not stop.is_set():
            code = demo.code()
            if code != shown:
                left = _STEP - int(time.time()) % _STEP
                print(
                    f"demo code: {code}   (next in {left} s; demo-cert: {CERT_PASSWORD}{code})",
                    file=out,
                    flush=True,
                )
                shown = code
            if demo.lab is not None and demo.lab.poll() is not None:
                print("hy2fa demo: JupyterLab exited:\n" + demo.lab_log_tail(), file=out)
                return 1
            stop.wait(0.5)
        print("hy2fa demo: stopping", file=out, flush=True)
        return 0
    finally:
        demo.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
