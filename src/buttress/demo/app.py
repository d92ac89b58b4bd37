"""The event platform as a FastAPI application.

::

    from buttress.demo.app import create_app
    app = create_app(settings)          # or: uvicorn "buttress.demo.app:from_env" --factory

Routes: the API under ``/api/v1`` (:mod:`buttress.demo.api`), a small public HTML page at ``/`` that
reports its Web Vitals to the SLO engine, ``/health``, ``/metrics`` (Prometheus) and the live dashboard
at ``/_buttress``. Middleware, outermost first: the correlation id (so every response, even a 500, has
one), then buttress's SLO middleware on every route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from buttress._extras import require
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.demo.errors import CorrelationIdMiddleware, install_handlers
from buttress.demo.platform import Platform
from buttress.demo.settings import Settings
from buttress.telemetry import EVENTS, REGISTRY, EventStream, Registry

__all__ = ["create_app", "from_env"]


def create_app(
    settings: Settings,
    *,
    registry: Registry = REGISTRY,
    clock: Clock = SYSTEM_CLOCK,
    events: EventStream = EVENTS,
) -> Any:
    """Build the platform app for ``settings``; the platform starts with the app's lifespan.

    Args:
        settings: database, providers, cache and state locations.
        registry: the telemetry registry the platform and buttress's parts count into.
        clock: the clock of the resilience policies and dead letters (a ``VirtualClock`` in tests).
        events: the event stream breakers publish their transitions on.
    """
    require("fastapi", "demo")
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, Response

    from buttress.demo import page
    from buttress.demo.api import build_router
    from buttress.slo import SLOMiddleware
    from buttress.slo.vitals import vitals_app

    platform = Platform(settings, registry=registry, clock=clock, events=events)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await platform.start()
        try:
            yield
        finally:
            await platform.stop()

    app = FastAPI(
        title="buttress demo: event platform",
        version="1",
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.platform = platform
    install_handlers(app)
    app.include_router(build_router())

    home_page = page.render_home(
        '<script src="/_vitals/vitals.js" data-endpoint="/_vitals/vitals" data-page="/" defer></script>'
    )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home() -> Any:
        return HTMLResponse(home_page)

    @app.get("/placeholder.svg", include_in_schema=False)
    async def placeholder() -> Any:
        # What an event shows when object storage cannot sign its image (a counted fallback).
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="160">'
            '<rect width="320" height="160" fill="#ccd"/></svg>'
        )
        return Response(svg, media_type="image/svg+xml")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Any:
        return Response(status_code=204)

    @app.get("/health", include_in_schema=False)
    async def health() -> Any:
        return {"status": "ok", "worker": settings.worker}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Any:
        from buttress.telemetry.prometheus import exposition

        return Response(exposition(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def dashboard(scope: Any, receive: Any, send: Any) -> None:
        # Built when the platform starts (its controls need the platform's HTTP client).
        await platform.dashboard(scope, receive, send)

    app.mount("/_buttress", dashboard)
    # Real-user timings of the public page: the beacon posts LCP, INP, CLS, FCP and TTFB here.
    app.mount("/_vitals", vitals_app(registry=registry))
    # add_middleware puts each new one outside the last: the correlation id is outermost, so even a
    # response the SLO middleware times carries it.
    app.add_middleware(
        SLOMiddleware,
        recorder=platform.recorder,
        exclude=("/metrics", "/health", "/favicon.ico", "/placeholder.svg", "/_buttress*", "/_vitals*"),
    )
    app.add_middleware(CorrelationIdMiddleware)
    return app


def from_env() -> Any:
    """The app for the settings in ``$BUTTRESS_DEMO_SETTINGS`` (how worker processes build it)."""
    return create_app(Settings.from_env())
