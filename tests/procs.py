"""Reading the process table, to prove no ssh child outlives its session."""

from __future__ import annotations

import os
from pathlib import Path


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


def ssh_processes(needle: str) -> dict[int, list[str]]:
    """Live ssh processes whose command line mentions ``needle`` (e.g. a control path)."""
    return {
        pid: argv
        for pid, argv in cmdlines().items()
        if argv and os.path.basename(argv[0]).startswith("ssh") and any(needle in a for a in argv)
    }
