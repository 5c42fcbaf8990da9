"""``%hy2fa status``'s table (hy2fa_lab/kernel/magic.py) as every frontend shows it: text in a
terminal IPython or ``jupyter console``, Markdown in Lab and in ``nbconvert --to markdown``."""

from __future__ import annotations

import nbformat
from IPython.core.formatters import DisplayFormatter
from nbconvert import MarkdownExporter

from hy2fa_lab.kernel.magic import ConnectionTable

VIEWS = [
    {
        "name": "saga",
        "state": "connected",
        "master_pid": 4242,
        "control_path": "/home/ola/.ssh/cm-ola@saga.sigma2.no:22",
        "message": "",
    },
    {
        "name": "narval",
        "state": "failed",
        "reason": "auth_failed",
        "master_pid": None,
        "control_path": "/home/ola/.ssh/a|b",
        "message": "Login refused by narval.alliancecan.ca: Permission denied",
    },
    {"name": "fram", "state": "failed", "reason": "cancelled", "message": "Cancelled"},
]


def formatted() -> dict[str, str]:
    data, _metadata = DisplayFormatter().format(ConnectionTable(VIEWS))
    return dict(data)


def test_the_text_is_a_table_a_terminal_can_read() -> None:
    text = formatted()["text/plain"]
    lines = text.split("\n")
    assert lines[0].split() == ["connection", "state", "pid", "socket", "note"]
    assert lines[1].split()[:4] == ["saga", "connected", "4242", VIEWS[0]["control_path"]]
    # Columns line up: every row's state starts where the header's does.
    column = lines[0].index("state")
    assert all(line[column:].startswith(("state", "connected", "failed")) for line in lines)
    # People's words, not code words: "Cancelled", and what to try after a refused login.
    assert lines[3].rstrip().endswith("Cancelled") and "cancelled:" not in text
    assert "Permission denied. Check the code" in lines[2]
    assert "<" not in text and "IPython.core.display" not in text


def test_nbconvert_to_markdown_keeps_a_table() -> None:
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%hy2fa status")
    cell.outputs = [nbformat.v4.new_output("execute_result", data=formatted(), execution_count=1)]
    notebook.cells = [cell]
    markdown, _resources = MarkdownExporter().from_notebook_node(notebook)
    assert "| connection | state | pid | socket | note |" in markdown
    assert "| saga | connected | 4242 | `/home/ola/.ssh/cm-ola@saga.sigma2.no:22` |" in markdown
    assert "`/home/ola/.ssh/a\\|b`" in markdown  # a | in a path does not break the row
    assert "<table" not in markdown
