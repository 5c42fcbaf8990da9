"""The documents match the code: README.md lists every REST route with its request fields and
status codes, every field of the JSON the server returns, every ``hy2fa`` subcommand and flag
and every setting with its default; docs/architecture.md names every Python module.

Each test reads the names from the code itself (``HANDLERS``, ``status_for``, ``build_parser``,
real ``to_json()`` objects, ``Settings``), so a route, flag, field or setting added to the code
and not to the documents fails here, naming what is missing.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.web
import yaml

from hy2fa_lab import cli, config
from hy2fa_lab.core.asks import Ask
from hy2fa_lab.core.errors import Hy2faError, UnknownCluster
from hy2fa_lab.core.profiles import ClusterProfile
from hy2fa_lab.core.session import MasterSession
from hy2fa_lab.core.settings import DEFAULTS, Settings, config_fields
from hy2fa_lab.core.targets import ClusterRow
from hy2fa_lab.core.types import Prompt, PromptKind, Reason, State, Target
from hy2fa_lab.server import events, routes

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
_METHODS = ("get", "post", "put", "patch", "delete")


# ---- reading the documents -----------------------------------------------------------------


def section(title: str, text: str | None = None) -> str:
    """The part of ``text`` (README.md) under the heading ``title``, down to the next heading
    of the same or a higher level (its subsections included)."""
    lines = (README if text is None else text).splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"(#+) (.*)", line)
        if match and match.group(2).strip() == title:
            level = len(match.group(1))
            body = []
            fenced = False
            for rest in lines[index + 1 :]:
                fenced ^= rest.lstrip().startswith("```")
                heading = re.match(r"(#+) ", rest)
                if heading and not fenced and len(heading.group(1)) <= level:
                    break
                body.append(rest)
            return "\n".join(body)
    raise AssertionError(f"no heading {title!r} in the document")


def paragraph(text: str, start: str) -> str:
    """The paragraph of ``text`` that begins with ``start``."""
    index = text.find(start)
    assert index >= 0, f"no paragraph starting {start!r}"
    end = text.find("\n\n", index)
    return text[index : end if end >= 0 else None]


def code_names(text: str) -> set[str]:
    """Every `name` written as inline code."""
    return {" ".join(name.split()) for name in re.findall(r"`([^`]+)`", text)}


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text`` (header and rule included)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and line.rstrip().endswith("|"):
            rows.append([cell.strip() for cell in line.strip()[1:-1].split("|")])
    return rows


def said(text: str, phrase: str) -> bool:
    """Whether ``text`` says ``phrase``, however its lines are wrapped."""
    return " ".join(phrase.split()) in " ".join(text.split())


def rest_sections() -> str:
    return section("In the Jupyter server") + "\n" + section("How the bridge works")


# ---- real objects ----------------------------------------------------------------------------


def a_target() -> Target:
    return Target(
        name="saga",
        destination="saga.sigma2.no",
        hostname="saga.sigma2.no",
        user="ola",
        port=22,
        control_path="/home/ola/.ssh/cm-ola@saga.sigma2.no:22",
        persist="3600s",
        cluster="saga",
    )


def a_prompt() -> Prompt:
    return Prompt(PromptKind.DUO, "Passcode or option (1-2): ", ("1", "2"), secret=False)


def connection_view(state: State = State.PROMPTING) -> dict[str, Any]:
    """A connection as REST shows it, in ``state`` (prompting: with its prompt), made by a
    notebook's ssh (``made_by`` with every key it can have)."""
    session = MasterSession(a_target())
    session.made_by = {"kind": "ssh", "notebook": "Analysis.ipynb", "kernel_id": "k1"}
    session.state = state
    session.prompt = a_prompt()
    session.prompt_id = 1
    return session.to_json()


def certificate_connection_view() -> dict[str, Any]:
    """A connection of a cluster whose login is a certificate's (``certificate`` set)."""
    from hy2fa_lab.core.login_certificate import CertificateLogin
    from hy2fa_lab.core.login_ssh import SshLogin
    from hy2fa_lab.core.types import CertificateSpec

    spec = CertificateSpec(issuer="sshproxy", key="/nonexistent/nersc", url="https://x.example")
    return MasterSession(a_target(), method=CertificateLogin(spec, SshLogin())).to_json()


def command_connection_view() -> dict[str, Any]:
    """A connection whose certificate comes from the site's tool (issuer ``command``), while
    the tool waits for a sign-in in the browser (``certificate.device``)."""
    from hy2fa_lab.core.issuer_command import CommandLogin
    from hy2fa_lab.core.login_ssh import SshLogin
    from hy2fa_lab.core.types import CertificateSpec

    spec = CertificateSpec(issuer="command", key="/nonexistent/cscs", argv=("cscs-key",))
    method = CommandLogin(spec, SshLogin())
    method.tool.device, method._running = {"url": "https://x.example/d", "code": "ABCD-1234"}, True
    return MasterSession(a_target(), method=method).to_json()


def nested_keys(view: dict[str, Any]) -> set[str]:
    """``outer.inner`` for every key of an object inside ``view``."""
    return {
        f"{outer}.{inner}"
        for outer, value in view.items()
        if isinstance(value, dict)
        for inner in value
    }


def cluster_rows() -> tuple[dict[str, Any], dict[str, Any]]:
    """A resolved row (with a socket message and a certificate) and one that did not
    resolve."""
    from datetime import datetime, timezone

    from hy2fa_lab.core.certificates import Certificate
    from hy2fa_lab.core.types import CertificateSpec

    spec = CertificateSpec(issuer="sshproxy", key="/nonexistent/nersc", url="https://x.example")
    profile = ClusterProfile(
        name="saga", host="saga.sigma2.no", label="Saga (Sigma2)", certificate=spec
    )
    now = datetime.now(timezone.utc)
    certificate = Certificate(spec.key, now, now, ("ola",), "user_ola", key_matches=True)
    resolved = ClusterRow(
        profile, target=a_target(), message="stale socket removed", certificate=certificate
    )
    failed = ClusterRow(profile, error=UnknownCluster("No cluster named 'saga'"))
    return resolved.to_json(), failed.to_json()


def an_ask() -> dict[str, Any]:
    ask = Ask(
        id="1-0a1b2c3d",
        prompt=a_prompt(),
        host="saga.sigma2.no",
        command=["ssh", "saga", "squeue"],
        origin={"pid": 4242},
    )
    return ask.to_json()


def error_classes() -> Iterator[type[Hy2faError]]:
    """Every engine error the server can meet (the kernel's own are not the server's)."""
    seen: set[type[Hy2faError]] = set()
    pending: list[type[Hy2faError]] = [Hy2faError]
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        if cls.__module__.startswith(("hy2fa_lab.core", "hy2fa_lab.server")):
            yield cls
        pending.extend(cls.__subclasses__())


# ---- REST ------------------------------------------------------------------------------------


def route_text(pattern: str) -> str:
    """``hy2fa/asks/(?P<ask_id>[^/]+)`` as the README writes it: ``hy2fa/asks/<id>``."""

    def group(match: re.Match[str]) -> str:
        name = match.group(1)
        return "<id>" if name == "id" or name.endswith("_id") else f"<{name}>"

    return re.sub(r"\(\?P<(\w+)>[^)]*\)", group, pattern)


def handler_methods(cls: type) -> list[str]:
    return [
        method
        for method in _METHODS
        if getattr(cls, method) is not getattr(tornado.web.RequestHandler, method)
    ]


def readme_row(method: str, pattern: str) -> tuple[str, str]:
    """The README table row of ``METHOD route``, and the query string written with it."""
    route = re.escape(route_text(pattern))
    found = re.search(rf"^\|[^\n]*`{method.upper()} {route}(\?[^`]*)?`[^\n]*$", README, re.M)
    assert found, f"README.md has no table row for {method.upper()} {route_text(pattern)}"
    return found.group(0), found.group(1) or ""


def endpoints() -> list[tuple[str, str, type]]:
    return [
        (method, pattern, cls)
        for pattern, cls in routes.HANDLERS
        for method in handler_methods(cls)
    ]


def test_every_route_of_handlers_is_in_the_readme() -> None:
    assert len(routes.HANDLERS) >= 10
    missing = []
    for method, pattern, _cls in endpoints():
        route = re.escape(route_text(pattern))
        if not re.search(rf"`{method.upper()} {route}(\?[^`]*)?`", rest_sections()):
            missing.append(f"{method.upper()} {route_text(pattern)}")
    assert not missing, f"routes of HANDLERS not in README.md's REST tables: {missing}"


def test_every_query_argument_body_field_and_reply_key_is_in_its_route_row() -> None:
    missing = []
    for method, pattern, cls in endpoints():
        source = inspect.getsource(getattr(cls, method))
        row, query = readme_row(method, pattern)
        for argument in re.findall(r"get_query_argument\(\"(\w+)\"", source):
            if f"{argument}=" not in query:
                missing.append(f"{method.upper()} {route_text(pattern)} ?{argument}=")
        fields: set[str] = set()
        for listed in re.findall(r"_fields\(data, \{([^}]*)\}\)", source):
            fields |= set(re.findall(r"\"(\w+)\"", listed))
        if "_response(data)" in source:
            fields.add("response")
        for reply in re.findall(r"self\.reply\(\s*\{(.*?)\}\s*[,)]", source, re.S):
            fields |= set(re.findall(r"\"(\w+)\":", reply))  # the keys of a reply's wrapper
        for field in sorted(fields):
            if f'"{field}"' not in row:
                missing.append(f'{method.upper()} {route_text(pattern)} "{field}"')
    assert not missing, f"request fields or reply keys not in their README row: {missing}"


def test_every_success_status_is_in_its_route_row() -> None:
    missing = []
    for method, pattern, cls in endpoints():
        source = inspect.getsource(getattr(cls, method))
        codes = set(re.findall(r"\b(20\d)\b", source))
        if "self.reply(" in source:
            codes.add("200")  # reply()'s default
        assert codes, f"{cls.__name__}.{method} answers nothing this test can see"
        row, _query = readme_row(method, pattern)
        answers = row.rstrip(" |").rsplit("|", 1)[-1]
        missing += [
            f"{method.upper()} {route_text(pattern)} {code}"
            for code in sorted(codes)
            if not re.search(rf"\b{code}\b", answers)
        ]
    assert not missing, f"success statuses not in the README rows' answers: {missing}"


def test_every_status_of_status_for_is_in_the_error_table() -> None:
    rows = {row[0]: row for row in table_rows(section("In the Jupyter server")) if row[0].isdigit()}
    fallback = routes.status_for(Hy2faError("anything else"))
    mapped: dict[int, set[str]] = {fallback: set()}
    for cls in error_classes():
        status = routes.status_for(cls("x"))
        if status != fallback:
            mapped.setdefault(status, set()).add(cls.reason)
    assert {400, 404, 409, 413, 422, 502} <= set(mapped), mapped
    missing = []
    for status, reasons in sorted(mapped.items()):
        row = rows.get(str(status))
        if row is None:
            missing.append(str(status))
            continue
        missing += [
            f"{status} {reason}" for reason in sorted(reasons) if f"`{reason}`" not in row[1]
        ]
    assert not missing, f"statuses/reasons of status_for not in README.md's error table: {missing}"
    assert "403" in rows, "the authorization refusal (403) is not in the error table"


def test_errors_are_documented_as_message_and_reason() -> None:
    text = section("In the Jupyter server")
    assert said(text, 'Errors are JSON `{"message", "reason"}`'), "the error body is not documented"


def test_every_key_of_a_connection_view_is_documented() -> None:
    """Top-level keys as `key`, and the keys of its objects (the prompt while prompting, and
    whatever a state adds) as "key" where the paragraph spells the object out."""
    views = [connection_view(state) for state in State]
    assert views[0]["prompt"] is None and connection_view()["prompt"] is not None
    text = paragraph(section("In the Jupyter server"), "**A connection (the view)**")
    keys = {key for view in views for key in view}
    missing = sorted(key for key in keys if f"`{key}`" not in text)
    inner = set().union(*(nested_keys(view) for view in views))
    missing += sorted(key for key in inner if f'"{key.split(".", 1)[1]}"' not in text)
    assert "prompt.kind" in inner
    assert not missing, f"connection view keys not in README.md: {missing}"


def test_every_key_of_a_cluster_row_is_documented() -> None:
    resolved, failed = cluster_rows()
    text = paragraph(section("In the Jupyter server"), "**A cluster row**")
    keys = set(resolved) | set(failed)
    missing = sorted(key for key in keys if f"`{key}`" not in text)
    error = failed["error"]
    missing += [f"error.{key}" for key in error if f'"{key}"' not in text]
    assert failed["state"] == "error" and f'`"{failed["state"]}"`' in text
    assert not missing, f"cluster row keys not in README.md: {missing}"


def test_every_key_of_an_ask_is_documented() -> None:
    ask = an_ask()
    text = section("How the bridge works")
    about = paragraph(text, "An ask has")
    missing = [key for key in ask if f"`{key}`" not in about]
    missing += [f"prompt.{key}" for key in ask["prompt"] if f"`{key}`" not in about]
    assert not missing, f"ask keys not in README.md: {missing}"
    listing, _query = readme_row("get", "hy2fa/asks")
    assert '"asks"' in listing and '"enabled"' in listing


def test_every_state_reason_and_prompt_kind_is_named() -> None:
    names = code_names(section("In the Jupyter server"))
    missing = [
        f"{kind.__name__}.{member.value}"
        for kind in (State, Reason, PromptKind)
        for member in kind
        if member.value not in names
    ]
    assert not missing, f"values not named in README.md's REST section: {missing}"


def test_every_key_of_the_settings_view_is_documented() -> None:
    names = code_names(section("Configuration"))
    missing = [key for key in Settings().to_json() if key not in names]
    assert not missing, f"keys of GET hy2fa/settings not in README.md: {missing}"


def _schema(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def test_the_event_schemas_are_documented_and_carry_the_rest_shapes() -> None:
    text = section("In the Jupyter server")
    connection = _schema(events.SCHEMA_PATH)
    ask = _schema(events.ASK_SCHEMA_PATH)
    for schema, schema_id, path in (
        (connection, events.SCHEMA_ID, events.SCHEMA_PATH),
        (ask, events.ASK_SCHEMA_ID, events.ASK_SCHEMA_PATH),
    ):
        assert schema["$id"] == schema_id
        relative = path.relative_to(ROOT).as_posix()
        documented = re.search(
            rf"`{re.escape(schema_id)}`, schema version (\d+)\s*\(`{re.escape(relative)}`", text
        )
        assert documented, f"README.md does not name {schema_id} with its version and file"
        assert documented.group(1) == str(schema["version"]), (
            f"README.md says {schema_id} is version {documented.group(1)}, "
            f"the schema says {schema['version']}"
        )
    views = [connection_view(state) for state in State]
    views += [certificate_connection_view(), command_connection_view()]
    assert set(connection["properties"]) == set().union(*views)
    described = {
        f"{outer}.{inner}"
        for outer, spec in connection["properties"].items()
        for inner in spec.get("properties", {})
    }
    assert described == set().union(*(nested_keys(view) for view in views))
    assert set(connection["properties"]["state"]["enum"]) == {state.value for state in State}
    data = events.ask_data(Ask(**{**_ask_fields(), "prompt": a_prompt()}), "asked")
    assert set(ask["properties"]) == set(data) == set(an_ask()) | {"action"}
    actions = ask["properties"]["action"]["enum"]
    missing = [action for action in actions if f"`{action}`" not in text]
    assert not missing, f"ask actions not in README.md: {missing}"


def test_the_cluster_event_schema_is_documented_and_carries_the_row() -> None:
    text = section("In the Jupyter server")
    schema = _schema(events.CLUSTER_SCHEMA_PATH)
    assert schema["$id"] == events.CLUSTER_SCHEMA_ID
    relative = events.CLUSTER_SCHEMA_PATH.relative_to(ROOT).as_posix()
    schema_id = re.escape(events.CLUSTER_SCHEMA_ID)
    documented = re.search(
        rf"`{schema_id}`, schema version (\d+)\s*\(`{re.escape(relative)}`", text
    )
    assert documented, "README.md does not name the cluster event with its version and file"
    assert documented.group(1) == str(schema["version"])
    resolved, failed = cluster_rows()
    data = events.cluster_data(resolved, "changed")
    assert set(schema["properties"]) == set(resolved) | set(failed) | {"action"}
    assert set(data) <= set(schema["properties"]) and set(schema["required"]) <= set(data)
    assert set(schema["properties"]["error"]["properties"]) == set(failed["error"])
    actions = schema["properties"]["action"]["enum"]
    assert tuple(actions) == events.CLUSTER_ACTIONS
    missing = [action for action in actions if f"`{action}`" not in text]
    assert not missing, f"cluster event actions not in README.md: {missing}"


def _ask_fields() -> dict[str, Any]:
    return {"id": "1-x", "host": None, "command": ["ssh"], "origin": {"pid": 1}}


# ---- the hy2fa command -----------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("build_parser() has no subcommands")


def _synopsis() -> dict[str, list[str]]:
    """The README's usage lines, by subcommand: ``hy2fa NAME ...`` and the indented lines
    that continue it, without their ``# comments``."""
    text = section("The `hy2fa` command")
    block = re.search(r"```text\n(.*?)```", text, re.S)
    assert block, "no ```text usage block under 'The `hy2fa` command'"
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in block.group(1).splitlines():
        usage = line.split("  #", 1)[0].rstrip()
        head = re.match(r"hy2fa ([a-z][\w-]*)", usage)
        if head:
            current = entries.setdefault(head.group(1), [])
            current.append(usage)
        elif line.startswith(" ") and current is not None:
            current.append(usage)
        else:
            current = None
    return entries


def _flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text))


def test_every_subcommand_and_its_flags_are_in_the_usage_block() -> None:
    commands = _subcommands(cli.build_parser())
    entries = _synopsis()
    missing = [name for name in commands if name not in entries]
    assert not missing, f"subcommands of build_parser() not in README.md: {missing}"
    problems = []
    for name, parser in commands.items():
        shown = "\n".join(entries[name])
        known: set[str] = set()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            known |= set(action.option_strings)
            if action.option_strings:
                if not set(action.option_strings) & _flags(shown):
                    problems.append(f"hy2fa {name}: {'/'.join(action.option_strings)} missing")
            elif str(action.metavar or action.dest).upper() not in shown:
                problems.append(f"hy2fa {name}: {action.dest.upper()} missing")
        stale = _flags(shown) - known
        problems += [f"hy2fa {name}: {flag} is not a flag of it" for flag in sorted(stale)]
    assert not problems, problems


def test_every_long_flag_is_in_the_cli_section() -> None:
    parser = cli.build_parser()
    parsers = [parser, *_subcommands(parser).values()]
    flags = {
        option
        for each in parsers
        for action in each._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    assert {"--version", "--help", "--json", "--control-path"} <= flags
    shown = _flags(section("The `hy2fa` command"))
    assert not sorted(flags - shown), f"flags not in README.md: {sorted(flags - shown)}"


def test_every_exit_status_is_documented() -> None:
    codes = {cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE}
    codes |= {int(code) for code in re.findall(r"return (\d+)\b", inspect.getsource(cli.main))}
    assert 130 in codes
    text = paragraph(section("The `hy2fa` command"), "Exit statuses:")
    missing = sorted(code for code in codes if f"**{code}**" not in text)
    assert not missing, f"exit statuses of hy2fa not in README.md: {missing}"


def test_the_json_rows_of_list_and_status_are_said_to_be_the_rest_rows() -> None:
    text = section("The `hy2fa` command")
    assert said(
        text,
        "`hy2fa list --json` and `hy2fa status --json` print a JSON list of rows with exactly "
        "the shape of `GET hy2fa/clusters` rows",
    ), "README.md does not say the --json rows are the REST rows"
    assert said(text, "`host` as configured"), "the --json rows' host is not explained"
    assert said(text, "`hostname` as ssh resolves it"), "the --json rows' hostname is not explained"


# ---- configuration ---------------------------------------------------------------------------

_TYPES = {
    "bool": "bool",
    "int": "int",
    "float": "float",
    "str": "str",
    "str | None": "str or None",
    "Mapping[str, Mapping[str, Any]]": "dict",
}


def test_every_setting_has_a_row_with_its_type_default_and_help() -> None:
    rows = {
        row[0].strip("`"): row
        for row in table_rows(section("Configuration"))
        if row[0].startswith("`")
    }
    problems = []
    for field in config_fields():
        row = rows.pop(field.name, None)
        if row is None:
            problems.append(f"{field.name}: no row")
            continue
        _, kind, default, help_text = row
        expected_kind = _TYPES.get(str(field.type), f"<add {field.type} to _TYPES>")
        if kind != expected_kind:
            problems.append(f"{field.name}: type {kind!r}, not {expected_kind!r}")
        value = getattr(DEFAULTS, field.name)
        try:
            documented = ast.literal_eval(default.strip("`"))
        except (ValueError, SyntaxError):
            documented = f"<not a literal: {default}>"
        if documented != value or isinstance(documented, bool) != isinstance(value, bool):
            problems.append(f"{field.name}: default {default}, not {value!r}")
        if help_text.replace("`", "") != field.metadata["help"]:
            problems.append(f"{field.name}: help differs from core/settings.py")
    problems += [f"{name}: a row for no setting" for name in rows]
    assert not problems, problems


def test_the_config_files_read_are_named() -> None:
    text = section("Configuration")
    for stem in (config.EXTENSION_CONFIG, "jupyter_server_config", "jupyter_config"):
        assert said(text, f"`{stem}.py` / `.json`"), f"{stem}.py/.json not named in README.md"
    assert said(text, "`jupyter_server_config.d/` is not read for settings"), "config.d not named"
    assert "`GET hy2fa/settings`" in text
    names = [field.name for field in dataclasses.fields(Settings)]
    assert "masters_file" in names and "`masters_file`" not in README  # not a person's setting


# ---- the rest of the README and the architecture --------------------------------------------


def test_the_scripts_the_readme_runs_exist() -> None:
    scripts = re.findall(r"bash (scripts/[\w.-]+)", README)
    assert scripts[:2] == ["scripts/demo.sh", "scripts/test.sh"], scripts[:2]
    missing = [script for script in scripts if not (ROOT / script).is_file()]
    assert not missing, f"README.md runs scripts that do not exist: {missing}"


def test_the_demo_prompt_is_quoted_as_the_demo_asks_it() -> None:
    pytest.importorskip("asyncssh")
    pytest.importorskip("pyotp")
    from hy2fa_lab.demo.app import SAGA_LIKE_PROMPT

    parts = re.split(r"(\{\{user\}\}|\{code\})", SAGA_LIKE_PROMPT)
    pattern = "".join(
        r"\w+" if part == "{{user}}" else r"\d{6}" if part == "{code}" else re.escape(part)
        for part in parts
    )
    assert re.search(pattern, section("Try it: the demo")), SAGA_LIKE_PROMPT
    assert "pip install 'hy2fa_lab[demo]'" in section("Try it: the demo")


def test_every_python_module_is_named_in_the_architecture() -> None:
    package = ROOT / "hy2fa_lab"
    missing = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if path.name == "__init__.py" or relative.parts[0] in ("labextension",):
            continue
        if path.name == "_version.py":
            continue
        if f"`{path.name}`" not in ARCHITECTURE and f"{relative.as_posix()}" not in ARCHITECTURE:
            missing.append(relative.as_posix())
    assert not missing, f"modules not named in docs/architecture.md: {missing}"


def test_every_route_is_named_in_the_architecture() -> None:
    text = section("The REST API and events", ARCHITECTURE)
    names = code_names(text)
    missing = [
        route_text(pattern)
        for pattern, _cls in routes.HANDLERS
        if route_text(pattern).removeprefix("hy2fa/") not in names
    ]
    assert not missing, f"routes not named in docs/architecture.md: {missing}"


def test_the_architecture_has_the_sections_the_code_points_to() -> None:
    headings = {m.group(1).strip() for m in re.finditer(r"^#+ (.*)$", ARCHITECTURE, re.M)}
    for source in (ROOT / "hy2fa_lab").rglob("*.py"):
        for title in re.findall(
            r"docs/architecture\.md[,:]? \"([^\"]+)\"", source.read_text(encoding="utf-8")
        ):
            assert title in headings, f"{source.name} points to docs/architecture.md {title!r}"
