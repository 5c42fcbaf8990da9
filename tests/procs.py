"""Reading the process table (to prove no ssh child outlives its session), and waiting for a
session's next prompt."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import psutil

from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.types import State


def cmdlines() -> dict[int, list[str]]:
    """The argv of every live process (kernel threads, which have none, and zombies left
    out), through psutil: the same on Linux and macOS."""
    table = {}
    for proc in psutil.process_iter(["cmdline", "status"]):
        argv = proc.info["cmdline"]
        if argv and proc.info["status"] != psutil.STATUS_ZOMBIE:
            table[proc.pid] = list(argv)
    return table


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def environment_of(pid: int) -> dict[str, str]:
    """``pid``'s environment (empty when it is gone or not readable)."""
    try:
        return dict(psutil.Process(pid).environ())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return {}


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
