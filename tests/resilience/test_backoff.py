"""Jitter kinds stay inside their AWS-blog bounds, and per-call jitter state is never shared."""

from __future__ import annotations

import asyncio
import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.clock import VirtualClock
from buttress.resilience import Backoff, Retry
from buttress.telemetry import Registry
from buttress.testing import run_virtual

params = {
    "base": st.floats(min_value=0.001, max_value=5),
    "factor": st.floats(min_value=1, max_value=4),
    "cap": st.floats(min_value=0.01, max_value=60),
    "seed": st.integers(min_value=0, max_value=2**32),
}


@settings(max_examples=200, deadline=None)
@given(**params)
def test_none_full_equal_bounds(base: float, factor: float, cap: float, seed: int) -> None:
    for jitter in ("none", "full", "equal"):
        backoff = Backoff(
            "exponential", base=base, factor=factor, max_delay=cap, jitter=jitter, rng=random.Random(seed)
        )
        delays = backoff.delays()
        for n in range(1, 12):
            temp = min(cap, base * factor ** (n - 1))
            d = next(delays)
            if jitter == "none":
                assert d == temp
            elif jitter == "full":
                assert 0 <= d <= temp
            else:
                assert temp / 2 <= d <= temp


@settings(max_examples=200, deadline=None)
@given(**params)
def test_decorrelated_bounds_per_call(base: float, factor: float, cap: float, seed: int) -> None:
    backoff = Backoff(base=base, factor=factor, max_delay=cap, jitter="decorrelated", rng=random.Random(seed))
    a, b = backoff.delays(), backoff.delays()
    prev_a = prev_b = base
    for _ in range(10):  # interleaved draws: each sequence's bound depends on its own previous value only
        da, db = next(a), next(b)
        assert min(base, cap) <= da <= min(cap, max(base, prev_a * 3))
        assert min(base, cap) <= db <= min(cap, max(base, prev_b * 3))
        prev_a, prev_b = da, db


def test_constant_and_linear() -> None:
    assert [
        d for d, _ in zip(Backoff("constant", base=2, jitter="none").delays(), range(3), strict=False)
    ] == [2, 2, 2]
    linear = Backoff("linear", base=1.5, max_delay=4, jitter="none").delays()
    assert [next(linear) for _ in range(4)] == [1.5, 3.0, 4, 4]


def test_concurrent_calls_each_get_their_own_decorrelated_chain() -> None:
    """Two coroutines retrying at once: each call's gaps follow its own chain, from base again."""
    clock = VirtualClock()
    base = 1.0
    retry = Retry(
        "chains",
        attempts=6,
        base=base,
        max_delay=1000,
        jitter="decorrelated",
        rng=random.Random(3),
        clock=clock,
        registry=Registry(),
    )
    times: dict[str, list[float]] = {"a": [], "b": []}

    @retry
    async def flaky(who: str) -> None:
        times[who].append(clock.monotonic())
        raise ConnectionError(who)

    async def main() -> None:
        results = await asyncio.gather(flaky("a"), flaky("b"), return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)

    run_virtual(main(), clock)
    for series in times.values():
        gaps = [y - x for x, y in itertools.pairwise(series)]
        assert len(gaps) == 5
        prev = base
        for gap in gaps:
            assert base <= gap <= prev * 3 + 1e-9
            prev = gap
    assert times["a"] != times["b"]


def test_late_retries_stay_at_the_cap_where_the_power_overflows() -> None:
    """With many attempts ``factor ** n`` leaves the float range; the delay is the cap, not an error."""
    for jitter in ("none", "full", "equal"):
        backoff = Backoff("exponential", base=1, factor=10, max_delay=30, jitter=jitter, rng=random.Random(1))
        (late,) = itertools.islice(backoff.delays(), 399, 400)  # 10.0 ** 399 overflows
        assert 0 <= late <= 30
    assert Backoff("exponential", base=1, factor=10, max_delay=30).ceiling(400) == 30
