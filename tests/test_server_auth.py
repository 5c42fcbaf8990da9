"""Every hy2fa route, listed from the running app (so a new route cannot be forgotten),
refuses requests without valid credentials, and honours the server's authorizer."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.routing
import tornado.web
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.base.handlers import JupyterHandler

METHODS = ("get", "post", "put", "patch", "delete")


class DenyHy2fa(Authorizer):  # type: ignore[misc]
    """Allows everything but the hy2fa resource: every hy2fa handler must ask it."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "hy2fa"


@pytest.fixture
def deny_hy2fa() -> bool:
    return False


@pytest.fixture
def jp_server_config(deny_hy2fa: bool) -> dict[str, Any]:
    config: dict[str, Any] = {"ServerApp": {"jpserver_extensions": {"hy2fa_lab": True}}}
    if deny_hy2fa:
        config["ServerApp"]["authorizer_class"] = DenyHy2fa
    return config


def _rules(router: Any) -> Iterator[tornado.routing.Rule]:
    for rule in getattr(router, "rules", []):
        if isinstance(rule.target, tornado.routing.Router):
            yield from _rules(rule.target)
        else:
            yield rule


def hy2fa_routes(app: tornado.web.Application, base_url: str) -> list[tuple[str, str, type]]:
    """(method, url path, handler class) of every route the extension registered."""
    found = []
    for rule in [*_rules(app.wildcard_router), *_rules(app.default_router)]:
        handler = rule.target
        if not (isinstance(handler, type) and handler.__module__.startswith("hy2fa_lab")):
            continue
        assert isinstance(rule.matcher, tornado.routing.PathMatches)
        pattern = rule.matcher.regex.pattern.rstrip("$")
        path = re.sub(r"\(\?P<\w+>[^)]*\)", "saga", pattern)
        assert path.startswith(base_url), path
        for method in METHODS:
            if getattr(handler, method) is not getattr(JupyterHandler, method):
                found.append((method.upper(), path, handler))
    return found


@pytest.fixture
def routes(jp_serverapp: Any, jp_base_url: str, jp_fetch: Any) -> list[tuple[str, str, type]]:
    """The routes; ``jp_fetch`` makes pytest-jupyter serve on ``http_server_port``."""
    found = hy2fa_routes(jp_serverapp.web_app, jp_base_url)
    # Not vacuous: the routes the frontend and kernels use are all there.
    paths = {(method, path[len(jp_base_url) :]) for method, path, _ in found}
    assert {
        ("GET", "hy2fa/version"),
        ("GET", "hy2fa/clusters"),
        ("GET", "hy2fa/connections"),
        ("POST", "hy2fa/connections"),
        ("GET", "hy2fa/connections/saga"),
        ("DELETE", "hy2fa/connections/saga"),
        ("POST", "hy2fa/connections/saga/answer"),
    } <= paths, paths
    return found


def _request(
    url: str, method: str, headers: dict[str, str] | None = None, opener: Any = None
) -> int:
    body = b'{"cluster": "saga", "response": "x"}' if method in ("POST", "PUT", "PATCH") else None
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


async def test_every_route_refuses_missing_or_wrong_credentials(
    routes: list[tuple[str, str, type]], jp_serverapp: Any, http_server_port: Any
) -> None:
    origin = f"http://127.0.0.1:{http_server_port[-1]}"
    token = jp_serverapp.identity_provider.token
    assert await asyncio.to_thread(
        _request, f"{origin}{routes[0][1].rsplit('hy2fa/', 1)[0]}hy2fa/version", "GET",
        {"Authorization": f"token {token}"},
    ) == 200  # fmt: skip
    for method, path, handler in routes:
        assert handler.auth_resource == "hy2fa", handler
        url = f"{origin}{path}"
        for headers, query in [
            ({}, ""),
            ({"Authorization": "token wrong"}, ""),
            ({}, "?token=wrong"),
            ({"Authorization": f"token {token}x"}, ""),
        ]:
            status = await asyncio.to_thread(_request, url + query, method, headers)
            assert status in (401, 403), (method, path, headers, query, status)


async def test_a_browser_cookie_without_xsrf_cannot_change_anything(
    routes: list[tuple[str, str, type]], jp_serverapp: Any, http_server_port: Any, jp_base_url: str
) -> None:
    origin = f"http://127.0.0.1:{http_server_port[-1]}"
    token = jp_serverapp.identity_provider.token
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    await asyncio.to_thread(opener.open, f"{origin}{jp_base_url}api/status?token={token}")
    changing = [(m, p) for m, p, _ in routes if m != "GET"]
    assert changing
    for method, path in changing:
        status = await asyncio.to_thread(_request, f"{origin}{path}", method, None, opener)
        assert status == 403, (method, path, status)
    listed = await asyncio.to_thread(opener.open, f"{origin}{jp_base_url}hy2fa/connections")
    assert json.loads(listed.read())["connections"] == []  # nothing was started


@pytest.mark.parametrize("deny_hy2fa", [True])
async def test_every_route_asks_the_servers_authorizer(
    routes: list[tuple[str, str, type]], jp_serverapp: Any, http_server_port: Any
) -> None:
    origin = f"http://127.0.0.1:{http_server_port[-1]}"
    headers = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    status = await asyncio.to_thread(
        _request, f"{origin}{routes[0][1].split('hy2fa/')[0]}api/status", "GET", headers
    )
    assert status == 200  # the token is good: only the hy2fa resource is denied
    for method, path, _ in routes:
        status = await asyncio.to_thread(_request, f"{origin}{path}", method, headers)
        assert status == 403, (method, path, status)
