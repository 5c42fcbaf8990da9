"""Reading the process table (to prove no ssh child outlives its session), and waiting for a
session's next prompt."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.types import State


def cmdlines() -> dict[int, list[str]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            status = (entry / "stat").read_text()
        except OSError:
            continue
        if not raw or status.rsplit(")", 1)[-1].split()[0] == "Z":
            continue  # kernel threads and zombies
        parts = raw.split(b"\0")
        table[int(entry.name)] = [part.decode(errors="replace") for part in parts if part]
    return table


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def ssh_processes(needle: str) -> dict[int, list[str]]:
    """Live ssh processes whose command line mentions ``needle`` (e.g. a control path)."""
    return {
        pid: argv
        for pid, argv in cmdlines().items()
        if argv and os.path.basename(argv[0]).startswith("ssh") and any(needle in a for a in argv)
    }


async def next_prompt(session: MasterSession, after: int, timeout: float = 20) -> Any:
    """Wait for a prompt newer than ``after``; fail if the session settles instead."""

    async def wait() -> Any:
        while not (session.state is State.PROMPTING and session.prompt_id > after):
            if session.state in (State.CONNECTED, State.FAILED, State.DISCONNECTED):
                raise AssertionError(f"settled as {session.state}: {session.message}")
            await session.changed()
        return session.prompt

    return await asyncio.wait_for(wait(), timeout)


async def answer_and_next(session: MasterSession, response: str, timeout: float = 20) -> Any:
    """Answer the prompt up now and wait for the next one. The id is taken before answering:
    ssh may ask again before ``answer`` returns, and a later id would miss that prompt."""
    asked = session.prompt_id
    await session.answer(response)
    return await next_prompt(session, asked, timeout)
