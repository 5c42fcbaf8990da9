"""Thin REST handlers over the engine's manager (the API is in the README). One class per endpoint.

The person's own cluster settings (``PATCH``/``DELETE hy2fa/clusters/<name>``, ``POST
hy2fa/clusters``) are changed through the manager's :class:`Targets` methods, the ones the
``hy2fa`` command uses, and each change is an event carrying the cluster's row.

Bodies are read once and never logged; an answer goes straight to the session and is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler

from .._version import __version__
from ..core import validate
from ..core.asks import AnswerTooLong, AskBridge, UnknownAsk
from ..core.errors import Hy2faError, InvalidInput, NoPrompt, UnknownCluster
from ..core.manager import Manager
from ..core.mine import ClusterExists
from ..core.openssh import Unsupported

AUTH_RESOURCE = "hy2fa"


class BadRequest(Hy2faError):
    reason = "bad_request"


class NoManagedBlock(UnknownCluster):
    """``DELETE hy2fa/clusters/<name>/config-ssh`` and the ssh config has no block for it."""

    reason = "no_block"


def status_for(error: Hy2faError) -> int:
    """The HTTP status of an engine error: the one place they are mapped."""
    if isinstance(error, BadRequest):
        return 400
    if isinstance(error, (UnknownCluster, UnknownAsk)):
        return 404
    if isinstance(error, AnswerTooLong):
        return 413
    if isinstance(error, (NoPrompt, ClusterExists)):
        return 409
    if isinstance(error, InvalidInput):
        return 422
    if isinstance(error, Unsupported):
        return 501
    return 502


def _fields(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        names = ", ".join(validate.shown(key) for key in sorted(unknown)[:5])
        raise BadRequest(f"Unknown fields: {names}{', …' if len(unknown) > 5 else ''}")


MAX_WAIT = 60.0


def _number(text: str, key: str, kind: type[float] | type[int]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise BadRequest(f"'{key}' must be a number") from None
    if value != value:  # NaN
        raise BadRequest(f"'{key}' must be a number")
    return value


def _string_field(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise BadRequest(f"'{key}' is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string")
    return value


def _mine_values(data: dict[str, Any]) -> dict[str, Any]:
    """A body of the person's cluster settings, each value of the type REST takes (another
    type is a 400 here; a value of the right type that is refused is the engine's 422)."""
    for key, value in data.items():
        if value is None:
            continue
        if key in ("name", "host", "user", "label") and not isinstance(value, str):
            raise BadRequest(f"'{key}' must be a string")
        if key in ("port", "persist") and (
            isinstance(value, bool) or not isinstance(value, (int, str))
        ):
            raise BadRequest(f"'{key}' must be a number or a string")
        if key == "ssh_options" and not isinstance(value, dict):
            raise BadRequest("'ssh_options' must be an object")
    return data


def _response(data: dict[str, Any]) -> str:
    """Takes the answer out of ``data``, so no copy of it stays in the request's body dict."""
    response = data.pop("response", None)
    if not isinstance(response, str):
        raise BadRequest("'response' is required and must be a string")
    return response


class Hy2faHandler(APIHandler):
    """The manager, JSON replies, and engine errors as jupyter_server's ``{message, reason}``.

    A :class:`Hy2faError` raised by a handler becomes its HTTP status here (``send_error``),
    its ``{message, reason}`` body (``write_error``), and a DEBUG line, as the expected outcome
    it is; anything else is jupyter_server's 500, logged with its traceback.
    """

    auth_resource = AUTH_RESOURCE

    @property
    def manager(self) -> Manager:
        manager: Manager = self.settings["hy2fa_manager"]
        return manager

    @property
    def extension_log(self) -> logging.Logger:
        log: logging.Logger = self.settings["hy2fa_log"]
        return log

    @property
    def asks(self) -> AskBridge | None:
        bridge: AskBridge | None = self.settings.get("hy2fa_asks")
        return bridge

    def reply(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload))

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, Hy2faError):
            status_code = status_for(error)
            kwargs.setdefault("reason", error.reason)  # the status line's phrase, as tornado's
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if not isinstance(error, Hy2faError):
            super().write_error(status_code, **kwargs)  # jupyter_server's JSON for the rest
            return
        # The same {message, reason} as jupyter_server's, with the message as it is (its
        # HTTPError.log_message doubles every "%").
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": error.message, "reason": error.reason}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, Hy2faError):  # an expected outcome, not a server fault
            self.extension_log.debug(
                "hy2fa_lab: %s %s -> %s (%s)",
                self.request.method,
                self.request.path,
                status_for(value),
                value.reason,
            )
            return
        super().log_exception(typ, value, tb)

    def body(self, *, secret: bool = False) -> dict[str, Any]:
        """The JSON object in the body. ``secret`` bodies (answers) are parsed here rather than
        by ``get_json_body``, which logs a body it cannot parse: an answer is never logged."""
        try:
            data = json.loads(self.request.body or b"{}") if secret else self.get_json_body()
        except (ValueError, RecursionError, tornado.web.HTTPError):  # RecursionError: deep arrays
            raise BadRequest("The body must be JSON") from None
        if data is None:  # no body
            return {}
        if not isinstance(data, dict):
            raise BadRequest("The body must be a JSON object")
        return data

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        # Masters left by an earlier server are listed as connected from the first request.
        await self.manager.ready()


class VersionHandler(Hy2faHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"version": __version__})


class SettingsHandler(Hy2faHandler):
    """The server's effective settings, so a kernel uses exactly these (command-line flags
    included, which no config file shows)."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(self.manager.settings.to_json())


class _ClusterChange(Hy2faHandler):
    """The row of one cluster, and the event that says it changed."""

    async def row(self, name: str) -> dict[str, Any]:
        (row,) = await self.manager.clusters([name])
        return row.to_json()

    def announce(self, row: dict[str, Any], action: str) -> None:
        self.extension_log.info(
            "hy2fa_lab: your cluster settings: %s %s (yours: %s)",
            row["name"],
            action,
            ", ".join(row.get("mine") or ()) or "nothing",
        )
        emit = self.settings.get("hy2fa_cluster_changed")
        if emit is not None:
            emit(row, action)


class ClustersHandler(_ClusterChange):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        rows = await self.manager.clusters()
        self.reply(
            {"clusters": [row.to_json() for row in rows], "mine_file": self.manager.mine.to_json()}
        )

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        """A cluster of the person's own: 201 and its row; 409 when the name is taken."""
        data = _mine_values(self.body())
        _fields(data, {"name", "host", "user", "port", "persist", "label", "ssh_options"})
        name = _string_field(data, "name", required=True)
        _string_field(data, "host", required=True)
        assert name is not None
        values = {key: value for key, value in data.items() if key != "name"}
        await asyncio.to_thread(self.manager.add_mine, name, values)
        row = await self.row(name)
        self.announce(row, "added")
        self.set_status(201)
        self.finish(json.dumps(row))


class ClusterHandler(_ClusterChange):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """One cluster (``?user=`` as that user): what ``socket_path()`` in a kernel asks."""
        user = self.get_query_argument("user", None)
        (row,) = await self.manager.clusters([name], user=user)
        self.reply(row.to_json())

    @tornado.web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        """The person's values for any cluster (``null`` removes one); the row."""
        data = _mine_values(self.body())
        _fields(data, {"user", "port", "persist", "label", "ssh_options", "host"})
        await asyncio.to_thread(self.manager.set_mine, name, data)
        row = await self.row(name)
        self.announce(row, "changed")
        self.reply(row)

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        """Forget the person's settings for ``name``: its row as the site gives it, or 204
        when it was a cluster of their own alone."""
        validate.cluster_name(name)
        try:
            before = await self.row(name)
        except UnknownCluster:  # values for a cluster the site no longer gives
            before = None
        listed = await asyncio.to_thread(self.manager.forget_mine, name)
        if listed:
            row = await self.row(name)
            self.announce(row, "changed")
            self.reply(row)
            return
        if before is not None:
            self.announce({**before, "mine": []}, "removed")
        self.set_status(204)
        self.finish()


class ClusterSshConfigHandler(_ClusterChange):
    """ "Also use it in terminals": the managed ``Host`` block of ``hy2fa config-ssh`` in the
    ssh config the server reads, with the person's user and port. Written only when asked
    (``POST``: the person agreed); ``GET`` shows what would be written."""

    async def block(self, name: str) -> Any:
        validate.cluster_name(name)
        await asyncio.to_thread(self.manager.profile, name, reload=True)  # only listed ones
        return await asyncio.to_thread(self.manager.host_block, name)

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        from ..core.managed_config import check_config_path, has_block

        block = await self.block(name)
        config = self.manager.settings.ssh_config
        path = check_config_path(config)
        present = await asyncio.to_thread(has_block, name, config)
        self.reply({"cluster": name, "path": path, "block": block.render(), "written": present})

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        from ..core.managed_config import overridden, write_block

        block = await self.block(name)
        path, backup = await asyncio.to_thread(write_block, block, self.manager.settings.ssh_config)
        try:
            lost = await asyncio.to_thread(overridden, block, path)
        except Hy2faError:
            lost = []
        self.announce(await self.row(name), "changed")
        self.reply(
            {
                "cluster": name,
                "path": path,
                "backup": backup,
                "block": block.render(),
                "overridden": lost,
            }
        )

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        from ..core.managed_config import remove_block

        validate.cluster_name(name)
        try:
            path, backup = await asyncio.to_thread(
                remove_block, name, self.manager.settings.ssh_config
            )
        except Hy2faError as error:
            if error.reason == "not_found":
                raise NoManagedBlock(error.message) from None
            raise
        with contextlib.suppress(UnknownCluster):  # listed only through that block
            self.announce(await self.row(name), "changed")
        self.reply({"cluster": name, "path": path, "backup": backup})


class ConnectionsHandler(Hy2faHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        await self.manager.refresh()
        self.reply({"connections": [s.to_json() for s in self.manager.sessions()]})

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        data = self.body()
        _fields(data, {"cluster", "user", "persist", "control_path"})
        cluster = _string_field(data, "cluster", required=True)
        persist = data.get("persist")
        if persist is not None and not isinstance(persist, (str, int)):
            raise BadRequest("'persist' must be a string or a number of seconds")
        assert cluster is not None
        session = await self.manager.connect(
            cluster,
            profiles_only=True,
            user=_string_field(data, "user"),
            persist=None if persist is None else str(persist),
            control_path=_string_field(data, "control_path"),
        )
        self.reply(session.to_json(), 202 if session.pending else 200)


class ConnectionHandler(Hy2faHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, connection_id: str) -> None:
        """The connection; with ``?after=<version>``, once it changes after that version (at
        most ``wait`` seconds, default 25): how a kernel follows a login without polling."""
        session = self.manager.get(connection_id)
        after = self.get_query_argument("after", None)
        if after is not None:
            version, wait = (
                _number(after, "after", int),
                _number(self.get_query_argument("wait", "25"), "wait", float),
            )
            if not 0 <= wait <= MAX_WAIT:
                raise BadRequest(f"'wait' must be 0 to {MAX_WAIT:g} seconds")
            session = await self.manager.watch(session.id, int(version), wait)
        if not session.pending:
            await self.manager.check(session)  # a killed master shows at once
        self.reply(session.to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, connection_id: str) -> None:
        session = await self.manager.disconnect(connection_id, profiles_only=True)
        self.reply(session.to_json())


class AnswerHandler(Hy2faHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, connection_id: str) -> None:
        data = self.body(secret=True)
        session = self.manager.get(connection_id)
        prompt_id = data.get("prompt_id")
        if prompt_id is not None and (
            not isinstance(prompt_id, int) or isinstance(prompt_id, bool)
        ):
            raise BadRequest("'prompt_id' must be an integer")
        response = _response(data)
        _fields(data, {"prompt_id"})
        await session.answer(response, prompt_id)
        del response
        self.reply(session.to_json())


class AsksHandler(Hy2faHandler):
    """Questions of ssh processes a kernel started, waiting in Lab (the askpass bridge)."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        asks = [ask.to_json() for ask in self.asks.asks()] if self.asks is not None else []
        off = self.settings.get("hy2fa_asks_off")  # why the bridge is off, in words
        self.reply({"asks": asks, "enabled": self.asks is not None, "message": off})


class _AskHandler(Hy2faHandler):
    @property
    def bridge(self) -> AskBridge:
        if self.asks is None:
            off = self.settings.get("hy2fa_asks_off") or "c.Hy2faLab.askpass is False"
            raise UnknownAsk(f"The askpass bridge is off: {off}")
        return self.asks


class AskHandler(_AskHandler):
    @tornado.web.authenticated
    @authorized
    async def delete(self, ask_id: str) -> None:
        """Cancel: the ssh that asks ends (not an empty answer, which would ask again)."""
        self.bridge.cancel(ask_id)
        self.set_status(204)
        self.finish()


class AskAnswerHandler(_AskHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, ask_id: str) -> None:
        data = self.body(secret=True)
        response = _response(data)
        _fields(data, set())
        self.bridge.answer(ask_id, response)
        del response
        self.set_status(204)
        self.finish()


class DoctorHandler(Hy2faHandler):
    """``hy2fa doctor`` over REST: this machine's lines, and ``?cluster=``'s. The checks run
    ssh and connect (each bounded in time), so they run in a thread; none asks or logs in."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        from ..core import doctor

        cluster = self.get_query_argument("cluster", None)
        bridge = doctor.Bridge(self.asks is not None, self.settings.get("hy2fa_asks_off"))
        report = await asyncio.to_thread(
            doctor.run, self.manager, cluster, profiles_only=True, bridge=bridge
        )
        self.reply(report.to_json())


_NAME = r"(?P<name>[^/]+)"
_ID = r"(?P<connection_id>[^/]+)"  # a connection's id (its name is taken too)
_ASK = r"(?P<ask_id>[^/]+)"
HANDLERS: list[tuple[str, type[Hy2faHandler]]] = [
    ("hy2fa/version", VersionHandler),
    ("hy2fa/settings", SettingsHandler),
    ("hy2fa/clusters", ClustersHandler),
    (f"hy2fa/clusters/{_NAME}/config-ssh", ClusterSshConfigHandler),
    (f"hy2fa/clusters/{_NAME}", ClusterHandler),
    ("hy2fa/connections", ConnectionsHandler),
    (f"hy2fa/connections/{_ID}/answer", AnswerHandler),
    (f"hy2fa/connections/{_ID}", ConnectionHandler),
    ("hy2fa/asks", AsksHandler),
    (f"hy2fa/asks/{_ASK}/answer", AskAnswerHandler),
    (f"hy2fa/asks/{_ASK}", AskHandler),
    ("hy2fa/doctor", DoctorHandler),
]
"""Paths under the server's base URL; the extension app adds them (``initialize_handlers``)."""
