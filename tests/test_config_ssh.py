"""``hy2fa config-ssh``: a managed Host block, the rest of the file kept byte for byte."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from hy2fa_lab.cli import main
from hy2fa_lab.core.errors import InvalidInput
from hy2fa_lab.core.managed_config import BEGIN, END, HostBlock, splice
from hy2fa_lab.core.sshconfig import ssh_g

ORIGINAL = (
    "# my config\r\n"  # odd line endings and trailing spaces must survive untouched
    "Host *   \n"
    "    ServerAliveInterval 60\n"
    "\n"
    "Host other\n"
    "    HostName other.example.org\n"
    "    # no newline at the end"
)


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


def test_block_is_added_first_and_everything_else_is_kept(short_tmp: Path) -> None:
    config = short_tmp / "config"
    config.write_bytes(ORIGINAL.encode())
    config.chmod(0o600)
    status, output = run("config-ssh", "saga", "-l", "ola", "--persist", "2h", "-F", str(config))
    assert status == 0, output
    text = config.read_bytes().decode()
    assert text.startswith(BEGIN.format(name="saga"))
    assert outside_block(text, "saga") == "\n" + ORIGINAL
    assert (short_tmp / "config.hy2fa-backup").read_bytes() == ORIGINAL.encode()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    settings = ssh_g("saga", config_file=str(config))
    assert settings["hostname"] == "saga.sigma2.no"
    assert settings["user"] == "ola"
    assert settings["controlmaster"] == "auto"
    assert settings["controlpersist"] == "7200"
    assert settings["controlpath"] == os.path.expanduser("~/.ssh/cm-ola@saga.sigma2.no:22")
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
    assert "User kari" in second and "User ola" not in second
    assert "ControlPersist 600s" in second
    assert outside_block(second, "saga") == outside_block(first, "saga")
    assert (short_tmp / "config.hy2fa-backup").read_bytes().decode() == first
    run("config-ssh", "fram", "-l", "ola", "-F", str(config))
    third = config.read_bytes().decode()
    assert outside_block(outside_block(third, "fram"), "saga") == "\n\n" + ORIGINAL
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
