"""The login-method seam: what a way of opening a master (a *login method*) must do, and what
the connection record (``session.MasterSession``) offers it.

A connection is one record (state, version, prompt, ``to_json``, change notifications) and one
login method, chosen by the cluster's profile:

- ``login_ssh.SshLogin``: ``ssh -M`` under pexpect, ssh's own questions (keyboard-interactive,
  passwords, host keys, Duo);
- ``login_certificate.CertificateLogin``: a certificate from the site's issuer first (one
  question, or none while the certificate is valid), then ``ssh -M`` with it.

The record checks the socket first (a live master is adopted, whatever the method), then runs
``method.run(record)``. A method asks through ``record.ask(prompt)`` (the record is then
``prompting``, with a new prompt id, in every view: Lab, the widget, the CLI, ``ensure()``);
``record.answer()`` checks an answer, moves the record to ``verifying`` and hands the answer
to ``method.deliver()``, which uses it at once and keeps it nowhere. A method ends the login
with ``record.connected(pid)`` or ``record.fail(reason, message)`` (and may raise
:class:`Finished` to unwind). On cancel or an unexpected error the record calls
``method.stop()``, which must leave no child process behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .session import MasterSession


class Finished(Exception):
    """The login already recorded its outcome (``connected`` or ``failed``)."""


class LoginMethod(Protocol):
    """One way of opening a master for a connection record."""

    #: a word for logs and views: ``ssh``, ``certificate``
    kind: str

    async def run(self, login: MasterSession) -> None:
        """Open the master (the socket was checked: nothing answers there)."""

    async def deliver(self, response: str) -> None:
        """Use the answer to the prompt the method asked, at once; keep it nowhere."""

    async def stop(self) -> None:
        """End whatever the method runs (cancel, error): no child is left behind."""

    @property
    def child_pid(self) -> int | None:
        """The pid of the method's foreground process (ssh), if one runs."""

    def view(self) -> dict[str, Any] | None:
        """The method's part of the connection view (``certificate``), or None."""
