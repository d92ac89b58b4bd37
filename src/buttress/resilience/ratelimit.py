"""Rate limiter: a token bucket that paces calls to what a dependency (or its contract) allows.

::

    limiter = RateLimiter("maps-api", rate=10, period=1.0, burst=20, max_wait=0.5)

The bucket holds up to ``burst`` permits and refills at ``rate`` permits per ``period``. A call takes one
permit. When none is left, the call either waits for the next one — if it is due within ``max_wait``
seconds, reserving it so waiters are served in order — or is rejected at once with
:class:`~buttress.resilience.RateLimitedError`, whose ``retry_after`` says when a permit will be free.
``max_wait=0`` (the default) never waits. Waits go through ``clock``.

Telemetry: ``buttress_ratelimiter_calls_total{name,kind}`` (``permitted``, ``rejected``),
``buttress_ratelimiter_waits_total{name}``, ``buttress_ratelimiter_wait_seconds{name}`` (a latency
distribution of the waits), ``buttress_ratelimiter_available_permissions{name}`` and
``buttress_ratelimiter_waiting{name}``.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError, ConfigProblem
from buttress.resilience._forward import build
from buttress.resilience._util import asleep, check_duration, check_name
from buttress.resilience.errors import RateLimitedError
from buttress.resilience.policy import Policy
from buttress.telemetry.registry import REGISTRY, Registry

__all__ = ["RateLimiter"]


class RateLimiter(Policy):
    """A token-bucket rate limiter for sync and async calls (see the module docstring).

    Args:
        name: labels metrics and errors.
        rate: permits added per ``period`` (a positive number).
        period: the refill period in seconds (number or ``"1s"``).
        burst: the bucket's capacity; defaults to ``max(1, rate)``. The bucket starts full.
        max_wait: the longest a call waits for a permit; 0 rejects at once.
        clock: time source for refills and waits.
        registry: where metrics go.

    Raises:
        ConfigError: naming the bad argument.
    """

    def __init__(
        self,
        name: str,
        *,
        rate: float,
        period: float | str = 1.0,
        burst: float | None = None,
        max_wait: float | str = 0.0,
        clock: Clock = SYSTEM_CLOCK,
        registry: Registry = REGISTRY,
    ) -> None:
        super().__init__()
        self.name = check_name("RateLimiter", name)
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not rate > 0
            or rate == float("inf")
        ):
            raise ConfigError(
                [ConfigProblem("RateLimiter.rate", "must be a positive number of permits", rate)]
            )
        per = check_duration("RateLimiter", "period", period, positive=True)
        assert per is not None
        self.per_second = float(rate) / per
        if burst is None:
            burst = max(1.0, float(rate))
        if (
            isinstance(burst, bool)
            or not isinstance(burst, int | float)
            or burst < 1
            or burst == float("inf")
        ):
            raise ConfigError([ConfigProblem("RateLimiter.burst", "must be a number of at least 1", burst)])
        self.burst = float(burst)
        wait = check_duration("RateLimiter", "max_wait", max_wait)
        assert wait is not None
        self.max_wait = wait
        self._clock = clock
        self._mono = clock.monotonic
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._last = self._mono()
        self._waiting = 0
        labels = {"name": self.name}
        help_calls = "Calls through a rate limiter, by outcome."
        self._permitted = registry.counter(
            "buttress_ratelimiter_calls", help_calls, {**labels, "kind": "permitted"}
        )
        self._rejected = registry.counter(
            "buttress_ratelimiter_calls", help_calls, {**labels, "kind": "rejected"}
        )
        self._waits = registry.counter(
            "buttress_ratelimiter_waits", "Calls that waited for a permit.", labels
        )
        self._wait_seconds = registry.latency(
            "buttress_ratelimiter_wait_seconds", "How long calls waited for a permit.", labels
        ).sketch
        ref = weakref.ref(self)
        registry.gauge(
            "buttress_ratelimiter_available_permissions",
            "Permits in the bucket now (negative while waiters hold reservations).",
            labels,
            fn=lambda: r.available if (r := ref()) is not None else 0.0,
        )
        registry.gauge(
            "buttress_ratelimiter_waiting",
            "Calls waiting for a permit.",
            labels,
            fn=lambda: float(r._waiting) if (r := ref()) is not None else 0.0,
        )
        self._sleep = clock.sleep
        self._asleep = functools.partial(asleep, clock)

    def __repr__(self) -> str:
        return f"RateLimiter({self.name!r}, per_second={self.per_second:g}, burst={self.burst:g})"

    @property
    def available(self) -> float:
        """Permits in the bucket now."""
        with self._lock:
            self._refill()
            return self._tokens

    def _refill(self) -> None:
        now = self._mono()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_second)
        self._last = now

    def reserve(self) -> float:
        """Take a permit; returns how long to wait before using it (0.0 for none).

        Raises:
            RateLimitedError: when the permit would be due later than ``max_wait``.
        """
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self._permitted.value += 1
                return 0.0
            wait = (1.0 - self._tokens) / self.per_second
            if wait > self.max_wait:
                self._rejected.value += 1
                raise RateLimitedError(self.name, wait)
            self._tokens -= 1.0  # a reservation: the bucket goes negative until time pays it back
            self._waiting += 1
        self._permitted.value += 1
        self._waits.value += 1
        self._wait_seconds.add(wait)
        return wait

    def _waited(self) -> None:
        with self._lock:
            self._waiting -= 1

    def acquire(self) -> None:
        """Take a permit for the calling thread, waiting for it if allowed."""
        wait = self.reserve()
        if wait:
            try:
                self._sleep(wait)
            finally:
                self._waited()

    async def acquire_async(self) -> None:
        """Take a permit for the calling coroutine, waiting for it if allowed."""
        wait = self.reserve()
        if wait:
            try:
                await self._asleep(wait)
            finally:
                self._waited()

    def wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The sync wrapper: take a permit, then call."""
        return build(_LIMITED, fn, {"fn": fn, "acquire": self.acquire}, "limited_call", False)

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The async wrapper: take a permit (awaiting it if allowed), then call."""
        return build(_LIMITED, fn, {"fn": fn, "acquire": self.acquire_async}, "limited_call", True)

    def _enter(self) -> Any:
        self.acquire()

    async def _aenter(self) -> Any:
        await self.acquire_async()


_LIMITED = """
@async def limited_call({params}):
    @await acquire()
    return @await fn({call})
"""
