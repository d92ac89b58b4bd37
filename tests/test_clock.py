import asyncio
import threading

import pytest

from buttress.clock import SYSTEM_CLOCK, Clock, SystemClock, VirtualClock
from buttress.testing import run_virtual


def test_protocol_is_satisfied_by_both_clocks():
    assert isinstance(SYSTEM_CLOCK, Clock)
    assert isinstance(VirtualClock(), Clock)
    assert isinstance(SystemClock(), Clock)


def test_virtual_clock_reads_and_advances():
    clock = VirtualClock(start=5.0, wall_start=1000.0)
    assert clock.monotonic() == 5.0
    assert clock.time() == 1000.0
    clock.advance(2.5)
    assert clock.monotonic() == 7.5
    assert clock.time() == 1002.5
    clock.advance_to(10)
    assert clock.monotonic() == 10
    clock.advance_to(3)  # never goes back
    assert clock.monotonic() == 10


def test_advance_rejects_negative():
    with pytest.raises(ValueError, match="never goes back"):
        VirtualClock().advance(-1)


def test_sync_sleepers_in_threads_wake_in_deadline_order():
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []
    lock = threading.Lock()

    def sleeper(name: str, seconds: float) -> None:
        clock.sleep(seconds)
        with lock:
            woke.append((name, clock.monotonic()))

    threads = [threading.Thread(target=sleeper, args=(n, s)) for n, s in [("c", 3), ("a", 1), ("b", 2)]]
    for t in threads:
        t.start()
    assert clock.wait_for_sleepers(3)
    assert clock.next_deadline() == 1
    clock.advance(1.5)
    threads[1].join()
    # A woken thread reads its deadline or the target, depending on when it runs.
    assert woke in ([("a", 1.0)], [("a", 1.5)])
    clock.advance(1)  # now 2.5: only b's deadline (2) has passed
    threads[2].join()
    assert woke[-1] in (("b", 2.0), ("b", 2.5))
    assert clock.sleepers == 1
    clock.advance(10)
    for t in threads:
        t.join()
    assert [name for name, _ in woke] == ["a", "b", "c"]
    assert clock.sleepers == 0


def test_auto_advance_sleep_moves_time_without_blocking():
    clock = VirtualClock(auto_advance=True)
    clock.sleep(7)
    clock.sleep(0)
    assert clock.monotonic() == 7


async def test_async_sleepers_wake_at_their_own_deadlines():
    clock = VirtualClock()
    seen: list[tuple[str, float]] = []

    async def worker(name: str, delays: list[float]) -> None:
        for d in delays:
            await clock.asleep(d)
            seen.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(worker("x", [1, 1, 1])), asyncio.create_task(worker("y", [2.5]))]
    await clock.advance_async(3)
    await asyncio.gather(*tasks)
    assert seen == [("x", 1.0), ("x", 2.0), ("y", 2.5), ("x", 3.0)]


async def test_asleep_zero_yields():
    clock = VirtualClock()
    await clock.asleep(0)
    assert clock.monotonic() == 0


async def test_many_coroutines_wake_in_order():
    clock = VirtualClock()
    order: list[int] = []

    async def sleeper(i: int) -> None:
        await clock.asleep(1000 - i)
        order.append(i)

    tasks = [asyncio.create_task(sleeper(i)) for i in range(1000)]
    await clock.advance_async(1000, settle=2)
    await asyncio.gather(*tasks)
    assert order == list(range(999, -1, -1))


def test_virtual_event_loop_runs_asyncio_timers_on_virtual_time():
    clock = VirtualClock()

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        stamps: list[float] = []
        await asyncio.sleep(30)
        stamps.append(loop.time())
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5):
                await asyncio.sleep(3600)
        stamps.append(loop.time())
        fired: list[float] = []
        loop.call_later(2, lambda: fired.append(loop.time()))
        await asyncio.sleep(10)
        stamps.extend(fired)
        return stamps

    assert run_virtual(main(), clock) == [30.0, 35.0, 37.0]
    assert clock.monotonic() == 45.0
    assert clock.auto_advance is False  # restored


def test_virtual_loop_advanced_from_another_thread():
    clock = VirtualClock()
    loop = clock.new_event_loop()
    sleeping = threading.Event()
    result: list[float] = []

    async def main() -> None:
        # call_soon runs after this step has scheduled the sleep's timer, so the signal cannot race it.
        loop.call_soon(sleeping.set)
        await asyncio.sleep(60)
        result.append(loop.time())

    t = threading.Thread(target=loop.run_until_complete, args=(main(),))
    t.start()
    assert sleeping.wait(10)
    clock.advance(60)  # wakes the loop, whose timer is now due
    t.join(10)
    loop.close()
    assert result == [60.0]


def test_virtual_clock_fixture(virtual_clock):
    assert isinstance(virtual_clock, VirtualClock)
    assert virtual_clock.monotonic() == 0


def test_asleep_under_run_virtual_uses_loop_timers():
    # A coroutine parked with clock.asleep on a loop that runs on the same clock must not hang: the loop
    # jumps to it when idle.
    clock = VirtualClock()

    async def main() -> float:
        await clock.asleep(5)
        await clock.asleep_until(12)
        return clock.monotonic()

    assert run_virtual(main(), clock) == 12.0


def test_sleep_until_is_absolute():
    clock = VirtualClock(auto_advance=True)
    clock.sleep_until(10)
    clock.sleep_until(4)  # already past: returns at once
    assert clock.monotonic() == 10
    manual = VirtualClock()
    t = threading.Thread(target=manual.sleep_until, args=(3.0,))
    t.start()
    assert manual.wait_for_sleepers(1)
    manual.advance(3)
    t.join(10)
    assert not t.is_alive()
