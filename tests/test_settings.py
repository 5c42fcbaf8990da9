"""Settings (hy2fa_lab/core/settings.py, hy2fa_lab/config.py): declared once, and the server,
a kernel it started and the ``hy2fa`` command all see the same values, whichever Jupyter
config file holds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kernel_ws import KernelWS
from traitlets import TraitError

from hy2fa_lab.core.errors import InvalidInput
from hy2fa_lab.core.settings import DEFAULTS, Settings, check, config_fields
from hy2fa_lab.server.app import Hy2faLab

Fetch = Any

# One setting in each file Jupyter reads for this extension, so a file that one side skips
# shows as a difference. include_ssh_config_hosts is set twice: the server's config wins over
# the extension's own file, as jupyter_server links it.
_FILES: dict[str, str] = {
    "jupyter_hy2fa_lab_config.json": json.dumps(
        {"Hy2faLab": {"askpass_limit": 5, "include_ssh_config_hosts": True}}
    ),
    "jupyter_hy2fa_lab_config.py": "c.Hy2faLab.ssh = '/usr/bin/ssh'\n",
    "jupyter_config.json": json.dumps({"Hy2faLab": {"connect_timeout": 33}}),
    "jupyter_config.py": "c.Hy2faLab.clusters = {'lab': {'host': 'login.lab.example.org'}}\n",
    "jupyter_server_config.json": json.dumps({"Hy2faLab": {"prompt_timeout": 77}}),
    "jupyter_server_config.py": (
        "c.Hy2faLab.default_persist = '2h'\nc.Hy2faLab.include_ssh_config_hosts = False\n"
    ),
    # jupyter_server reads only jpserver_extensions from this directory: neither side may
    # take a setting from it.
    "jupyter_server_config.d/hy2fa.json": json.dumps({"Hy2faLab": {"askpass_replace_own": True}}),
}
_EXPECTED = {
    "askpass_limit": 5,
    "ssh": "/usr/bin/ssh",
    "connect_timeout": 33,
    "clusters": {"lab": {"host": "login.lab.example.org"}},
    "prompt_timeout": 77,
    "default_persist": "2h",
    "include_ssh_config_hosts": False,
    "askpass_replace_own": False,
}


@pytest.fixture
def jp_server_config(client_config: Path, short_tmp: Path, jp_config_dir: Path) -> dict[str, Any]:
    """The files above in the server's config dir; ``ssh_config`` and ``control_path`` only
    on the "command line" (the config object pytest-jupyter passes), where no file shows them."""
    for name, text in _FILES.items():
        (jp_config_dir / name).parent.mkdir(exist_ok=True)
        (jp_config_dir / name).write_text(text)
    return {
        "ServerApp": {"jpserver_extensions": {"hy2fa_lab": True}},
        "Hy2faLab": {"ssh_config": str(client_config), "control_path": f"{short_tmp}/%C"},
    }


def _cli_settings() -> dict[str, Any]:
    """What the ``hy2fa`` command reads, in a process of its own (the test's Jupyter env)."""
    code = (
        "import json; from hy2fa_lab.config import settings_from_jupyter_config as s; "
        "print(json.dumps(s().to_json()))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return dict(json.loads(run.stdout))


async def test_server_kernel_and_cli_agree_on_every_config_file(
    jp_fetch: Fetch, kernel: KernelWS, client_config: Path, short_tmp: Path
) -> None:
    server = json.loads((await jp_fetch("hy2fa", "settings")).body)
    for key, value in _EXPECTED.items():
        assert server[key] == value, key
    assert server["ssh_config"] == str(client_config)  # from the "command line"

    # The kernel asks its server, so it has the command-line values too ...
    shown = await kernel.run(
        "import json\nfrom hy2fa_lab.kernel.backends import kernel_settings\n"
        "print(json.dumps(kernel_settings().to_json()))"
    )
    assert json.loads(shown.stdout) == server
    # ... and without a server, it reads the same files the CLI reads.
    from_files = await kernel.run(
        "from hy2fa_lab.config import settings_from_jupyter_config as s\n"
        "print(json.dumps(s().to_json()))"
    )
    cli = _cli_settings()
    assert json.loads(from_files.stdout) == cli
    for key in (field.name for field in config_fields()):
        if key in ("ssh_config", "control_path"):  # only on the server's command line
            assert cli[key] == getattr(DEFAULTS, key)
        else:
            assert cli[key] == server[key], key

    # The socket path of a cluster is the server's, asked one cluster at a time.
    row = json.loads((await jp_fetch("hy2fa", "clusters", "lab")).body)
    path = await kernel.run("import hy2fa_lab\nprint(hy2fa_lab.socket_path('lab'))")
    assert path.stdout.strip() == row["control_path"]
    assert row["control_path"].startswith(str(short_tmp))


def test_every_setting_is_a_trait_with_the_same_default_and_help() -> None:
    traits = Hy2faLab.class_own_traits(config=True)
    assert sorted(traits) == sorted(field.name for field in config_fields())
    for field in config_fields():
        trait = traits[field.name]
        assert trait.default() == getattr(DEFAULTS, field.name), field.name
        assert trait.help == field.metadata["help"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("prompt_timeout", 0),
        ("connect_timeout", float("nan")),
        ("askpass_limit", 5000),
        ("default_persist", "forever"),
        ("control_path", "~/.ssh/cm-\x00"),
        ("clusters", {"bad name": {"host": "x"}}),
        ("clusters", {"x": {"port": 22}}),
    ],
)
def test_a_bad_value_is_refused_the_same_way_everywhere(name: str, value: Any) -> None:
    with pytest.raises(InvalidInput, match=f"Hy2faLab.{name}"):
        check(name, value)
    with pytest.raises(InvalidInput, match=f"Hy2faLab.{name}"):
        Settings(**{name: value})
    app = Hy2faLab()
    before = getattr(app, name)
    with pytest.raises(TraitError, match=f"Hy2faLab.{name}"):
        setattr(app, name, value)
    assert getattr(app, name) == before  # nothing changed


def test_a_broken_config_file_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "jupyter_server_config.json").write_text(
        json.dumps({"Hy2faLab": {"prompt_timeout": -1}})
    )
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path), "JUPYTER_CONFIG_PATH": ""}
    run = subprocess.run(
        [sys.executable, "-m", "hy2fa_lab.cli", "path", "saga"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert run.returncode == 2, run
    assert "Hy2faLab.prompt_timeout" in run.stderr and "Traceback" not in run.stderr


def test_a_fifo_as_ssh_config_is_refused_at_once(short_tmp: Path) -> None:
    fifo = short_tmp / "config.fifo"
    os.mkfifo(fifo)
    hy2fa = str(Path(sys.executable).parent / "hy2fa")
    run = subprocess.run(
        [hy2fa, "list", "-F", str(fifo)], capture_output=True, text=True, timeout=30, check=False
    )  # a reader of a FIFO would wait for a writer for ever: the timeout fails the test
    assert run.returncode == 2, run
    assert "ssh_config: is not a regular file" in run.stderr
    assert Settings(ssh_config="/dev/null").ssh_config == "/dev/null"  # as ssh -F /dev/null
    with pytest.raises(InvalidInput, match="not a regular file"):
        Settings(ssh_config=str(short_tmp))


def test_ensure_refuses_an_endless_timeout() -> None:
    from hy2fa_lab import ensure

    for endless in (float("inf"), float("nan")):
        with pytest.raises(InvalidInput, match="finite"):
            ensure("saga", timeout=endless)
