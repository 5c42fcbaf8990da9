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
from traitlets.config import Config

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


_BAD_VALUES = [
    ("prompt_timeout", 0),
    ("prompt_timeout", "soon"),
    ("connect_timeout", float("nan")),
    ("askpass_limit", 5000),
    ("askpass_limit", 2.5),
    ("default_persist", "forever"),
    ("control_path", "~/.ssh/cm-\x00"),
    ("control_path", 5),
    ("ssh", None),
    ("ssh_config", ["~/.ssh/config"]),
    ("clusters", ["lab"]),
]


@pytest.mark.parametrize(("name", "value"), _BAD_VALUES)
def test_a_bad_value_is_refused_by_code_and_costs_that_setting_alone_in_config(
    name: str, value: Any
) -> None:
    """Code (``Settings(...)``, ``check``) is refused; a config file's value falls back to
    the setting's own fallback, with one problem naming the setting, in the server's traits
    (no TraitError: jupyter_server would drop the whole config) as in ``from_config``."""
    with pytest.raises(InvalidInput, match=f"Hy2faLab.{name}"):
        check(name, value)
    with pytest.raises(InvalidInput, match=f"Hy2faLab.{name}"):
        Settings(**{name: value})

    others = {"askpass": False, "prompt_timeout": 30, "clusters": {"lab": {"host": "lab"}}}
    others.pop(name, None)
    loaded = Settings.from_config({**others, name: value})
    field = next(f for f in config_fields() if f.name == name)
    assert getattr(loaded, name) == field.metadata["fallback"] or name == "clusters"
    (problem,) = loaded.problems
    assert problem.setting == name and problem.message.startswith(f"Hy2faLab.{name}: ")
    for key, kept in others.items():
        assert getattr(loaded, key) == kept, key  # the rest of the config stands

    app = Hy2faLab()
    app.update_config(Config({"Hy2faLab": {**others, name: value}}))
    assert getattr(app, name) == getattr(loaded, name)
    (said,) = app.config_problems  # traitlets may have made 0 into 0.0 first: same words else
    assert said.setting == name and said.message.split(",")[0] == problem.message.split(",")[0]
    assert getattr(app, "askpass") is others.get("askpass", False)  # noqa: B009 (a trait)


@pytest.mark.parametrize("value", ["no", "false", "off", "0", "", None, 2, [], "yes", "True"])
@pytest.mark.parametrize("name", ["askpass", "include_ssh_config_hosts", "askpass_replace_own"])
def test_a_switch_with_a_bad_value_is_off(name: str, value: Any) -> None:
    """A switch that turns something on never fails open: any value that is not True or
    False turns it off (askpass = "no" must not leave the bridge on), and says so."""
    loaded = Settings.from_config({name: value})
    assert getattr(loaded, name) is False
    (problem,) = loaded.problems
    assert problem.setting == name and "it is off" in problem.message
    app = Hy2faLab()
    app.update_config(Config({"Hy2faLab": {name: value}}))
    assert getattr(app, name) is False and app.config_problems == loaded.problems
    for good in (True, False):
        assert getattr(Settings.from_config({name: good}), name) is good


def test_a_bad_cluster_costs_that_cluster_alone() -> None:
    clusters = {
        "good": {"host": "login.example.org"},
        "bad": {"host": "h", "ssh_options": {"PKCS11Provider": "/x.so"}},
        "certy": {"host": "h", "certificate": "c"},  # a known key with a bad value
        "typo": {"host": "h", "certifikate": "c"},  # an unknown key
        "saga": {"port": "notaport"},  # a built-in's entry: saga is this error, not saga
        "bad name": {"host": "h"},
    }
    loaded = Settings.from_config({"clusters": clusters})
    assert list(loaded.clusters) == ["good"]
    by_cluster = {p.cluster: p.message for p in loaded.problems}
    assert sorted(by_cluster, key=str) == [None, "bad", "certy", "saga", "typo"]
    assert by_cluster["bad"].startswith("Hy2faLab.clusters['bad']: ssh_options: ")
    assert "PKCS11Provider cannot be set" in by_cluster["bad"]
    assert by_cluster["certy"].startswith("Hy2faLab.clusters['certy']: certificate ")
    assert by_cluster["typo"].startswith("Hy2faLab.clusters['typo']: unknown settings: ")
    assert "certifikate" in by_cluster["typo"]
    assert "notaport" in by_cluster["saga"]
    assert by_cluster[None].startswith("Hy2faLab.clusters['bad name']: ")
    assert loaded.broken_clusters == {k: v for k, v in by_cluster.items() if k is not None}

    # What GET hy2fa/settings gives a kernel comes back as the same settings.
    again = Settings(**json.loads(json.dumps(loaded.to_json())))
    assert again == loaded
    with pytest.raises(InvalidInput, match="problem"):
        Settings(problems=[{"setting": "nope", "message": "x"}])  # type: ignore[arg-type]


def test_a_broken_config_file_costs_that_setting_alone_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "Hy2faLab": {
                    "prompt_timeout": -1,
                    "askpass": "no",
                    "control_path": "/tmp/hy2fa-%C",
                    "clusters": {"lab": {"host": "lab.example.org", "ssh_options": {"X": 1}}},
                }
            }
        )
    )
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path), "JUPYTER_CONFIG_PATH": ""}

    def hy2fa(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hy2fa_lab.cli", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )

    run = hy2fa("path", "saga")
    assert run.returncode == 0, run
    assert run.stdout.startswith("/tmp/hy2fa-")  # the good settings stand
    warnings = run.stderr.splitlines()
    assert len(warnings) == 3 and all(w.startswith("hy2fa: warning: ") for w in warnings)
    assert any("Hy2faLab.prompt_timeout" in w and "-1" in w for w in warnings), warnings
    assert any("Hy2faLab.askpass" in w and "it is off" in w for w in warnings), warnings
    assert "Traceback" not in run.stderr

    listed = hy2fa("list")
    assert listed.returncode == 0, listed
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith("lab ")]
    assert "error: Hy2faLab.clusters['lab']: ssh_options: ssh option X cannot be set" in row
    as_json = json.loads(hy2fa("list", "--json").stdout)
    (lab,) = [r for r in as_json if r["name"] == "lab"]
    assert lab["state"] == "error" and lab["error"]["reason"] == "invalid"
    refused = hy2fa("connect", "lab")
    assert refused.returncode == 2 and "Hy2faLab.clusters['lab']" in refused.stderr

    # A kernel without a server reads the same files, and is told once (a warning).
    code = (
        "import json, warnings\n"
        "from hy2fa_lab.config import ConfigWarning, settings_from_jupyter_config\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    settings = settings_from_jupyter_config()\n"
        "print(json.dumps([settings.askpass, settings.prompt_timeout, "
        "[str(w.message) for w in caught if w.category is ConfigWarning]]))"
    )
    kernel = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    askpass, timeout, told = json.loads(kernel.stdout)
    assert (askpass, timeout, len(told)) == (False, 120.0, 3), kernel


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
