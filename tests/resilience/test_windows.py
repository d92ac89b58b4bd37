"""Sliding-window arithmetic against a naive model that rescans every outcome (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.resilience._windows import FAILED, SLOW, CountWindow, Snapshot, TimeWindow

outcomes = st.integers(min_value=0, max_value=3)


def naive_count(history: list[int], size: int) -> Snapshot:
    last = history[-size:]
    return Snapshot(len(last), sum(1 for o in last if o & FAILED), sum(1 for o in last if o & SLOW))


def naive_time(history: list[tuple[float, int]], seconds: int, now: float) -> Snapshot:
    start = math.floor(now) - seconds + 1
    inside = [o for t, o in history if math.floor(t) >= start]
    return Snapshot(len(inside), sum(1 for o in inside if o & FAILED), sum(1 for o in inside if o & SLOW))


@settings(max_examples=300, deadline=None)
@given(size=st.integers(min_value=1, max_value=20), seq=st.lists(outcomes, max_size=120))
def test_count_window_matches_naive_model(size: int, seq: list[int]) -> None:
    window = CountWindow(size)
    history: list[int] = []
    for outcome in seq:
        calls = window.record(outcome)
        history.append(outcome)
        expected = naive_count(history, size)
        assert calls == expected.calls
        assert window.snapshot() == expected


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=20),
    minimum=st.integers(min_value=1, max_value=20),
    seq=st.lists(outcomes, max_size=120),
)
def test_count_window_fast_path_reads_match_naive_model(size: int, minimum: int, seq: list[int]) -> None:
    """The lock-free success path: take a sequence number, go to the locked path on a marked slot."""
    minimum = min(minimum, size)
    window = CountWindow(size, judge_at=minimum - 1)
    history: list[int] = []
    judged_at = []
    for outcome in seq:
        if outcome == 0:
            s = window.next()
            if window.ring[s % size]:
                window.settle(s)
                if len(history) + 1 == minimum:
                    judged_at.append(len(history) + 1)
        else:
            window.record(outcome)
        history.append(outcome)
        assert window.snapshot() == naive_count(history, size)
    if len(seq) >= minimum and seq[minimum - 1] == 0:
        assert judged_at == [minimum]  # the success that filled the window to minimum took the locked path


@settings(max_examples=300, deadline=None)
@given(
    seconds=st.integers(min_value=1, max_value=10),
    steps=st.lists(
        st.tuples(st.sampled_from([0.0, 0.0, 0.1, 0.5, 0.9, 1.0, 1.5, 3.0, 7.0, 12.0]), outcomes),
        max_size=100,
    ),
    start=st.floats(min_value=0, max_value=1000, allow_nan=False),
)
def test_time_window_matches_naive_model(seconds: int, steps: list[tuple[float, int]], start: float) -> None:
    now = start
    window = TimeWindow(seconds, now)
    history: list[tuple[float, int]] = []
    for gap, outcome in steps:
        now += gap
        calls = window.record(outcome, now)
        history.append((now, outcome))
        expected = naive_time(history, seconds, now)
        assert calls == expected.calls
        assert window.snapshot(now) == expected
    later = now + seconds / 2
    assert window.snapshot(later) == naive_time(history, seconds, later)


def test_rates() -> None:
    snap = Snapshot(calls=10, failed=3, slow=5)
    assert snap.failure_rate() == 0.3
    assert snap.slow_call_rate() == 0.5
    assert Snapshot(0, 0, 0).failure_rate() == 0.0
