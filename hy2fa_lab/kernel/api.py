"""``ensure()`` and ``socket_path()``: what code in a kernel calls before it uses ssh."""

from __future__ import annotations

import getpass
import math
import os
import sys
import time
from typing import TextIO

from ..core import messages, mine, mux, validate
from ..core.errors import Hy2faError, InvalidInput, UnknownCluster
from ..core.sshconfig import user_config_file
from ..core.targets import Targets
from ..core.types import PromptKind
from .backends import (
    WAIT,
    Backend,
    LocalBackend,
    ServerUnavailable,
    View,
    choose_backend,
    kernel_settings,
)

# Socket paths the server gave for (cluster, user): the server may be configured on its
# command line in ways this kernel cannot read, and its answer is the one that counts.
# Each is kept with the files that decide it (the person's own settings, where Lab writes a
# new user name, and the ssh config) as they were: once either changed, the path is found
# again, so a live master of the old user is not handed out after a change of user.
_Key = tuple[str, str | None, str | None]
_known_paths: dict[_Key, tuple[str, tuple[tuple[str, tuple[int, ...] | None], ...]]] = {}


_resolver: Targets | None = None


def _targets() -> Targets:
    """What resolves a socket path here: the engine when it already runs in this kernel,
    else the same resolution without it (no session engine imported until a login is
    needed: the first ``ensure()`` of a kernel with a live master pays for its path alone)."""
    global _resolver
    if LocalBackend._instance is not None:
        return LocalBackend._instance.manager
    if _resolver is None:
        _resolver = Targets(kernel_settings())
    return _resolver


def _deciders() -> tuple[tuple[str, tuple[int, ...] | None], ...]:
    """The files a socket path depends on, each with its signature (a stat) now."""
    try:
        settings = _targets().settings
    except Hy2faError:
        return ()
    files = [os.path.expanduser(settings.ssh_config or user_config_file())]
    if settings.clusters_file:
        files.append(settings.clusters_file)
    return tuple((name, mine.signature(name)) for name in files)


def _known(key: _Key) -> str | None:
    """The path kept for ``key`` while the files that decided it are unchanged."""
    kept = _known_paths.get(key)
    if kept is None:
        return None
    path, deciders = kept
    if any(mine.signature(name) != seen for name, seen in deciders):
        _known_paths.pop(key, None)
        return None
    return path


def _check(cluster: str, user: str | None, persist: str | int | None, timeout: float) -> None:
    validate.host(cluster)
    if user is not None:
        validate.user(user)
    if persist is not None:
        validate.persist(persist)
    if (
        not isinstance(timeout, (int, float))
        or isinstance(timeout, bool)
        or not 0 < timeout < math.inf
    ):
        raise InvalidInput("timeout must be a positive, finite number of seconds")


def _local_path(cluster: str, user: str | None, control_path: str | None = None) -> str | None:
    try:
        return _targets().resolve(cluster, user=user, control_path=control_path).control_path
    except Hy2faError:
        return None


def socket_path(cluster: str, user: str | None = None) -> str:
    """The ControlMaster socket of ``cluster``: what ``hy2fa path`` and the server use."""
    validate.host(cluster)
    backend = choose_backend()
    if backend.kind == "server":
        try:
            return backend.control_path(cluster, user)
        except (UnknownCluster, ServerUnavailable):
            pass
    return _targets().resolve(cluster, user=user).control_path


def ensure(
    cluster: str,
    timeout: float = 300,
    user: str | None = None,
    persist: str | int | None = None,
    *,
    control_path: str | None = None,
    out: TextIO | None = None,
) -> str:
    """Return the socket path of a live master for ``cluster``, logging in first if needed.

    ``control_path`` makes the socket exactly there (e.g. where HSP's ``ssh_socket_path``
    points), instead of where the ssh config or hy2fa's template would put it.

    With the server extension, the login runs in the Jupyter server and the code is typed in
    JupyterLab (dialog or sidebar); without it, the engine runs here and asks with getpass.

    A cluster whose site hands out certificates (profile key ``certificate``) renews when a
    login is needed, never under a live master: ssh multiplexes over the master, which keeps
    working after its certificate expires, so a live master is returned as it is. Once the
    master is gone, the login uses the certificate on disk when it is still valid for longer
    than ``renew_before`` (nothing asked), and otherwise asks for the password + OTP, in Lab
    (or here) like any other question.
    Raises :class:`Hy2faError` (its ``reason`` says why) on failure or after ``timeout``.
    """
    _check(cluster, user, persist, timeout)
    if control_path is not None:
        validate.control_path_template(control_path)
    out = out or sys.stdout
    persist_text = None if persist is None else str(persist)
    key = (cluster, user, control_path)
    known = _known(key)
    if known is not None and mux.alive(known) is not None:
        return known  # the common case: no HTTP, no ssh, ~0.2 ms
    deciders = _deciders()  # as they are before the path is found: a change after is seen
    path = _local_path(cluster, user, control_path)
    if path is not None and mux.alive(path) is not None:
        _known_paths[key] = (path, deciders)  # next time: one mux check, no ssh -G
        return path

    backend: Backend = choose_backend()
    try:
        view = backend.connect(cluster, user, persist_text, control_path)
    except UnknownCluster:
        if backend.kind != "server":
            raise
        backend = LocalBackend.shared()  # a host the server was not told about
        view = backend.connect(cluster, user, persist_text, control_path)
    path = _wait(backend, view, time.monotonic() + timeout, timeout, out)
    _known_paths[key] = (path, deciders)
    return path


def _wait(backend: Backend, view: View, deadline: float, timeout: float, out: TextIO) -> str:
    name = view["name"]
    announced = False
    answered = 0
    while True:
        # Followed by its id: another connection may have the same name (a master a
        # notebook's own ssh made, a finished login this one superseded).
        key = str(view.get("superseded_by") or view.get("id") or name)
        if view.get("superseded_by"):
            view = backend.get(key)
            continue
        state = view["state"]
        if state == "connected":
            if announced:  # one line when it waited, one when done; nothing on the fast path
                print(f"hy2fa: {name} connected", file=out, flush=True)
            return str(view["control_path"])
        if state in ("failed", "disconnected", "unresponsive"):
            raise Hy2faError(
                f"{name}: {messages.of_view(view)}", reason=view.get("reason") or state
            )
        prompt = view.get("prompt")
        if state == "prompting" and prompt and prompt.get("id", 0) > answered:
            if backend.kind == "server":
                if not announced:
                    print(
                        f"hy2fa: {name} is asking for {_what(prompt)}: type it in the JupyterLab "
                        f"dialog or the 2FA connections sidebar (waiting up to {timeout:.0f} s)",
                        file=out,
                        flush=True,
                    )
                    announced = True
            else:
                answered = prompt["id"]
                if view.get("message"):
                    print(view["message"], file=out, flush=True)
                _ask_here(backend, key, name, prompt)
        left = deadline - time.monotonic()
        if left <= 0:
            raise Hy2faError(
                f"{name}: not connected within {timeout:.0f} s (state {state})", reason="timeout"
            )
        # The next change, as soon as it happens (the server holds the request until then).
        view = backend.get(key, after=view.get("version", 0), wait=min(left, WAIT))


def _what(prompt: View) -> str:
    kind = prompt.get("kind")
    return {
        "otp": "a one-time code",
        "duo": "a Duo passcode or option",
        "password": "a password",
        "passphrase": "a key passphrase",
        "hostkey": "a decision on a new host key",
    }.get(str(kind), "an answer")


def _ask_here(backend: Backend, key: str, name: str, prompt: View) -> None:
    """No server: ask in the kernel (stdin request in Jupyter, the terminal in IPython)."""
    text = str(prompt.get("text") or "Answer: ")
    try:
        if prompt.get("kind") == PromptKind.HOSTKEY.value:
            response = input(text)
        else:
            response = getpass.getpass(text)
    except Exception as error:  # StdinNotImplementedError and friends
        raise Hy2faError(
            f"{name}: cannot ask for the code here ({type(error).__name__}); "
            "use %hy2fa connect in a notebook",
            reason="no_stdin",
        ) from None
    try:
        backend.answer(key, response, prompt.get("id"))
    finally:
        del response
