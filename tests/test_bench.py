"""The benchmark still runs: ``python -m bench`` at its fewest rounds, as a whole process.

Nothing here looks at a number (the figures are measured side by side in ``bench/`` and
kept in ``bench/RESULTS.md``, never asserted). What this holds is that every module
measures something: a change to the product that breaks a measured path (a login, a
disconnect, a kernel's ``ensure()``) fails here, not on the next person who runs the bench.
A disconnect heard twice was found that way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(600)


def test_every_module_of_the_bench_measures_and_leaves_nothing(tmp_path: Path) -> None:
    from bench.__main__ import MIN_ROUNDS

    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--rounds", str(MIN_ROUNDS), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=540, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    # Exit status 1: a module failed, or something it started was left behind.
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert not [row for row in rows if row.get("error")], rows
    # Each module's figures (bench/README.md; figure 3 was dropped).
    assert {row["figure"] for row in rows} == {1, 2, 4, 5, 6, 7, 8, 9}, rows
    assert all(row["value"] and isinstance(row["met"], bool) for row in rows), rows
