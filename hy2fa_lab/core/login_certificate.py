"""The certificate login method: a key + certificate from the site's issuer (NERSC's
sshproxy), then ``ssh -M`` with it.

While the certificate at ``key + "-cert.pub"`` is valid for longer than ``renew_before``, is
for the ssh user and matches the key, the master opens with it and nothing is asked (ssh may
still ask about a host key). Otherwise one question, "Password + OTP for <login> at <issuer>",
is asked on the connection record like any of ssh's; its answer goes into the issuer request's
Authorization header and nowhere else, and is dropped. A 401 asks again with the issuer's
words; anything else that is not a key and certificate fails the login and leaves the files
the person already has as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from . import certificates
from .login import Finished
from .login_ssh import SshLogin
from .types import CertificateSpec, Prompt, PromptKind, Reason, State

if TYPE_CHECKING:
    from .session import MasterSession


class CertificateLogin:
    kind = "certificate"

    def __init__(self, spec: CertificateSpec, ssh: SshLogin) -> None:
        self.spec = spec
        self.ssh = ssh
        self._answer: asyncio.Future[str] | None = None
        self._described: certificates.Certificate | None = None
        self._read()

    @property
    def child_pid(self) -> int | None:
        return self.ssh.child_pid

    @property
    def issuer_host(self) -> str:
        return self.spec.issuer_name

    def view(self) -> dict[str, Any]:
        if self._described is None:
            return {
                "issuer": self.spec.issuer,
                "valid_before": None,
                "principals": [],
                "key": self.spec.key,
            }
        return self._described.view(self.spec.issuer)

    def _read(self) -> certificates.Certificate | None:
        self._described = certificates.read(self.spec)
        return self._described

    # ---- the method ------------------------------------------------------------

    async def run(self, login: MasterSession) -> None:
        if not await self.ssh.ready(login):
            return
        user = login.target.user
        described = await asyncio.to_thread(self._read)
        if described is None or described.unusable(user, self.spec.renew_before):
            await self._obtain(login, self.spec.login or user)
        self.ssh.extra_options = (
            ("IdentityFile", self.spec.key),
            ("CertificateFile", self.spec.certificate_file),
            ("IdentitiesOnly", "yes"),
        )
        await self.ssh.open(login)

    async def _obtain(self, login: MasterSession, name: str) -> None:
        """Ask for the password + OTP until the issuer gives a pair (or says no for good)."""
        host = self.issuer_host
        text = f"Password + OTP for {name} at {host}"
        while True:
            loop = asyncio.get_running_loop()
            self._answer = loop.create_future()
            login.ask(Prompt(PromptKind.PASSWORD, text, secret=True))
            try:
                secret = await asyncio.wait_for(asyncio.shield(self._answer), login.prompt_timeout)
            except asyncio.TimeoutError:
                login.fail(
                    Reason.TIMEOUT,
                    f"Nobody answered the prompt within {int(login.prompt_timeout)} s",
                )
                raise Finished from None
            finally:
                self._answer = None
            try:
                body = await asyncio.to_thread(certificates.request_pair, self.spec, name, secret)
            except certificates.IssuerError as error:
                if error.retry:
                    login.message = f"{error.message} — try again"
                    continue
                login.fail(Reason(error.reason), error.message)
                raise Finished from None
            finally:
                del secret
            try:
                pair = certificates.parse_pair(body, self.spec.key, host)
                if pair.described.unusable(login.target.user, 0):
                    raise certificates.IssuerError(
                        f"{host} sent a certificate that cannot log in as "
                        f"{login.target.user}: {pair.described.unusable(login.target.user, 0)}"
                    )
                await asyncio.to_thread(certificates.store, self.spec, pair)
            except certificates.IssuerError as error:
                login.fail(Reason.ERROR, error.message)
                raise Finished from None
            except OSError as error:
                login.fail(Reason.ERROR, f"Cannot store the key at {self.spec.key}: {error}")
                raise Finished from None
            self._described = pair.described
            login.message = ""
            if login.state is State.VERIFYING:
                login.verifying()  # the view's certificate changed
            return

    async def deliver(self, response: str) -> None:
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_result(response)
        else:
            await self.ssh.deliver(response)
        del response

    async def stop(self) -> None:
        answer = self._answer
        if answer is not None and not answer.done():
            with contextlib.suppress(asyncio.InvalidStateError):
                answer.cancel()
        await self.ssh.stop()
