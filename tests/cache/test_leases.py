"""The distributed load lease in one process: a waiter serves the holder's value, or loads itself when
the holder takes longer than the lease. Polls run on a virtual clock; Redis is real."""

from __future__ import annotations

import asyncio
import threading

import pytest

from buttress.cache import AsyncCache, Cache
from buttress.clock import VirtualClock
from buttress.telemetry import Registry
from buttress.testing import run_virtual

pytestmark = pytest.mark.redis

HOLDER_LEASE = 60.0  # the holder's lease in Redis (real time) outlives every wait below


def _suppressed(registry: Registry) -> float:
    return registry.value("buttress_cache_stampede_suppressed", {"namespace": "ls"})


def test_waiter_serves_the_value_the_lease_holder_writes(redis_server, registry: Registry) -> None:
    clock = VirtualClock()
    waiter = Cache("ls", backend=redis_server.url, lease=5.0, clock=clock, registry=registry)
    holder = Cache("ls", backend=redis_server.url, tiered=False, registry=Registry())
    token = holder.core.remote.acquire_lease("k", HOLDER_LEASE)
    assert token is not None
    loads: list[int] = []
    result: dict[str, object] = {}

    def load() -> str:
        loads.append(1)
        return "mine"

    thread = threading.Thread(target=lambda: result.update(value=waiter.get_or_load("k", load)))
    try:
        thread.start()
        assert clock.wait_for_sleepers(1)  # the waiter found the lease taken and is polling
        holder.set("k", "from-holder")
        clock.advance(0.005)
        thread.join(10)
        assert result == {"value": "from-holder"}
        assert loads == []
        assert _suppressed(registry) == 1
    finally:
        clock.advance(10)  # never leave the waiter parked, whatever failed
        thread.join(10)
        holder.core.remote.release_lease("k", token)
        waiter.close()
        holder.close()


def test_waiter_loads_itself_when_the_lease_runs_out(redis_server, registry: Registry) -> None:
    clock = VirtualClock(auto_advance=True)  # the waiter's polls move time themselves
    waiter = Cache("ls", backend=redis_server.url, tiered=False, lease=1.0, clock=clock, registry=registry)
    holder = Cache("ls", backend=redis_server.url, tiered=False, registry=Registry())
    token = holder.core.remote.acquire_lease("k", HOLDER_LEASE)
    assert token is not None
    try:
        assert waiter.get_or_load("k", lambda: "mine") == "mine"
        assert 1.0 <= clock.monotonic() < 1.1  # it waited out its lease, in polls of at most 50 ms
        assert waiter.get("k") == "mine"
        assert _suppressed(registry) == 0
    finally:
        holder.core.remote.release_lease("k", token)
        waiter.close()
        holder.close()


def test_async_waiter_serves_the_value_the_lease_holder_writes(redis_server, registry: Registry) -> None:
    clock = VirtualClock()
    holder = Cache("ls", backend=redis_server.url, tiered=False, registry=Registry())
    token = holder.core.remote.acquire_lease("k", HOLDER_LEASE)
    assert token is not None
    result: dict[str, object] = {}

    async def wait_for_holder() -> None:
        # The waiter's loop runs in its own thread, so this thread can see it park and move time.
        waiter = AsyncCache("ls", backend=redis_server.url, lease=5.0, clock=clock, registry=registry)

        async def load() -> str:
            return "mine"

        try:
            result["value"] = await waiter.get_or_load("k", load)
        finally:
            await waiter.aclose()

    thread = threading.Thread(target=asyncio.run, args=(wait_for_holder(),))
    try:
        thread.start()
        assert clock.wait_for_sleepers(1)
        holder.set("k", "from-holder")
        clock.advance(0.005)
        thread.join(10)
        assert result == {"value": "from-holder"}
        assert _suppressed(registry) == 1
    finally:
        clock.advance(10)
        thread.join(10)
        holder.core.remote.release_lease("k", token)
        holder.close()


def test_async_waiter_loads_itself_when_the_lease_runs_out(redis_server, registry: Registry) -> None:
    clock = VirtualClock()

    async def scenario() -> object:
        waiter = AsyncCache(
            "ls", backend=redis_server.url, tiered=False, lease=1.0, clock=clock, registry=registry
        )
        remote = waiter.core.remote
        token = await remote.aacquire_lease("k", HOLDER_LEASE)  # "another process" holds it
        assert token is not None
        try:
            return await waiter.get_or_load("k", lambda: "mine")
        finally:
            await remote.arelease_lease("k", token)
            await waiter.aclose()

    assert run_virtual(scenario(), clock) == "mine"
    assert clock.monotonic() >= 1.0
    assert _suppressed(registry) == 0
