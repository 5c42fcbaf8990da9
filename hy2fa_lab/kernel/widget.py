"""The notebook UI of ``%hy2fa connect``: prompt, password field, submit, live status.

It never blocks the cell: answers arrive through widget events, and a task on the kernel's
own event loop follows the session (so a prompt answered in the sidebar or a dialog, or a
master that goes away, shows here too). ipywidgets is not thread-safe: only the HTTP wait for
the next change runs in a worker thread; every widget is drawn on the kernel's loop. The
field's value is set back to ``""`` as soon as it is read, so no code stays in widget state.
"""

from __future__ import annotations

import asyncio
import functools
import html
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, ClassVar

import ipywidgets as widgets
from traitlets import Unicode

from ..core import messages
from ..core.errors import Hy2faError
from .backends import WAIT, Backend, View

_FOLLOW_FOR = 8 * 3600.0  # a widget stops following its connection after this long
_KEEP = 16  # widgets that follow at once; a newer one ends the oldest's following
_RETRY = 2.0  # after the server could not be asked
# The waits for the next change (blocking HTTP) run here, never the drawing.
_WAITS = ThreadPoolExecutor(max_workers=_KEEP, thread_name_prefix="hy2fa-widget")
_COLOURS = {
    "starting": "var(--jp-ui-font-color2, #666)",
    "prompting": "var(--jp-warn-color0, #b26b00)",
    "verifying": "var(--jp-ui-font-color2, #666)",
    "connected": "var(--jp-success-color0, #2e7d32)",
    "failed": "var(--jp-error-color0, #c62828)",
    "disconnected": "var(--jp-ui-font-color2, #666)",
    "unresponsive": "var(--jp-warn-color0, #ef6c00)",
}
_NUMERIC = {"otp", "duo"}


class CodeField(widgets.Password):  # type: ignore[misc]
    """A password field whose value the kernel never echoes back to the frontends."""

    value = Unicode("", help="The typed answer; read once, then set to ''.").tag(
        sync=True, echo_update=False
    )


class ConnectWidget:
    """One connection's prompt UI in a cell's output."""

    # The widgets that follow their connection, oldest first (at most ``_KEEP``).
    instances: ClassVar[list[ConnectWidget]] = []

    def __init__(self, backend: Backend, view: View, *, follow: bool = True) -> None:
        self.backend = backend
        self.name = str(view["name"])
        # The connection's id, once the server gave one: what answers and waits name (a
        # name may be shared, say by a master a notebook's own ssh made).
        self.connection_id: str | None = view.get("id")
        self._lock = threading.Lock()
        self._last: tuple[Any, ...] | None = None
        self._view: View = view
        self._prompt_id = 0
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.TimerHandle | None = None

        self.title = widgets.HTML()
        self.prompt = widgets.HTML()
        self.password = CodeField(
            placeholder="code", continuous_update=False, layout=widgets.Layout(width="14em")
        )
        self.submit = widgets.Button(description="Submit", button_style="primary")
        self.options = widgets.HBox()
        self.trust = widgets.Button(description="Trust", button_style="warning")
        self.reject = widgets.Button(description="Reject")
        self.hostkey = widgets.HBox([self.trust, self.reject])
        self.entry = widgets.HBox([self.password, self.submit])
        self.status = widgets.HTML()
        self.box = widgets.VBox(
            [self.title, self.prompt, self.entry, self.options, self.hostkey, self.status]
        )
        self.box.add_class("hy2fa-widget")
        # Lab skips its pop-up dialog for a prompt this widget already shows on the page.
        self.box.add_class("hy2fa-for-" + self.name.encode().hex())

        self.password.observe(self._on_value, names="value")
        self.submit.on_click(lambda _button: self._send(self.password.value))
        self.trust.on_click(lambda _button: self._send("yes"))
        self.reject.on_click(lambda _button: self._send("no"))
        self.render(view)
        ConnectWidget.instances.append(self)
        while len(ConnectWidget.instances) > _KEEP:
            ConnectWidget.instances[0].close()
        if follow:
            self.follow(view)

    def follow(self, view: View) -> None:
        """Show ``view`` and keep following the session on the kernel's event loop (call it
        from a cell). Also for a widget shown before its login started, so that Lab sees it
        on the page before the first prompt."""
        self.render(view)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop to draw from: the widget stays as drawn
        if self._task is None and not self._stop.is_set():
            self._task = loop.create_task(self._follow())
            self._keep_ticking()

    # ---- answers -----------------------------------------------------------------------

    def _on_value(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._send(change["new"])  # Enter in the field (continuous_update=False)

    def _send(self, response: str) -> None:
        self.password.value = ""  # first, so the code never lingers in the widget state
        if not response:
            return
        try:
            view = self.backend.answer(self._key, response, self._prompt_id or None)
        except Hy2faError as error:
            self._show_error(error.message)
            return
        finally:
            del response
        self.render(view)

    # ---- following the session ---------------------------------------------------------

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        while not self._stop.is_set() and time.monotonic() - started < _FOLLOW_FOR:
            version = self._view.get("version", 0)
            wait = functools.partial(self.backend.get, self._key, version, WAIT)
            try:
                view = await loop.run_in_executor(_WAITS, wait)
            except Hy2faError as error:
                self._show_error(error.message)
                await asyncio.sleep(_RETRY)
                continue
            if not self._stop.is_set():
                self.render(view)

    @property
    def _key(self) -> str:
        return self.connection_id or self.name

    def close(self) -> None:
        """Stop following (the widget stays on the page as it was last drawn)."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
        if self._ticker is not None:
            self._ticker.cancel()
        if self in ConnectWidget.instances:
            ConnectWidget.instances.remove(self)

    # ---- drawing -----------------------------------------------------------------------

    def render(self, view: View) -> None:
        prompt = view.get("prompt") or None
        verifying = view.get("verifying") or {}
        key = (
            view["state"],
            view.get("version"),
            view.get("updated"),
            (prompt or {}).get("id"),
            view.get("message"),
            tuple(verifying.get("lines") or ()),
        )
        with self._lock:
            # A newer login of this name took this one's place: follow that one.
            self.connection_id = view.get("superseded_by") or view.get("id") or self.connection_id
            if key == self._last:
                return
            self._last = key
            self._view = view
            self._draw(view, prompt)
        self._keep_ticking()

    def _keep_ticking(self) -> None:
        """Redraw the status each second while it shows seconds elapsed (starting, verifying),
        on the kernel's loop; nothing runs once the state moves on."""
        if self._ticker is not None or self._task is None or self._stop.is_set():
            return
        if self._view.get("state") not in ("starting", "verifying"):
            return

        def tick() -> None:
            self._ticker = None
            if not self._stop.is_set():
                self.status.value = self._status_html(str(self._view["state"]), self._view)
                self._keep_ticking()

        self._ticker = asyncio.get_running_loop().call_later(1.0, tick)

    def _draw(self, view: View, prompt: View | None) -> None:
        state = str(view["state"])
        where = f"{view.get('user') or ''}@{view.get('host') or ''}".strip("@")
        self.title.value = f"<b>{html.escape(self.name)}</b> <code>{html.escape(where)}</code>"
        prompting = state == "prompting" and prompt is not None
        kind = str(prompt.get("kind")) if prompt else ""
        self._prompt_id = int(prompt.get("id", 0)) if prompt else 0
        self.prompt.value = (
            f"<pre style='margin:0;white-space:pre-wrap'>{html.escape(prompt['text'])}</pre>"
            if prompting and prompt
            else ""
        )
        show_entry = prompting and kind != "hostkey"
        self.entry.layout.display = None if show_entry else "none"
        self.hostkey.layout.display = None if prompting and kind == "hostkey" else "none"
        self.password.placeholder = "code" if kind in _NUMERIC else "answer"
        # A label a screen reader reads with the field (ipywidgets makes it a <label>).
        self.password.description = "Code" if kind in _NUMERIC else "Answer"
        options = list(prompt.get("options", [])) if prompting and prompt else []
        self.options.children = tuple(self._option_button(i, o) for i, o in enumerate(options))
        self.options.layout.display = None if options else "none"
        self.status.value = self._status_html(state, view)

    def _option_button(self, index: int, label: str) -> widgets.Button:
        button = widgets.Button(description=label[:40], tooltip=label)
        button.on_click(lambda _button: self._send(str(index + 1)))
        return button

    def _status_html(self, state: str, view: View) -> str:
        colour = _COLOURS.get(state, "inherit")
        verifying = view.get("verifying") or {}
        words = {
            "starting": f"Connecting to {view.get('host') or self.name}…",
            "prompting": "Waiting for your answer",
            "verifying": "Checking…",
            "connected": "Connected",
            "failed": "Failed",
            "disconnected": "Disconnected",
            "unresponsive": "Not responding",
        }.get(state, state)
        if state == "verifying" and verifying.get("choice"):
            words = "Approve the request on your phone"
        detail = ""
        if state == "connected":
            detail = (
                f" — master pid {view.get('master_pid')}, socket "
                f"<code>{html.escape(str(view.get('control_path')))}</code>"
            )
        elif state in ("starting", "verifying"):
            since = verifying.get("since") if state == "verifying" else view.get("updated")
            elapsed = _seconds_since(since)
            detail = f" {elapsed} s" if elapsed is not None else ""
        elif state in ("failed", "disconnected", "unresponsive"):
            detail = " — " + html.escape(messages.of_view(view))
        elif view.get("message"):
            detail = " — " + html.escape(str(view["message"]))
        lines = [str(line) for line in verifying.get("lines") or ()]
        said = (
            "<pre class='hy2fa-said' style='margin:0;white-space:pre-wrap'>"
            + html.escape("\n".join(lines))
            + "</pre>"
            if state == "verifying" and lines
            else ""
        )
        return (
            f"<span class='hy2fa-state' data-state='{state}' style='color:{colour}'>"
            f"<b>{words}</b>{detail}</span>{said}"
        )

    def _show_error(self, message: str) -> None:
        colour = _COLOURS["failed"]
        self.status.value = f"<span style='color:{colour}'>{html.escape(message)}</span>"


def _seconds_since(stamp: object) -> int | None:
    """Whole seconds since an ISO time of the server's (None when there is none)."""
    if not isinstance(stamp, str):
        return None
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    now = datetime.now(then.tzinfo) if then.tzinfo else datetime.now()
    return max(0, int((now - then).total_seconds()))
