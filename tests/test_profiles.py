"""Cluster profiles and their resolution through ``ssh -G`` (the user's ssh config is honoured)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hy2fa_lab.core import controlpath
from hy2fa_lab.core.errors import Hy2faError, InvalidInput
from hy2fa_lab.core.profiles import (
    BUILTIN_CLUSTERS,
    certificate_spec,
    load_profiles,
    profile_from_config,
    resolve,
)
from hy2fa_lab.core.sshconfig import config_hosts, ssh_g

REQUIRED = {
    "saga",
    "fram",
    "betzy",
    "olivia",
    "narval",
    "rorqual",
    "fir",
    "nibi",
    "trillium",
    "perlmutter",
}


@pytest.fixture
def ssh_config(short_tmp: Path) -> Path:
    included = short_tmp / "more.conf"
    included.write_text("Host included-one\n  HostName 10.0.0.9\n")
    config = short_tmp / "config"
    config.write_text(
        "# my clusters\n"
        "Host saga\n  HostName login-3.saga.sigma2.no\n  User ola\n"
        "Host lab lab2 *.wild !neg\n  HostName 127.0.0.1\n  Port 2222\n"
        "Host shared\n  HostName shared.example.org\n"
        f"  ControlPath {short_tmp}/mine-%r@%h\n"
        "Host viajump\n  HostName inner.example.org\n  ProxyJump bastion.example.org\n"
        f"Include {included}\n"
        "Host *\n  ServerAliveInterval 60\n"
    )
    return config


def test_builtin_table_has_the_required_clusters() -> None:
    assert set(BUILTIN_CLUSTERS) >= REQUIRED
    for profile in BUILTIN_CLUSTERS.values():
        assert profile.host and "." in profile.host
        assert profile.asks and profile.docs.startswith("https://")
    assert BUILTIN_CLUSTERS["saga"].host == "saga.sigma2.no"
    assert BUILTIN_CLUSTERS["narval"].host == "narval.alliancecan.ca"
    assert BUILTIN_CLUSTERS["perlmutter"].host == "perlmutter.nersc.gov"


def test_perlmutter_logs_in_through_nersc_sshproxy_unless_the_config_says_otherwise(
    short_tmp: Path,
) -> None:
    """NERSC documents sshproxy: the built-in Perlmutter gets its certificate there, in the
    files NERSC's own script writes. A configured ``perlmutter`` with ``"certificate": None``,
    or a ``Host perlmutter`` of the person's ssh config, logs in with ssh's own questions."""
    spec = BUILTIN_CLUSTERS["perlmutter"].certificate
    assert spec is not None
    assert (spec.issuer, spec.url, spec.scope, spec.login) == (
        "sshproxy",
        "https://sshproxy.nersc.gov",
        "default",
        None,  # the ssh user
    )
    assert spec.key == os.path.expanduser("~/.ssh/nersc")
    assert spec.certificate_file == os.path.expanduser("~/.ssh/nersc-cert.pub")
    assert (
        certificate_spec(
            {"issuer": "sshproxy", "url": spec.url, "scope": spec.scope, "key": "~/.ssh/nersc"}
        )
        == spec
    )  # what the config key would say

    empty = short_tmp / "empty_config"
    empty.write_text("")
    user_only = load_profiles({"perlmutter": {"user": "ola"}}, config_file=str(empty))
    assert user_only["perlmutter"].certificate == spec  # a config entry sets values on top
    plain = load_profiles({"perlmutter": {"certificate": None}}, config_file=str(empty))
    assert plain["perlmutter"].certificate is None
    assert plain["perlmutter"].asks == "Password + OTP typed together"
    aliased = short_tmp / "alias_config"
    aliased.write_text("Host perlmutter\n  HostName perlmutter.nersc.gov\n")
    assert load_profiles(config_file=str(aliased))["perlmutter"].certificate is None
    assert load_profiles(config_file=str(empty))["perlmutter"].certificate == spec


def test_config_hosts_lists_concrete_aliases_and_follows_include(ssh_config: Path) -> None:
    assert config_hosts(str(ssh_config)) == [
        "saga",
        "lab",
        "lab2",
        "shared",
        "viajump",
        "included-one",
    ]
    assert config_hosts(str(ssh_config.with_name("missing"))) == []


def test_ssh_config_aliases_join_and_override_builtins(ssh_config: Path) -> None:
    profiles = load_profiles(config_file=str(ssh_config))
    assert profiles["lab"].source == "ssh_config" and profiles["lab"].host == "lab"
    assert profiles["saga"].host == "saga"  # the user's alias is what ssh is given
    assert profiles["saga"].label == BUILTIN_CLUSTERS["saga"].label  # description kept
    assert profiles["fram"] == BUILTIN_CLUSTERS["fram"]
    without = load_profiles(include_ssh_config_hosts=False, config_file=str(ssh_config))
    assert "lab" not in without and without["saga"] == BUILTIN_CLUSTERS["saga"]


def test_configured_clusters_are_checked_and_win(ssh_config: Path) -> None:
    profiles = load_profiles(
        {
            "mine": {"host": "login.example.org", "port": 2022, "user": "me", "persist": "10m"},
            "saga": {"user": "kari", "ssh_options": {"ServerAliveInterval": 15}},
        },
        config_file=str(ssh_config),
    )
    mine = profiles["mine"]
    assert (mine.host, mine.port, mine.user, mine.persist) == (
        "login.example.org",
        2022,
        "me",
        "600s",
    )
    assert mine.source == "config"
    assert profiles["saga"].host == "saga.sigma2.no"  # built-in values fill the gaps
    assert profiles["saga"].ssh_options == (("ServerAliveInterval", "15"),)


@pytest.mark.parametrize(
    ("clusters", "message"),
    [
        ({"x": {}}, "needs a host"),
        ({"x": {"host": "-oProxyCommand=evil"}}, "must not start with '-'"),
        ({"x": {"host": "h", "port": 0}}, "port"),
        ({"x": {"host": "h", "persist": "soon"}}, "persist"),
        ({"x": {"host": "h", "colour": "red"}}, "unknown settings"),
        ({"x": {"host": "h", "ssh_options": {"ProxyCommand": "nc %h %p"}}}, "cannot be set"),
        ({"bad name": {"host": "h"}}, "whitespace"),
        ({"x": {"host": "h", "user": "a b"}}, "whitespace"),
    ],
)
def test_bad_cluster_config_is_refused(clusters: dict, message: str) -> None:
    """Refused, naming the entry; loaded, it costs that cluster alone: listed with the
    error (unless its name cannot be a cluster's), never resolved."""
    ((name, data),) = clusters.items()
    with pytest.raises(InvalidInput, match=message) as refused:
        profile_from_config(name, data)
    assert refused.value.message.startswith(f"Hy2faLab.clusters[{name!r}]: ")
    profiles = load_profiles({**clusters, "fine": {"host": "h"}}, include_ssh_config_hosts=False)
    assert profiles["fine"].error == "" and profiles["saga"] == BUILTIN_CLUSTERS["saga"]
    if name == "bad name":
        assert name not in profiles
        return
    assert profiles[name].error == refused.value.message
    with pytest.raises(InvalidInput) as unresolved:
        resolve(name, profiles=profiles, config_file="/dev/null")
    assert unresolved.value.message == refused.value.message


def test_a_bad_entry_for_a_builtin_or_an_alias_is_that_error_not_the_builtin(
    ssh_config: Path,
) -> None:
    """Fail closed: a configured saga (or ssh alias lab) that is not valid does not fall
    back to the built-in saga (or the alias): the person meant their own, which is refused."""
    profiles = load_profiles(
        {"saga": {"user": "a b"}, "lab": {"port": 0}},
        config_file=str(ssh_config),
        broken={"fram": "Hy2faLab.clusters['fram']: unknown settings: x"},
    )
    for name in ("saga", "lab", "fram"):
        assert profiles[name].error.startswith(f"Hy2faLab.clusters['{name}']: "), name
        assert profiles[name].source == "config"
        with pytest.raises(InvalidInput, match=rf"Hy2faLab.clusters\['{name}'\]"):
            resolve(name, profiles=profiles, config_file=str(ssh_config))
    assert profiles["saga"].label == BUILTIN_CLUSTERS["saga"].label  # described as before


def test_builtin_resolves_with_the_default_template(short_tmp: Path) -> None:
    empty = short_tmp / "empty"
    empty.write_text("")
    target = resolve(
        "fram", profiles=BUILTIN_CLUSTERS, user="ola", config_file=str(empty), persist="2h"
    )
    assert (target.name, target.destination, target.hostname) == (
        "fram",
        "fram.sigma2.no",
        "fram.sigma2.no",
    )
    assert (target.user, target.port, target.persist) == ("ola", 22, "7200s")
    assert target.explicit_user == "ola" and target.explicit_port is None
    assert target.control_path == os.path.expanduser("~/.ssh/cm-ola@fram.sigma2.no:22")


def test_alias_settings_come_from_ssh(ssh_config: Path) -> None:
    profiles = load_profiles(config_file=str(ssh_config))
    target = resolve(
        "lab",
        profiles=profiles,
        config_file=str(ssh_config),
        control_path_template="/tmp/t/%r@%h:%p",
    )
    expected_user = ssh_g("lab", config_file=str(ssh_config))["user"]
    assert (target.hostname, target.port, target.user) == ("127.0.0.1", 2222, expected_user)
    assert target.control_path == f"/tmp/t/{expected_user}@127.0.0.1:2222"
    assert target.explicit_port is None  # ssh reads the port from the config itself


def test_a_controlpath_in_the_users_ssh_config_wins(ssh_config: Path, short_tmp: Path) -> None:
    profiles = load_profiles(config_file=str(ssh_config))
    target = resolve(
        "shared",
        profiles=profiles,
        user="u1",
        config_file=str(ssh_config),
        control_path_template="/tmp/never/%C",
    )
    assert target.control_path == f"{short_tmp}/mine-u1@shared.example.org"


def test_proxyjump_targets_take_sshs_own_expansion(ssh_config: Path) -> None:
    profiles = load_profiles(config_file=str(ssh_config))
    target = resolve(
        "viajump", profiles=profiles, config_file=str(ssh_config), control_path_template="/tmp/%C"
    )
    theirs = ssh_g("viajump", config_file=str(ssh_config), options=[("ControlPath", "/tmp/%C")])[
        "controlpath"
    ]
    assert target.control_path == theirs


def test_plain_host_names_work_and_explicit_values_win(short_tmp: Path) -> None:
    empty = short_tmp / "empty"
    empty.write_text("")
    target = resolve(
        "login.example.org",
        profiles=BUILTIN_CLUSTERS,
        user="me",
        port=2200,
        ssh_options=[("ServerAliveInterval", "5")],
        control_path_template=f"{short_tmp}/%r@%h:%p",
        config_file=str(empty),
    )
    assert target.name == "login.example.org"
    assert (target.user, target.port, target.explicit_port) == ("me", 2200, 2200)
    assert target.control_path == f"{short_tmp}/me@login.example.org:2200"
    assert target.ssh_options == (("ServerAliveInterval", "5"),)
    assert target.persist == "3600s"


def test_long_control_paths_fall_back_to_a_hash(short_tmp: Path) -> None:
    empty = short_tmp / "empty"
    empty.write_text("")
    host = "node-with-a-long-name.department-of-something.example-university.edu"
    target = resolve(
        host,
        profiles={},
        user="someone.long",
        config_file=str(empty),
        control_path_template=f"{short_tmp}/cm-%r@%h:%p",
    )
    assert controlpath.fits(target.control_path)
    assert os.path.basename(target.control_path).startswith("cm-")
    assert len(os.path.basename(target.control_path)) == 43


@pytest.mark.parametrize(
    ("target", "kwargs", "message"),
    [
        ("-oProxyCommand=x", {}, "must not start with '-'"),
        ("host name", {}, "whitespace"),
        ("saga", {"user": "-l"}, "must not start"),
        ("saga", {"port": 99999}, "port"),
        ("saga", {"persist": "forever"}, "persist"),
        ("saga", {"ssh_options": [("ControlMaster", "no")]}, "cannot be set"),
        ("saga", {"ssh_options": [("Bad Key", "x")]}, "option name"),
        ("saga", {"ssh_options": [("PKCS11Provider", "/tmp/lib.so")]}, "cannot be set"),
        ("saga", {"ssh_options": [("SecurityKeyProvider", "/tmp/lib.so")]}, "cannot be set"),
        ("saga", {"ssh_options": [("UserKnownHostsFile", "/dev/null")]}, "cannot be set"),
        ("saga", {"ssh_options": [("StrictHostKeyChecking", "no")]}, "use yes or ask"),
        ("saga", {"ssh_options": [("StrictHostKeyChecking", "accept-new")]}, "use yes or ask"),
        ("saga", {"ssh_options": [("ProxyJump", "-oProxyCommand=x")]}, "ProxyJump hop"),
        ("saga", {"user": "%d"}, "'%'"),
        ("saga", {"persist": "9999999999w"}, "longer than ssh allows"),
        ("saga", {"persist": "1" * 20}, "longer than ssh allows"),
    ],
)
def test_bad_targets_are_refused_before_ssh_runs(target: str, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        resolve(target, profiles=BUILTIN_CLUSTERS, ssh="/nonexistent/ssh", **kwargs)


def test_missing_ssh_is_reported_as_such() -> None:
    with pytest.raises(Hy2faError) as caught:
        resolve("saga", profiles=BUILTIN_CLUSTERS, ssh="/nonexistent/ssh")
    assert caught.value.reason == "ssh_missing"


@pytest.mark.parametrize("template", ["/tmp/x/%%h-%r", "/tmp/cm-%%%C"])
def test_a_template_that_leaves_a_literal_percent_is_refused(
    template: str, short_tmp: Path
) -> None:
    empty = short_tmp / "empty"
    empty.write_text("")
    with pytest.raises(InvalidInput, match="literal '%'"):
        resolve(
            "127.0.0.1",
            profiles={},
            user="ola",
            config_file=str(empty),
            control_path_template=template,
        )


def test_a_percent_in_home_is_refused_not_passed_to_ssh(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = short_tmp / "a%dhome"
    home.mkdir()
    # The home ssh uses is the passwd entry's (it ignores $HOME): one with a "%" in it.
    monkeypatch.setattr(controlpath, "passwd_home", lambda: str(home))
    empty = short_tmp / "empty"
    empty.write_text("")
    with pytest.raises(InvalidInput, match="literal '%'"):
        resolve("127.0.0.1", profiles={}, user="ola", config_file=str(empty))


def test_configured_clusters_may_only_use_safe_ssh_options() -> None:
    refused = load_profiles(
        {"lab": {"host": "lab.example.org", "ssh_options": {"PKCS11Provider": "/x.so"}}},
        include_ssh_config_hosts=False,
    )
    assert refused["lab"].error.startswith("Hy2faLab.clusters['lab']: ssh_options: ")
    assert "PKCS11Provider cannot be set" in refused["lab"].error
    profiles = load_profiles(
        {"lab": {"host": "lab.example.org", "ssh_options": {"ProxyJump": "ola@bastion:2222"}}},
        include_ssh_config_hosts=False,
    )
    assert profiles["lab"].ssh_options == (("ProxyJump", "ola@bastion:2222"),)
