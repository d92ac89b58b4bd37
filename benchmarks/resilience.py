"""Resilience hot paths: buttress beside pybreaker, circuitbreaker, aiobreaker, purgatory, tenacity,
stamina and backoff.

Every figure is the **overhead over a bare call** in nanoseconds: the decorated call's fastest round per
call minus the bare function's fastest round (sync), or the awaited decorated coroutine minus the awaited
bare coroutine (async). All contestants run interleaved in one process on the same batches (_common.py).

Cases (all on the success path):

* ``breaker_closed_sync`` / ``breaker_closed_async`` — a closed breaker with a count window of 100 and
  slow-call detection on (buttress; the peers have no slow-call detection and count consecutive
  failures only);
* ``breaker_closed_sync_no_slow_detection`` — buttress without the two clock reads, for reference;
* ``retry_success_sync`` / ``retry_success_async`` — three attempts allowed, success at the first;
* ``timeout_async`` — a 10 s timeout around an awaited coroutine, against ``asyncio.timeout`` and
  ``asyncio.wait_for``;
* ``bulkhead_sync`` — a 25-slot bulkhead against a non-blocking ``threading.BoundedSemaphore`` wrapper;
* ``pipeline_sync`` / ``pipeline_async`` — retry + breaker (slow calls on) + bulkhead, against the peers
  composed the same way with a semaphore as the bulkhead.

Run from the bench venv: ``python benchmarks/resilience.py [--quick] [--json FILE]``.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from _common import Case, empty_loop_timer, interleave, loop_timer, parse_args, print_table, write_json
from buttress.resilience import Bulkhead, CircuitBreaker, Pipeline, Retry, Timeout
from buttress.telemetry import EventStream, Registry

BATCH = 2000


def target(x: int) -> int:
    return x


async def atarget(x: int) -> int:
    return x


def async_timer(
    fn: Callable[[int], Awaitable[Any]], batches: list[list[int]], loop: asyncio.AbstractEventLoop
) -> Any:
    """Time ``await fn(item)`` over a batch, inside one coroutine (the loop's own start-up is not timed)."""

    async def body(batch: list[int]) -> int:
        start = time.perf_counter_ns()
        for item in batch:
            await fn(item)
        return time.perf_counter_ns() - start

    def run(round_no: int) -> int:
        return loop.run_until_complete(body(batches[round_no % len(batches)]))

    return run


def overheads(ns: dict[str, float], bare: str = "bare") -> dict[str, float]:
    return {name: value - ns[bare] for name, value in ns.items() if name != bare}


def semaphore_bulkhead(fn: Callable[..., Any], size: int = 25) -> Callable[..., Any]:
    """The usual hand-made bulkhead: a non-blocking BoundedSemaphore around the call."""
    sem = threading.BoundedSemaphore(size)
    acquire, release = sem.acquire, sem.release

    def bulkhead(*args: Any, **kwargs: Any) -> Any:
        if not acquire(blocking=False):
            raise RuntimeError("full")
        try:
            return fn(*args, **kwargs)
        finally:
            release()

    return bulkhead


def asemaphore_bulkhead(fn: Callable[..., Awaitable[Any]], size: int = 25) -> Callable[..., Awaitable[Any]]:
    sem = asyncio.BoundedSemaphore(size)

    async def bulkhead(*args: Any, **kwargs: Any) -> Any:
        if sem.locked():
            raise RuntimeError("full")
        async with sem:
            return await fn(*args, **kwargs)

    return bulkhead


def ours_breaker(slow: bool = True) -> CircuitBreaker:
    return CircuitBreaker(
        "bench",
        window="count:100",
        slow_call_duration=60.0 if slow else None,
        registry=Registry(),
        events=EventStream(),
    )


def main() -> None:
    args = parse_args("Resilience hot-path benchmarks (overhead over a bare call, ns)")
    rounds = 15 if args.quick else 60
    rounds_slow = 8 if args.quick else 30  # for cases whose peers take ~10-20 µs per call
    batches = [list(range(BATCH))]
    baseline = empty_loop_timer(batches)
    warnings.simplefilter("ignore", DeprecationWarning)  # peers on newer Pythons

    import aiobreaker
    import backoff
    import circuitbreaker
    import pybreaker
    import stamina
    import tenacity
    from purgatory import AsyncCircuitBreakerFactory, SyncCircuitBreakerFactory

    stamina.instrumentation.set_on_retry_hooks([])  # no logging/metrics hooks: time the retry machinery only
    cases: list[Case] = []

    # -- breaker, sync ---------------------------------------------------------------------------------
    timers = {
        "bare": loop_timer(target, batches),
        "ours": loop_timer(ours_breaker()(target), batches),
        "ours_no_slow": loop_timer(ours_breaker(slow=False)(target), batches),
        "pybreaker": loop_timer(pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)(target), batches),
        "circuitbreaker": loop_timer(
            circuitbreaker.circuit(failure_threshold=5, recovery_timeout=60, name="bench-cb")(target), batches
        ),
        "purgatory": loop_timer(
            SyncCircuitBreakerFactory(default_threshold=5)(circuit="bench")(target), batches
        ),
    }
    ns = overheads(interleave(timers, rounds, BATCH, baseline))
    peers = {k: ns[k] for k in ("pybreaker", "circuitbreaker", "purgatory")}
    cases.append(Case("breaker_closed_sync", ns["ours"], {**peers, "aiobreaker": math.nan}))
    cases.append(Case("breaker_closed_sync_no_slow_detection", ns["ours_no_slow"], dict(peers)))

    loop = asyncio.new_event_loop()
    try:
        # -- breaker, async ----------------------------------------------------------------------------
        abreaker = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=timedelta(seconds=60))
        apurgatory = AsyncCircuitBreakerFactory(default_threshold=5)
        timers = {
            "bare": async_timer(atarget, batches, loop),
            "ours": async_timer(ours_breaker()(atarget), batches, loop),
            "aiobreaker": async_timer(abreaker(atarget), batches, loop),
            "circuitbreaker": async_timer(
                circuitbreaker.circuit(failure_threshold=5, recovery_timeout=60, name="bench-acb")(atarget),
                batches,
                loop,
            ),
            "purgatory": async_timer(apurgatory(circuit="bench")(atarget), batches, loop),
        }
        ns = overheads(interleave(timers, rounds, BATCH, baseline))
        cases.append(
            Case(
                "breaker_closed_async",
                ns["ours"],
                {
                    "pybreaker": math.nan,
                    "circuitbreaker": ns["circuitbreaker"],
                    "aiobreaker": ns["aiobreaker"],
                    "purgatory": ns["purgatory"],
                },
            )
        )

        # -- retry -------------------------------------------------------------------------------------
        timers = {
            "bare": loop_timer(target, batches),
            "ours": loop_timer(Retry("bench", attempts=3, registry=Registry())(target), batches),
            "tenacity": loop_timer(tenacity.retry(stop=tenacity.stop_after_attempt(3))(target), batches),
            "stamina": loop_timer(stamina.retry(on=Exception, attempts=3)(target), batches),
            "backoff": loop_timer(
                backoff.on_exception(backoff.expo, Exception, max_tries=3)(target), batches
            ),
        }
        ns = overheads(interleave(timers, rounds_slow, BATCH, baseline))
        cases.append(
            Case("retry_success_sync", ns["ours"], {k: ns[k] for k in ("tenacity", "stamina", "backoff")})
        )

        timers = {
            "bare": async_timer(atarget, batches, loop),
            "ours": async_timer(Retry("bench", attempts=3, registry=Registry())(atarget), batches, loop),
            "tenacity": async_timer(
                tenacity.retry(stop=tenacity.stop_after_attempt(3))(atarget), batches, loop
            ),
            "stamina": async_timer(stamina.retry(on=Exception, attempts=3)(atarget), batches, loop),
            "backoff": async_timer(
                backoff.on_exception(backoff.expo, Exception, max_tries=3)(atarget), batches, loop
            ),
        }
        ns = overheads(interleave(timers, rounds_slow, BATCH, baseline))
        cases.append(
            Case("retry_success_async", ns["ours"], {k: ns[k] for k in ("tenacity", "stamina", "backoff")})
        )

        # -- timeout -----------------------------------------------------------------------------------
        async def with_asyncio_timeout(x: int) -> int:
            async with asyncio.timeout(10):
                return await atarget(x)

        async def with_wait_for(x: int) -> int:
            return await asyncio.wait_for(atarget(x), 10)

        timers = {
            "bare": async_timer(atarget, batches, loop),
            "ours": async_timer(Timeout(10, registry=Registry())(atarget), batches, loop),
            "asyncio.timeout": async_timer(with_asyncio_timeout, batches, loop),
            "asyncio.wait_for": async_timer(with_wait_for, batches, loop),
        }
        ns = overheads(interleave(timers, rounds_slow, BATCH, baseline))
        cases.append(
            Case("timeout_async", ns["ours"], {k: ns[k] for k in ("asyncio.timeout", "asyncio.wait_for")})
        )

        # -- bulkhead ----------------------------------------------------------------------------------
        timers = {
            "bare": loop_timer(target, batches),
            "ours": loop_timer(Bulkhead("bench", max_concurrent=25, registry=Registry())(target), batches),
            "semaphore": loop_timer(semaphore_bulkhead(target), batches),
        }
        ns = overheads(interleave(timers, rounds, BATCH, baseline))
        cases.append(Case("bulkhead_sync", ns["ours"], {"threading.BoundedSemaphore": ns["semaphore"]}))

        # -- pipeline ----------------------------------------------------------------------------------
        def ours_pipeline() -> Pipeline:
            registry = Registry()
            return Pipeline(
                Retry("bench", attempts=3, registry=registry),
                ours_breaker(),
                Bulkhead("bench", max_concurrent=25, registry=registry),
            )

        timers = {
            "bare": loop_timer(target, batches),
            "ours": loop_timer(ours_pipeline()(target), batches),
            "tenacity+pybreaker": loop_timer(
                tenacity.retry(stop=tenacity.stop_after_attempt(3))(
                    pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)(semaphore_bulkhead(target))
                ),
                batches,
            ),
            "stamina+circuitbreaker": loop_timer(
                stamina.retry(on=Exception, attempts=3)(
                    circuitbreaker.circuit(failure_threshold=5, recovery_timeout=60, name="bench-p1")(
                        semaphore_bulkhead(target)
                    )
                ),
                batches,
            ),
            "backoff+circuitbreaker": loop_timer(
                backoff.on_exception(backoff.expo, Exception, max_tries=3)(
                    circuitbreaker.circuit(failure_threshold=5, recovery_timeout=60, name="bench-p2")(
                        semaphore_bulkhead(target)
                    )
                ),
                batches,
            ),
        }
        ns = overheads(interleave(timers, rounds_slow, BATCH, baseline))
        cases.append(
            Case(
                "pipeline_sync",
                ns["ours"],
                {
                    k: ns[k]
                    for k in ("tenacity+pybreaker", "stamina+circuitbreaker", "backoff+circuitbreaker")
                },
            )
        )

        timers = {
            "bare": async_timer(atarget, batches, loop),
            "ours": async_timer(ours_pipeline()(atarget), batches, loop),
            "tenacity+aiobreaker": async_timer(
                tenacity.retry(stop=tenacity.stop_after_attempt(3))(
                    aiobreaker.CircuitBreaker(fail_max=5)(asemaphore_bulkhead(atarget))
                ),
                batches,
                loop,
            ),
            "backoff+circuitbreaker": async_timer(
                backoff.on_exception(backoff.expo, Exception, max_tries=3)(
                    circuitbreaker.circuit(failure_threshold=5, recovery_timeout=60, name="bench-p3")(
                        asemaphore_bulkhead(atarget)
                    )
                ),
                batches,
                loop,
            ),
        }
        ns = overheads(interleave(timers, rounds_slow, BATCH, baseline))
        cases.append(
            Case(
                "pipeline_async",
                ns["ours"],
                {k: ns[k] for k in ("tenacity+aiobreaker", "backoff+circuitbreaker")},
            )
        )
    finally:
        loop.close()

    # One table per family keeps each table to the peers that can run its cases.
    for prefix in ("breaker", "retry", "timeout", "bulkhead", "pipeline"):
        print_table("resilience", "ns", [c for c in cases if c.case.startswith(prefix)])
    if args.json is not None:
        write_json(args.json, "resilience", "ns", cases)


if __name__ == "__main__":
    main()
