"""Rate limiter: token bucket refills on the clock; callers wait for a reservation or are rejected."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from buttress.clock import VirtualClock
from buttress.errors import ConfigError
from buttress.resilience import RateLimitedError, RateLimiter
from buttress.telemetry import Registry
from buttress.testing import run_virtual


def test_burst_then_reject_with_retry_after(virtual_clock, registry) -> None:
    limiter = RateLimiter("api", rate=2, period="1s", burst=3, clock=virtual_clock, registry=registry)
    assert [limiter.call(lambda i=i: i) for i in range(3)] == [0, 1, 2]
    with pytest.raises(RateLimitedError) as info:
        limiter.call(lambda: None)
    assert info.value.retry_after == 0.5
    virtual_clock.advance(0.5)
    assert limiter.call(lambda: "refilled") == "refilled"
    labels = {"name": "api"}
    assert registry.value("buttress_ratelimiter_calls", {**labels, "kind": "permitted"}) == 4
    assert registry.value("buttress_ratelimiter_calls", {**labels, "kind": "rejected"}) == 1
    virtual_clock.advance(100)
    assert registry.value("buttress_ratelimiter_available_permissions", labels) == 3  # capped at burst


def test_waiting_callers_are_paced(registry) -> None:
    clock = VirtualClock(auto_advance=True)
    limiter = RateLimiter("api", rate=4, burst=1, max_wait=1, clock=clock, registry=registry)
    times = []
    for _ in range(5):
        limiter.acquire()
        times.append(clock.monotonic())
    assert times == [0, 0.25, 0.5, 0.75, 1.0]
    assert registry.value("buttress_ratelimiter_waits", {"name": "api"}) == 4


def test_async_waiters_hold_reservations_in_order(registry) -> None:
    clock = VirtualClock()
    limiter = RateLimiter("api", rate=1, burst=1, max_wait=2.5, clock=clock, registry=registry)
    done: list[tuple[int, float]] = []

    @limiter
    async def call(i: int) -> None:
        done.append((i, clock.monotonic()))

    async def main() -> None:
        results = await asyncio.gather(*(call(i) for i in range(4)), return_exceptions=True)
        assert isinstance(results[3], RateLimitedError)  # due in 3 s > max_wait

    run_virtual(main(), clock)
    assert done == [(0, 0), (1, 1), (2, 2)]


def test_with_block(virtual_clock, registry) -> None:
    limiter = RateLimiter("api", rate=1, burst=1, clock=virtual_clock, registry=registry)
    with limiter:
        pass
    with pytest.raises(RateLimitedError), limiter:
        pass


async def test_async_with_block(virtual_clock, registry) -> None:
    limiter = RateLimiter("api", rate=1, burst=1, clock=virtual_clock, registry=registry)
    async with limiter:
        pass
    with pytest.raises(RateLimitedError):
        async with limiter:
            raise AssertionError("not run without a permit")
    virtual_clock.advance(1)
    async with limiter:
        pass


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate": 0}, "RateLimiter.rate"),
        ({"rate": -1}, "RateLimiter.rate"),
        ({"rate": 1, "period": 0}, "RateLimiter.period"),
        ({"rate": 1, "burst": 0.5}, "RateLimiter.burst"),
        ({"rate": 1, "max_wait": -1}, "RateLimiter.max_wait"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        RateLimiter("api", registry=Registry(), **kwargs)
    assert info.value.problems[0].path == field
