"""``hy2fa config-ssh``: a managed Host block, the rest of the file kept byte for byte."""

from __future__ import annotations

import io
import os
import pwd
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from hy2fa_lab.cli import main
from hy2fa_lab.core import managed_config, sshconfig
from hy2fa_lab.core.errors import Hy2faError, InvalidInput
from hy2fa_lab.core.managed_config import (
    BEGIN,
    END,
    HostBlock,
    remove_block,
    splice,
    unsplice,
    write_block,
)
from hy2fa_lab.core.sshconfig import config_hosts, ssh_g

ORIGINAL = (
    "# my config\r\n"  # odd line endings and trailing spaces must survive untouched
    "IdentitiesOnly yes  \n"
    "\n"
    "Host *   \n"
    "    ServerAliveInterval 60\n"
    "\n"
    "Host other\n"
    "    HostName other.example.org\n"
    "    # no newline at the end"
)
FIRST_HOST = ORIGINAL.index("Host *")
SAGA = HostBlock(alias="saga", hostname="saga.sigma2.no", persist="3600s")


def run(*argv: str) -> tuple[int, str]:
    """Exit status and output of the CLI (argparse's usage errors exit 2 as well)."""
    out = io.StringIO()
    try:
        return main(list(argv), out=out), out.getvalue()
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()


def outside_block(text: str, alias: str) -> str:
    start = text.index(BEGIN.format(name=alias))
    stop = text.index(END.format(name=alias)) + len(END.format(name=alias)) + 1
    return text[:start] + text[stop:]


def settings_bytes(config: Path, host: str) -> bytes:
    """Everything ``ssh -G`` says about ``host``, byte for byte."""
    result = subprocess.run(
        ["ssh", "-G", "-F", str(config), host],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=True,
    )
    return result.stdout


def test_block_goes_before_the_first_host_and_everything_else_is_kept(short_tmp: Path) -> None:
    config = short_tmp / "config"
    config.write_bytes(ORIGINAL.encode())
    config.chmod(0o600)
    status, output = run("config-ssh", "saga", "-l", "ola", "--persist", "2h", "-F", str(config))
    assert status == 0, output
    text = config.read_bytes().decode()
    assert text.index(BEGIN.format(name="saga")) == FIRST_HOST
    assert outside_block(text, "saga") == ORIGINAL[:FIRST_HOST] + "\n" + ORIGINAL[FIRST_HOST:]
    assert (short_tmp / "config.hy2fa-backup").read_bytes() == ORIGINAL.encode()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    settings = ssh_g("saga", config_file=str(config))
    assert settings["hostname"] == "saga.sigma2.no"
    assert settings["user"] == "ola"
    assert settings["controlmaster"] == "auto"
    assert settings["controlpersist"] == "7200"
    assert settings["controlpath"] == os.path.expanduser("~/.ssh/cm-ola@saga.sigma2.no:22")
    assert settings["identitiesonly"] == "yes"  # the global option still applies to it
    status, path = run("path", "saga", "-F", str(config))
    assert status == 0 and path.strip() == settings["controlpath"]


def test_running_again_replaces_the_block_in_place(short_tmp: Path) -> None:
    config = short_tmp / "config"
    config.write_bytes(ORIGINAL.encode())
    run("config-ssh", "saga", "-l", "ola", "-F", str(config))
    first = config.read_bytes().decode()
    run("config-ssh", "saga", "-l", "kari", "--persist", "10m", "-F", str(config))
    second = config.read_bytes().decode()
    assert second.count(BEGIN.format(name="saga")) == 1
    assert second.index(BEGIN.format(name="saga")) == first.index(BEGIN.format(name="saga"))
    assert "User kari" in second and "User ola" not in second
    assert "ControlPersist 600s" in second
    assert outside_block(second, "saga") == outside_block(first, "saga")
    assert (short_tmp / "config.hy2fa-backup").read_bytes().decode() == first
    run("config-ssh", "fram", "-l", "ola", "-F", str(config))
    third = config.read_bytes().decode()
    both_out = outside_block(outside_block(third, "fram"), "saga")
    assert both_out == ORIGINAL[:FIRST_HOST] + "\n\n" + ORIGINAL[FIRST_HOST:]
    assert ssh_g("fram", config_file=str(config))["hostname"] == "fram.sigma2.no"


def test_a_new_file_is_private(short_tmp: Path) -> None:
    config = short_tmp / "dot-ssh" / "config"
    status, _ = run("config-ssh", "narval", "-F", str(config))
    assert status == 0
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert not (short_tmp / "dot-ssh" / "config.hy2fa-backup").exists()
    assert ssh_g("narval", config_file=str(config))["controlmaster"] == "auto"


def test_a_symlinked_config_stays_a_symlink(short_tmp: Path) -> None:
    real = short_tmp / "dotfiles-config"
    real.write_text(ORIGINAL)
    link = short_tmp / "config"
    link.symlink_to(real)
    run("config-ssh", "saga", "-F", str(link))
    assert link.is_symlink()
    assert BEGIN.format(name="saga") in real.read_text()


@pytest.mark.parametrize(
    "argv",
    [
        ("config-ssh", "-bad"),
        ("config-ssh", "saga", "--persist", "soon"),
        ("config-ssh", "saga", "-l", "a b"),
        ("config-ssh", "bad name"),
    ],
)
def test_bad_input_changes_nothing(short_tmp: Path, argv: tuple[str, ...]) -> None:
    config = short_tmp / "config"
    config.write_bytes(ORIGINAL.encode())
    status, _ = run(*argv, "-F", str(config))
    assert status == 2
    assert config.read_bytes() == ORIGINAL.encode()
    assert not (short_tmp / "config.hy2fa-backup").exists()


def test_a_broken_block_is_refused() -> None:
    broken = BEGIN.format(name="saga") + "\nHost saga\n"
    with pytest.raises(InvalidInput, match="no end marker"):
        splice(broken, HostBlock(alias="saga", hostname="saga.sigma2.no", persist="1h"))


def other_hosts_config(short_tmp: Path, eol: str) -> Path:
    """A config whose lines above the first Host apply to every host: global options, an
    Include (OpenSSH goes back to global context after it) and a Match block."""
    included = short_tmp / "included.conf"
    included.write_text("Host inc1\n    HostName inc1.example.org\n    Port 2022\n")
    config = short_tmp / "config"
    lines = [
        "# global settings",
        "StrictHostKeyChecking yes",
        "IdentitiesOnly yes",
        f"Include {included}",
        "ServerAliveCountMax 7",
        "",
        "Match host foo*",
        "    Port 2201",
        "",
        "Host other",
        "    HostName other.example.org",
        "",
        "Host *",
        "    ServerAliveInterval 60",
        "",
    ]
    config.write_bytes(eol.join(lines).encode())
    return config


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_other_hosts_see_the_same_settings_before_after_and_after_remove(
    short_tmp: Path, eol: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = other_hosts_config(short_tmp, eol)
    original = config.read_bytes()
    hosts = ["any.example", "inc1", "foo1", "other"]
    before = {host: settings_bytes(config, host) for host in hosts}
    assert b"stricthostkeychecking true\n" in before["any.example"]
    assert b"identitiesonly yes\n" in before["any.example"]
    assert b"serveralivecountmax 7\n" in before["any.example"]
    assert b"hostname inc1.example.org\n" in before["inc1"]
    assert b"port 2201\n" in before["foo1"]

    status, output = run("config-ssh", "saga", "-l", "ola", "-F", str(config))
    assert status == 0, output
    assert "warning" not in capsys.readouterr().err
    written = config.read_bytes()
    assert written.index(BEGIN.format(name="saga").encode()) == original.index(b"Match host")
    if eol == "\r\n":
        assert written.count(b"\n") == written.count(b"\r\n")  # the block has CRLF lines too
    assert {host: settings_bytes(config, host) for host in hosts} == before
    settings = ssh_g("saga", config_file=str(config))
    assert settings["controlmaster"] == "auto"
    assert settings["controlpath"] == os.path.expanduser("~/.ssh/cm-ola@saga.sigma2.no:22")
    assert settings["controlpersist"] == "3600"

    status, output = run("config-ssh", "--remove", "saga", "-F", str(config))
    assert status == 0, output
    assert "removed" in output
    assert config.read_bytes() == original
    assert {host: settings_bytes(config, host) for host in hosts} == before


def test_a_block_at_the_top_from_the_old_version_moves_down(short_tmp: Path) -> None:
    config = short_tmp / "config"
    config.write_bytes((SAGA.render() + "\n" + ORIGINAL).encode())  # the old placement
    status, output = run("config-ssh", "saga", "-F", str(config))
    assert status == 0, output
    text = config.read_bytes().decode()
    assert text.count(BEGIN.format(name="saga")) == 1
    assert text.index(BEGIN.format(name="saga")) == FIRST_HOST
    assert run("config-ssh", "saga", "--remove", "-F", str(config))[0] == 0
    assert config.read_bytes() == ORIGINAL.encode()


@pytest.mark.parametrize(
    ("original", "before"),
    [
        ("IdentitiesOnly yes\n  hOsT=foo\n", "  hOsT=foo\n"),
        ("IdentitiesOnly yes\nHost = foo bar\n", "Host = foo bar\n"),
        ("IdentitiesOnly yes\n\tMATCH all\n", "\tMATCH all\n"),
        (
            "HostName x\nHostKeyAlgorithms ssh-ed25519\n# Host in a comment\n\nHost foo\n",
            "Host foo",
        ),
        ("User me\n\n# work\n# clusters\nHost foo\n", "# work\n"),  # comments stay with it
    ],
)
def test_the_block_goes_before_the_first_host_or_match_line(original: str, before: str) -> None:
    spliced = splice(original, SAGA)
    assert spliced.index(BEGIN.format(name="saga")) == original.index(before)
    assert spliced == original.replace(before, SAGA.render() + "\n" + before, 1)
    assert unsplice(spliced, "saga") == original


@pytest.mark.parametrize(
    ("original", "expected", "removed"),
    [
        ("", SAGA.render(), ""),
        ("User me\n", "User me\n\n" + SAGA.render(), "User me\n"),
        ("User me", "User me\n\n" + SAGA.render(), "User me\n"),  # the newline stays
        ("User me\r\n", "User me\r\n\r\n" + SAGA.render("\r\n"), "User me\r\n"),
    ],
)
def test_without_host_lines_the_block_goes_at_the_end(
    original: str, expected: str, removed: str
) -> None:
    assert splice(original, SAGA) == expected
    assert unsplice(expected, "saga") == removed


def test_two_blocks_and_their_removal(short_tmp: Path) -> None:
    config = short_tmp / "config"
    config.write_bytes(ORIGINAL.encode())
    write_block(SAGA, str(config))
    write_block(HostBlock(alias="fram", hostname="fram.sigma2.no", persist="yes"), str(config))
    text = config.read_bytes().decode()
    assert text.index(BEGIN.format(name="fram")) < text.index(BEGIN.format(name="saga"))
    assert text.index(BEGIN.format(name="saga")) < text.index("Host *")
    remove_block("saga", str(config))
    remove_block("fram", str(config))
    assert config.read_bytes() == ORIGINAL.encode()


def test_remove_without_a_block_says_so(
    short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = short_tmp / "config"
    config.write_bytes(ORIGINAL.encode())
    status, _ = run("config-ssh", "--remove", "saga", "-F", str(config))
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("hy2fa: ") and "no block managed by hy2fa for saga" in err
    assert len(err.splitlines()) == 1
    assert config.read_bytes() == ORIGINAL.encode()
    assert not (short_tmp / "config.hy2fa-backup").exists()
    assert run("config-ssh", "--remove", "saga", "-F", str(short_tmp / "missing"))[0] == 1
    assert not (short_tmp / "missing").exists()
    assert run("config-ssh", "--remove", "saga", "-l", "ola", "-F", str(config))[0] == 2


def test_an_earlier_global_control_option_is_warned_about(
    short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = short_tmp / "config"
    config.write_text("ControlPersist 5m\nControlMaster no\n\nHost other\n    Port 2\n")
    status, output = run("config-ssh", "saga", "-F", str(config))
    assert status == 0, output
    err = capsys.readouterr().err
    assert "warning" in err and "ControlPersist" in err and "ControlMaster" in err
    assert "ControlPath" not in err
    assert "now shares the socket" not in output
    assert BEGIN.format(name="saga") in config.read_text()


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("hy2fa: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_a_directory_as_config_is_refused(
    short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = run("config-ssh", "saga", "-F", str(short_tmp))
    assert status == 2
    assert "is a directory" in one_error_line(capsys)
    assert os.listdir(short_tmp) == []
    assert run("config-ssh", "saga", "--remove", "-F", str(short_tmp))[0] == 2


def test_a_fifo_as_config_is_refused_before_anything_reads_it(
    short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = short_tmp / "config"
    os.mkfifo(fifo)
    status, _ = run("config-ssh", "saga", "-F", str(fifo))
    assert status == 2
    assert "not a regular file" in one_error_line(capsys)
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_config_that_cannot_be_written_is_one_clear_line(
    short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = short_tmp / "plain"  # a regular file as directory: fails as root too
    plain.write_text("keep\n")
    config = plain / "config"
    status, _ = run("config-ssh", "saga", "-F", str(config))
    assert status == 1
    assert f"cannot write {config}" in one_error_line(capsys)
    assert plain.read_text() == "keep\n"
    with pytest.raises(Hy2faError, match="cannot write"):
        write_block(SAGA, str(config))


def test_a_crash_before_the_rename_leaves_the_config_intact(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = short_tmp / "config"
    config.write_bytes(ORIGINAL.encode())
    config.chmod(0o640)

    def crash(source: str, destination: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(managed_config.os, "replace", crash)
    with pytest.raises(Hy2faError, match=f"cannot write {config}"):
        write_block(SAGA, str(config))
    status, _ = run("config-ssh", "saga", "-F", str(config))
    assert status == 1
    assert f"cannot write {config}: Permission denied" in one_error_line(capsys)
    assert config.read_bytes() == ORIGINAL.encode()
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert not list(short_tmp.glob(".config-*"))


def test_the_atomic_write_keeps_mode_symlink_and_crlf(short_tmp: Path) -> None:
    real = short_tmp / "dotfiles" / "ssh-config"
    real.parent.mkdir()
    original = b"User me\r\nHost other\r\n    Port 2\r\n"
    real.write_bytes(original)
    real.chmod(0o640)
    link = short_tmp / "config"
    link.symlink_to(real)
    path, backup = write_block(SAGA, str(link))
    assert path == str(real) and backup == str(real) + ".hy2fa-backup"
    assert link.is_symlink() and os.readlink(link) == str(real)
    written = real.read_bytes()
    assert (
        written
        == b"User me\r\n" + SAGA.render("\r\n").encode() + b"\r\nHost other\r\n    Port 2\r\n"
    )
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert not list(real.parent.glob(".config-*"))
    remove_block("saga", str(link))
    assert real.read_bytes() == original and link.is_symlink()


def test_bytes_that_are_not_utf8_survive(short_tmp: Path) -> None:
    config = short_tmp / "config"
    original = b"# caf\xe9 \xff\nUser me\nHost other\n    Port 2\n"
    config.write_bytes(original)
    write_block(SAGA, str(config))
    assert config.read_bytes().endswith(b"\n" + original[original.index(b"Host") :])
    assert config.read_bytes().startswith(b"# caf\xe9 \xff\nUser me\n")
    remove_block("saga", str(config))
    assert config.read_bytes() == original


@pytest.fixture
def passwd_home(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A passwd home directory unlike $HOME, and a system config of the test's own."""
    home = short_tmp / "pwhome"
    (home / ".ssh").mkdir(parents=True)
    decoy = short_tmp / "envhome"
    (decoy / ".ssh").mkdir(parents=True)
    (decoy / ".ssh" / "config").write_text("Host decoy\n")
    monkeypatch.setenv("HOME", str(decoy))
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: SimpleNamespace(pw_dir=str(home)))
    etc = short_tmp / "etc"
    etc.mkdir()
    monkeypatch.setattr(sshconfig, "SYSTEM_CONFIG_FILE", str(etc / "ssh_config"), raising=False)
    return home


def test_the_default_config_is_the_one_ssh_reads_not_home(passwd_home: Path) -> None:
    path, backup = write_block(SAGA)
    assert path == str(passwd_home / ".ssh" / "config") and backup is None
    assert (passwd_home / ".ssh" / "config").read_text() == SAGA.render()
    assert (passwd_home.parent / "envhome" / ".ssh" / "config").read_text() == "Host decoy\n"
    remove_block("saga")
    assert (passwd_home / ".ssh" / "config").read_text() == ""


def test_config_hosts_reads_the_user_then_the_system_config(passwd_home: Path) -> None:
    dot_ssh = passwd_home / ".ssh"
    (dot_ssh / "extra.conf").write_text("Host user-included\n")
    (dot_ssh / "tilde.conf").write_text("Host tilde-included\n")
    (dot_ssh / "config").write_text(
        "Host mine shared\nInclude extra.conf\nInclude ~/.ssh/tilde.conf\n"
    )
    etc = passwd_home.parent / "etc"
    (etc / "ssh_config.d").mkdir()
    (etc / "ssh_config.d" / "site.conf").write_text("Host site-included\n")
    (etc / "ssh_config").write_text("Include ssh_config.d/*.conf\nHost shared system-one\n")
    assert config_hosts() == [
        "mine",
        "shared",
        "user-included",
        "tilde-included",
        "site-included",
        "system-one",
    ]
    assert config_hosts(str(etc / "ssh_config")) == ["shared", "system-one"]  # as ssh -F
