"""User journeys: named multi-step flows timed end to end across requests, with per-step percentiles.

::

    journeys = Journeys(clock=clock)
    journeys.define("registration", [
        ("browse_event", "GET /events/{event_id}"),
        ("register", "POST /events/{event_id}/registrations"),
        ("confirm", "GET /registrations/{registration_id}/confirm"),
    ])
    app = JourneyMiddleware(app, journeys)       # reads the journey id from X-Journey-Id or a cookie

A journey instance starts when its first step is seen for a journey id; each later step, in order
(skipping is allowed, going back is not), records the time since the previous step seen into
``buttress_journey_step_duration_seconds{journey,step}``; reaching the last step records the whole
journey into ``buttress_journey_duration_seconds{journey}`` and counts it in
``buttress_journeys{journey,outcome="completed"}``. Journeys idle for longer than ``ttl`` are dropped as
``outcome="abandoned"`` (with the last step reached, so a funnel shows where people leave).

Steps are matched on route templates, as the SLO middleware records them, or reported directly with
:meth:`Journeys.step` (for flows that are not one request per step). State is per process: put the
journey id in a sticky session, or call :meth:`Journeys.step` where the steps happen.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.slo.routes import RouteSelector
from buttress.telemetry.registry import REGISTRY, Counter, Registry
from buttress.telemetry.sketch import Sketch

__all__ = ["Journey", "JourneyMiddleware", "JourneyStats", "Journeys"]


@dataclass(frozen=True, slots=True)
class Journey:
    """A named sequence of steps, each matched by a route selector."""

    name: str
    steps: tuple[str, ...]
    selectors: tuple[RouteSelector, ...]


@dataclass(frozen=True, slots=True)
class JourneyStats:
    """Percentiles (seconds) of one journey: end to end, and per step (time since the previous step)."""

    name: str
    completed: int
    abandoned: int
    total: tuple[float, float, float]
    steps: dict[str, tuple[float, float, float]]


class _Active:
    __slots__ = ("index", "journey", "last", "started")

    def __init__(self, journey: Journey, started: float) -> None:
        self.journey = journey
        self.index = 0
        self.started = started
        self.last = started


class Journeys:
    """Tracks journey instances by id and records their timings.

    Args:
        registry: where journey metrics go.
        clock: the clock steps are timed with (``monotonic``).
        ttl: seconds without a step after which a journey counts as abandoned.
        max_active: journeys tracked at once; beyond it the least recently active is abandoned.
    """

    def __init__(
        self,
        *,
        registry: Registry = REGISTRY,
        clock: Clock = SYSTEM_CLOCK,
        ttl: float = 1800.0,
        max_active: int = 100_000,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.ttl = ttl
        self.max_active = max_active
        self._journeys: dict[str, Journey] = {}
        self._active: OrderedDict[tuple[str, str], _Active] = OrderedDict()
        self._lock = threading.Lock()
        self._match_cache: dict[tuple[str, str], list[tuple[Journey, int]]] = {}
        self._totals: dict[str, Sketch] = {}
        self._steps: dict[tuple[str, str], Sketch] = {}
        self._outcomes: dict[tuple[str, str, str], Counter] = {}

    def define(self, name: str, steps: Sequence[tuple[str, str]]) -> Journey:
        """Declare a journey: ``steps`` are ``(step name, route selector)`` pairs, in order.

        Raises:
            ValueError: fewer than two steps, a repeated step name, or a bad selector.
        """
        if len(steps) < 2:
            raise ValueError(f"journey {name!r} needs at least two steps to time anything")
        names = [s for s, _ in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"journey {name!r} repeats a step name: {names}")
        journey = Journey(name, tuple(names), tuple(RouteSelector.parse(sel) for _, sel in steps))
        with self._lock:
            self._journeys[name] = journey
            self._match_cache.clear()
            labels = {"journey": name}
            self._totals[name] = self.registry.latency(
                "buttress_journey_duration_seconds", "User journeys, first step to last", labels
            ).sketch
            for step in names[1:]:
                self._steps[(name, step)] = self.registry.latency(
                    "buttress_journey_step_duration_seconds",
                    "User journey steps, time since the previous step",
                    {"journey": name, "step": step},
                ).sketch
        return journey

    def _outcome(self, journey: str, outcome: str, step: str) -> Counter:
        key = (journey, outcome, step)
        counter = self._outcomes.get(key)
        if counter is None:
            counter = self._outcomes[key] = self.registry.counter(
                "buttress_journeys",
                "User journeys by outcome",
                {"journey": journey, "outcome": outcome, "last_step": step},
            )
        return counter

    def observe(self, journey_id: str, route: str, method: str) -> None:
        """A request to ``route`` with ``method`` was served for ``journey_id``; advance matching journeys."""
        key = (route, method)
        matches = self._match_cache.get(key)
        if matches is None:
            matches = [
                (j, i)
                for j in self._journeys.values()
                for i, sel in enumerate(j.selectors)
                if sel.matches(route, method)
            ]
            self._match_cache[key] = matches
        for journey, index in matches:
            self._advance(journey, index, journey_id)

    def step(self, journey_id: str, journey: str, step: str) -> None:
        """Report that ``journey_id`` reached ``step`` of ``journey`` now.

        Raises:
            KeyError: unknown journey or step.
        """
        j = self._journeys[journey]
        try:
            index = j.steps.index(step)
        except ValueError:
            raise KeyError(f"journey {journey!r} has no step {step!r}; steps: {', '.join(j.steps)}") from None
        self._advance(j, index, journey_id)

    def _advance(self, journey: Journey, index: int, journey_id: str) -> None:
        now = self.clock.monotonic()
        key = (journey.name, journey_id)
        with self._lock:
            self._expire(now)
            active = self._active.get(key)
            if active is None:
                if index != 0:
                    return  # a journey starts at its first step
                self._active[key] = _Active(journey, now)
                if len(self._active) > self.max_active:
                    _, oldest = self._active.popitem(last=False)
                    self._outcome(
                        oldest.journey.name, "abandoned", oldest.journey.steps[oldest.index]
                    ).value += 1
                return
            if index <= active.index:
                return  # a repeated or earlier step: the journey has not moved forward
            self._steps[(journey.name, journey.steps[index])].add(now - active.last)
            active.index, active.last = index, now
            self._active.move_to_end(key)
            if index == len(journey.steps) - 1:
                del self._active[key]
                self._totals[journey.name].add(now - active.started)
                self._outcome(journey.name, "completed", journey.steps[index]).value += 1

    def _expire(self, now: float) -> None:
        while self._active:
            key, oldest = next(iter(self._active.items()))
            if now - oldest.last <= self.ttl:
                return
            del self._active[key]
            self._outcome(oldest.journey.name, "abandoned", oldest.journey.steps[oldest.index]).value += 1

    def expire(self) -> None:
        """Count journeys idle for longer than ``ttl`` as abandoned (also done on every step)."""
        with self._lock:
            self._expire(self.clock.monotonic())

    @property
    def active(self) -> int:
        """Journeys in progress."""
        return len(self._active)

    def stats(self, name: str) -> JourneyStats:
        """P50/P95/P99 of journey ``name`` end to end and per step."""
        j = self._journeys[name]
        qs = (0.5, 0.95, 0.99)

        def three(s: Sketch) -> tuple[float, float, float]:
            a, b, c = s.quantiles(qs)
            return a, b, c

        completed = sum(
            c.value for (jn, o, _), c in self._outcomes.items() if jn == name and o == "completed"
        )
        abandoned = sum(
            c.value for (jn, o, _), c in self._outcomes.items() if jn == name and o == "abandoned"
        )
        return JourneyStats(
            name,
            int(completed),
            int(abandoned),
            three(self._totals[name]),
            {step: three(self._steps[(name, step)]) for step in j.steps[1:]},
        )


ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class JourneyMiddleware:
    """ASGI middleware feeding :class:`Journeys` from requests that carry a journey id.

    The id comes from the ``header`` (default ``X-Journey-Id``) or else the ``cookie`` (default
    ``buttress_journey``); requests without one cost a header scan and nothing else. The step is matched
    on ``scope["route"].path`` after the app ran, like :class:`~buttress.slo.middleware.SLOMiddleware`;
    only successful responses (below 400) advance a journey.
    """

    def __init__(
        self,
        app: ASGIApp,
        journeys: Journeys,
        *,
        header: str = "x-journey-id",
        cookie: str = "buttress_journey",
    ) -> None:
        self.app = app
        self.journeys = journeys
        self.header = header.lower().encode("latin-1")
        self.cookie = cookie

    def _journey_id(self, scope: MutableMapping[str, Any]) -> str | None:
        cookie_header = None
        for name, value in scope.get("headers", ()):
            if name == self.header:
                return bytes(value).decode("latin-1")[:128] or None
            if name == b"cookie":
                cookie_header = bytes(value).decode("latin-1")
        if cookie_header:
            jar = SimpleCookie()
            try:
                jar.load(cookie_header)
            except Exception:  # a malformed Cookie header from a client must not fail the request
                return None
            morsel = jar.get(self.cookie)
            return morsel.value[:128] if morsel is not None and morsel.value else None
        return None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Serve one ASGI call, recording it when it is an HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        journey_id = self._journey_id(scope)
        if journey_id is None:
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        root = scope.get("root_path", "")
        await self.app(scope, receive, send_status)
        template = getattr(scope.get("route"), "path", None)
        if template is not None and status < 400:
            mounted = scope.get("root_path", "")
            if mounted != root:
                template = mounted[len(root) :] + template
            self.journeys.observe(journey_id, template, scope["method"])
