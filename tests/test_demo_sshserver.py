"""The asyncssh prompt-script server, driven by the real OpenSSH client."""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pexpect
import pytest
from helpers import SECRET, code, finish, wrong_code
from procs import cmdlines

from hy2fa_lab.demo.sshserver import (
    DUO_TIMED_OUT,
    PromptScript,
    PromptStep,
    Push,
    ServerThread,
    duo,
    nersc,
    sigma2,
    start_server,
    tacc,
    totp,
    totp_check,
)

USER = "alice"  # any name: the server does not look users up
PASSWORD = "correct horse battery staple"
TIMEOUT = 20

StartServer = Callable[..., ServerThread]


def ssh(
    port: int,
    tmp: Path,
    *command: str,
    user: str = USER,
    options: tuple[str, ...] = (),
    auth: str = "keyboard-interactive",
) -> pexpect.spawn:
    argv = [
        "-F", "/dev/null",
        "-o", f"UserKnownHostsFile={tmp}/known_hosts",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=no",
        "-o", f"PreferredAuthentications={auth}",
        "-o", "ConnectTimeout=10",
        *options,
        "-p", str(port),
        f"{user}@127.0.0.1",
        *(command or ("true",)),
    ]  # fmt: skip
    return pexpect.spawn("ssh", argv, encoding="utf-8", timeout=TIMEOUT)


def prefixed(text: str, user: str = USER) -> str:
    """What the OpenSSH client shows: its own ``(user@host) `` before the server's prompt."""
    return f"({user}@127.0.0.1) {text}"


@pytest.fixture
def sigma2_script() -> PromptScript:
    return sigma2(totp_check(SECRET), PASSWORD)


OTP_PROMPT = "One-time password (OATH) for `alice': "


def test_sigma2_prompts_in_order_then_login(
    prompt_server: StartServer, short_tmp: Path, sigma2_script: PromptScript
) -> None:
    srv = prompt_server(sigma2_script)
    child = ssh(srv.port, short_tmp, "echo logged-in")
    child.expect_exact(prefixed(OTP_PROMPT))
    assert "Password" not in child.before
    the_code = code()
    child.sendline(the_code)
    child.expect_exact(prefixed("Password: "))
    assert the_code not in child.before  # echo off
    child.sendline(PASSWORD)
    status, output = finish(child)
    assert status == 0, output
    assert "logged-in" in output
    assert PASSWORD not in output


def test_wrong_answer_fails_the_attempt_and_ssh_asks_again(
    prompt_server: StartServer, short_tmp: Path, sigma2_script: PromptScript
) -> None:
    srv = prompt_server(sigma2_script)
    child = ssh(srv.port, short_tmp)
    child.expect_exact(prefixed(OTP_PROMPT))
    child.sendline(wrong_code())
    # the wrong OTP fails the whole attempt: ssh starts over at the first prompt
    index = child.expect_exact([prefixed(OTP_PROMPT), prefixed("Password: ")])
    assert index == 0
    child.sendline(code())
    child.expect_exact(prefixed("Password: "))
    child.sendline("not the password")
    child.expect_exact(prefixed(OTP_PROMPT))  # a wrong password also starts over
    child.sendline(code())
    child.expect_exact(prefixed("Password: "))
    child.sendline(PASSWORD)
    status, output = finish(child)
    assert status == 0, output


def test_three_wrong_codes_are_permission_denied(
    prompt_server: StartServer, short_tmp: Path
) -> None:
    srv = prompt_server(totp(SECRET))
    child = ssh(srv.port, short_tmp, "echo should-not-run")
    for _ in range(3):
        child.expect_exact(prefixed("Verification code: "))
        child.sendline(wrong_code())
    status, output = finish(child)
    assert "Permission denied (keyboard-interactive)" in output
    assert "should-not-run" not in output
    assert status == 255


def test_totp_code_from_pyotp_logs_in(prompt_server: StartServer, short_tmp: Path) -> None:
    srv = prompt_server(totp(SECRET))
    child = ssh(srv.port, short_tmp, "echo totp-ok")
    child.expect_exact(prefixed("Verification code: "))
    child.sendline(code())
    status, output = finish(child)
    assert status == 0, output
    assert "totp-ok" in output


DUO_LAST_LINE = "Passcode or option (1-1): "


def expect_duo_menu(child: pexpect.spawn) -> None:
    child.expect_exact(DUO_LAST_LINE)
    menu = child.before.replace("\r", "")
    assert prefixed("Duo two-factor login for alice\n") in menu
    assert "Enter a passcode or select one of the following options:\n" in menu
    assert " 1. Duo Push to XXX-XXX-1234\n" in menu


def test_duo_menu_accepts_the_passcode(prompt_server: StartServer, short_tmp: Path) -> None:
    srv = prompt_server(duo("424242"))
    child = ssh(srv.port, short_tmp, "echo duo-ok")
    expect_duo_menu(child)
    child.sendline("111111")
    expect_duo_menu(child)  # wrong passcode: the whole menu again
    child.sendline("424242")
    status, output = finish(child)
    assert status == 0, output
    assert "424242" in output  # Duo's prompt is echo-on: the client shows what was typed
    assert "duo-ok" in output


def test_duo_push_option_is_approved_after_a_while(
    prompt_server: StartServer, short_tmp: Path
) -> None:
    srv = prompt_server(duo("424242", push_delay=0.3))
    child = ssh(srv.port, short_tmp, "echo pushed")
    expect_duo_menu(child)
    child.sendline("1")
    status, output = finish(child)
    assert status == 0, output
    assert "pushed" in output


def test_duo_menu_as_instructions_is_printed_before_the_prefixed_question(
    prompt_server: StartServer, short_tmp: Path
) -> None:
    srv = prompt_server(duo("424242", menu_in="instructions"))
    child = ssh(srv.port, short_tmp, "echo duo-ok")
    for answer in ("111111", "424242"):  # a wrong passcode: the menu again, then the right one
        child.expect_exact(prefixed(DUO_LAST_LINE))
        menu = child.before.replace("\r", "")
        assert "Duo two-factor login for alice\n" in menu
        assert prefixed("Duo two-factor") not in menu  # the instructions carry no prefix
        assert " 1. Duo Push to XXX-XXX-1234\n" in menu
        child.sendline(answer)
    status, output = finish(child)
    assert status == 0, output
    assert "duo-ok" in output


def test_duo_push_after_a_refusal_says_the_refusal_then_the_menu_again(
    prompt_server: StartServer, short_tmp: Path
) -> None:
    srv = prompt_server(duo("424242", menu_in="instructions", push=Push(delay=0.2, approve=False)))
    child = ssh(srv.port, short_tmp, "echo pushed")
    child.expect_exact(prefixed(DUO_LAST_LINE))
    child.sendline("1")
    child.expect_exact(prefixed(DUO_LAST_LINE))
    again = child.before.replace("\r", "")
    assert again.index(DUO_TIMED_OUT) < again.index("Duo two-factor login for alice\n")
    child.sendline("424242")
    status, output = finish(child)
    assert status == 0, output


def test_nersc_password_and_otp_together(prompt_server: StartServer, short_tmp: Path) -> None:
    srv = prompt_server(nersc(PASSWORD, totp_check(SECRET)))
    child = ssh(srv.port, short_tmp, "echo nersc-ok")
    child.expect_exact(prefixed("Password + OTP: "))
    child.sendline(code())  # the OTP alone is not enough
    child.expect_exact(prefixed("Password + OTP: "))
    child.sendline(PASSWORD + code())
    status, output = finish(child)
    assert status == 0, output
    assert "nersc-ok" in output


def test_tacc_banner_comes_before_the_first_prompt(
    prompt_server: StartServer, short_tmp: Path
) -> None:
    srv = prompt_server(tacc(PASSWORD, totp_check(SECRET)))
    child = ssh(srv.port, short_tmp, "echo tacc-ok")
    child.expect_exact(prefixed("Password: "))
    banner = child.before
    assert "TACC password" in banner
    assert "TACC Token prompt" in banner
    child.sendline(PASSWORD)
    child.expect_exact(prefixed("TACC Token Code: "))
    assert "TACC password" not in child.before  # the banner is shown once
    child.sendline(code())
    status, output = finish(child)
    assert status == 0, output
    assert "tacc-ok" in output


def test_slow_server_waits_before_each_challenge(
    prompt_server: StartServer, short_tmp: Path
) -> None:
    steps = [PromptStep("First: ", expected="one"), PromptStep("Second: ", expected="two")]
    srv = prompt_server(PromptScript(steps, delay=0.5))
    child = ssh(srv.port, short_tmp)
    started = time.monotonic()
    child.expect_exact(prefixed("First: "))
    child.sendline("one")
    child.expect_exact(prefixed("Second: "))
    assert time.monotonic() - started >= 1.0  # a lower bound only: two delays happened
    child.sendline("two")
    status, output = finish(child)
    assert status == 0, output


def test_username_check_refuses_other_users(prompt_server: StartServer, short_tmp: Path) -> None:
    srv = prompt_server(PromptScript([PromptStep("Code: ", expected="42")], username=USER))
    child = ssh(srv.port, short_tmp, user="mallory")
    for _ in range(3):
        child.expect_exact(prefixed("Code: ", user="mallory"))
        child.sendline("42")
    status, output = finish(child)
    assert status == 255
    assert "Permission denied" in output
    child = ssh(srv.port, short_tmp)
    child.expect_exact(prefixed("Code: "))
    child.sendline("42")
    assert finish(child)[0] == 0


def test_no_auth_but_keyboard_interactive(prompt_server: StartServer, short_tmp: Path) -> None:
    srv = prompt_server(totp(SECRET))
    result = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", f"UserKnownHostsFile={short_tmp}/kh",
         "-o", "StrictHostKeyChecking=no", "-o", "BatchMode=yes",
         "-o", "PreferredAuthentications=none,password,publickey,keyboard-interactive",
         "-p", str(srv.port), f"{USER}@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 255
    assert "Permission denied (keyboard-interactive)." in result.stderr


def key_options(identity: Path) -> tuple[str, ...]:
    """Offer ``identity`` only: no other default key, no agent that could sign for it."""
    return ("-o", f"IdentityFile={identity}", "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none", "-o", "NumberOfPasswordPrompts=1")  # fmt: skip


def login_asking_codes(child: pexpect.spawn, prompt: str) -> tuple[int, str, int]:
    """Answer every ``prompt`` with the right code; returns exit status, output, times asked."""
    asked, output = 0, ""
    while child.expect_exact([prompt, pexpect.EOF]) == 0:
        asked += 1
        output += child.before + child.after
        child.sendline(code())
    output += child.before
    child.close()
    return child.exitstatus, output, asked


def test_client_key_must_be_proven_by_a_signature_before_the_code(
    prompt_server: StartServer, short_tmp: Path
) -> None:
    """Like sshd with ``AuthenticationMethods publickey,keyboard-interactive``.

    The public key alone (OpenSSH offers ``id.pub`` when the private ``id`` is missing, but
    cannot sign) plus the right code is not a login; neither is the signed key without the code.
    """
    keys, public_only = short_tmp / "keys", short_tmp / "public-only"
    keys.mkdir()
    public_only.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(keys / "id")],
        check=True, timeout=TIMEOUT, capture_output=True,
    )  # fmt: skip
    public_key = (keys / "id.pub").read_text().strip()
    (public_only / "id.pub").write_text(public_key + "\n")
    srv = prompt_server(PromptScript(totp(SECRET).steps, client_key=public_key))
    prompt = prefixed("Verification code: ")
    both = "publickey,keyboard-interactive"

    child = ssh(srv.port, short_tmp, "echo key-ok", auth=both, options=key_options(keys / "id"))
    status, output, asked = login_asking_codes(child, prompt)
    assert (status, asked) == (0, 1), output
    assert "key-ok" in output

    child = ssh(
        srv.port, short_tmp, "echo must-not-run", auth=both,
        options=("-v", *key_options(public_only / "id")),
    )  # fmt: skip
    status, output, asked = login_asking_codes(child, prompt)
    assert "Offering public key" in output  # the key was offered, only never signed
    assert status == 255, output
    assert "Permission denied" in output
    assert "must-not-run" not in output
    assert asked == 0, "the server asked for the code without proof of the private key"

    # the signed key alone is refused too: it only opens the way to the prompts
    child = ssh(
        srv.port, short_tmp, "echo must-not-run", auth="publickey",
        options=key_options(keys / "id"),
    )  # fmt: skip
    status, output, asked = login_asking_codes(child, prompt)
    assert (status, asked) == (255, 0), output
    assert "Permission denied (publickey,keyboard-interactive)" in output


async def test_async_api_password_and_none_refused_and_key_reused(short_tmp: Path) -> None:
    class Answers(asyncssh.SSHClient):
        def kbdint_auth_requested(self) -> str:
            return ""

        def kbdint_challenge_received(
            self, name: str, instructions: str, lang: str, prompts: Any
        ) -> list[str]:
            assert [text for text, _echo in prompts] == ["Verification code: "]
            return [code()]

    async with await start_server(totp(SECRET)) as server:
        key_path = server.host_key_path
        fingerprint = server.host_key_fingerprint
        assert fingerprint.startswith("SHA256:")
        with pytest.raises(asyncssh.PermissionDenied):
            await asyncssh.connect(
                "127.0.0.1", server.port, username=USER, password="x", known_hosts=None,
                client_keys=None, agent_path=None, preferred_auth="password,none",
            )  # fmt: skip
        async with asyncssh.connect(
            "127.0.0.1", server.port, username=USER, known_hosts=None, client_keys=None,
            agent_path=None, client_factory=Answers, preferred_auth="keyboard-interactive",
        ) as conn:  # fmt: skip
            result = await conn.run("printf '%s' \"$((6*7))\"; exit 5")
            assert result.stdout == "42"
            assert result.exit_status == 5
        # the same key file serves a second server, with the same fingerprint
        saved = short_tmp / "host_key"
        saved.write_bytes(key_path.read_bytes())
        async with await start_server(totp(SECRET), host_key=saved) as again:
            assert again.host_key_fingerprint == fingerprint
    assert not key_path.parent.exists()  # the generated temp dir is gone


def open_master(srv: ServerThread, tmp: Path, sock: Path) -> None:
    """An ``ssh -M -fN`` master answering the TOTP prompt (SIGHUP ignored, as the product does)."""
    child = pexpect.spawn(
        "ssh",
        ["-F", "/dev/null", "-o", f"UserKnownHostsFile={tmp}/known_hosts",
         "-o", "StrictHostKeyChecking=no", "-o", "PreferredAuthentications=keyboard-interactive",
         "-M", "-S", str(sock), "-o", "ControlPersist=60", "-fN",
         "-p", str(srv.port), f"{USER}@127.0.0.1"],
        encoding="utf-8", timeout=TIMEOUT,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )  # fmt: skip
    child.expect_exact(prefixed("Verification code: "))
    child.sendline(code())
    status, output = finish(child)
    assert status == 0, output


def mux(sock: Path, srv: ServerThread, *args: str, **kwargs: Any) -> Any:
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-S", str(sock), "-o", "BatchMode=yes",
         "-p", str(srv.port), *args],
        capture_output=True, timeout=TIMEOUT, **kwargs,
    )  # fmt: skip


@pytest.fixture
def master(prompt_server: StartServer, short_tmp: Path) -> Iterator[tuple[ServerThread, Path]]:
    srv = prompt_server(totp(SECRET))
    sock = short_tmp / "cm"
    open_master(srv, short_tmp, sock)
    try:
        yield srv, sock
    finally:
        mux(sock, srv, "-O", "exit", f"{USER}@127.0.0.1")


def test_master_runs_commands_with_stdin_stdout_stderr_and_status(
    master: tuple[ServerThread, Path],
) -> None:
    srv, sock = master
    check = mux(sock, srv, "-O", "check", f"{USER}@127.0.0.1", text=True)
    assert "Master running" in check.stderr
    result = mux(
        sock, srv, f"{USER}@127.0.0.1", "cat; echo to-stderr >&2; exit 7", input=b"from stdin\n"
    )
    assert result.stdout == b"from stdin\n"
    assert result.stderr == b"to-stderr\n"
    assert result.returncode == 7
    big = mux(sock, srv, f"{USER}@127.0.0.1", "head -c 1000000 /dev/zero | tr '\\0' x")
    assert big.stdout == b"x" * 1_000_000
    who = mux(sock, srv, f"{USER}@127.0.0.1", "id -un", text=True)
    assert who.stdout.strip() == getpass.getuser()  # commands run as the server's user


def test_scp_and_sftp_over_the_socket(master: tuple[ServerThread, Path], short_tmp: Path) -> None:
    srv, sock = master
    source = short_tmp / "payload.bin"
    source.write_bytes(os.urandom(70_000))
    common = ["-F", "/dev/null", "-o", f"ControlPath={sock}", "-o", "BatchMode=yes"]
    for mode, target in (([], "via-sftp-protocol"), (["-O"], "via-legacy-scp")):
        result = subprocess.run(
            ["scp", *mode, *common, "-P", str(srv.port), str(source),
             f"{USER}@127.0.0.1:{short_tmp / target}"],
            capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert (short_tmp / target).read_bytes() == source.read_bytes()
    batch = short_tmp / "batch"
    batch.write_text(f"get {source} {short_tmp / 'via-sftp'}\n")
    result = subprocess.run(
        ["sftp", *common, "-P", str(srv.port), "-b", str(batch), f"{USER}@127.0.0.1"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (short_tmp / "via-sftp").read_bytes() == source.read_bytes()


def test_allow_commands_false_keeps_masters_but_refuses_sessions(
    prompt_server: StartServer, short_tmp: Path
) -> None:
    srv = prompt_server(totp(SECRET), allow_commands=False)
    sock = short_tmp / "cm"
    open_master(srv, short_tmp, sock)
    try:
        check = mux(sock, srv, "-O", "check", f"{USER}@127.0.0.1", text=True)
        assert "Master running" in check.stderr
        result = mux(sock, srv, f"{USER}@127.0.0.1", "echo ran", text=True)
        assert result.returncode != 0
        assert "ran" not in result.stdout
        assert "Session open refused by peer" in result.stderr
    finally:
        mux(sock, srv, "-O", "exit", f"{USER}@127.0.0.1")


def _pids_running(needle: str) -> list[int]:
    """Live processes with ``needle`` as one of their arguments."""
    return [pid for pid, argv in cmdlines().items() if needle in argv]


def test_stop_kills_running_commands_and_frees_everything(short_tmp: Path) -> None:
    srv = ServerThread(totp(SECRET)).start()
    port, key_dir = srv.port, srv.host_key_path.parent
    expected_fp = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(srv.host_key_path)],
        capture_output=True, text=True, check=True, timeout=TIMEOUT,
    ).stdout.split()[1]  # fmt: skip
    assert srv.host_key_fingerprint == expected_fp
    (short_tmp / "trusted").write_text(srv.known_hosts_line())
    # a known_hosts line from the server itself satisfies StrictHostKeyChecking=yes
    child = ssh(
        port, short_tmp, "sleep 317",
        options=("-o", f"UserKnownHostsFile={short_tmp}/trusted",
                 "-o", "StrictHostKeyChecking=yes"),
    )  # fmt: skip
    try:
        child.expect_exact(prefixed("Verification code: "))
        child.sendline(code())
        deadline = time.monotonic() + TIMEOUT
        while not _pids_running("317") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _pids_running("317"), "the command never started"
        srv.stop()
        child.expect(pexpect.EOF)
    finally:
        srv.stop()
        child.close(force=True)
    assert _pids_running("317") == []
    assert not key_dir.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_prompt_script_validation() -> None:
    with pytest.raises(ValueError):
        PromptScript([])
    with pytest.raises(ValueError):
        PromptScript([PromptStep("x", expected="y")], delay=-1)


def test_a_check_that_raises_is_a_refusal(prompt_server: StartServer, short_tmp: Path) -> None:
    def broken(answer: str) -> bool:
        raise RuntimeError("boom")

    srv = prompt_server(PromptScript([PromptStep("Code: ", expected=broken)]))
    child = ssh(srv.port, short_tmp, options=("-o", "NumberOfPasswordPrompts=1"))
    child.expect_exact(prefixed("Code: "))
    child.sendline("anything")
    status, output = finish(child)
    assert status == 255
    assert "Permission denied (keyboard-interactive)" in output


def _keygen(*args: str) -> None:
    subprocess.run(["ssh-keygen", "-q", *args], check=True, timeout=TIMEOUT, capture_output=True)


def _signed(tmp: Path, ca: Path, name: str, principal: str, validity: str) -> Path:
    """A user key and its certificate (``key-cert.pub`` beside it) signed by ``ca``."""
    key = tmp / name
    _keygen("-t", "ed25519", "-N", "", "-C", name, "-f", str(key))
    _keygen("-s", str(ca), "-I", f"user_{principal}", "-n", principal, "-V", validity,
            str(key) + ".pub")  # fmt: skip
    return key


def cert_login(port: int, tmp: Path, key: Path, *, certificate: bool = True) -> tuple[int, str]:
    options = [
        "-o", "BatchMode=yes", "-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes",
        "-o", f"IdentityFile={key}",
    ]  # fmt: skip
    if certificate:
        options += ["-o", f"CertificateFile={key}-cert.pub"]
    child = ssh(port, tmp, "echo cert-ok", auth="publickey", options=tuple(options))
    output = child.read()
    child.close()
    return child.exitstatus, output


def test_user_ca_certificate_logs_in_only_for_its_principal_while_valid(
    prompt_server: StartServer, short_tmp: Path
) -> None:
    """Like sshd with ``TrustedUserCAKeys``: a certificate of that CA for the login name, valid
    now, is a login with no question; an expired one, one for another name, one of another CA
    and a plain key are ``Permission denied``."""
    ca, other_ca = short_tmp / "ca", short_tmp / "other-ca"
    _keygen("-t", "ed25519", "-N", "", "-C", "ca", "-f", str(ca))
    _keygen("-t", "ed25519", "-N", "", "-C", "other", "-f", str(other_ca))
    good = _signed(short_tmp, ca, "good", USER, "+1h")
    expired = _signed(short_tmp, ca, "expired", USER, "-2h:-1m")
    not_yet = _signed(short_tmp, ca, "not-yet", USER, "+1h:+2h")
    other_name = _signed(short_tmp, ca, "other-name", "bob", "+1h")
    stranger = _signed(short_tmp, other_ca, "stranger", USER, "+1h")
    ca_public = Path(str(ca) + ".pub").read_text().strip()
    srv = prompt_server(PromptScript([], user_ca=ca_public, username=USER))

    status, output = cert_login(srv.port, short_tmp, good)
    assert status == 0, output
    assert "cert-ok" in output
    for key in (expired, not_yet, other_name, stranger):
        status, output = cert_login(srv.port, short_tmp, key)
        assert status == 255, (key.name, output)
        assert "Permission denied (publickey)" in output, (key.name, output)
        assert "cert-ok" not in output
    # the right key without its certificate (a copy: ssh would load key-cert.pub beside it)
    # is a plain key, which this node does not take
    bare = short_tmp / "bare"
    bare.write_bytes(good.read_bytes())
    bare.chmod(0o600)
    status, output = cert_login(srv.port, short_tmp, bare, certificate=False)
    assert status == 255, output
    assert "Permission denied (publickey)" in output
    # the right certificate for another login name (asyncssh would check the principals;
    # the server's username refuses it before)
    status, output = cert_login(srv.port, short_tmp, other_name)
    assert status == 255
    child = ssh(srv.port, short_tmp, "echo cert-ok", user="bob", auth="publickey", options=(
        "-o", "BatchMode=yes", "-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes",
        "-o", f"IdentityFile={other_name}", "-o", f"CertificateFile={other_name}-cert.pub",
    ))  # fmt: skip
    output = child.read()
    child.close()
    assert child.exitstatus == 255, output
    assert "cert-ok" not in output


def test_user_ca_script_validation() -> None:
    with pytest.raises(ValueError, match="cannot be combined"):
        PromptScript([], user_ca="ssh-ed25519 AAAA", client_key="ssh-ed25519 BBBB")
    with pytest.raises(ValueError, match="at least one step"):
        PromptScript([])
