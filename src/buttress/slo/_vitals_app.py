"""The Starlette face of :class:`~buttress.slo.vitals.VitalsCollector`: beacon, script and summary endpoints.

Imported by :func:`buttress.slo.vitals.vitals_app` only, once Starlette is known to be installed, so
``buttress.slo.vitals`` itself needs nothing beyond the standard library.
"""

from __future__ import annotations

import math

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from buttress.slo.vitals import BeaconRejected, VitalsCollector, script

__all__ = ["VitalsEndpoints", "build_app"]


class VitalsEndpoints:
    """The endpoints over one collector; the script is read once, when they are built.

    Args:
        collector: where beacons go.
        trust_forwarded: identify clients by the first ``X-Forwarded-For`` address.
    """

    __slots__ = ("collector", "script", "trust_forwarded")

    def __init__(self, collector: VitalsCollector, trust_forwarded: bool) -> None:
        self.collector = collector
        self.trust_forwarded = trust_forwarded
        self.script = script()

    def client_of(self, request: Request) -> str:
        """The address a client's rate limit is kept under."""
        if self.trust_forwarded:
            forwarded = request.headers.get("x-forwarded-for")
            if forwarded:
                return forwarded.split(",")[0].strip()
        return request.client.host if request.client else "unknown"

    async def beacon(self, request: Request) -> Response:
        """``POST /vitals``: 202 with the counts, or the status :class:`BeaconRejected` carries."""
        vitals = self.collector
        try:
            vitals.admit(self.client_of(request))
            page, device, metrics = vitals.parse(await self._body(request))
            accepted, duplicates = vitals.record(page, device, metrics)
        except BeaconRejected as exc:
            headers = {"Retry-After": str(max(1, math.ceil(1 / vitals.rate)))} if exc.status == 429 else None
            return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
        except ClientDisconnect:
            return Response(status_code=400)
        return JSONResponse({"accepted": accepted, "duplicates": duplicates}, status_code=202)

    async def _body(self, request: Request) -> bytes:
        """The body, refused (413) as soon as it is known to be too large.

        The declared length is checked first, then the streamed size, so an oversized beacon is never
        held in memory whole.
        """
        limit = self.collector.max_body
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise _too_large(limit)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    async def js(self, request: Request) -> Response:
        """``GET /vitals.js``: the beacon script, cacheable for a day."""
        return Response(
            self.script, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
        )

    async def summary(self, request: Request) -> Response:
        """``GET /summary``: P75 and rating per metric, page and device class."""
        return JSONResponse(
            [
                {
                    "metric": s.metric,
                    "page": s.page,
                    "device": s.device,
                    "count": s.count,
                    "p75": s.p75,
                    "rating": s.rating,
                }
                for s in self.collector.summary()
            ]
        )


def _too_large(limit: int) -> BeaconRejected:
    return BeaconRejected(413, f"beacon larger than {limit} bytes")


def build_app(collector: VitalsCollector, trust_forwarded: bool) -> Starlette:
    """The Starlette app :func:`~buttress.slo.vitals.vitals_app` returns."""
    endpoints = VitalsEndpoints(collector, trust_forwarded)
    app = Starlette(
        routes=[
            Route("/vitals", endpoints.beacon, methods=["POST"]),
            Route("/vitals.js", endpoints.js, methods=["GET"]),
            Route("/summary", endpoints.summary, methods=["GET"]),
        ]
    )
    app.state.collector = collector
    return app
