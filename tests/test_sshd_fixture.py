"""The real OpenSSH sshd fixture: publickey, then a pam_google_authenticator code."""

from __future__ import annotations

import getpass
import hashlib
import socket
import time
from pathlib import Path

import pexpect
import pytest
from helpers import finish
from procs import process_alive

try:  # tests/ may or may not be a package
    from .sshd_fixture import RealSshd, missing_requirements
except ImportError:
    from sshd_fixture import RealSshd, missing_requirements  # type: ignore[no-redef]

pytestmark = pytest.mark.sshd

TIMEOUT = 20
USER = getpass.getuser()
CODE_PROMPT = f"({USER}@127.0.0.1) Verification code: "


def ssh(config: Path, *command: str, options: tuple[str, ...] = ()) -> pexpect.spawn:
    argv = ["-F", str(config), *options, "fixture", *(command or ("true",))]
    return pexpect.spawn("ssh", argv, encoding="utf-8", timeout=TIMEOUT)


def test_login_needs_the_key_and_then_the_code(real_sshd: RealSshd, short_tmp: Path) -> None:
    config = real_sshd.write_client_config(short_tmp / "ssh_config")
    child = ssh(config, "echo logged-in-as $(id -un)")
    child.expect_exact(CODE_PROMPT)
    code = real_sshd.totp()
    child.sendline(code)
    status, output = finish(child)
    assert status == 0, output
    assert f"logged-in-as {USER}" in output
    assert code not in output  # the code is not echoed
    assert "Partial publickey for" in real_sshd.log()  # the key came first, then PAM
    assert "Accepted keyboard-interactive/pam for" in real_sshd.log()


def test_without_the_key_no_code_is_asked(real_sshd: RealSshd, short_tmp: Path) -> None:
    config = real_sshd.write_client_config(
        short_tmp / "ssh_config", extra={"IdentityFile": str(short_tmp / "no-such-key")}
    )
    child = ssh(config)
    index = child.expect_exact([CODE_PROMPT, pexpect.EOF])
    assert index == 1
    assert "Permission denied (publickey)" in child.before
    child.close()
    assert child.exitstatus == 255


def test_wrong_code_is_asked_again_then_right_code_works(
    real_sshd: RealSshd, short_tmp: Path
) -> None:
    config = real_sshd.write_client_config(short_tmp / "ssh_config")
    child = ssh(config, "echo second-try")
    child.expect_exact(CODE_PROMPT)
    child.sendline(real_sshd.wrong_code())
    child.expect_exact(CODE_PROMPT)
    child.sendline(real_sshd.totp())
    status, output = finish(child)
    assert status == 0, output
    assert "second-try" in output


def test_three_wrong_codes_are_permission_denied(real_sshd: RealSshd, short_tmp: Path) -> None:
    config = real_sshd.write_client_config(short_tmp / "ssh_config")
    child = ssh(config, "echo should-not-run")
    for _ in range(3):
        child.expect_exact(CODE_PROMPT)
        child.sendline(real_sshd.wrong_code())
    status, output = finish(child)
    assert status == 255
    assert "Permission denied (keyboard-interactive)" in output
    assert "should-not-run" not in output


@pytest.mark.parametrize("prompt", ["Passcode or option (1-1): ", "Token [TOTP] code: "])
def test_authtok_prompt_changes_the_prompt_text(short_tmp: Path, prompt: str) -> None:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    with RealSshd(short_tmp / "d", prompt=prompt) as sshd:
        config = sshd.write_client_config(short_tmp / "ssh_config")
        child = ssh(config, "echo custom-ok")
        child.expect_exact(f"({USER}@127.0.0.1) {prompt}")
        assert "Verification code" not in child.before
        child.sendline(sshd.totp())
        status, output = finish(child)
        assert status == 0, output
        assert "custom-ok" in output


def test_first_contact_asks_about_the_host_key(real_sshd: RealSshd, short_tmp: Path) -> None:
    config = real_sshd.write_client_config(short_tmp / "ssh_config", trust_host_key=False)
    assert (short_tmp / "ssh_config.known_hosts").read_text() == ""
    child = ssh(config)
    child.expect_exact("Are you sure you want to continue connecting (yes/no/[fingerprint])? ")
    assert real_sshd.host_key_fingerprint in child.before
    child.sendline("yes")
    child.expect_exact(CODE_PROMPT)
    child.sendline(real_sshd.totp())
    status, output = finish(child)
    assert status == 0, output
    assert f"[127.0.0.1]:{real_sshd.port}" in (short_tmp / "ssh_config.known_hosts").read_text()


def test_rotate_host_key_is_seen_as_changed(real_sshd: RealSshd, short_tmp: Path) -> None:
    config = real_sshd.write_client_config(short_tmp / "ssh_config")
    child = ssh(config)
    child.expect_exact(CODE_PROMPT)
    child.sendline(real_sshd.totp())
    assert finish(child)[0] == 0
    old_port, old_fingerprint = real_sshd.port, real_sshd.host_key_fingerprint
    real_sshd.rotate_host_key()
    assert real_sshd.port == old_port
    assert real_sshd.host_key_fingerprint != old_fingerprint
    child = ssh(config, "echo should-not-run")
    status, output = finish(child)
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in output
    assert real_sshd.host_key_fingerprint in output
    assert "Host key verification failed." in output
    assert "should-not-run" not in output
    assert status == 255


def test_stop_leaves_no_process_and_the_system_untouched(short_tmp: Path) -> None:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    pam_before = hashlib.sha256(Path("/etc/pam.d/sshd").read_bytes()).hexdigest()
    sshd = RealSshd(short_tmp / "d")
    started = time.monotonic()
    sshd.start()
    print(f"sshd started in {time.monotonic() - started:.3f} s")
    try:
        config = sshd.write_client_config(short_tmp / "ssh_config")
        child = ssh(config, "echo session-up; exec sleep 319")
        child.expect_exact(CODE_PROMPT)
        child.sendline(sshd.totp())
        child.expect_exact("session-up")
        running = sshd.processes()
        # listener, per-connection monitor, the user's session, and the command
        assert len(running) >= 3, running
        assert sshd.pid in running
        # outside the namespace the system's PAM file was never changed
        assert hashlib.sha256(Path("/etc/pam.d/sshd").read_bytes()).hexdigest() == pam_before
        port = sshd.port
        sshd.stop()
        child.expect(pexpect.EOF)
        child.close()
    finally:
        sshd.stop()
    assert [pid for pid in running if process_alive(pid)] == []
    assert sshd.processes() == set()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    assert hashlib.sha256(Path("/etc/pam.d/sshd").read_bytes()).hexdigest() == pam_before


def test_codes_helpers(real_sshd: RealSshd) -> None:
    code, wrong = real_sshd.totp(), real_sshd.wrong_code()
    assert len(code) == len(wrong) == 6
    assert code.isdigit() and wrong.isdigit()
    assert code != wrong
    secret_file = Path(real_sshd.secret_file).read_text()
    assert secret_file.startswith(real_sshd.secret + "\n")
    assert '" TOTP_AUTH' in secret_file
    assert "DISALLOW_REUSE" not in secret_file and "RATE_LIMIT" not in secret_file
