"""A local object storage provider: signs URLs for stored objects and serves them.

``GET /sign/{key}`` answers ``{"url", "expires_at"}`` — a URL on this service carrying an expiry and a
signature, as S3 presigned URLs do — and ``GET /objects/{key}`` serves a small generated SVG for any key
(event images, speaker photos), so the demo's public page shows real images from the provider.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from buttress._extras import require
from buttress.demo.providers.chaos import Chaos, ChaosMiddleware

__all__ = ["create_storage_app"]

_SECRET = b"buttress-demo-storage"
_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="160" viewBox="0 0 320 160">'
    '<rect width="320" height="160" fill="#{color}"/>'
    '<text x="160" y="88" font-family="sans-serif" font-size="18" fill="#fff" '
    'text-anchor="middle">{label}</text>'
    "</svg>"
)


def _signature(key: str, expires: int) -> str:
    return hmac.new(_SECRET, f"{key}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def create_storage_app(chaos: Chaos | None = None, *, public_url: str = "", url_ttl: int = 3600) -> Any:
    """The storage provider as an ASGI app; ``public_url`` prefixes the signed URLs it hands out."""
    require("starlette", "web")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def sign(request: Request) -> JSONResponse:
        key = request.path_params["key"]
        # Expiry rounded to the minute so every worker signs the same URL for a key within that minute.
        expires = (int(time.time()) // 60) * 60 + url_ttl
        base = public_url or f"{request.url.scheme}://{request.url.netloc}"
        url = f"{base}/objects/{key}?expires={expires}&sig={_signature(key, expires)}"
        return JSONResponse({"url": url, "expires_at": expires})

    async def get_object(request: Request) -> Response:
        key = request.path_params["key"]
        try:
            expires = int(request.query_params.get("expires", "0"))
        except ValueError:
            expires = 0
        sig = request.query_params.get("sig", "")
        if expires < time.time() or not hmac.compare_digest(sig, _signature(key, expires)):
            return JSONResponse({"error": "signature invalid or expired"}, 403)
        color = hashlib.sha256(key.encode()).hexdigest()[:6]
        label = key.rsplit("/", 1)[-1].split(".")[0][:24]
        return Response(_SVG.format(color=color, label=label), media_type="image/svg+xml")

    app = Starlette(
        routes=[
            Route("/sign/{key:path}", sign, methods=["GET"]),
            Route("/objects/{key:path}", get_object, methods=["GET"]),
        ]
    )
    return ChaosMiddleware(app, chaos if chaos is not None else Chaos(), "storage")
