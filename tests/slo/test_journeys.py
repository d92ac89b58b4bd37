"""User journeys across real HTTP requests, timed on a virtual clock."""

from __future__ import annotations

import httpx
import pytest

from buttress.clock import VirtualClock
from buttress.slo.journeys import JourneyMiddleware, Journeys
from buttress.slo.middleware import SLOMiddleware
from buttress.telemetry.registry import Registry
from conftest import serve_asgi

STEPS = [
    ("browse_event", "GET /events/{event_id}"),
    ("register", "POST /events/{event_id}/registrations"),
    ("confirm", "GET /registrations/{registration_id}/confirm"),
]


def platform(journeys, recorder):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def event(request):
        return JSONResponse({"event": request.path_params["event_id"]})

    async def register(request):
        if request.path_params["event_id"] == "full":
            return JSONResponse({"error": "sold out"}, status_code=409)
        return JSONResponse({"registration": "r1"}, status_code=201)

    async def confirm(request):
        return JSONResponse({"confirmed": True})

    app = Starlette(
        routes=[
            Route("/events/{event_id}", event),
            Route("/events/{event_id}/registrations", register, methods=["POST"]),
            Route("/registrations/{registration_id}/confirm", confirm),
        ]
    )
    return SLOMiddleware(JourneyMiddleware(app, journeys), recorder)


def test_journeys_over_http(recorder):
    clock = VirtualClock()
    journeys = Journeys(registry=Registry(), clock=clock, ttl=600)
    journeys.define("registration", STEPS)
    with serve_asgi(platform(journeys, recorder)) as url, httpx.Client(base_url=url) as client:
        for n, (think, slow_confirm) in enumerate([(10, 2), (20, 4), (30, 6), (40, 8)]):
            headers = {"X-Journey-Id": f"j{n}"}
            client.get(f"/events/{n}", headers=headers)
            clock.advance(think)
            client.get(f"/events/{n}", headers=headers)  # browsing again does not move the journey
            client.post(f"/events/{n}/registrations", headers=headers)
            clock.advance(slow_confirm)
            client.get("/registrations/r1/confirm", headers={"Cookie": f"theme=dark; buttress_journey=j{n}"})
        # One person gives up when the event is full, another never comes back.
        client.get("/events/full", headers={"X-Journey-Id": "sad"})
        client.post("/events/full/registrations", headers={"X-Journey-Id": "sad"})
        client.get("/events/9", headers={"X-Journey-Id": "gone"})
        client.post("/events/9/registrations", headers={"X-Journey-Id": "gone"})
        client.get("/registrations/r1/confirm")  # no journey id: nothing happens
        client.get("/registrations/r1/confirm", headers={"X-Journey-Id": "never-started"})
    assert journeys.active == 2
    clock.advance(601)
    journeys.expire()
    stats = journeys.stats("registration")
    assert (stats.completed, stats.abandoned) == (4, 2)
    p50, _p95, p99 = stats.total
    # totals 12, 24, 36, 48 s; the sketch ranks q * (n - 1) rounded down, within 1 %
    assert p50 == pytest.approx(24, rel=0.01)
    assert p99 == pytest.approx(36, rel=0.01)
    assert stats.steps["register"][0] == pytest.approx(20, rel=0.01)
    assert stats.steps["confirm"][2] == pytest.approx(6, rel=0.01)  # 2, 4, 6, 8 s: the lower-rank P99 is 6
    reg = journeys.registry
    assert (
        reg.value(
            "buttress_journeys",
            {"journey": "registration", "outcome": "abandoned", "last_step": "browse_event"},
        )
        == 1
    )
    assert (
        reg.value(
            "buttress_journeys", {"journey": "registration", "outcome": "abandoned", "last_step": "register"}
        )
        == 1
    )


def test_explicit_steps_and_definition_errors():
    clock = VirtualClock()
    journeys = Journeys(registry=Registry(), clock=clock, max_active=1)
    journeys.define("checkout", [("cart", "*"), ("pay", "*")])
    journeys.step("a", "checkout", "cart")
    journeys.step("b", "checkout", "cart")  # over max_active: "a" is abandoned
    clock.advance(3)
    journeys.step("b", "checkout", "pay")
    stats = journeys.stats("checkout")
    assert (stats.completed, stats.abandoned) == (1, 1)
    assert stats.total[0] == pytest.approx(3, rel=0.01)
    with pytest.raises(KeyError, match="no step 'ship'"):
        journeys.step("a", "checkout", "ship")
    with pytest.raises(ValueError, match="at least two steps"):
        journeys.define("x", [("only", "*")])
    with pytest.raises(ValueError, match="repeats a step"):
        journeys.define("x", [("a", "*"), ("a", "*")])
