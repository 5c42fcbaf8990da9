"""Control path expansion checked against ssh's own (``ssh -G``), length fallback, 0700 dirs."""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest

from hy2fa_lab.core import controlpath
from hy2fa_lab.core.errors import InvalidInput
from hy2fa_lab.core.sshconfig import passwd_home, ssh_g
from hy2fa_lab.demo.sshserver import PromptScript, PromptStep, ServerThread

EVERY_TOKEN = "/tmp/cp/%%-%C-%d-%h-%i-%k-%L-%l-%n-%p-%r-%u"


def _config(directory: Path, body: str) -> str:
    path = directory / "ssh_config"
    path.write_text(body)
    return str(path)


@pytest.mark.parametrize(
    ("host_block", "destination"),
    [
        ("Host alias\n  HostName example.org\n  User bob\n  Port 2222\n", "alias"),
        ("Host *\n  User carol\n", "login.saga.sigma2.no"),
        ("Host a.b\n  HostName 10.1.2.3\n  HostKeyAlias keyname\n", "a.b"),
    ],
)
def test_every_token_expands_like_ssh(short_tmp: Path, host_block: str, destination: str) -> None:
    config = _config(short_tmp, host_block)
    ours_settings = ssh_g(destination, config_file=config)
    tokens = controlpath.Tokens(
        host=ours_settings["hostname"],
        port=int(ours_settings["port"]),
        remote_user=ours_settings["user"],
        original_host=destination,
        host_key_alias=ours_settings.get("hostkeyalias", ""),
    )
    theirs = ssh_g(destination, config_file=config, options=[("ControlPath", EVERY_TOKEN)])
    assert controlpath.expand(EVERY_TOKEN, tokens) == theirs["controlpath"]


def test_home_is_the_passwd_entrys_as_ssh_has_it(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(short_tmp))  # ssh ignores $HOME: so must the expansion
    config = _config(short_tmp, "Host alias\n  HostName example.org\n")
    tokens = controlpath.Tokens(
        host="example.org", port=22, remote_user=getpass.getuser(), original_host="alias"
    )
    for template in ("~/.ssh/cm-%r@%h:%p", "%d/.ssh/cm-%C"):
        theirs = ssh_g("alias", config_file=config, options=[("ControlPath", template)])
        ours = controlpath.expand(template, tokens)
        assert ours == theirs["controlpath"]
        assert not ours.startswith(str(short_tmp))


def test_connection_hash_is_sha1_of_local_host_port_user() -> None:
    tokens = controlpath.Tokens(host="h", port=22, remote_user="u", original_host="h")
    assert controlpath.connection_hash(tokens, "me") == hashlib.sha1(b"meh22u").hexdigest()
    assert len(controlpath.connection_hash(tokens)) == 40


def test_default_template_is_the_alliance_pattern(short_tmp: Path) -> None:
    tokens = controlpath.Tokens(
        host="saga.sigma2.no", port=22, remote_user="ola", original_host="saga"
    )
    path = controlpath.expand(controlpath.DEFAULT_TEMPLATE, tokens)
    assert path == os.path.expanduser("~/.ssh/cm-ola@saga.sigma2.no:22")


@pytest.mark.parametrize("template", ["%Z", "/x/%", "relative/%h", "/x/%T"])
def test_bad_templates_are_refused(template: str) -> None:
    tokens = controlpath.Tokens(host="h", port=22, remote_user="u", original_host="h")
    with pytest.raises(InvalidInput):
        controlpath.expand(template, tokens)


def test_too_long_path_falls_back_to_a_hash_name_in_the_same_directory(short_tmp: Path) -> None:
    tokens = controlpath.Tokens(
        host="a-very-long-login-node-name.some-department.example-university.edu",
        port=22,
        remote_user="a.rather.long.user.name",
        original_host="x",
    )
    long_path = controlpath.expand(f"{short_tmp}/cm-%r@%h:%p", tokens)
    assert len(long_path.encode()) > controlpath.MAX_LENGTH
    short = controlpath.shortened(long_path, tokens)
    assert short == f"{short_tmp}/cm-{controlpath.connection_hash(tokens)}"
    assert controlpath.fits(short)
    assert controlpath.shortened(short, tokens) == short  # a path that fits is kept


def test_too_long_directory_falls_back_further(short_tmp: Path) -> None:
    tokens = controlpath.Tokens(host="h", port=22, remote_user="u", original_host="h")
    deep = f"{short_tmp}/{'d' * 100}/cm-%h"
    result = controlpath.shortened(controlpath.expand(deep, tokens), tokens)
    assert controlpath.fits(result)
    assert result.endswith("/cm-" + controlpath.connection_hash(tokens))


def test_ssh_cannot_bind_a_path_just_over_the_limit(
    short_tmp: Path, prompt_server: Callable[..., ServerThread]
) -> None:
    """Why the limit is ~90 and not 108: the master binds ``<path>.<16 chars>`` first."""
    server = prompt_server(PromptScript([PromptStep("Code: ", expected="123456")]))
    known_hosts = short_tmp / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    path = str(short_tmp / "s")
    path += "x" * (controlpath.MAX_LENGTH + 5 - len(path))
    assert not controlpath.fits(path) and len(path) < 104
    argv = ["-F", "/dev/null", "-o", f"UserKnownHostsFile={known_hosts}"]
    argv += ["-o", "PreferredAuthentications=keyboard-interactive", "-M", "-S", path]
    argv += ["-p", str(server.port), "-l", "tester", "127.0.0.1", "true"]
    child = pexpect.spawn("ssh", argv, encoding="utf-8", timeout=20)
    try:
        child.expect_exact("Code: ")
        child.sendline("123456")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert "too long" in (child.before or "").lower()
    assert not os.path.exists(path)


def test_ensure_dir_creates_a_private_directory(short_tmp: Path) -> None:
    path = short_tmp / "a" / "sockets" / "cm-x"
    controlpath.ensure_dir(str(path))
    mode = stat.S_IMODE((short_tmp / "a" / "sockets").stat().st_mode)
    assert mode == 0o700


def test_ensure_dir_refuses_a_directory_others_can_write(short_tmp: Path) -> None:
    shared = short_tmp / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(InvalidInput, match="writable by others"):
        controlpath.ensure_dir(str(shared / "cm-x"))


@pytest.mark.parametrize("mode", [0o1777, 0o770], ids=["sticky-like-tmp", "group"])
def test_ensure_dir_refuses_shared_directories_even_sticky_ones(short_tmp: Path, mode: int) -> None:
    shared = short_tmp / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(InvalidInput, match="writable by others"):
        controlpath.ensure_dir(str(shared / "cm-x"))


def test_ensure_dir_refuses_a_directory_of_another_user(short_tmp: Path) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs the suite as root (chown of a test directory)")
        pytest.skip("needs root to give a directory to another user")
    theirs = short_tmp / "hy2fa-0"  # as if someone claimed the /tmp fallback name first
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(InvalidInput, match="belongs to another user"):
        controlpath.ensure_dir(str(theirs / "cm-x"))


@pytest.mark.parametrize("path", ["/x/%h-root", "/home/a%b/.ssh/cm-x", "/tmp/cm-%d@h:22"])
def test_a_literal_percent_is_refused_since_ssh_would_expand_it_again(path: str) -> None:
    with pytest.raises(InvalidInput, match="literal '%'"):
        controlpath.checked(path)
    assert controlpath.checked("/tmp/cm-ola@h:22") == "/tmp/cm-ola@h:22"


def test_local_names_are_the_machines() -> None:
    assert controlpath.local_hostname() == socket.gethostname()
    tokens = controlpath.Tokens(host="h", port=1, remote_user="r", original_host="n")
    assert controlpath.expand("/%u", tokens) == "/" + getpass.getuser()


@pytest.mark.parametrize("path", ["/tmp/a/../b/cm-x", "/x/..", "/root/../../tmp/x", "/./x/../c"])
def test_a_path_with_dotdot_is_refused(path: str) -> None:
    with pytest.raises(InvalidInput, match=r"'\.\.'"):
        controlpath.checked(path)


def test_dots_inside_names_are_fine() -> None:
    assert controlpath.checked("/tmp/a..b/..c/cm-x..") == "/tmp/a..b/..c/cm-x.."


def test_ensure_dir_creates_nothing_for_a_path_with_dotdot(short_tmp: Path) -> None:
    with pytest.raises(InvalidInput, match=r"'\.\.'"):
        controlpath.ensure_dir(f"{short_tmp}/stray/../sockets/cm-x")
    assert list(short_tmp.iterdir()) == []


async def test_the_engine_refuses_a_control_path_with_dotdot_and_makes_no_directory(
    short_tmp: Path, client_config: Path
) -> None:
    """``POST hy2fa/connections {"control_path": "~/../../tmp/x"}``, ``ensure(control_path=)``
    and ``--control-path`` all reach :meth:`Manager.connect`; so does the template setting."""
    from hy2fa_lab.core.manager import Manager, Settings

    client_config.write_text("Host nowhere\n  HostName 127.0.0.1\n  Port 1\n")
    before = sorted(short_tmp.rglob("*"))
    up = "/.." * len(Path(passwd_home()).parts)  # from ~ to / whatever home is
    asked = [f"~{up}{short_tmp}/stray/../cm-x", f"{short_tmp}/s1/../s2/%C", "~/../../tmp/x"]
    manager = Manager(Settings(ssh_config=str(client_config)))
    for control_path in asked:
        with pytest.raises(InvalidInput, match=r"'\.\.'"):
            session = await manager.connect("nowhere", control_path=control_path)
            await session.wait(20)  # the login runs (and made its directories)
    templated = Manager(
        Settings(ssh_config=str(client_config), control_path=f"{short_tmp}/t1/../t2/%C")
    )
    with pytest.raises(InvalidInput, match=r"'\.\.'"):
        session = await templated.connect("nowhere")
        await session.wait(20)
    assert sorted(short_tmp.rglob("*")) == before
    assert manager.sessions() == [] and templated.sessions() == []
