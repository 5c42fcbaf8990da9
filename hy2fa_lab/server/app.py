"""The server extension: configuration (traitlets), the engine's manager, events, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from traitlets import Bool, Dict, Float, Int, TraitError, TraitType, Unicode, validate

from .. import config
from .._version import __version__
from ..core.asks import AskBridge
from ..core.manager import Manager
from ..core.settings import DEFAULTS, Problem, Settings, accept, config_fields
from .bridge import BridgeInstall, socket_path
from .events import ASK_SCHEMA_PATH, CLUSTER_SCHEMA_PATH, SCHEMA_PATH, EventEmitter
from .log import ChangeLog, extension_logger
from .origin import origin_of
from .routes import HANDLERS

_REFRESH_SECONDS = 15.0


def _lenient(kind: type[TraitType[Any, Any]]) -> type[TraitType[Any, Any]]:
    """``kind`` (Bool, Int, ...), but a value of another type is let through to the setting's
    own check (``Hy2faLab._check_setting``), which replaces it with the setting's fallback and
    says so: traitlets' own refusal would make jupyter_server drop the whole ``Hy2faLab``
    config ("error linking extension") and run the extension on its defaults, which turns
    ``askpass = False`` back on."""

    class Lenient(kind):  # type: ignore[valid-type,misc]
        def validate(self, obj: Any, value: Any) -> Any:
            try:
                return super().validate(obj, value)
            except TraitError:
                return value

        def from_string(self, s: str) -> Any:
            try:
                return super().from_string(s)
            except (TraitError, ValueError):
                return s

    Lenient.__name__ = Lenient.__qualname__ = kind.__name__  # what --help-all shows
    return Lenient


_TRAITS: dict[str, type[TraitType[Any, Any]]] = {
    "bool": _lenient(Bool),
    "int": _lenient(Int),
    "float": _lenient(Float),
    "str": _lenient(Unicode),
    "str | None": _lenient(Unicode),
    "Mapping[str, Mapping[str, Any]]": _lenient(Dict),
}


def settings_traits() -> dict[str, TraitType[Any, Any]]:
    """One configurable trait per field of :class:`Settings`, with its default and help."""
    traits: dict[str, TraitType[Any, Any]] = {}
    for field in config_fields():
        kind = _TRAITS[str(field.type)]
        default = getattr(DEFAULTS, field.name)
        trait = kind(default, allow_none=str(field.type).endswith("None"))
        traits[field.name] = trait.tag(config=True)
        trait.help = field.metadata["help"]
    return traits


class Hy2faLab(ExtensionApp):
    """Opens and keeps 2FA ControlMaster sockets from the Jupyter server."""

    name = "hy2fa_lab"
    load_other_extensions = True

    # Every c.Hy2faLab.<setting> is declared once, in core.settings.Settings (type, default,
    # help, check); the traits are made from those fields when this class is created.
    vars().update(settings_traits())

    @validate(*(field.name for field in config_fields()))
    def _check_setting(self, proposal: dict[str, Any]) -> Any:
        """A bad value costs that setting alone: its fallback (off, for a switch) is kept,
        and the problem is said once, in the log and in Lab (``GET hy2fa/settings``)."""
        name = proposal["trait"].name
        value, problems = accept(name, proposal["value"])
        self.__dict__.setdefault("_config_problems", {})[name] = problems
        return value

    @property
    def config_problems(self) -> tuple[Problem, ...]:
        """What of this extension's config is not used, in the order of the settings."""
        found: dict[str, tuple[Problem, ...]] = self.__dict__.get("_config_problems", {})
        return tuple(p for field in config_fields() for p in found.get(field.name, ()))

    # ---- ExtensionApp hooks --------------------------------------------------------

    @property
    def server(self) -> ServerApp:
        assert self.serverapp is not None, "the extension runs inside a Jupyter server"
        return self.serverapp

    def initialize_settings(self) -> None:
        self.log = extension_logger(self.server.log)
        values = self.engine_settings()
        for problem in values.problems:
            self.log.warning("hy2fa_lab: config: %s", problem.message)
        self.manager = Manager(values, log=self.log)
        event_logger = self.server.event_logger
        assert event_logger is not None
        self.events = EventEmitter(event_logger, self.log)
        changes = ChangeLog(self.log)
        event_logger.register_event_schema(SCHEMA_PATH)
        event_logger.register_event_schema(CLUSTER_SCHEMA_PATH)
        self.settings["hy2fa_cluster_changed"] = self.events.cluster_changed
        self._unsubscribe = [
            self.manager.subscribe(self.events.connection_changed),
            self.manager.subscribe(changes.connection_changed),
        ]
        self._refresher: asyncio.Task[None] | None = None
        self.settings["hy2fa_manager"] = self.manager
        self.settings["hy2fa_log"] = self.log
        self.bridge: BridgeInstall | None = None
        self.settings["hy2fa_asks"] = None
        self.settings["hy2fa_asks_off"] = next(  # a value that is not True or False: off
            (p.message for p in values.problems if p.setting == "askpass"),
            "c.Hy2faLab.askpass is False",
        )
        if values.askpass:
            asks = AskBridge(
                socket_path(self.server.runtime_dir),
                timeout=values.prompt_timeout,
                limit=values.askpass_limit,
                origin=lambda pid: origin_of(self.server, pid),
            )
            event_logger.register_event_schema(ASK_SCHEMA_PATH)
            asks.subscribe(self.events.ask_changed)
            asks.subscribe(changes.ask_changed)
            install = BridgeInstall(
                asks, self.manager, self.log, replace_own=values.askpass_replace_own
            )
            if install.install():
                self.bridge = install
                self.settings["hy2fa_asks"] = asks
            self.settings["hy2fa_asks_off"] = install.off_reason
        self.log.info("hy2fa_lab %s: 2FA ControlMaster sockets", __version__)

    def initialize_handlers(self) -> None:
        self.handlers.extend(HANDLERS)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Adopt masters opened before this server started, then watch them."""
        await self.manager.ready()  # never raises: the server comes up whatever is on disk
        error = self.manager.discovery_error
        if error is not None:
            self.log.error("hy2fa_lab: looking for running masters failed", exc_info=error)
        for session in self.manager.sessions():
            self.log.info(
                "hy2fa_lab: found the master of %s (%s)", session.name, session.state.value
            )
        mine = self.manager.mine  # the person's own cluster settings, as discovery read them
        for problem in (*mine.problems, *mine.broken.values()):
            self.log.warning("hy2fa_lab: your cluster settings: %s", problem)
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def stop_extension(self) -> None:
        """Cancel logins under way (their ssh children are reaped); live masters stay."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self.manager.shutdown()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self.bridge is not None:
            await self.bridge.stop()

    # ---- helpers ---------------------------------------------------------------------

    def engine_settings(self) -> Settings:
        values = {field.name: getattr(self, field.name) for field in config_fields()}
        masters = os.path.join(self.server.runtime_dir, "hy2fa-masters.json")
        # Checked again (an ssh_config may have become a FIFO since): still never raises.
        settings = Settings.from_config(
            values, masters_file=masters, clusters_file=config.clusters_file()
        )
        return dataclasses.replace(settings, problems=self.config_problems + settings.problems)

    async def _refresh_forever(self) -> None:
        """Notice masters that ended (ControlPersist ran out, killed) so clients hear of it."""
        while True:
            await asyncio.sleep(_REFRESH_SECONDS)
            try:
                await self.manager.refresh()
            except Exception:  # keep watching; one bad socket must not stop it
                self.log.exception("hy2fa_lab: refreshing connection states failed")
