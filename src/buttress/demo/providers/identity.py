"""A local identity provider: checks the bearer tokens of write requests.

``POST /verify`` with ``{"token": "…"}`` answers 200 ``{"subject", "roles"}`` for a known token and 401
for any other. Tokens are given when the app is built (the demo makes one admin token per run and hands it
to its traffic generator) or issued with ``POST /tokens {"subject": "…", "roles": [...]}``.
"""

from __future__ import annotations

import secrets
from typing import Any

from buttress._extras import require
from buttress.demo.providers.chaos import Chaos, ChaosMiddleware

__all__ = ["create_identity_app"]


def create_identity_app(chaos: Chaos | None = None, tokens: dict[str, dict[str, Any]] | None = None) -> Any:
    """The identity provider as an ASGI app; ``tokens`` maps token -> ``{"subject", "roles"}``."""
    require("starlette", "web")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    known: dict[str, dict[str, Any]] = dict(tokens or {})

    async def verify(request: Request) -> JSONResponse:
        try:
            data = await request.json()
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, 400)
        token = data.get("token") if isinstance(data, dict) else None
        principal = known.get(token) if isinstance(token, str) else None
        if principal is None:
            return JSONResponse({"valid": False, "error": "unknown or expired token"}, 401)
        return JSONResponse({"valid": True, **principal})

    async def issue(request: Request) -> JSONResponse:
        data = await request.json()
        subject = data.get("subject") if isinstance(data, dict) else None
        if not isinstance(subject, str) or not subject:
            return JSONResponse({"error": "subject is required"}, 422)
        token = secrets.token_urlsafe(24)
        known[token] = {"subject": subject, "roles": list(data.get("roles") or ["editor"])}
        return JSONResponse({"token": token}, 201)

    app = Starlette(
        routes=[Route("/verify", verify, methods=["POST"]), Route("/tokens", issue, methods=["POST"])]
    )
    return ChaosMiddleware(app, chaos if chaos is not None else Chaos(), "identity")
