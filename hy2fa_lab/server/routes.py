"""Thin REST handlers over the engine's manager (the API is in the README). One class per endpoint.

Bodies are read once and never logged; an answer goes straight to the session and is dropped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pyotp
import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .._version import __version__
from ..core import mux, validate
from ..core.asks import AnswerTooLong, AskBridge, UnknownAsk
from ..core.errors import Hy2faError, InvalidInput, NoPrompt, UnknownCluster
from ..core.manager import Manager, socket_state
from ..core.session import MasterSession
from ..core.types import State

AUTH_RESOURCE = "hy2fa"
_NAME = r"(?P<name>[^/]+)"


class BadRequest(Hy2faError):
    reason = "bad_request"


def _status_for(error: Hy2faError) -> int:
    if isinstance(error, BadRequest):
        return 400
    if isinstance(error, (UnknownCluster, UnknownAsk)):
        return 404
    if isinstance(error, AnswerTooLong):
        return 413
    if isinstance(error, NoPrompt):
        return 409
    if isinstance(error, InvalidInput):
        return 422
    return 502


class Hy2faHandler(APIHandler):
    """Shared plumbing: the manager, JSON replies, engine errors as ``{message, reason}``."""

    auth_resource = AUTH_RESOURCE

    @property
    def manager(self) -> Manager:
        manager: Manager = self.settings["hy2fa_manager"]
        return manager

    def reply(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def fail(self, error: Hy2faError) -> None:
        self.reply({"message": error.message, "reason": error.reason}, _status_for(error))

    async def guarded(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Hy2faError as error:
            self.fail(error)

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            raise BadRequest("The body must be JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("The body must be a JSON object")
        return data

    def session_named(self, name: str) -> MasterSession:
        return self.manager.get(name)

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        # Masters left by an earlier server are listed as connected from the first request.
        await self.manager.ready()


def _string_field(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise BadRequest(f"'{key}' is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string")
    return value


class VersionHandler(Hy2faHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"version": __version__})


class ClustersHandler(Hy2faHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        async def work() -> None:
            profiles = await asyncio.to_thread(self.manager.profiles, reload=True)
            rows = await asyncio.gather(*(self._row(name) for name in profiles))
            self.reply({"clusters": rows})

        await self.guarded(work)

    async def _row(self, name: str) -> dict[str, Any]:
        row = self.manager.profiles()[name].to_json()
        try:
            target = await self.manager.resolve_async(name)
        except Hy2faError as error:
            row.update(state="error", error={"message": error.message, "reason": error.reason})
            return row
        session = self.manager.known(target) or next(
            (
                s
                for s in self.manager.sessions()
                if s.target.profile == name and (s.pending or s.state is State.CONNECTED)
            ),
            None,  # a login as another user (user@cluster) shows in this row too
        )
        if session is not None and session.state is not State.IDLE:
            target = session.target
            state = session.state.value
            pid = session.master_pid
        else:
            found = await asyncio.to_thread(mux.status, target.control_path)
            pid = found.pid
            state = socket_state(found).value
            if found.message:
                row["message"] = found.message
        demo_code = self._demo_code(name)
        if demo_code is not None:
            row["demo_code"] = demo_code
        row.update(
            hostname=target.hostname,
            user=target.user,
            port=target.port,
            control_path=target.control_path,
            persist=target.persist,
            state=state,
            master_pid=pid,
            connection=target.name,
        )
        return row

    def _demo_code(self, name: str) -> str | None:
        """The demo cluster's current code (only under `hy2fa demo`: it is not a secret there)."""
        path = self.settings.get("hy2fa_demo_secret_file")
        if name != "demo" or not path:
            return None
        try:
            with open(path, encoding="ascii") as handle:
                secret = handle.read().strip()
        except OSError:
            return None
        return str(pyotp.TOTP(secret).now())


class ConnectionsHandler(Hy2faHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        async def work() -> None:
            await self.manager.refresh()
            self.reply({"connections": [s.to_json() for s in self.manager.sessions()]})

        await self.guarded(work)

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        async def work() -> None:
            data = self.body()
            cluster = _string_field(data, "cluster", required=True)
            user = _string_field(data, "user")
            persist = data.get("persist")
            if persist is not None and not isinstance(persist, (str, int)):
                raise BadRequest("'persist' must be a string or a number of seconds")
            control_path = _string_field(data, "control_path")
            unknown = set(data) - {"cluster", "user", "persist", "control_path"}
            if unknown:
                names = ", ".join(validate.shown(key) for key in sorted(unknown)[:5])
                raise BadRequest(f"Unknown fields: {names}{', …' if len(unknown) > 5 else ''}")
            assert cluster is not None
            profiles = await asyncio.to_thread(self.manager.profiles, reload=True)
            if cluster not in profiles:
                raise UnknownCluster(f"No cluster named {validate.shown(cluster)}")
            session = await self.manager.connect(
                cluster,
                user=user,
                persist=None if persist is None else str(persist),
                control_path=control_path,
            )
            status = 202 if session.pending else 200
            self.reply(session.to_json(), status)

        await self.guarded(work)


class ConnectionHandler(Hy2faHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        async def work() -> None:
            session = self.session_named(name)
            await self.manager.check(session)  # a killed master shows at once, not next refresh
            self.reply(session.to_json())

        await self.guarded(work)

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        async def work() -> None:
            try:
                session = self.session_named(name)
            except UnknownCluster:
                if name not in await asyncio.to_thread(self.manager.profiles, reload=True):
                    raise
                session = self.manager.session_for(await self.manager.resolve_async(name))
            await self.manager.disconnect_session(session)
            self.reply(session.to_json())

        await self.guarded(work)


class AnswerHandler(Hy2faHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        async def work() -> None:
            data = self.body()
            session = self.session_named(name)
            prompt_id = data.get("prompt_id")
            if prompt_id is not None and (
                not isinstance(prompt_id, int) or isinstance(prompt_id, bool)
            ):
                raise BadRequest("'prompt_id' must be an integer")
            response = data.pop("response", None)
            if not isinstance(response, str):
                raise BadRequest("'response' is required and must be a string")
            await session.answer(response, prompt_id)
            del response
            self.reply(session.to_json())

        await self.guarded(work)


class AsksHandler(Hy2faHandler):
    """Questions of ssh processes a kernel started, waiting in Lab (the askpass bridge)."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        bridge: AskBridge | None = self.settings.get("hy2fa_asks")
        asks = [ask.to_json() for ask in bridge.asks()] if bridge is not None else []
        self.reply({"asks": asks, "enabled": bridge is not None})


class _AskHandler(Hy2faHandler):
    @property
    def bridge(self) -> AskBridge:
        bridge: AskBridge | None = self.settings.get("hy2fa_asks")
        if bridge is None:
            raise UnknownAsk("The askpass bridge is off (c.Hy2faLab.askpass = False)")
        return bridge


class AskHandler(_AskHandler):
    @tornado.web.authenticated
    @authorized
    async def delete(self, ask_id: str) -> None:
        """Cancel: the ssh that asks ends (not an empty answer, which would ask again)."""

        async def work() -> None:
            self.bridge.cancel(ask_id)
            self.set_status(204)
            self.finish()

        await self.guarded(work)


class AskAnswerHandler(_AskHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, ask_id: str) -> None:
        async def work() -> None:
            data = self.body()
            response = data.pop("response", None)
            if not isinstance(response, str):
                raise BadRequest("'response' is required and must be a string")
            unknown = set(data)
            if unknown:
                names = ", ".join(validate.shown(key) for key in sorted(unknown)[:5])
                raise BadRequest(f"Unknown fields: {names}")
            self.bridge.answer(ask_id, response)
            del response
            self.set_status(204)
            self.finish()

        await self.guarded(work)


def setup_route_handlers(web_app: tornado.web.Application, manager: Manager) -> None:
    base_url = web_app.settings["base_url"]
    web_app.settings["hy2fa_manager"] = manager
    routes: list[tuple[str, type[Hy2faHandler]]] = [
        ("hy2fa/version", VersionHandler),
        ("hy2fa/clusters", ClustersHandler),
        ("hy2fa/connections", ConnectionsHandler),
        (f"hy2fa/connections/{_NAME}/answer", AnswerHandler),
        (f"hy2fa/connections/{_NAME}", ConnectionHandler),
        ("hy2fa/asks", AsksHandler),
        (r"hy2fa/asks/(?P<ask_id>[^/]+)/answer", AskAnswerHandler),
        (r"hy2fa/asks/(?P<ask_id>[^/]+)", AskHandler),
    ]
    web_app.add_handlers(".*$", [(url_path_join(base_url, path), cls) for path, cls in routes])
