"""Where a kernel's connections are made: its Jupyter server (REST), or the engine in-kernel.

Both backends speak the server API's JSON (``MasterSession.to_json``), so ``ensure()``, the
magic and the widget do not care which one they talk to.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..config import settings_from_jupyter_config
from ..core.errors import Hy2faError, InvalidInput, NoPrompt, UnknownCluster
from ..core.settings import Settings

if TYPE_CHECKING:
    from ..core.manager import Manager

View = dict[str, Any]
T = TypeVar("T")

_HTTP_TIMEOUT = 30.0
WAIT = 25.0  # how long one ``get(after=...)`` waits for a change (the server allows 60)


@dataclass(frozen=True)
class ServerInfo:
    url: str  # ends with "/", includes the base URL
    token: str

    def __repr__(self) -> str:  # the token is a credential: keep it out of tracebacks
        return f"ServerInfo(url={self.url!r}, token=***)"


def find_server() -> ServerInfo | None:
    """The server that started this kernel, or the one named by HY2FA_SERVER_URL.

    The server is read from its own runtime file, ``jpserver-<JPY_PARENT_PID>.json`` in
    jupyter_core's runtime dir (a kernel has jupyter_core loaded already): not through
    ``jupyter_server.serverapp``, whose import (jupyter_events, jsonschema, lark grammars)
    costs a new kernel a second or more.
    """
    url = os.environ.get("HY2FA_SERVER_URL")
    if url:
        return ServerInfo(url.rstrip("/") + "/", os.environ.get("HY2FA_TOKEN", ""))
    parent = os.environ.get("JPY_PARENT_PID")
    if not parent or not parent.isdigit():
        return None
    info = _runtime_info(int(parent))
    if info is None or not info.get("url"):
        return None
    return ServerInfo(_direct_url(info).rstrip("/") + "/", str(info.get("token") or ""))


def _runtime_info(pid: int) -> dict[str, Any] | None:
    """What the server with ``pid`` wrote in ``jpserver-<pid>.json`` (as jupyter_server's
    ``list_running_servers`` reads it), or None."""
    from jupyter_core.paths import jupyter_runtime_dir

    path = os.path.join(jupyter_runtime_dir(), f"jpserver-{pid}.json")
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError):  # no such server, or its file half written
        return None
    if not isinstance(info, dict) or info.get("pid") != pid:
        return None
    return info


# An address a server listens on for every interface, and the loopback address that reaches
# it. jupyter_server writes ``hostname`` "localhost" when its ip is unset.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}  # noqa: S104 - compared, never bound


def _direct_url(info: dict[str, Any]) -> str:
    """The server's URL as this machine reaches it directly.

    jupyter_server writes a server listening on every address (``--ip=0.0.0.0`` or ``::``)
    with the machine's host name, which may resolve to an address of another interface, or
    not at all in a container; such a server is reached on loopback. A server on a given
    address or name is reached there (never through a proxy: see ``_opener``). An HTTPS
    server keeps its name, which its certificate names; a Unix socket server keeps its
    ``http+unix`` URL, which ``ServerBackend`` does not speak.
    """
    url = str(info["url"])
    port = info.get("port")
    loopback = _WILDCARDS.get(str(info.get("hostname")))
    if loopback is None or info.get("sock") or info.get("secure") or not isinstance(port, int):
        return url
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{loopback}:{port}"))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: the token goes to the server's own URL and nowhere else
    (urllib would send it on to wherever ``Location`` points). An answer that redirects
    (a login page, a URL that is not the server's) means there is no server to ask."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        fp.close()
        raise urllib.error.URLError(f"it answered {code} {msg}, a redirect, not followed")


def _opener(url: str) -> urllib.request.OpenerDirector:
    """Never an HTTP proxy: ``url`` is always the kernel's own Jupyter server, on this
    machine (or named by HY2FA_SERVER_URL), and every request carries the server's token.
    HPC sites often set ``http_proxy`` without a ``no_proxy`` naming a login node's host
    name, and a proxy would see the token (and answer 502 for a host it cannot reach)."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


class Backend(Protocol):
    kind: str

    def connect(
        self,
        cluster: str,
        user: str | None,
        persist: str | None,
        control_path: str | None = None,
    ) -> View: ...
    def get(self, name: str, after: int | None = None, wait: float = WAIT) -> View: ...
    def answer(self, name: str, response: str, prompt_id: int | None) -> View: ...
    def disconnect(self, name: str) -> View: ...
    def connections(self) -> list[View]: ...
    def control_path(self, cluster: str, user: str | None) -> str: ...


class ServerUnavailable(Hy2faError):
    reason = "server_unavailable"


_ERRORS: dict[str, type[Hy2faError]] = {
    "unknown_cluster": UnknownCluster,
    "no_prompt": NoPrompt,
    "invalid": InvalidInput,
    "bad_request": InvalidInput,
}


class ServerBackend:
    """The server extension's REST API, with the server's token."""

    kind = "server"

    def __init__(self, info: ServerInfo) -> None:
        self.info = info

    def request(
        self, method: str, path: str, body: Any = None, timeout: float = _HTTP_TIMEOUT
    ) -> Any:
        url = urllib.parse.urljoin(self.info.url, "hy2fa/" + path)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.info.token:
            headers["Authorization"] = f"token {self.info.token}"
        if not url.startswith(("http://", "https://")):
            raise ServerUnavailable(f"Not an HTTP server URL: {self.info.url}")
        request = urllib.request.Request(  # noqa: S310 - scheme checked just above
            url, data=data, method=method, headers=headers
        )
        try:
            with _opener(url).open(request, timeout=timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            try:
                payload = json.loads(error.read())
            except ValueError:
                payload = {}
            if error.code == 404 and "reason" not in payload:
                raise ServerUnavailable("The server has no hy2fa extension") from None
            if error.code in (401, 403):
                raise ServerUnavailable(f"The server refused the token ({error.code})") from None
            reason = payload.get("reason") or "error"
            message = payload.get("message") or f"HTTP {error.code}"
            raise _ERRORS.get(reason, Hy2faError)(message, reason=reason) from None
        except (urllib.error.URLError, OSError) as error:
            raise ServerUnavailable(f"Cannot reach the Jupyter server: {error}") from None

    def version(self) -> str:
        return str(self.request("GET", "version")["version"])

    def connect(
        self,
        cluster: str,
        user: str | None,
        persist: str | None,
        control_path: str | None = None,
    ) -> View:
        body: dict[str, Any] = {"cluster": cluster}
        if user is not None:
            body["user"] = user
        if persist is not None:
            body["persist"] = persist
        if control_path is not None:
            body["control_path"] = control_path
        view: View = self.request("POST", "connections", body)
        return view

    def get(self, name: str, after: int | None = None, wait: float = WAIT) -> View:
        """The connection; with ``after`` (a view's ``version``), once it changes, or after
        ``wait`` seconds: the server holds the request, nothing polls."""
        path = "connections/" + urllib.parse.quote(name, safe="")
        if after is None:
            view: View = self.request("GET", path)
            return view
        query = urllib.parse.urlencode({"after": after, "wait": f"{wait:.3f}"})
        view = self.request("GET", f"{path}?{query}", timeout=wait + _HTTP_TIMEOUT)
        return view

    def answer(self, name: str, response: str, prompt_id: int | None) -> View:
        body: dict[str, Any] = {"response": response}
        if prompt_id is not None:
            body["prompt_id"] = prompt_id
        del response
        quoted = urllib.parse.quote(name, safe="")
        view: View = self.request("POST", f"connections/{quoted}/answer", body)
        body.clear()
        return view

    def disconnect(self, name: str) -> View:
        view: View = self.request("DELETE", "connections/" + urllib.parse.quote(name, safe=""))
        return view

    def connections(self) -> list[View]:
        return list(self.request("GET", "connections")["connections"])

    def control_path(self, cluster: str, user: str | None) -> str:
        path = "clusters/" + urllib.parse.quote(cluster, safe="")
        if user is not None:
            path += "?" + urllib.parse.urlencode({"user": user})
        row = self.request("GET", path)
        if not row.get("control_path"):
            error = row.get("error") or {}
            raise Hy2faError(error.get("message") or "No socket path", reason=error.get("reason"))
        return str(row["control_path"])

    def settings(self) -> Settings:
        """The server's own settings (command-line flags included)."""
        return Settings(**self.request("GET", "settings"))


class LocalBackend:
    """The engine inside this kernel, on an event loop of its own in a daemon thread.

    The master is still a daemon (ControlPersist), so it outlives the kernel.
    """

    kind = "kernel"
    _instance: LocalBackend | None = None
    _instance_lock = threading.Lock()

    def __init__(self, manager: Manager | None = None) -> None:
        from ..core.manager import Manager  # the engine: only once one is needed here

        self.manager = manager or Manager(kernel_settings())
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hy2fa-engine")
        self.thread.daemon = True
        self.thread.start()

    @classmethod
    def shared(cls) -> LocalBackend:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def connect(
        self,
        cluster: str,
        user: str | None,
        persist: str | None,
        control_path: str | None = None,
    ) -> View:
        async def go() -> View:
            session = await self.manager.connect(
                cluster, user=user, persist=persist, control_path=control_path
            )
            return session.to_json()

        return self.run(go())

    def get(self, name: str, after: int | None = None, wait: float = WAIT) -> View:
        async def go() -> View:
            if after is None:
                return self.manager.get(name).to_json()
            return (await self.manager.watch(name, after, wait)).to_json()

        return self.run(go(), timeout=wait + 60.0)

    def answer(self, name: str, response: str, prompt_id: int | None) -> View:
        async def go(text: str) -> View:
            session = await self.manager.answer(name, text, prompt_id)
            return session.to_json()

        coroutine = go(response)
        del response
        return self.run(coroutine)

    def disconnect(self, name: str) -> View:
        async def go() -> View:
            session = await self.manager.disconnect(name)
            return session.to_json()

        return self.run(go())

    def connections(self) -> list[View]:
        async def go() -> list[View]:
            await self.manager.refresh()
            return [session.to_json() for session in self.manager.sessions()]

        return self.run(go())

    def control_path(self, cluster: str, user: str | None, control_path: str | None = None) -> str:
        return self.manager.resolve(cluster, user=user, control_path=control_path).control_path


def kernel_settings() -> Settings:
    """The settings of this kernel's server when it answers, else the Jupyter config's: the
    kernel computes the socket paths the server would."""
    info = find_server()
    if info is not None:
        try:
            return ServerBackend(info).settings()
        except (Hy2faError, TypeError):  # unreachable, or a server of another version
            pass
    return settings_from_jupyter_config()


def choose_backend() -> Backend:
    """The server when it has the extension; otherwise the engine in this kernel."""
    info = find_server()
    if info is not None:
        server = ServerBackend(info)
        try:
            server.version()
        except ServerUnavailable:
            pass
        else:
            return server
    return LocalBackend.shared()
