"""Bulkhead: a hard cap on concurrent calls for threads and coroutines, with bounded waiting."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from buttress.clock import VirtualClock
from buttress.errors import ConfigError
from buttress.resilience import Bulkhead, BulkheadFullError
from buttress.telemetry import Registry
from buttress.testing import run_virtual


def gauges(registry: Registry, name: str = "b") -> dict[str, float]:
    return {
        g: registry.value(f"buttress_bulkhead_{g}", {"name": name})
        for g in (
            "available_concurrent_calls",
            "in_use",
            "waiting",
            "max_allowed_concurrent_calls",
            "rejected_calls",
        )
    }


def test_rejects_when_full_without_waiting(registry) -> None:
    bulkhead = Bulkhead("b", max_concurrent=2, registry=registry)
    inside = threading.Semaphore(0)
    release = threading.Event()

    @bulkhead
    def hold() -> str:
        inside.release()
        release.wait(30)
        return "done"

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(2):
        assert inside.acquire(timeout=30)
    with pytest.raises(BulkheadFullError) as info:
        bulkhead.call(lambda: None)
    assert (info.value.name, info.value.max_concurrent) == ("b", 2)
    assert gauges(registry) == {
        "available_concurrent_calls": 0,
        "in_use": 2,
        "waiting": 0,
        "max_allowed_concurrent_calls": 2,
        "rejected_calls": 1,
    }
    release.set()
    for t in threads:
        t.join()
    assert bulkhead.available == 2


def test_waiting_thread_gets_the_freed_slot(registry) -> None:
    bulkhead = Bulkhead("b", max_concurrent=1, max_wait=60, registry=registry)
    bulkhead.acquire()
    got = threading.Event()

    def waiter() -> None:
        bulkhead.acquire()
        got.set()
        bulkhead.release()

    t = threading.Thread(target=waiter)
    t.start()
    # the waiter is either queued or about to be; releasing hands the slot over either way
    bulkhead.release()
    assert got.wait(30)
    t.join()
    assert bulkhead.available == 1


def test_waiting_is_bounded_by_max_wait_on_the_clock(registry) -> None:
    clock = VirtualClock(auto_advance=True)
    bulkhead = Bulkhead("b", max_concurrent=1, max_wait="5s", clock=clock, registry=registry)
    bulkhead.acquire()
    with pytest.raises(BulkheadFullError):
        bulkhead.acquire()
    assert clock.monotonic() == 5
    assert gauges(registry)["waiting"] == 0
    bulkhead.release()
    assert bulkhead.available == 1


def test_eight_threads_never_exceed_the_cap(registry) -> None:
    bulkhead = Bulkhead("b", max_concurrent=3, max_wait=60, registry=registry)
    lock = threading.Lock()
    inside = peak = 0

    @bulkhead
    def work() -> None:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        for _ in range(200):
            pass
        with lock:
            inside -= 1

    def run() -> None:
        for _ in range(300):
            work()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= peak <= 3
    assert bulkhead.available == 3


def test_a_thousand_coroutines_queue_for_ten_slots(registry) -> None:
    clock = VirtualClock()
    bulkhead = Bulkhead("b", max_concurrent=10, max_wait=1000, registry=registry)
    inside = peak = 0

    @bulkhead
    async def work() -> None:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        await asyncio.sleep(1)
        inside -= 1

    async def main() -> None:
        await asyncio.gather(*(work() for _ in range(1000)))

    run_virtual(main(), clock)
    assert peak == 10
    assert clock.monotonic() == 100  # 100 rounds of ten one-second calls
    assert bulkhead.available == 10


def test_async_wait_times_out_on_the_loop_clock(registry) -> None:
    clock = VirtualClock()
    bulkhead = Bulkhead("b", max_concurrent=1, max_wait=2, registry=registry)

    async def main() -> float:
        holder = asyncio.ensure_future(bulkhead.acall(asyncio.sleep, 10))
        await asyncio.sleep(0)
        with pytest.raises(BulkheadFullError):
            await bulkhead.acall(asyncio.sleep, 0)
        rejected_at = clock.monotonic()
        await holder
        return rejected_at

    assert run_virtual(main(), clock) == 2
    assert bulkhead.available == 1


async def test_cancelled_waiter_does_not_leak_a_slot(registry) -> None:
    bulkhead = Bulkhead("b", max_concurrent=1, max_wait=3600, registry=registry)
    await bulkhead.acquire_async()
    waiter = asyncio.ensure_future(bulkhead.acquire_async())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    bulkhead.release()
    assert bulkhead.available == 1
    assert gauges(registry)["waiting"] == 0


async def test_waiter_cancelled_just_after_being_handed_a_slot_passes_it_on(registry) -> None:
    bulkhead = Bulkhead("b", max_concurrent=1, max_wait=3600, registry=registry)
    await bulkhead.acquire_async()
    waiter = asyncio.ensure_future(bulkhead.acquire_async())
    await asyncio.sleep(0)  # let it queue up
    bulkhead.release()  # the slot goes straight to the waiter...
    assert bulkhead.available == 0
    waiter.cancel()  # ...which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bulkhead.available == 1  # not leaked with the cancelled waiter
    assert gauges(registry)["waiting"] == 0


async def test_thread_releases_to_a_waiting_coroutine(registry) -> None:
    bulkhead = Bulkhead("b", max_concurrent=1, max_wait=3600, registry=registry)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with bulkhead:
            holding.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    assert await asyncio.get_running_loop().run_in_executor(None, holding.wait, 30)
    waiter = asyncio.ensure_future(bulkhead.acquire_async())
    await asyncio.sleep(0)
    assert not waiter.done()
    release.set()  # the thread leaves its block and hands the slot to the coroutine across threads
    await waiter
    assert bulkhead.available == 0
    bulkhead.release()
    t.join()


async def test_async_with_block(registry) -> None:
    bulkhead = Bulkhead("b", max_concurrent=1, registry=registry)
    async with bulkhead:
        assert bulkhead.available == 0
        with pytest.raises(BulkheadFullError):
            async with bulkhead:
                pass
    assert bulkhead.available == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"max_concurrent": 0}, "Bulkhead.max_concurrent"), ({"max_wait": "-5ms"}, "Bulkhead.max_wait")],
)
def test_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Bulkhead("b", registry=Registry(), **kwargs)
    assert info.value.problems[0].path == field
