"""SLO benchmarks: HTTP middleware overhead beside its peers, and burn-rate evaluation.

Run from the bench venv: ``python benchmarks/slo.py [--quick] [--json FILE]``.

**Middleware overhead** — a trivial endpoint (``GET /items/{item_id}`` returning a short text body) is
driven in-process by calling the ASGI app directly, without a network or a server: one event loop, a
batch of requests per round awaited back to back, a fresh copy of the request scope each time (the
router writes into it). Every contestant wraps its own copy of the same app:

* ``bare`` — no middleware (the baseline subtracted from all others);
* ``ours`` — :class:`buttress.slo.SLOMiddleware`;
* ``prometheus-fastapi-instrumentator`` — ``Instrumentator().instrument(app)`` with its defaults;
* ``starlette-exporter`` — ``PrometheusMiddleware`` with ``group_paths=True`` (route templates, as ours);
* ``opentelemetry-asgi`` — ``OpenTelemetryMiddleware`` with an SDK ``MeterProvider`` whose metrics go to
  an in-memory reader (tracing left at the API's default, a no-op, so only metrics are compared).

The cases are the Starlette app, and the middleware alone around a minimal ASGI app (where only
OpenTelemetry's middleware can run too). ``fastapi_app`` builds the same endpoint on FastAPI, but it is not
in the default run: a FastAPI request costs 45-60 µs here and varies between rounds by more than our whole
overhead on a shared two-core machine, so its difference is noise (run ``middleware_case`` with it on a
quiet machine to see the same ordering). Figures are µs per request over
``bare``: each contestant's fastest round minus ``bare``'s fastest round, over many short rounds run in
rotating order (``_common.interleave``). Rounds are short (300 requests) and many, because on a shared
machine the minimum of many short rounds finds the quiet moments that a few long rounds miss.

**Burn-rate evaluation** — one SLO whose ring holds 30 days of per-minute data; one ``evaluate()`` computes
the seven burn-rate windows, the budget over the SLO window and the four alert conditions. No peer does
this in-process (Sloth and Pyrra generate Prometheus rules), so the case has no peers.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from _common import Case, interleave, parse_args, report
from buttress.clock import VirtualClock
from buttress.slo import SLOEngine, SLOMiddleware
from buttress.slo.recorder import HttpRecorder
from buttress.slo.routes import RouteSelector
from buttress.slo.schema import DEFAULT_ALERTS
from buttress.slo.spec import AlertWindow, SLOSpec
from buttress.telemetry.events import EventStream
from buttress.telemetry.registry import Registry

SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/items/42",
    "raw_path": b"/items/42",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"bench"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def item(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/items/{item_id}", item)])


def fastapi_app() -> Any:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI()

    @app.get("/items/{item_id}", response_class=PlainTextResponse)
    async def item(item_id: int) -> str:
        return "ok"

    return app


def contestants(factory: Callable[[], Any]) -> dict[str, Any]:
    """Each contestant's app; peers missing from the environment are left out (and reported as NaN)."""
    apps: dict[str, Any] = {"bare": factory()}
    ours = factory()
    ours.add_middleware(SLOMiddleware, recorder=HttpRecorder(Registry()))
    apps["ours"] = ours
    try:
        from prometheus_fastapi_instrumentator import Instrumentator

        pfi = factory()
        Instrumentator(registry=_prom_registry()).instrument(pfi)
        apps["prometheus-fastapi-instrumentator"] = pfi
    except ImportError:
        pass
    try:
        from starlette_exporter import PrometheusMiddleware

        se = factory()
        se.add_middleware(PrometheusMiddleware, group_paths=True, prefix=f"se{id(se)}")
        apps["starlette-exporter"] = se
    except ImportError:
        pass
    try:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        otel = factory()
        otel.add_middleware(OpenTelemetryMiddleware, meter_provider=MeterProvider([InMemoryMetricReader()]))
        apps["opentelemetry-asgi"] = otel
    except ImportError:
        pass
    return apps


def _prom_registry() -> Any:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


def request_timer(app: Any, loop: asyncio.AbstractEventLoop, n: int) -> Callable[[int], int]:
    async def batch() -> int:
        scope = SCOPE
        start = time.perf_counter_ns()
        for _ in range(n):
            await app(dict(scope), _receive, _send)
        return time.perf_counter_ns() - start

    def run(round_no: int) -> int:
        return loop.run_until_complete(batch())

    return run


def middleware_case(name: str, factory: Callable[[], Any], rounds: int, n: int) -> Case:
    apps = contestants(factory)
    loop = asyncio.new_event_loop()
    try:
        for app in apps.values():  # warm up: first requests build caches and series
            request_timer(app, loop, 200)(0)
        timers = {k: request_timer(app, loop, n) for k, app in apps.items()}
        ns = interleave(timers, rounds=rounds, ops=n, baseline=lambda r: 0)
    finally:
        loop.close()
    bare = ns.pop("bare")
    us = {k: (v - bare) / 1000.0 for k, v in ns.items()}
    peers = {
        p: us.get(p, math.nan)
        for p in ("prometheus-fastapi-instrumentator", "starlette-exporter", "opentelemetry-asgi")
    }
    print(f"{name}: bare request {bare / 1000:.1f} µs")
    return Case(name, us["ours"], peers)


def middleware_alone_case(rounds: int, n: int) -> Case:
    """The middleware around a minimal ASGI app (sets ``scope["route"]``, sends two messages): its own cost.

    Only OpenTelemetry's middleware also wraps a bare ASGI app; the two Prometheus peers need a Starlette
    app, so they have no figure here.
    """

    class Route:
        path = "/items/{item_id}"

    route = Route()

    async def minimal(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = route
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    apps: dict[str, Any] = {"bare": minimal, "ours": SLOMiddleware(minimal, HttpRecorder(Registry()))}
    try:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        apps["opentelemetry-asgi"] = OpenTelemetryMiddleware(
            minimal, meter_provider=MeterProvider([InMemoryMetricReader()])
        )
    except ImportError:
        pass
    loop = asyncio.new_event_loop()
    try:
        for app in apps.values():
            request_timer(app, loop, 200)(0)
        ns = interleave({k: request_timer(a, loop, n) for k, a in apps.items()}, rounds, n, lambda r: 0)
    finally:
        loop.close()
    bare = ns.pop("bare")
    us = {k: (v - bare) / 1000.0 for k, v in ns.items()}
    return Case(
        "middleware_alone",
        us["ours"],
        {
            "prometheus-fastapi-instrumentator": math.nan,
            "starlette-exporter": math.nan,
            "opentelemetry-asgi": us.get("opentelemetry-asgi", math.nan),
        },
    )


def burn_rate_case(rounds: int) -> Case:
    clock = VirtualClock(wall_start=1_793_491_200.0)  # 2026-11-01
    spec = SLOSpec(
        "api",
        "availability",
        0.999,
        30 * 86400.0,
        (RouteSelector.parse("*"),),
        alerts=tuple(
            AlertWindow(a["severity"], a["long"], a["short"], a["burn_rate"]) for a in DEFAULT_ALERTS
        ),
    )
    engine = SLOEngine([spec], clock=clock, events=EventStream(), registry=Registry())
    start = int(clock.time() // 60)
    for m in range(30 * 1440):
        engine.record("api", start + m, 995 if m % 97 == 0 else 1000, 1000)
    end = start + 30 * 1440 - 1
    n = 2000

    def run(round_no: int) -> int:
        evaluate = engine.evaluate
        t0 = time.perf_counter_ns()
        for _ in range(n):
            evaluate(end)
        return time.perf_counter_ns() - t0

    ns = interleave({"ours": run}, rounds=rounds, ops=n, baseline=lambda r: 0)
    return Case("burn_rate_eval_one_slo_all_windows", ns["ours"] / 1000.0, {})


def main() -> None:
    args = parse_args("SLO middleware overhead and burn-rate evaluation")
    rounds, n = (40, 300) if args.quick else (200, 300)
    cases = [
        middleware_case("middleware_overhead_starlette", starlette_app, rounds, n),
        middleware_alone_case(rounds, 2000),
        burn_rate_case(5 if args.quick else 20),
    ]
    report("slo", cases, args, unit="us")


if __name__ == "__main__":
    main()
