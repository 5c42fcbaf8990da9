"""Shared fixtures. Socket paths must stay short (about 90 bytes), so temp dirs live in /tmp."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hy2fa_lab.demo.sshserver import PromptScript, ServerThread

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd, missing_requirements
except ImportError:
    from sshd_fixture import RealSshd, missing_requirements  # type: ignore[no-redef]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hy2fa-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def prompt_server() -> Iterator[Callable[..., ServerThread]]:
    """Factory: ``prompt_server(script, **start_server_options)`` -> a running ServerThread.

    Every server started through it is stopped after the test.
    """
    started: list[ServerThread] = []

    def start(script: PromptScript, **options: Any) -> ServerThread:
        server = ServerThread(script, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def real_sshd() -> Iterator[RealSshd]:
    """A fresh OpenSSH sshd (publickey + pam_google_authenticator) per test (starts in ~40 ms).

    Its files live in their own short /tmp dir; ``real_sshd.write_client_config(path)`` writes a
    client config for ``Host fixture``. Skipped where it cannot run (needs root and unshare).
    """
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    path = Path(tempfile.mkdtemp(prefix="hy2fa-", dir="/tmp"))
    sshd = RealSshd(path)
    try:
        yield sshd.start()
    finally:
        sshd.stop()
        shutil.rmtree(path, ignore_errors=True)
