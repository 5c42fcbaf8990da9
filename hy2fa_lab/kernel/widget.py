"""The notebook UI of ``%hy2fa connect``: prompt, password field, submit, live status.

It never blocks the cell: answers arrive through widget events, and a daemon thread follows
the session (so a prompt answered in the sidebar or a dialog updates the widget too). The
field's value is set back to ``""`` as soon as it is read, so no code stays in widget state.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any, ClassVar

import ipywidgets as widgets
from traitlets import Unicode

from ..core.errors import Hy2faError
from ..core.types import SETTLED_STATES
from .backends import Backend, View

_FOLLOW_EVERY = 0.4
_FOLLOW_FOR = 3600.0
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

    instances: ClassVar[list[ConnectWidget]] = []

    def __init__(self, backend: Backend, view: View, *, follow: bool = True) -> None:
        self.backend = backend
        self.name = str(view["name"])
        self._lock = threading.Lock()
        self._last: tuple[Any, ...] | None = None
        self._prompt_id = 0
        self._stop = threading.Event()

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
        self._thread = threading.Thread(target=self._follow, name=f"hy2fa-{self.name}")
        self._thread.daemon = True
        if follow:
            self._thread.start()

    def follow(self, view: View) -> None:
        """Show ``view`` and keep following the session (for a widget shown before its
        login started, so that Lab sees it on the page before the first prompt)."""
        self.render(view)
        self._thread.start()

    # ---- answers -----------------------------------------------------------------------

    def _on_value(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._send(change["new"])  # Enter in the field (continuous_update=False)

    def _send(self, response: str) -> None:
        self.password.value = ""  # first, so the code never lingers in the widget state
        if not response:
            return
        try:
            view = self.backend.answer(self.name, response, self._prompt_id or None)
        except Hy2faError as error:
            self._show_error(error.message)
            return
        finally:
            del response
        self.render(view)

    # ---- following the session ---------------------------------------------------------

    def _follow(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(_FOLLOW_EVERY):
            try:
                view = self.backend.get(self.name)
            except Hy2faError as error:
                self._show_error(error.message)
                continue
            self.render(view)
            if view["state"] in {state.value for state in SETTLED_STATES}:
                return
            if time.monotonic() - started > _FOLLOW_FOR:
                return

    def close(self) -> None:
        self._stop.set()

    # ---- drawing -----------------------------------------------------------------------

    def render(self, view: View) -> None:
        prompt = view.get("prompt") or None
        key = (view["state"], view.get("updated"), (prompt or {}).get("id"), view.get("message"))
        with self._lock:
            if key == self._last:
                return
            self._last = key
            self._draw(view, prompt)

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
        words = {
            "starting": "Starting ssh…",
            "prompting": "Waiting for your answer",
            "verifying": "Checking…",
            "connected": "Connected",
            "failed": "Failed",
            "disconnected": "Disconnected",
            "unresponsive": "Not responding",
        }.get(state, state)
        detail = ""
        if state == "connected":
            detail = (
                f" — master pid {view.get('master_pid')}, socket "
                f"<code>{html.escape(str(view.get('control_path')))}</code>"
            )
        elif view.get("message"):
            detail = " — " + html.escape(str(view["message"]))
        return (
            f"<span class='hy2fa-state' data-state='{state}' style='color:{colour}'>"
            f"<b>{words}</b>{detail}</span>"
        )

    def _show_error(self, message: str) -> None:
        colour = _COLOURS["failed"]
        self.status.value = f"<span style='color:{colour}'>{html.escape(message)}</span>"
