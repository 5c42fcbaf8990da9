"""Input checks that stand between the API/CLI and ssh's argv."""

from __future__ import annotations

import pytest

from hy2fa_lab.core import validate
from hy2fa_lab.core.errors import InvalidInput


@pytest.mark.parametrize("bad", ["-oProxyCommand=x", "a b", "a\nb", "", "host\x00", "a;b", 5])
def test_bad_hosts(bad: object) -> None:
    with pytest.raises(InvalidInput):
        validate.host(bad)


@pytest.mark.parametrize("good", ["saga.sigma2.no", "saga", "127.0.0.1", "::1", "my-alias_2"])
def test_good_hosts(good: str) -> None:
    assert validate.host(good) == good


@pytest.mark.parametrize("bad", ["-l", "a b", "a@b", "x/y", ""])
def test_bad_users(bad: str) -> None:
    with pytest.raises(InvalidInput):
        validate.user(bad)


@pytest.mark.parametrize(("value", "expected"), [(22, 22), ("2222", 2222), (65535, 65535)])
def test_ports(value: object, expected: int) -> None:
    assert validate.port(value) == expected


@pytest.mark.parametrize("bad", [0, 65536, -1, "22x", None, True, 2.5e9])
def test_bad_ports(bad: object) -> None:
    with pytest.raises(InvalidInput):
        validate.port(bad)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("600", 600),
        (600, 600),
        ("10m", 600),
        ("2h", 7200),
        ("1h40m", 6000),
        ("1d", 86400),
        ("90s", 90),
        ("yes", None),
        ("0", None),
    ],
)
def test_durations(value: object, seconds: int | None) -> None:
    assert validate.duration_seconds(value) == seconds


@pytest.mark.parametrize("bad", ["", "10x", "m", "-5", "1h 40m", "forever", None, True, "1.5h"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(InvalidInput):
        validate.persist(bad)


def test_persist_normalises_for_ssh() -> None:
    assert validate.persist("1h40m") == "6000s"
    assert validate.persist("yes") == "yes"


@pytest.mark.parametrize(
    ("key", "value"),
    [("ProxyCommand", "nc %h %p"), ("ControlPath", "/tmp/x"), ("bad key", "1"), ("X", "a\nb")],
)
def test_refused_ssh_options(key: str, value: str) -> None:
    with pytest.raises(InvalidInput):
        validate.ssh_option(key, value)


def test_accepted_ssh_option() -> None:
    assert validate.ssh_option("ServerAliveInterval", "15") == ("ServerAliveInterval", "15")


@pytest.mark.parametrize("name", ["ola\u202egnp.exe", "o\u200bla", "\u2066ola"])
def test_invisible_and_direction_characters_are_refused_in_names(name: str) -> None:
    with pytest.raises(InvalidInput, match="invisible or direction characters"):
        validate.user(name)
