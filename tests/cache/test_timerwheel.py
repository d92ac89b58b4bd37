"""The hierarchical timer wheel: exact deadlines, cascades, and work proportional to what is due."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.cache.policy.entry import Entry, spread
from buttress.cache.timerwheel import TimerWheel


def entry(key: str, deadline: float) -> Entry:
    return Entry(key, key, deadline, 0.0, 1, spread(key))


class Recorder:
    def __init__(self) -> None:
        self.expired: list[tuple[str, float]] = []
        self.now = 0.0

    def __call__(self, e: Entry) -> None:
        self.expired.append((e.key, self.now))


def advance(wheel: TimerWheel, rec: Recorder, now: float, *, exact: bool = True) -> int:
    rec.now = now
    return wheel.advance(now, rec, exact=exact)


@pytest.mark.parametrize("deadline", [0.25, 1.0, 1.5, 63.9, 64.0, 65.0, 4095.0, 4097.5, 300_000.0, 2e7, 5e7])
def test_an_entry_expires_exactly_at_its_deadline(deadline: float) -> None:
    wheel = TimerWheel(0.0)
    rec = Recorder()
    wheel.schedule(entry("k", deadline))
    # Walk up to the deadline in uneven steps (so hands move across levels), stopping just short.
    now = 0.0
    step = max(deadline / 37, 0.01)
    while now + step < deadline:
        now += step
        assert advance(wheel, rec, now) == 0, f"expired early at {now}"
    assert advance(wheel, rec, deadline - 1e-6 if deadline > 1e-6 else 0.0) == 0
    assert len(wheel) == 1
    assert advance(wheel, rec, deadline) == 1
    assert rec.expired == [("k", deadline)]
    assert len(wheel) == 0


def test_hands_alone_release_an_entry_within_a_second_and_exact_sweeps_the_current_bucket() -> None:
    wheel = TimerWheel(10.0)
    rec = Recorder()
    wheel.schedule(entry("k", 10.5))
    # Same second: no hand moved, so a plain advance does nothing…
    assert advance(wheel, rec, 10.7, exact=False) == 0
    # …the exact sweep looks at the current one-second bucket…
    assert advance(wheel, rec, 10.7, exact=True) == 1
    wheel.schedule(entry("j", 12.2))
    # …and once the hand passes the bucket the entry goes without it.
    assert advance(wheel, rec, 13.0, exact=False) == 1
    assert [k for k, _ in rec.expired] == ["k", "j"]


def test_a_long_jump_expires_everything_due_and_keeps_the_rest() -> None:
    wheel = TimerWheel(0.0)
    rec = Recorder()
    deadlines = [0.5, 3.0, 70.0, 5_000.0, 90_000.0, 1e6, 3e7]
    for i, d in enumerate(deadlines):
        wheel.schedule(entry(f"k{i}", d))
    assert advance(wheel, rec, 100_000.0, exact=False) == 5
    assert sorted(k for k, _ in rec.expired) == ["k0", "k1", "k2", "k3", "k4"]
    assert len(wheel) == 2
    assert advance(wheel, rec, 3e7) == 2
    assert len(wheel) == 0


def test_deschedule_and_reschedule() -> None:
    wheel = TimerWheel(0.0)
    rec = Recorder()
    a, b = entry("a", 5.0), entry("b", 5.0)
    wheel.schedule(a)
    wheel.schedule(b)
    wheel.deschedule(a)
    wheel.deschedule(a)  # twice is harmless
    assert a.timer is None
    assert len(wheel) == 1
    b.expires_at = 500.0
    wheel.schedule(b)  # moves it, does not duplicate it
    assert len(wheel) == 1
    assert advance(wheel, rec, 10.0) == 0
    assert advance(wheel, rec, 500.0) == 1
    assert rec.expired == [("b", 500.0)]


def test_clear_takes_everything_off() -> None:
    wheel = TimerWheel(0.0)
    entries = [entry(f"k{i}", float(i + 1) * 100) for i in range(50)]
    for e in entries:
        wheel.schedule(e)
    wheel.clear()
    assert len(wheel) == 0
    assert all(e.timer is None for e in entries)
    assert wheel.advance(1e9, Recorder()) == 0


def test_time_never_goes_back() -> None:
    wheel = TimerWheel(100.0)
    wheel.schedule(entry("k", 150.0))
    rec = Recorder()
    assert advance(wheel, rec, 50.0) == 0
    assert wheel.time == 100.0


class CountingWheel(TimerWheel):
    """Counts every placement of an entry in a bucket: the wheel's unit of work."""

    __slots__ = ("placements",)

    def __init__(self, now: float) -> None:
        super().__init__(now)
        self.placements = 0

    def _bucket_for(self, deadline: float) -> set[Entry]:
        self.placements += 1
        return super()._bucket_for(deadline)


def test_work_is_proportional_to_entries_and_levels_never_to_the_cache() -> None:
    wheel = CountingWheel(0.0)
    rec = Recorder()
    n = 2_000
    for i in range(n):
        wheel.schedule(entry(f"k{i}", 3_600.0 + i))  # an hour out: level 1
    assert wheel.placements == n
    # Many small advances that move no coarse hand touch none of them.
    for t in range(1, 60):
        advance(wheel, rec, float(t))
    assert wheel.placements == n
    assert rec.expired == []
    # Expiring them all costs a bounded number of placements per entry (one cascade per level).
    advance(wheel, rec, 3_600.0 + n)
    assert len(rec.expired) == n
    assert wheel.placements <= n * 3


@settings(max_examples=60, deadline=None)
@given(
    deadlines=st.lists(st.floats(min_value=0.0, max_value=200_000.0), min_size=1, max_size=60),
    steps=st.lists(st.floats(min_value=0.0, max_value=20_000.0), min_size=1, max_size=40),
)
def test_exact_advance_matches_a_naive_model(deadlines: list[float], steps: list[float]) -> None:
    wheel = TimerWheel(0.0)
    rec = Recorder()
    pending = {}
    for i, d in enumerate(deadlines):
        e = entry(f"k{i}", d)
        pending[e.key] = d
        wheel.schedule(e)
    now = 0.0
    for step in steps:
        now += step
        advance(wheel, rec, now)
        due = {k for k, d in pending.items() if d <= now}
        assert {k for k, _ in rec.expired} == due
        assert all(pending[k] <= at for k, at in rec.expired)
        assert len(wheel) == len(pending) - len(due)
