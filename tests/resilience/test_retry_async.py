"""Retry, async faces: sleeps go through the clock; the same decisions as the sync face."""

from __future__ import annotations

import asyncio

import pytest

from buttress.clock import VirtualClock
from buttress.resilience import Retry, RetryExhaustedError
from buttress.telemetry import Registry
from buttress.testing import Faults, run_virtual


def test_async_retry_waits_on_the_loop_clock() -> None:
    clock = VirtualClock()
    registry = Registry()
    retry = Retry("ar", attempts=4, base=2, factor=3, jitter="none", clock=clock, registry=registry)
    seen: list[float] = []
    faults = Faults(clock=clock).fail(2)

    @retry
    @faults.wrap
    async def fetch(x: int) -> int:
        seen.append(clock.monotonic())
        return x * 2

    assert run_virtual(fetch(21), clock) == 42
    assert seen == [8.0]  # waited 2 s then 6 s
    assert registry.value("buttress_retry_calls", {"name": "ar", "kind": "successful_with_retry"}) == 1


def test_async_result_predicate_and_exhaustion() -> None:
    clock = VirtualClock()
    retry = Retry(
        "ar",
        attempts=2,
        base=1,
        jitter="none",
        retry_if_result=lambda r: r == "busy",
        clock=clock,
        registry=Registry(),
    )

    async def busy() -> str:
        return "busy"

    with pytest.raises(RetryExhaustedError):
        run_virtual(retry.acall(busy), clock)
    assert clock.monotonic() == 1


async def test_cancellation_is_not_retried(registry) -> None:
    retry = Retry("ar", attempts=5, base=0, registry=registry)
    calls = 0

    @retry
    async def cancelled() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await cancelled()
    assert calls == 1


def test_async_attempts_block() -> None:
    clock = VirtualClock()
    retry = Retry("ar", attempts=3, base=1, jitter="none", clock=clock, registry=Registry())
    numbers: list[tuple[int, float]] = []

    async def main() -> None:
        async for attempt in retry.attempts():
            async with attempt:
                numbers.append((attempt.number, clock.monotonic()))
                if attempt.number == 1:
                    raise ConnectionError

    run_virtual(main(), clock)
    assert numbers == [(1, 0), (2, 1)]
