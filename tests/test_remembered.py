"""The remembered-masters file (hy2fa_lab/core/remembered.py, through the manager): read back
as untrusted input. Every row is checked as REST input is, a bad row costs that row alone
(one log line), the file is read only when it is ours and others cannot write it, it is
written through a fresh temporary file (O_EXCL, O_NOFOLLOW), and a remembered master never
takes a cluster's row or socket path (issue 18, item 6)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from helpers import SECRET, code
from procs import next_prompt
from test_server_api import add_prompt_host

from hy2fa_lab.core import mux
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.core.types import State, Target
from hy2fa_lab.demo import sshserver

pytestmark = pytest.mark.timeout(60)


def a_target(name: str, control_path: str, **changes: Any) -> Target:
    target = Target(
        name=name,
        destination=name,
        hostname=f"{name}.example.org",
        user="ola",
        port=22,
        control_path=control_path,
        persist="3600s",
        ssh_options=(("ServerAliveInterval", "30"),),
        cluster=name,
    )
    return dataclasses.replace(target, **changes)


def row_of(target: Target, **changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(dataclasses.asdict(target))), **changes}


@pytest.fixture
def masters(short_tmp: Path) -> Path:
    return short_tmp / "hy2fa-masters.json"


@pytest.fixture
def manager(masters: Path, client_config: Path) -> Manager:
    return Manager(Settings(ssh_config=str(client_config), masters_file=str(masters)))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_each_bad_row_is_dropped_alone_with_one_log_line(
    manager: Manager, masters: Path, short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = a_target("lab", str(short_tmp / "lab.sock"))
    also_good = a_target("kari@lab", str(short_tmp / "kari.sock"), persist="no", user="kari")
    bad_rows = [
        row_of(good, port="notaport"),
        row_of(good, port=True),
        row_of(good, user="\u202ealo"),  # reads as another name
        row_of(good, hostname="<img src=x onerror=alert(1)>"),
        row_of(good, name="-oProxyCommand=x"),
        row_of(good, control_path=str(short_tmp / "nul\x00.sock")),
        row_of(good, control_path="relative.sock"),
        row_of(good, control_path=str(short_tmp / "%C")),
        row_of(good, control_path="/" + "x" * 200),
        row_of(good, ssh_options=[["ProxyCommand", "nc %h %p"]]),
        row_of(good, persist="forever"),
        row_of(good, from_a_newer_version=1),
        {"control_path": str(short_tmp / "x.sock")},
        "junk",
    ]
    masters.write_text(json.dumps([row_of(good), *bad_rows, row_of(also_good)]))
    caplog.set_level(logging.WARNING)
    assert manager._remembered() == [good, also_good]
    (line,) = warnings_of(caplog)
    assert f"{len(bad_rows)} remembered master(s) dropped" in line
    assert "row 2: port must be" in line and "notaport" in line
    assert "\u202e" not in line and "\x00" not in line  # quoted, escaped


async def test_a_nul_in_a_remembered_path_no_longer_aborts_discovery(
    manager: Manager, masters: Path, short_tmp: Path
) -> None:
    """It raised in ``mux`` on every start, so the file was never pruned either."""
    nul = row_of(a_target("nul", str(short_tmp / "x")), control_path=f"{short_tmp}/a\x00b")
    gone = a_target("gone", str(short_tmp / "gone.sock"))
    masters.write_text(json.dumps([nul, row_of(gone)]))
    await manager.ready()
    assert manager.discovery_error is None
    assert json.loads(masters.read_text()) == []  # nothing there is alive: forgotten


@pytest.mark.parametrize("mode", [0o666, 0o620])
def test_a_file_others_can_write_is_not_read(
    manager: Manager, masters: Path, short_tmp: Path, mode: int, caplog: pytest.LogCaptureFixture
) -> None:
    good = a_target("lab", str(short_tmp / "lab.sock"))
    masters.write_text(json.dumps([row_of(good)]))
    masters.chmod(mode)
    assert manager._remembered() == []
    assert any("others can write it" in line for line in warnings_of(caplog))
    masters.chmod(0o644)  # others may read it: it holds paths and host names only
    assert manager._remembered() == [good]


def test_a_symlink_or_a_fifo_is_not_read(
    manager: Manager, masters: Path, short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = short_tmp / "elsewhere.json"
    elsewhere.write_text(json.dumps([row_of(a_target("lab", str(short_tmp / "lab.sock")))]))
    masters.symlink_to(elsewhere)
    assert manager._remembered() == []
    masters.unlink()
    os.mkfifo(masters)  # open() of a FIFO waits for a writer: never opened that way
    assert manager._remembered() == []
    assert len(warnings_of(caplog)) == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_file_of_another_user_is_not_read(
    manager: Manager, masters: Path, short_tmp: Path
) -> None:
    masters.write_text(json.dumps([row_of(a_target("lab", str(short_tmp / "lab.sock")))]))
    os.chown(masters, 65534, 65534)
    assert manager._remembered() == []


def test_the_file_is_written_through_a_fresh_temporary_file(
    manager: Manager, masters: Path, short_tmp: Path
) -> None:
    """A name planted where the temporary file would go (the old one was predictable:
    ``<file>.<pid>.tmp``) is never written through."""
    victim = short_tmp / "victim"
    victim.write_text("keep me")
    planted = [f"{masters}.{os.getpid()}.tmp", f"{short_tmp}/.{masters.name}.tmp"]
    for name in planted:
        Path(name).symlink_to(victim)
    first = a_target("lab", str(short_tmp / "lab.sock"))
    previous = os.umask(0)
    try:
        manager._remember([first])
    finally:
        os.umask(previous)
    assert victim.read_text() == "keep me"
    assert not masters.is_symlink() and stat.S_IMODE(masters.stat().st_mode) == 0o600
    assert manager._remembered() == [first]
    left = sorted(str(p) for p in short_tmp.iterdir() if p.name.endswith(".tmp"))
    assert left == sorted(planted)  # only the planted links: nothing of ours is left


async def test_a_planted_row_never_takes_a_clusters_row_or_socket(
    prompt_server: Any, client_config: Path, short_tmp: Path, masters: Path
) -> None:
    """A row that says it is ``saga``, at the socket of a live master of ours (another
    host's): saga's row keeps saga's own socket path (what ``socket_path("saga")`` gives a
    kernel), not that master; the master is listed as one an ssh made."""
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "promptsrv", server.port)
    config = Settings(
        ssh_config=str(client_config),
        control_path=f"{short_tmp}/%C",
        masters_file=str(masters),
    )
    first = Manager(config)
    elsewhere = str(short_tmp / "elsewhere.sock")
    session = await first.connect("promptsrv", control_path=elsewhere)
    await next_prompt(session, 0)
    await session.answer(code())
    assert await session.wait(20) is State.CONNECTED
    try:
        saga = (await first.clusters(["saga"]))[0].target
        assert saga is not None
        planted = a_target(
            "saga",
            elsewhere,
            destination="saga.sigma2.no",
            hostname="saga.sigma2.no",
            user=saga.user,
        )
        masters.write_text(json.dumps([row_of(planted)]))
        masters.chmod(0o600)

        later = Manager(config)
        await later.ready()
        (row,) = await later.clusters(["saga"])
        assert row.target is not None
        assert row.target.control_path == saga.control_path != elsewhere
        assert row.state is State.IDLE and row.master_pid is None
        assert row.to_json()["control_path"] == saga.control_path
        listed = [s for s in later.sessions() if s.target.control_path == elsewhere]
        assert [s.state for s in listed] == [State.CONNECTED]
        assert listed[0].to_json().get("made_by", {}).get("kind", "ssh") == "ssh"
    finally:
        await asyncio.to_thread(mux.stop, elsewhere)
