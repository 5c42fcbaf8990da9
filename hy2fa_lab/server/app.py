"""The server extension: configuration (traitlets), the engine's manager, events, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from traitlets import Bool, Dict, Float, Int, TraitError, Unicode, validate

from .._version import __version__
from ..core import validate as check
from ..core.asks import AskBridge
from ..core.errors import Hy2faError
from ..core.manager import Manager, Settings
from ..core.profiles import profile_from_config
from .bridge import BridgeInstall, socket_path
from .events import ASK_SCHEMA_PATH, SCHEMA_PATH, EventEmitter
from .origin import origin_of
from .routes import setup_route_handlers

_REFRESH_SECONDS = 15.0


class Hy2faLab(ExtensionApp):
    """Opens and keeps 2FA ControlMaster sockets from the Jupyter server."""

    name = "hy2fa_lab"
    load_other_extensions = True

    clusters = Dict(
        config=True,
        help=(
            "Clusters beside the built-in ones: name -> {host, port, user, persist, "
            "ssh_options}. Example: c.Hy2faLab.clusters = "
            "{'mylab': {'host': 'login.lab.example.org', 'persist': '2h'}}"
        ),
    )
    control_path = Unicode(
        None,
        allow_none=True,
        config=True,
        help="ControlPath template when ~/.ssh/config sets none (default ~/.ssh/cm-%r@%h:%p).",
    )
    default_persist = Unicode(
        "1h",
        config=True,
        help="How long an idle master stays (ControlPersist): seconds, 10m, 2h, 1h40m or yes.",
    )
    prompt_timeout = Float(
        120.0, config=True, help="Seconds a prompt waits for an answer before the login fails."
    )
    connect_timeout = Float(
        60.0, config=True, help="Seconds without any output from ssh before the login fails."
    )
    include_ssh_config_hosts = Bool(
        True, config=True, help="List concrete Host aliases from ~/.ssh/config as clusters."
    )
    ssh_config = Unicode(
        None, allow_none=True, config=True, help="ssh client config file (default ~/.ssh/config)."
    )
    ssh = Unicode("ssh", config=True, help="The OpenSSH client to run.")
    askpass = Bool(
        True,
        config=True,
        help=(
            "Every ssh a kernel starts asks in JupyterLab (OpenSSH's SSH_ASKPASS with "
            "hy2fa-askpass): its host-key, code and password questions pop up in Lab; an ssh "
            "in a terminal still asks in that terminal."
        ),
    )
    askpass_replace_own = Bool(
        False,
        config=True,
        help="Use the bridge even when SSH_ASKPASS is already set in the server's environment.",
    )
    askpass_limit = Int(
        8,
        config=True,
        help="At most this many ssh questions wait in Lab at once; more are refused.",
    )
    demo_secret_file = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Set by `hy2fa demo`: the demo cluster's TOTP secret, so its row can show the code.",
    )

    @validate("clusters")
    def _check_clusters(self, proposal: dict[str, Any]) -> dict[str, Any]:
        value = proposal["value"]
        for name, data in value.items():
            try:
                profile_from_config(name, data)
            except Hy2faError as error:
                raise TraitError(f"Hy2faLab.clusters: {error.message}") from None
        return dict(value)

    @validate("default_persist")
    def _check_persist(self, proposal: dict[str, Any]) -> str:
        try:
            check.persist(proposal["value"])
        except Hy2faError as error:
            raise TraitError(f"Hy2faLab.default_persist: {error.message}") from None
        return str(proposal["value"])

    @validate("askpass_limit")
    def _check_limit(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not 1 <= value <= 1000:
            raise TraitError("Hy2faLab.askpass_limit must be 1 to 1000")
        return value

    @validate("prompt_timeout", "connect_timeout")
    def _check_timeout(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not 1 <= value <= 86400:
            raise TraitError(f"Hy2faLab.{proposal['trait'].name} must be 1 to 86400 seconds")
        return value

    # ---- ExtensionApp hooks --------------------------------------------------------

    @property
    def server(self) -> ServerApp:
        assert self.serverapp is not None, "the extension runs inside a Jupyter server"
        return self.serverapp

    def initialize_settings(self) -> None:
        self.manager = Manager(self.engine_settings())
        event_logger = self.server.event_logger
        assert event_logger is not None
        self.events = EventEmitter(event_logger, self.log)
        event_logger.register_event_schema(SCHEMA_PATH)
        self._unsubscribe = self.manager.subscribe(self.events.connection_changed)
        self._refresher: asyncio.Task[None] | None = None
        self.settings["hy2fa_manager"] = self.manager
        self.settings["hy2fa_demo_secret_file"] = self.demo_secret_file
        self.bridge: BridgeInstall | None = None
        self.settings["hy2fa_asks"] = None
        if self.askpass:
            asks = AskBridge(
                socket_path(self.server.runtime_dir),
                timeout=self.prompt_timeout,
                limit=self.askpass_limit,
                origin=lambda pid: origin_of(self.server, pid),
            )
            event_logger.register_event_schema(ASK_SCHEMA_PATH)
            asks.subscribe(self.events.ask_changed)
            install = BridgeInstall(
                asks, self.manager, self.log, replace_own=self.askpass_replace_own
            )
            if install.install():
                self.bridge = install
                self.settings["hy2fa_asks"] = asks
        self.log.info("hy2fa_lab %s: 2FA ControlMaster sockets", __version__)

    def initialize_handlers(self) -> None:
        setup_route_handlers(self.server.web_app, self.manager)

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
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def stop_extension(self) -> None:
        """Cancel logins under way (their ssh children are reaped); live masters stay."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self.manager.shutdown()
        self._unsubscribe()
        if self.bridge is not None:
            await self.bridge.stop()

    # ---- helpers ---------------------------------------------------------------------

    def engine_settings(self) -> Settings:
        return Settings(
            clusters=self.clusters,
            control_path=self.control_path,
            default_persist=self.default_persist,
            prompt_timeout=self.prompt_timeout,
            connect_timeout=self.connect_timeout,
            include_ssh_config_hosts=self.include_ssh_config_hosts,
            ssh_config=self.ssh_config,
            ssh=self.ssh,
            masters_file=os.path.join(self.server.runtime_dir, "hy2fa-masters.json"),
        )

    async def _refresh_forever(self) -> None:
        """Notice masters that ended (ControlPersist ran out, killed) so clients hear of it."""
        while True:
            await asyncio.sleep(_REFRESH_SECONDS)
            try:
                await self.manager.refresh()
            except Exception:  # keep watching; one bad socket must not stop it
                self.log.exception("hy2fa_lab: refreshing connection states failed")
