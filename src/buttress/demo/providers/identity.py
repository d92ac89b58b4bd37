"""A local identity provider: checks the bearer tokens of write requests.

``POST /verify`` with ``{"token": "…"}`` answers 200 ``{"subject", "roles"}`` for a known token and 401
for any other. Tokens are given when the app is built (the demo makes one admin token per run and hands it
to its traffic generator) or issued with ``POST /tokens {"subject": "…", "roles": [...]}``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from buttress._extras import require
from buttress.demo.providers.chaos import Chaos, ChaosMiddleware

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import JSONResponse

__all__ = ["create_identity_app"]


class _Tokens:
    """The known tokens and the provider's two routes over them."""

    def __init__(self, tokens: dict[str, dict[str, Any]]) -> None:
        from starlette.responses import JSONResponse

        self.known = tokens
        self._json = JSONResponse

    async def verify(self, request: Request) -> JSONResponse:
        """``POST /verify``: 200 with the token's principal, 401 for an unknown token."""
        data = await _body(request)
        if data is _NOT_JSON:
            return self._json({"error": "body must be JSON"}, 400)
        token = data.get("token") if isinstance(data, dict) else None
        principal = self.known.get(token) if isinstance(token, str) else None
        if principal is None:
            return self._json({"valid": False, "error": "unknown or expired token"}, 401)
        return self._json({"valid": True, **principal})

    async def issue(self, request: Request) -> JSONResponse:
        """``POST /tokens``: a new token for ``subject`` with ``roles`` (default ``["editor"]``), 201."""
        data = await _body(request)
        if data is _NOT_JSON:
            return self._json({"error": "body must be JSON"}, 400)
        subject = data.get("subject") if isinstance(data, dict) else None
        if not isinstance(subject, str) or not subject:
            return self._json({"error": "subject is required"}, 422)
        token = secrets.token_urlsafe(24)
        self.known[token] = {"subject": subject, "roles": list(data.get("roles") or ["editor"])}
        return self._json({"token": token}, 201)


_NOT_JSON: Any = object()


async def _body(request: Request) -> Any:
    """The request's JSON body, or ``_NOT_JSON`` when it does not parse."""
    try:
        return await request.json()
    except ValueError:
        return _NOT_JSON


def create_identity_app(chaos: Chaos | None = None, tokens: dict[str, dict[str, Any]] | None = None) -> Any:
    """The identity provider as an ASGI app; ``tokens`` maps token -> ``{"subject", "roles"}``."""
    require("starlette", "web")
    from starlette.applications import Starlette
    from starlette.routing import Route

    routes = _Tokens(dict(tokens or {}))
    app = Starlette(
        routes=[
            Route("/verify", routes.verify, methods=["POST"]),
            Route("/tokens", routes.issue, methods=["POST"]),
        ]
    )
    return ChaosMiddleware(app, chaos if chaos is not None else Chaos(), "identity")
