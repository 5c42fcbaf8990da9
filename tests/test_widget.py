"""The ``%hy2fa connect`` widget (hy2fa_lab/kernel/widget.py), built in-process: against a
small fake backend (every drawing and answer path) and against the real engine
(``LocalBackend`` + ``Manager``, the real OpenSSH client, the asyncssh prompt server).

What must hold: the typed code is sent once and then gone from every widget's state, the page
can find the widget by its DOM classes, and each state change shows in the status label.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest
from helpers import SECRET, code
from procs import ssh_processes
from test_server_api import add_prompt_host

from hy2fa_lab.core import mux
from hy2fa_lab.core.errors import Hy2faError, NoPrompt
from hy2fa_lab.core.manager import Manager, Settings
from hy2fa_lab.demo import sshserver
from hy2fa_lab.kernel.backends import LocalBackend, View
from hy2fa_lab.kernel.widget import _KEEP as KEEP
from hy2fa_lab.kernel.widget import ConnectWidget

pytestmark = pytest.mark.timeout(60)

NAME = "tester@otp.example"
CODE = "861235"  # what the fake backend's person types
PROMPT = {"id": 1, "kind": "otp", "text": "(tester@otp.example) Verification code: "}


def view(state: str, **fields: Any) -> View:
    """A session as ``MasterSession.to_json`` shows it (the fields the widget reads)."""
    return {
        "name": NAME,
        "host": "otp.example",
        "user": "tester",
        "state": state,
        "prompt": None,
        "message": "",
        "master_pid": None,
        "control_path": "/tmp/cm-x",
        "updated": f"{time.monotonic():.6f}",  # each view is new to the widget
        **fields,
    }


class FakeBackend:
    """Records answers; ``get`` plays ``views`` in turn (the last one stays)."""

    kind = "fake"

    def __init__(self, *views: View, after_answer: View | None = None) -> None:
        self.views = list(views)
        self.after_answer = after_answer or view("verifying")
        self.answers: list[tuple[str, str, int | None]] = []
        self.refuse: Hy2faError | None = None
        self.asked = threading.Event()  # set at every ``get``

    def connect(
        self, cluster: str, user: str | None, persist: str | None, control_path: str | None = None
    ) -> View:
        raise AssertionError("the widget never starts a login")

    def get(self, name: str, after: int | None = None, wait: float = 25.0) -> View:
        """Like the server: with ``after`` and nothing newer, it holds the request a while."""
        assert name == NAME
        self.asked.set()
        if len(self.views) > 1:
            return self.views.pop(0)
        if after is not None:
            time.sleep(min(wait, 0.1))
        return self.views[0]

    def answer(self, name: str, response: str, prompt_id: int | None) -> View:
        self.answers.append((name, response, prompt_id))
        if self.refuse is not None:
            raise self.refuse
        return self.after_answer

    def disconnect(self, name: str) -> View:
        raise AssertionError("the widget never disconnects")

    def connections(self) -> list[View]:
        return []

    def control_path(self, cluster: str, user: str | None) -> str:
        return "/tmp/cm-x"


def tree(root: widgets.Widget) -> list[widgets.Widget]:
    """``root`` and every widget its synced traits hold (children, layouts, styles)."""
    found: dict[str, widgets.Widget] = {}
    stack = [root]
    while stack:
        widget = stack.pop()
        if widget.model_id in found:
            continue
        found[widget.model_id] = widget
        for name in widget.keys:
            value = getattr(widget, name)
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, widgets.Widget):
                    stack.append(item)
    return list(found.values())


def assert_nowhere(widget: ConnectWidget, secret: str) -> None:
    """``secret`` is in no widget's state (what a frontend could be sent) and no str trait."""
    parts = tree(widget.box)
    assert widget.password in parts and widget.submit in parts and widget.status in parts
    states = json.dumps([part.get_state() for part in parts], default=repr)
    assert secret not in states
    for part in parts:
        for name in part.trait_names():
            value = getattr(part, name, None)
            assert not (isinstance(value, str) and secret in value), (part, name)
    assert all(secret not in repr(value) for value in vars(widget).values())


async def wait_until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Wait on the event loop, which the widget draws from (as in a kernel)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
def make() -> Iterator[Callable[..., ConnectWidget]]:
    """``make(backend, view, follow=False)`` -> a ConnectWidget, closed and forgotten after."""
    made: list[ConnectWidget] = []

    def build(backend: Any, first: View, *, follow: bool = False) -> ConnectWidget:
        widget = ConnectWidget(backend, first, follow=follow)
        made.append(widget)
        return widget

    yield build
    for widget in made:
        widget.close()
        assert widget not in ConnectWidget.instances
        for part in tree(widget.box):
            part.close()


# ---- the code ---------------------------------------------------------------------------


def test_a_typed_code_is_sent_once_and_left_in_no_widget_state(
    make: Callable[..., ConnectWidget],
) -> None:
    backend = FakeBackend(view("prompting", prompt=PROMPT))
    widget = make(backend, view("prompting", prompt=PROMPT))
    # The field's value never goes back to the frontends as it is typed.
    assert widget.password.trait_metadata("value", "echo_update") is False
    assert widget.password.description == "Code"  # its accessible name (a <label>)

    widget.password.set_state({"value": CODE})  # what the frontend's update message does
    assert backend.answers == [(NAME, CODE, 1)]
    assert widget.password.value == ""
    assert_nowhere(widget, CODE)
    assert "data-state='verifying'" in widget.status.value  # the answer's view is drawn

    widget.submit.click()  # Submit after Enter: the field is empty, nothing more is sent
    assert backend.answers == [(NAME, CODE, 1)]


def test_a_refused_answer_empties_the_field_and_shows_why(
    make: Callable[..., ConnectWidget],
) -> None:
    backend = FakeBackend(view("prompting", prompt=PROMPT))
    backend.refuse = NoPrompt("that prompt of <x> was already answered")
    widget = make(backend, view("prompting", prompt=PROMPT))
    widget.password.set_state({"value": CODE})
    assert backend.answers == [(NAME, CODE, 1)]
    assert widget.password.value == ""
    assert "already answered" in widget.status.value
    assert "&lt;x&gt;" in widget.status.value and "<x>" not in widget.status.value
    assert_nowhere(widget, CODE)


def test_host_key_and_menu_prompts_answer_with_their_buttons(
    make: Callable[..., ConnectWidget],
) -> None:
    hostkey = {"id": 3, "kind": "hostkey", "text": "fingerprint is SHA256:abc. Continue?"}
    backend = FakeBackend(view("prompting", prompt=hostkey))
    widget = make(backend, view("prompting", prompt=hostkey))
    assert widget.hostkey.layout.display is None  # shown
    assert widget.entry.layout.display == "none"  # no code field for a host key
    widget.trust.click()
    widget.render(view("prompting", prompt=hostkey))
    widget.reject.click()

    choices = ["Duo Push to XXX-1234", "Phone call to XXX-1234"]
    duo = {"id": 4, "kind": "duo", "text": "Duo", "options": choices}
    widget.render(view("prompting", prompt=duo))
    assert widget.hostkey.layout.display == "none"
    assert [button.description for button in widget.options.children] == choices
    widget.options.children[1].click()
    assert backend.answers == [(NAME, "yes", 3), (NAME, "no", 3), (NAME, "2", 4)]


# ---- what the page sees -----------------------------------------------------------------


def test_the_page_finds_the_widget_by_its_dom_classes(make: Callable[..., ConnectWidget]) -> None:
    widget = make(FakeBackend(view("starting")), view("starting"))
    wanted = {"hy2fa-widget", "hy2fa-for-" + NAME.encode().hex()}
    assert wanted <= set(widget.box._dom_classes)
    assert wanted <= set(widget.box.get_state()["_dom_classes"])  # what the frontend gets
    assert "hy2fa-for-746573746572406f74702e6578616d706c65" in widget.box._dom_classes
    assert widget in ConnectWidget.instances


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("starting", "Connecting to otp.example…"),
        ("prompting", "Waiting for your answer"),
        ("verifying", "Checking"),
        ("connected", "Connected"),
        ("failed", "Failed"),
        ("disconnected", "Disconnected"),
        ("unresponsive", "Not responding"),
    ],
)
def test_each_state_shows_in_the_label(
    state: str, words: str, make: Callable[..., ConnectWidget]
) -> None:
    first = "failed" if state == "starting" else "starting"
    widget = make(FakeBackend(view(first)), view(first))
    assert f"data-state='{first}'" in widget.status.value
    fields: dict[str, Any] = {"message": "Permission denied <publickey>"}
    if state == "prompting":
        fields["prompt"] = PROMPT
    if state == "connected":
        fields.update(master_pid=4321, control_path="/tmp/cm-<a>")
    widget.render(view(state, **fields))
    label = widget.status.value
    assert f"data-state='{state}'" in label
    assert f"<b>{words}" in label
    assert f"data-state='{first}'" not in label
    if state == "connected":
        assert "master pid 4321" in label and "/tmp/cm-&lt;a&gt;" in label
    elif state not in ("starting", "verifying"):  # those show seconds, not the message
        assert "Permission denied &lt;publickey&gt;" in label
    shows_entry = state == "prompting"
    assert (widget.entry.layout.display is None) is shows_entry
    assert ("Verification code" in widget.prompt.value) is shows_entry


async def test_following_the_session_updates_the_label_and_keeps_watching(
    make: Callable[..., ConnectWidget],
) -> None:
    backend = FakeBackend(
        view("prompting", prompt=PROMPT),
        view("verifying"),
        view("connected", master_pid=99, control_path="/tmp/cm-x"),
        view("disconnected", reason=None, message="The master exited (idle past ControlPersist)"),
    )
    widget = make(backend, view("starting"), follow=True)
    drawn_in: set[str] = set()
    original = widget._draw

    def draw(*args: Any) -> None:
        drawn_in.add(threading.current_thread().name)
        original(*args)

    widget._draw = draw  # type: ignore[method-assign]
    await wait_until(lambda: "data-state='connected'" in widget.status.value, "connected")
    assert "master pid 99" in widget.status.value
    # A master that goes away later shows too: the widget keeps following.
    await wait_until(lambda: "data-state='disconnected'" in widget.status.value, "gone")
    assert "idle past ControlPersist" in widget.status.value
    # Only the kernel's own loop (this thread) ever touched the widgets (not thread-safe).
    assert drawn_in == {threading.current_thread().name}
    assert widget._task is not None and not widget._task.done()


async def test_close_stops_following_a_login_that_never_settles(
    make: Callable[..., ConnectWidget],
) -> None:
    backend = FakeBackend(view("prompting", prompt=PROMPT))
    widget = make(backend, view("prompting", prompt=PROMPT), follow=True)
    await wait_until(backend.asked.is_set, "a first wait for a change")
    widget.close()
    assert widget._task is not None
    await asyncio.wait([widget._task], timeout=5)
    assert widget._task.done()
    assert widget not in ConnectWidget.instances


async def test_the_widgets_that_follow_are_bounded(make: Callable[..., ConnectWidget]) -> None:
    made = [
        make(FakeBackend(view("prompting", prompt=PROMPT)), view("prompting", prompt=PROMPT),
             follow=True)
        for _ in range(KEEP + 5)
    ]  # fmt: skip
    assert len(ConnectWidget.instances) <= KEEP
    assert ConnectWidget.instances == made[-KEEP:]  # the newest follow, the oldest stopped
    await asyncio.sleep(0.05)
    assert all(w._task is not None and w._task.done() for w in made[:5])
    assert all(w._task is not None and not w._task.done() for w in made[-KEEP:])


async def test_a_push_says_approve_on_the_phone_with_seconds_and_the_lines(
    make: Callable[..., ConnectWidget],
) -> None:
    since = (datetime.now(timezone.utc) - timedelta(seconds=3)).isoformat()
    lines = ["Pushed a login request to your device...", "Enter this code in Duo Mobile: 31"]
    pushed = view(
        "verifying",
        verifying={"since": since, "choice": "Duo Push to XXX-1234", "lines": lines},
    )
    widget = make(FakeBackend(pushed), pushed, follow=True)
    label = widget.status.value
    assert "<b>Approve the request on your phone</b> 3 s" in label
    assert "Pushed a login request to your device...\nEnter this code in Duo Mobile: 31" in label
    # The seconds tick on the kernel's loop while it waits.
    await wait_until(lambda: "</b> 4 s" in widget.status.value, "the next second", timeout=5)


def test_a_failure_says_what_the_cluster_said_and_what_to_try(
    make: Callable[..., ConnectWidget],
) -> None:
    widget = make(FakeBackend(view("starting")), view("starting"))
    widget.render(view("failed", reason="cancelled", message="Cancelled"))
    assert "<b>Failed</b> — Cancelled<" in widget.status.value  # not "cancelled: Cancelled"
    widget.render(
        view("failed", reason="auth_failed", message="Login refused by x: Permission denied")
    )
    assert "Permission denied. Check the code" in widget.status.value


# ---- the real engine --------------------------------------------------------------------


@pytest.fixture
def local_backend(client_config: Path, short_tmp: Path) -> Iterator[LocalBackend]:
    backend = LocalBackend(
        Manager(Settings(ssh_config=str(client_config), control_path=f"{short_tmp}/%C"))
    )
    yield backend
    backend.run(backend.manager.shutdown())
    backend.loop.call_soon_threadsafe(backend.loop.stop)
    backend.thread.join(5)


async def test_a_real_login_through_the_widget(
    make: Callable[..., ConnectWidget],
    local_backend: LocalBackend,
    prompt_server: Callable[..., sshserver.ServerThread],
    client_config: Path,
    short_tmp: Path,
) -> None:
    server = prompt_server(sshserver.totp(SECRET))
    add_prompt_host(client_config, "otp", server.port)
    widget = make(local_backend, local_backend.connect("otp", None, None), follow=True)
    assert "hy2fa-for-" + b"otp".hex() in widget.box._dom_classes
    await wait_until(lambda: "data-state='prompting'" in widget.status.value, "the prompt")
    assert "Verification code: " in widget.prompt.value
    assert widget.entry.layout.display is None

    typed = code()
    widget.password.set_state({"value": typed})
    assert widget.password.value == ""
    await wait_until(lambda: "data-state='connected'" in widget.status.value, "connected")
    found = local_backend.get("otp")
    assert f"master pid {found['master_pid']}" in widget.status.value
    assert mux.alive(found["control_path"]) == found["master_pid"]
    assert widget.entry.layout.display == "none"
    assert_nowhere(widget, typed)

    assert local_backend.disconnect("otp")["state"] == "disconnected"
    assert ssh_processes(str(short_tmp)) == {}
