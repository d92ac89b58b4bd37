"""Timeout: async cancellation on a shared deadline timer; sync "thread" and "deadline" semantics."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest

from buttress.clock import VirtualClock
from buttress.errors import ConfigError
from buttress.resilience import Timeout, TimeoutExceededError
from buttress.telemetry import Registry
from buttress.testing import Faults, run_virtual


def kinds(registry: Registry, name: str = "t") -> dict[str, float]:
    return {
        k: registry.value("buttress_timelimiter_calls", {"name": name, "kind": k})
        for k in ("successful", "failed", "timeout")
    }


# -- async --------------------------------------------------------------------------------------------


def test_async_call_is_cancelled_at_the_deadline(registry) -> None:
    clock = VirtualClock()
    timeout = Timeout(2, name="t", registry=registry)
    cleaned_up = []

    @timeout
    async def slow() -> str:
        try:
            await asyncio.sleep(5)
        finally:
            cleaned_up.append(clock.monotonic())
        return "never"

    async def main() -> float:
        with pytest.raises(TimeoutExceededError) as info:
            await slow()
        assert isinstance(info.value, TimeoutError)
        assert info.value.timeout == 2
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        return clock.monotonic()

    assert run_virtual(main(), clock) == 2.0
    assert cleaned_up == [2.0]
    assert kinds(registry) == {"successful": 0, "failed": 0, "timeout": 1}


def test_many_calls_share_one_timer_and_each_gets_its_own_deadline(registry) -> None:
    clock = VirtualClock()
    timeout = Timeout(10, name="t", registry=registry)
    ended: dict[int, tuple[str, float]] = {}

    @timeout
    async def work(i: int) -> None:
        await asyncio.sleep(i)

    async def one(i: int, start: float) -> None:
        await asyncio.sleep(start)
        try:
            await work(i)
            ended[i] = ("ok", clock.monotonic())
        except TimeoutExceededError:
            ended[i] = ("timeout", clock.monotonic())

    async def main() -> int:
        await asyncio.gather(*(one(i, i % 3) for i in range(20)))
        return len(timeout._lanes.get(asyncio.get_running_loop()))

    leftover = run_virtual(main(), clock)
    for i in range(20):
        start = i % 3
        if i < 10:
            assert ended[i] == ("ok", start + i)
        else:
            assert ended[i] == ("timeout", start + 10)
    assert leftover == 0
    assert kinds(registry) == {"successful": 10, "failed": 0, "timeout": 10}


def test_errors_and_results_pass_through(registry) -> None:
    clock = VirtualClock()
    timeout = Timeout("1s", name="t", registry=registry)

    async def main() -> None:
        assert await timeout.acall(asyncio.sleep, 0.5, "done") == "done"
        with pytest.raises(KeyError):
            await timeout.acall(Faults().fail(1, KeyError("k")).wrap(asyncio.sleep), 0)

    run_virtual(main(), clock)
    assert kinds(registry) == {"successful": 1, "failed": 1, "timeout": 0}


async def test_outside_cancellation_is_not_turned_into_a_timeout(registry) -> None:
    timeout = Timeout(3600, name="t", registry=registry)
    started = asyncio.Event()

    @timeout
    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert kinds(registry)["timeout"] == 0


def test_nested_timeouts_the_outer_one_fires(registry) -> None:
    clock = VirtualClock()
    outer = Timeout(1, name="outer", registry=registry)
    inner = Timeout(5, name="inner", registry=registry)

    @outer
    @inner
    async def slow() -> None:
        await asyncio.sleep(10)

    async def main() -> str:
        try:
            await slow()
        except TimeoutExceededError as exc:
            return exc.name
        return "none"

    assert run_virtual(main(), clock) == "outer"
    assert clock.monotonic() == 1


def test_swallowed_cancellation_leaves_the_task_clean(registry) -> None:
    clock = VirtualClock()
    timeout = Timeout(1, name="t", registry=registry)

    @timeout
    async def stubborn() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "finished anyway"
        return "slept"

    async def main() -> tuple[str, int]:
        result = await stubborn()
        await asyncio.sleep(1)  # not cancelled again
        return result, asyncio.current_task().cancelling()  # type: ignore[union-attr]

    assert run_virtual(main(), clock) == ("finished anyway", 0)


def test_async_with_block(registry) -> None:
    clock = VirtualClock()
    timeout = Timeout(2, name="t", registry=registry)

    async def main() -> None:
        async with timeout:
            await asyncio.sleep(1)
        with pytest.raises(TimeoutExceededError):
            async with timeout:
                await asyncio.sleep(3)

    run_virtual(main(), clock)
    assert clock.monotonic() == 3


# -- sync ---------------------------------------------------------------------------------------------


def test_thread_mode_abandons_the_overrunning_call(registry) -> None:
    timeout = Timeout(0.05, name="t", registry=registry)
    release = threading.Event()
    finished = threading.Event()
    side_effects: list[str] = []

    @timeout
    def stuck() -> str:
        release.wait(30)  # blocks until the test lets it go: the timeout surely fires first
        side_effects.append("done after the deadline")
        finished.set()
        return "dropped"

    with pytest.raises(TimeoutExceededError):
        stuck()
    assert side_effects == []
    release.set()
    assert finished.wait(30)  # the abandoned call ran to its end in its worker
    assert side_effects == ["done after the deadline"]
    assert kinds(registry) == {"successful": 0, "failed": 0, "timeout": 1}


def test_thread_mode_passes_results_errors_and_context(registry) -> None:
    timeout = Timeout(30, name="t", registry=registry)
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    request_id.set("r-42")
    assert timeout.call(lambda: (request_id.get(), threading.current_thread().name)) == (
        "r-42",
        "buttress-timeout-t",
    )
    with pytest.raises(ValueError, match="bad"):
        timeout.call(Faults().fail(1, ValueError("bad")).wrap(lambda: None))
    assert kinds(registry) == {"successful": 1, "failed": 1, "timeout": 0}


def test_deadline_mode_reports_overruns_after_the_call(registry) -> None:
    clock = VirtualClock(auto_advance=True)
    timeout = Timeout(2, name="t", sync="deadline", clock=clock, registry=registry)
    quick = Faults(clock=clock).latency(1.5).wrap(lambda: "quick")
    slow = Faults(clock=clock).latency(2.5).wrap(lambda: "slow")
    assert timeout.call(quick) == "quick"
    with pytest.raises(TimeoutExceededError):
        timeout.call(slow)
    assert clock.monotonic() == 4.0  # the slow call ran to completion in the caller's thread
    with timeout:
        clock.advance(1)
    with pytest.raises(TimeoutExceededError), timeout:
        clock.advance(3)
    with pytest.raises(ValueError, match="bad"):
        timeout.call(Faults(clock=clock).fail(1, ValueError("bad")).wrap(lambda: None))
    # The quick call succeeded, the last one failed, and one call and one block overran.
    assert kinds(registry) == {"successful": 1, "failed": 1, "timeout": 2}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"seconds": 0}, "Timeout.seconds"),
        ({"seconds": "-1s"}, "Timeout.seconds"),
        ({"seconds": 1, "sync": "signal"}, "Timeout.sync"),
        ({"seconds": 1, "max_workers": 0}, "Timeout.max_workers"),
        ({"seconds": None}, "Timeout.seconds"),
        ({"seconds": float("inf")}, "Timeout.seconds"),
        ({"seconds": 10**400}, "Timeout.seconds"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Timeout(registry=Registry(), **kwargs)
    assert info.value.problems[0].path == field
