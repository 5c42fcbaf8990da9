"""A bad value in the ``Hy2faLab`` config costs that value alone, and fails closed (issue 18).

A real Jupyter server (pytest-jupyter) with one bad cluster, a good one and ``askpass = False``:
the extension loads, the good cluster logs in against the prompt server, the bad one is listed
with its error (naming the config key and the ssh option) and a connect to it is a 422 with the
same words, the bridge stays off, and ``GET hy2fa/settings`` lists the problems once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from helpers import SECRET, code
from test_server_api import add_prompt_host, answer, call, call_error, wait_for

from hy2fa_lab.demo import sshserver
from hy2fa_lab.demo.sshserver import ServerThread

Fetch = Any

BAD_OPTION = {"host": "promptsrv", "ssh_options": {"UserKnownHostsFile": "/dev/null"}}
BAD_KEY = {"host": "promptsrv", "certificate": "~/.ssh/id_ed25519-cert.pub"}


@pytest.fixture
def login_server(prompt_server: Any) -> ServerThread:
    server: ServerThread = prompt_server(sshserver.totp(SECRET))
    return server


class Heard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


@pytest.fixture
def heard() -> Heard:
    """What the extension's logger says from the server's start on (the server configures
    its logging when it starts, which drops handlers added before: this one is added by that
    configuration, ``jp_server_config`` below)."""
    return Heard()


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any],
    client_config: Path,
    login_server: ServerThread,
    heard: Heard,
) -> dict[str, Any]:
    """conftest.py's, with a good cluster, two bad ones, the bridge off and a bad timeout."""
    add_prompt_host(client_config, "promptsrv", login_server.port)
    jp_server_config["ServerApp"]["logging_config"] = {
        "handlers": {"heard": {"()": lambda: heard, "level": "DEBUG"}},
        "loggers": {"ServerApp.hy2fa_lab": {"handlers": ["heard"], "level": "DEBUG"}},
    }
    # A failure to link the extension fails the server's start instead of being logged.
    jp_server_config["ServerApp"]["reraise_server_extension_failures"] = True
    jp_server_config["Hy2faLab"].update(
        askpass=False,
        prompt_timeout="soon",
        clusters={
            "good": {"host": "promptsrv", "persist": "10m"},
            "bad": BAD_OPTION,
            "certy": BAD_KEY,
        },
    )
    return jp_server_config


async def test_one_bad_cluster_costs_that_cluster_alone_and_askpass_stays_off(
    jp_fetch: Fetch, jp_serverapp: Any, heard: Heard, short_tmp: Path
) -> None:
    # The extension linked (no "error linking extension", which would have raised here).
    assert jp_serverapp.extension_manager.linked_extensions.get("hy2fa_lab") is True

    rows = {row["name"]: row for row in (await call(jp_fetch, "GET", "clusters"))["clusters"]}
    good, bad, certy = rows["good"], rows["bad"], rows["certy"]
    assert good["state"] == "idle" and good["control_path"].startswith(str(short_tmp))
    assert bad["state"] == "error" and certy["state"] == "error"
    for row, words in ((bad, ("ssh_options", "UserKnownHostsFile")), (certy, ("certificate",))):
        assert "Hy2faLab.clusters['" + row["name"] + "']" in row["error"]["message"]
        assert all(word in row["error"]["message"] for word in words), row
        assert row["error"]["reason"] == "invalid"
        one = await call(jp_fetch, "GET", "clusters", row["name"])
        assert one["error"] == row["error"]
        status, error = await call_error(
            jp_fetch, "POST", "connections", body={"cluster": row["name"]}
        )
        assert (status, error["message"]) == (422, row["error"]["message"])

    asks = await call(jp_fetch, "GET", "asks")
    assert asks["enabled"] is False  # askpass = False is kept: the bridge never started

    settings = await call(jp_fetch, "GET", "settings")
    assert settings["askpass"] is False
    assert settings["prompt_timeout"] == 120.0  # its default: "soon" is not a number
    assert settings["ssh_config"].startswith(str(short_tmp))  # the rest of the config stands
    assert sorted(settings["clusters"]) == ["good"]
    problems = settings["problems"]
    assert sorted((p["setting"], p["cluster"]) for p in problems) == [
        ("clusters", "bad"),
        ("clusters", "certy"),
        ("prompt_timeout", None),
    ]
    by_cluster = {p["cluster"]: p["message"] for p in problems}
    assert by_cluster["bad"] == bad["error"]["message"]
    assert "Hy2faLab.prompt_timeout" in by_cluster[None] and "'soon'" in by_cluster[None]

    # Each problem is one WARNING line of the extension's log, said once.
    warned = [line for level, line in heard.lines if level == logging.WARNING]
    for problem in problems:
        assert sum(problem["message"] in line for line in warned) == 1, (problem, warned)

    # The good cluster works.
    await call(jp_fetch, "POST", "connections", body={"cluster": "good"})
    view = await wait_for(jp_fetch, "good", {"prompting"})
    await answer(jp_fetch, "good", code(), view["prompt"]["id"])
    done = await wait_for(jp_fetch, "good", {"connected"})
    assert done["persist"] == "600s" and done["control_path"].startswith(str(short_tmp))
    await call(jp_fetch, "DELETE", "connections", "good")
