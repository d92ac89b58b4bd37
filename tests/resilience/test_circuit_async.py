"""Circuit breaker, async faces: the same model around coroutines, and permits under 1 000 coroutines."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from buttress.clock import VirtualClock
from buttress.resilience import CircuitBreaker, CircuitOpenError
from buttress.telemetry import EventStream, Registry
from buttress.testing import Faults, run_virtual


def make(clock: VirtualClock, registry: Registry, events: EventStream, **kw: Any) -> CircuitBreaker:
    kw.setdefault("window", 4)
    kw.setdefault("minimum_calls", 4)
    kw.setdefault("wait_open", 10)
    kw.setdefault("half_open_calls", 2)
    return CircuitBreaker("async-svc", clock=clock, registry=registry, events=events, **kw)


async def ok() -> str:
    return "ok"


async def boom() -> None:
    raise ConnectionError("down")


async def test_opens_and_recovers(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events)
    guarded_boom = breaker(boom)
    guarded_ok = breaker(ok)
    for _ in range(4):
        with pytest.raises(ConnectionError):
            await guarded_boom()
    with pytest.raises(CircuitOpenError) as info:
        await guarded_ok()
    assert info.value.retry_after == 10
    virtual_clock.advance(10)
    assert await guarded_ok() == "ok"
    assert breaker.state == "half_open"
    assert await breaker.acall(ok) == "ok"
    assert breaker.state == "closed"


def test_slow_coroutines_count_as_slow(registry, events) -> None:
    clock = VirtualClock()
    breaker = make(clock, registry, events, slow_call_duration=1.0, slow_call_rate=0.5)

    @breaker
    async def slow() -> str:
        await asyncio.sleep(2)  # virtual seconds on the run_virtual loop
        return "late"

    async def main() -> None:
        assert await slow() == "late"
        assert await slow() == "late"
        assert await breaker.acall(ok) == "ok"
        assert await breaker.acall(ok) == "ok"

    run_virtual(main(), clock)
    assert breaker.state == "open"
    assert (
        registry.value("buttress_circuitbreaker_calls", {"name": "async-svc", "kind": "slow_successful"}) == 2
    )


async def test_result_predicate_and_time_window(virtual_clock, registry, events) -> None:
    breaker = make(
        virtual_clock,
        registry,
        events,
        window="time:5s",
        minimum_calls=2,
        failure_if_result=lambda r: r is None,
    )
    nothing = breaker(Faults().returns(None, times=2).wrap(ok))
    assert await nothing() is None
    assert breaker.state == "closed"
    assert await nothing() is None
    assert breaker.state == "open"


async def test_cancellation_is_ignored(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, half_open_calls=1)
    breaker.transition_to("half_open")
    started = asyncio.Event()

    @breaker
    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the cancelled trial handed its permit back
    assert await breaker.acall(ok) == "ok"
    assert breaker.state == "closed"


async def test_half_open_permits_exact_under_a_thousand_coroutines(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, half_open_calls=5)
    breaker.transition_to("open")
    virtual_clock.advance(10)
    release = asyncio.Event()
    all_decided = asyncio.Event()
    inside = peak = decided = refused = 0

    @breaker
    async def trial() -> str:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        mark()
        await release.wait()
        inside -= 1
        return "ok"

    def mark() -> None:
        nonlocal decided
        decided += 1
        if decided == 1000:
            all_decided.set()

    async def caller() -> str:
        nonlocal refused
        try:
            return await trial()
        except CircuitOpenError:
            refused += 1
            mark()
            return "refused"

    tasks = [asyncio.ensure_future(caller()) for _ in range(1000)]
    await all_decided.wait()
    assert peak == 5
    assert refused == 995
    release.set()
    results = await asyncio.gather(*tasks)
    assert results.count("ok") == 5
    assert breaker.state == "closed"


async def test_async_context_manager(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events)
    for _ in range(4):
        with pytest.raises(ConnectionError):
            async with breaker:
                raise ConnectionError
    with pytest.raises(CircuitOpenError):
        async with breaker:
            raise AssertionError("never runs")


async def test_callable_object_and_partial_are_async(registry, events) -> None:
    import functools

    breaker = CircuitBreaker("objects", registry=registry, events=events)

    class Sender:
        async def __call__(self, to: str) -> str:
            return f"sent to {to}"

    async def send(prefix: str, to: str) -> str:
        return prefix + to

    assert await breaker(Sender())("ana") == "sent to ana"
    assert await breaker(functools.partial(send, "hi "))("bo") == "hi bo"
