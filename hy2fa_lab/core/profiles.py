"""Cluster profiles (data, not code) and their resolution to a concrete :class:`Target`.

A profile says where a cluster is and what it asks. What ssh will actually do (host name,
user, port, ControlPath) always comes from ``ssh -G``, so the user's ssh config is honoured.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from . import controlpath, validate
from .errors import InvalidInput
from .mine import FIELDS as MINE_FIELDS
from .mine import Mine
from .settings import DEFAULTS
from .sshconfig import config_hosts, ssh_g
from .types import CertificateSpec, Target


@dataclasses.dataclass(frozen=True)
class ClusterProfile:
    name: str
    host: str  # what ssh is given after "--": a host name or an ssh config alias
    port: int | None = None  # None: whatever ssh config says (22 by default)
    user: str | None = None
    persist: str | None = None
    ssh_options: tuple[tuple[str, str], ...] = ()
    asks: str = ""
    docs: str = ""
    label: str = ""
    source: str = "builtin"  # builtin | config | ssh_config | mine | host
    # Why a cluster of the config cannot be used (it is listed with this error, and a connect
    # is refused with it); empty for a usable profile.
    error: str = ""
    # The values the person set themselves (``mine.py``): any of host, user, port, persist,
    # label, ssh_options.
    mine: tuple[str, ...] = ()
    # Where its certificate comes from (``certificate`` of the config): the login method is
    # then the certificate's (``login_certificate.py``); None: ssh's own questions.
    certificate: CertificateSpec | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "persist": self.persist,
            "ssh_options": dict(self.ssh_options),
            "asks": self.asks,
            "docs": self.docs,
            "label": self.label or self.name,
            "source": self.source,
            "mine": list(self.mine),
        }


_SIGMA2_ASKS = "One-time password (OATH), then your password"
_SIGMA2_DOCS = "https://documentation.sigma2.no/getting_started/ssh.html"
_ALLIANCE_ASKS = "SSH key or password, then Duo (passcode or push)"
_ALLIANCE_DOCS = "https://docs.alliancecan.ca/wiki/Multifactor_authentication"


_NERSC_DOCS = "https://docs.nersc.gov/connect/mfa/#sshproxy"
# NERSC documents sshproxy for Perlmutter: password + OTP once, a key and a certificate its CA
# signed for 24 h, in the files NERSC's own sshproxy.sh writes (so both tools share them).
_NERSC_SSHPROXY = CertificateSpec(
    issuer="sshproxy",
    key=os.path.expanduser(os.path.join("~", ".ssh", "nersc")),
    url="https://sshproxy.nersc.gov",
    scope="default",
)


def _builtin(
    name: str,
    host: str,
    label: str,
    asks: str,
    docs: str,
    certificate: CertificateSpec | None = None,
) -> ClusterProfile:
    return ClusterProfile(
        name=name, host=host, asks=asks, docs=docs, label=label, certificate=certificate
    )


BUILTIN_CLUSTERS: dict[str, ClusterProfile] = {
    profile.name: profile
    for profile in (
        _builtin("saga", "saga.sigma2.no", "Saga (Sigma2)", _SIGMA2_ASKS, _SIGMA2_DOCS),
        _builtin("fram", "fram.sigma2.no", "Fram (Sigma2)", _SIGMA2_ASKS, _SIGMA2_DOCS),
        _builtin("betzy", "betzy.sigma2.no", "Betzy (Sigma2)", _SIGMA2_ASKS, _SIGMA2_DOCS),
        _builtin("olivia", "olivia.sigma2.no", "Olivia (Sigma2)", _SIGMA2_ASKS, _SIGMA2_DOCS),
        _builtin(
            "narval", "narval.alliancecan.ca", "Narval (Alliance)", _ALLIANCE_ASKS, _ALLIANCE_DOCS
        ),
        _builtin(
            "rorqual",
            "rorqual.alliancecan.ca",
            "Rorqual (Alliance)",
            _ALLIANCE_ASKS,
            _ALLIANCE_DOCS,
        ),
        _builtin("fir", "fir.alliancecan.ca", "Fir (Alliance)", _ALLIANCE_ASKS, _ALLIANCE_DOCS),
        _builtin("nibi", "nibi.alliancecan.ca", "Nibi (Alliance)", _ALLIANCE_ASKS, _ALLIANCE_DOCS),
        _builtin(
            "trillium",
            "trillium.alliancecan.ca",
            "Trillium (Alliance)",
            _ALLIANCE_ASKS,
            _ALLIANCE_DOCS,
        ),
        _builtin(
            "perlmutter",
            "perlmutter.nersc.gov",
            "Perlmutter (NERSC)",
            "Password + OTP typed together",  # at sshproxy (once a day) or, without it, at ssh
            _NERSC_DOCS,
            certificate=_NERSC_SSHPROXY,
        ),
    )
}

_PROFILE_KEYS = {
    "host",
    "port",
    "user",
    "persist",
    "ssh_options",
    "asks",
    "docs",
    "label",
    "certificate",
}
_CERTIFICATE_KEYS = {
    "sshproxy": {"issuer", "url", "scope", "key", "login", "renew_before"},
    # The site's own tool (CSCS cscs-key, Cineca step, Isambard clifton): from the person's
    # Jupyter config only (no REST body, own-settings file or remembered master has a
    # ``certificate``), run by ``issuer_command.py``.
    "command": {"issuer", "argv", "key", "renew_before"},
}
_MAX_ARGV = 64
_SCOPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def certificate_spec(data: object) -> CertificateSpec:
    """A profile's ``certificate`` checked: ``{"issuer": "sshproxy", "url", "scope", "key",
    "login"?, "renew_before"?}`` or ``{"issuer": "command", "argv", "key", "renew_before"?}``.
    The URL is HTTPS (plain HTTP only to a loopback address), with no user or password in it;
    ``key`` is a path (``~`` expanded) that must be absolute; ``argv`` a list of words (the
    first one's ``~`` expanded), run without a shell."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"certificate must be a mapping, not {validate.shown(data)}")
    issuer = data.get("issuer")
    if issuer not in _CERTIFICATE_KEYS:
        raise InvalidInput(
            f"certificate: issuer must be one of {', '.join(sorted(_CERTIFICATE_KEYS))}, "
            f"not {validate.shown(issuer)}"
        )
    unknown = [str(key) for key in data if key not in _CERTIFICATE_KEYS[issuer]]
    if unknown:
        raise InvalidInput(
            f"certificate: unknown settings: {validate.shown(', '.join(sorted(unknown)))[1:-1]}"
        )
    key = data.get("key")
    if not isinstance(key, str) or not key.strip() or "\x00" in key or len(key) > 1024:
        raise InvalidInput(f"certificate: key must be a file path, not {validate.shown(key)}")
    path = os.path.expanduser(key.strip())
    if not os.path.isabs(path):
        raise InvalidInput(f"certificate: key must be an absolute path or start with ~: {key!r}")
    scope = data.get("scope", "default")
    if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
        raise InvalidInput(f"certificate: scope must be a word, not {validate.shown(scope)}")
    login = data.get("login")
    renew = data.get("renew_before", 600)
    try:
        renew_before = validate.duration_seconds(renew)
    except InvalidInput:
        renew_before = -1
    if renew_before is None or renew_before < 0 or renew_before > 7 * 86400:
        raise InvalidInput(
            "certificate: renew_before must be a duration (seconds, or like 10m) up to 7d, "
            f"not {validate.shown(renew)}"
        )
    return CertificateSpec(
        issuer=issuer,
        key=path,
        url=issuer_url(data.get("url")) if issuer == "sshproxy" else "",
        scope=scope,
        login=validate.user(login) if login is not None else None,
        renew_before=renew_before,
        argv=command_argv(data.get("argv")) if issuer == "command" else (),
    )


def command_argv(value: object) -> tuple[str, ...]:
    """The ``command`` issuer's tool and its arguments: a list (never a shell line) of at most
    64 words without NUL, the first a program (``~`` expanded)."""
    if (
        not isinstance(value, (list, tuple))
        or not 0 < len(value) <= _MAX_ARGV
        or not all(isinstance(word, str) and "\x00" not in word and len(word) <= 4096
                   for word in value)
        or not value[0].strip()
    ):  # fmt: skip
        raise InvalidInput(
            "certificate: argv must be a list of words (the program first, no shell), "
            f"not {validate.shown(value)}"
        )
    return (os.path.expanduser(value[0].strip()), *value[1:])


def issuer_url(value: object) -> str:
    """An issuer's base URL: ``https://``, or ``http://`` to a loopback address only."""
    if not isinstance(value, str) or len(value) > 512:
        raise InvalidInput(f"certificate: url must be a URL, not {validate.shown(value)}")
    parts = urllib.parse.urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(f"certificate: url must be an https:// URL: {validate.shown(value)}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput(
            f"certificate: url must hold no user, password, query or fragment: "
            f"{validate.shown(value)}"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InvalidInput(
            f"certificate: url must be https:// (plain http only to 127.0.0.1 or ::1): "
            f"{validate.shown(value)}"
        )
    return value.strip().rstrip("/")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address written as one (not a name to resolve)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def profile_from_config(name: str, data: Mapping[str, Any]) -> ClusterProfile:
    """A profile from Jupyter config or the settings editor; every value is checked.

    :class:`InvalidInput` names the entry and the key: ``Hy2faLab.clusters['lab']: ...``.
    """
    try:
        return _profile_from_config(name, data)
    except InvalidInput as error:
        raise InvalidInput(f"Hy2faLab.clusters[{validate.shown(name)}]: {error.message}") from None


def _profile_from_config(name: str, data: Mapping[str, Any]) -> ClusterProfile:
    validate.cluster_name(name)
    if not isinstance(data, Mapping):
        raise InvalidInput(f"must be a mapping of settings, not {validate.shown(data)}")
    unknown = [str(key) for key in data if key not in _PROFILE_KEYS]
    if unknown:
        raise InvalidInput(
            f"unknown settings: {validate.shown(', '.join(sorted(unknown)))[1:-1]} "
            f"(a cluster takes {', '.join(sorted(_PROFILE_KEYS))})"
        )
    base = BUILTIN_CLUSTERS.get(name)
    host = data.get("host", base.host if base else None)
    if host is None:
        raise InvalidInput("needs a host")
    options = data.get("ssh_options") or {}
    if not isinstance(options, Mapping):
        raise InvalidInput(f"ssh_options must be a mapping, not {validate.shown(options)}")

    def text(key: str) -> str:
        value = data.get(key, getattr(base, key) if base else "")
        return str(value or "")

    def option(key: object, value: object) -> tuple[str, str]:
        try:
            return validate.ssh_option(key, value)
        except InvalidInput as error:
            raise InvalidInput(f"ssh_options: {error.message}") from None

    certificate = data.get("certificate", base.certificate if base else None)

    return ClusterProfile(
        name=name,
        host=validate.host(host),
        port=validate.port(data["port"]) if data.get("port") is not None else None,
        user=validate.user(data["user"]) if data.get("user") else None,
        persist=validate.persist(data["persist"]) if data.get("persist") is not None else None,
        ssh_options=tuple(option(k, v) for k, v in options.items()),
        asks=text("asks"),
        docs=text("docs"),
        label=text("label"),
        source="config",
        certificate=(
            certificate
            if isinstance(certificate, CertificateSpec) or certificate is None
            else certificate_spec(certificate)
        ),
    )


def broken_profile(
    name: str,
    error: str,
    base: ClusterProfile | None = None,
    *,
    source: str = "config",
    mine: tuple[str, ...] = (),
) -> ClusterProfile:
    """A cluster of the config (or of the person's own settings, ``source`` ``mine``) that
    cannot be used: listed (with ``base``'s description, a built-in's or an ssh alias's, when
    there is one) so that its ``error`` is seen, and never resolved or connected to."""
    return ClusterProfile(
        name=name,
        host=base.host if base else "",
        asks=base.asks if base else "",
        docs=base.docs if base else "",
        label=base.label if base else name,
        source=source,
        error=error,
        mine=mine,
    )


def load_profiles(
    user_clusters: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    include_ssh_config_hosts: bool = True,
    config_file: str | None = None,
    broken: Mapping[str, str] | None = None,
    mine: Mine | None = None,
) -> dict[str, ClusterProfile]:
    """Built-in table, then ``~/.ssh/config`` aliases, then configured clusters, then the
    person's own settings (``mine``; last wins).

    An ssh alias named like a built-in cluster (``Host saga``) takes over its destination, so
    the user's own settings for it apply; the built-in description stays. A configured
    cluster that is not valid, and each of ``broken`` (name -> why, the clusters the settings
    left out), is listed with its error in place of any profile of that name: a bad entry
    costs that cluster alone, and never falls back to a built-in or alias of its name.

    The person's own settings (:func:`with_mine`) set their values on any of these, or add
    clusters of their own; a bad entry of theirs is listed with its error in the same way.
    """
    profiles = dict(BUILTIN_CLUSTERS)
    if include_ssh_config_hosts:
        for alias in config_hosts(config_file):
            try:
                name = validate.cluster_name(alias)
            except InvalidInput:
                continue
            base = profiles.get(name)
            profiles[name] = ClusterProfile(
                name=name,
                host=alias,
                asks=base.asks if base else "",
                docs=base.docs if base else "",
                label=base.label if base else alias,
                source="ssh_config",
            )
    for name, data in (user_clusters or {}).items():
        try:
            profiles[name] = profile_from_config(name, data)
        except InvalidInput as error:
            if isinstance(name, str) and _named(name):
                profiles[name] = broken_profile(name, error.message, profiles.get(name))
    for name, message in (broken or {}).items():
        profiles[name] = broken_profile(name, message, profiles.get(name))
    return with_mine(profiles, mine) if mine is not None else profiles


def with_mine(profiles: Mapping[str, ClusterProfile], mine: Mine) -> dict[str, ClusterProfile]:
    """``profiles`` (the site's) with the person's own settings on top.

    An entry with a ``host`` is a cluster of their own (``source`` ``mine``); one without
    sets their values on the site's cluster of that name (its ``source`` stays, and ``mine``
    names what they set): ``ssh_options`` are added to the site's, key by key. Values for a
    cluster the site no longer gives are kept in the file but listed nowhere. A bad entry
    is listed with its error, which names the file and the key, in place of the cluster.
    """
    result = dict(profiles)
    for name, values in mine.clusters.items():
        base = result.get(name)
        keys = tuple(key for key in MINE_FIELDS if key in values)
        if "host" in values:
            result[name] = ClusterProfile(
                name=name,
                host=values["host"],
                port=values.get("port"),
                user=values.get("user"),
                persist=values.get("persist"),
                ssh_options=tuple(values.get("ssh_options", {}).items()),
                label=values.get("label", ""),
                source="mine",
                mine=keys,
            )
        elif base is not None and base.error:
            result[name] = dataclasses.replace(base, mine=keys)  # the site's error stands
        elif base is not None:
            result[name] = dataclasses.replace(
                base,
                port=values.get("port", base.port),
                user=values.get("user", base.user),
                persist=values.get("persist", base.persist),
                ssh_options=_merged(base.ssh_options, values.get("ssh_options", {})),
                label=values.get("label", base.label),
                mine=keys,
            )
    for name, message in mine.broken.items():
        base = result.get(name)
        keys = mine.broken_keys.get(name, ())
        if "host" in keys or base is None:  # a cluster of their own
            result[name] = broken_profile(name, message, source="mine", mine=keys)
        else:
            result[name] = broken_profile(name, message, base, source=base.source, mine=keys)
    return result


def _merged(
    site: Sequence[tuple[str, str]], mine: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """The site's ssh options with the person's on top (ssh's keywords ignore case)."""
    theirs = {key.lower() for key in mine}
    return (*((k, v) for k, v in site if k.lower() not in theirs), *mine.items())


def _named(name: str) -> bool:
    try:
        validate.cluster_name(name)
    except InvalidInput:
        return False
    return True


def explicit_settings(
    profile: ClusterProfile,
    user: str | None,
    port: int | None,
    ssh_options: Sequence[tuple[str, str]],
) -> tuple[str | None, int | None, tuple[tuple[str, str], ...]]:
    """The user, port and ``-o`` options :func:`resolve` gives ``ssh -G`` for ``profile``:
    the caller's (checked) over the profile's."""
    explicit_user = validate.user(user) if user is not None else profile.user
    explicit_port = validate.port(port) if port is not None else profile.port
    options = dict(profile.ssh_options)
    for key, value in ssh_options:
        checked_key, checked_value = validate.ssh_option(key, value)
        options[checked_key] = checked_value
    return explicit_user, explicit_port, tuple(options.items())


def resolve(
    target: str,
    *,
    profiles: Mapping[str, ClusterProfile],
    user: str | None = None,
    port: int | None = None,
    persist: str | None = None,
    ssh_options: Sequence[tuple[str, str]] = (),
    control_path_template: str | None = None,
    control_path: str | None = None,
    config_file: str | None = None,
    default_persist: str = DEFAULTS.default_persist,
    ssh: str = DEFAULTS.ssh,
) -> Target:
    """A profile name or a plain host, resolved through ``ssh -G`` (blocking: runs ssh).

    ``control_path`` puts the socket exactly there (a tool's own socket path, tokens and
    ``~`` expanded): it wins over the ssh config and is refused, not shortened, when it is
    too long. ``control_path_template`` only applies when the ssh config names no path.
    """
    profile = profiles.get(target)
    if profile is None:
        profile = ClusterProfile(name=validate.host(target), host=target, source="host")
    if profile.error:
        raise InvalidInput(profile.error)
    explicit_user, explicit_port, option_pairs = explicit_settings(profile, user, port, ssh_options)
    chosen_persist = validate.persist(
        persist if persist is not None else profile.persist or default_persist
    )

    settings = ssh_g(
        profile.host,
        user=explicit_user,
        port=explicit_port,
        options=option_pairs,
        config_file=config_file,
        ssh=ssh,
    )
    hostname = settings.get("hostname", profile.host)
    remote_user = settings.get("user", explicit_user or "")
    remote_port = validate.port(settings.get("port", explicit_port or 22))
    configured = settings.get("controlpath", "none")
    template_args: dict[str, Any] = {
        "hostname": hostname,
        "remote_user": remote_user,
        "remote_port": remote_port,
        "explicit_user": explicit_user,
        "explicit_port": explicit_port,
        "options": option_pairs,
        "config_file": config_file,
        "ssh": ssh,
    }
    if control_path is not None:
        validate.control_path_template(control_path)
        path = _exact(
            _template_path(control_path, profile.host, settings, shorten=False, **template_args),
            "the control path asked for",
        )
    elif configured and configured.lower() != "none":
        # ssh itself uses this path as it is, so there is no shorter one to fall back to:
        # refuse it now rather than after a code was asked for and the bind failed.
        path = _exact(configured, f"the ControlPath ssh is configured to use for {target}")
    else:
        path = _template_path(
            control_path_template or controlpath.DEFAULT_TEMPLATE,
            profile.host,
            settings,
            **template_args,
        )
    return Target(
        name=profile.name,
        destination=profile.host,
        hostname=hostname,
        user=remote_user,
        port=remote_port,
        control_path=path,
        persist=chosen_persist,
        ssh_options=option_pairs,
        explicit_user=explicit_user,
        explicit_port=explicit_port,
        cluster=profile.name,
        certificate=profile.certificate,
    )


def _exact(path: str, what: str) -> str:
    """A path ssh will use as it is: no literal ``%``, short enough to bind."""
    controlpath.checked(path)
    if not controlpath.fits(path):
        raise InvalidInput(
            f"{validate.shown(what)[1:-1]} is too long for a Unix socket "
            f"({len(os.fsencode(path))} bytes, at most {controlpath.MAX_LENGTH}): "
            f"{validate.shown(path)}; choose a shorter one, e.g. ~/.ssh/cm-%C"
        )
    return path


def _template_path(
    template: str,
    destination: str,
    settings: Mapping[str, str],
    *,
    shorten: bool = True,
    hostname: str,
    remote_user: str,
    remote_port: int,
    explicit_user: str | None,
    explicit_port: int | None,
    options: Sequence[tuple[str, str]],
    config_file: str | None,
    ssh: str,
) -> str:
    tokens = controlpath.Tokens(
        host=hostname,
        port=remote_port,
        remote_user=remote_user,
        original_host=destination,
        host_key_alias=settings.get("hostkeyalias", ""),
    )
    if settings.get("proxyjump", "none").lower() != "none":
        # Whether %C hashes the jump host differs between OpenSSH releases: let ssh say.
        asked = ssh_g(
            destination,
            user=explicit_user,
            port=explicit_port,
            options=(*options, ("ControlPath", template)),
            config_file=config_file,
            ssh=ssh,
        )
        path = asked.get("controlpath", "")
        if not path or path.lower() == "none":
            raise InvalidInput(f"ssh did not expand the control path {validate.shown(template)}")
    else:
        path = controlpath.expand(template, tokens)
    return controlpath.checked(controlpath.shortened(path, tokens) if shorten else path)
