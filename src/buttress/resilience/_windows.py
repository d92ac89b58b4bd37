"""Sliding windows of call outcomes with O(1) work per call (running totals, never rescans).

An outcome is a small int: bit 0 says the call failed, bit 1 says it was slow, so ``0`` is a fast
success, ``1`` a fast failure, ``2`` a slow success and ``3`` a slow failure.

:class:`CountWindow` keeps the last ``size`` outcomes in a ring. Each record takes a sequence number from
an :func:`itertools.count` (atomic under the GIL), so concurrent records never share a slot by accident.
The circuit breaker's success fast path only *reads* its slot: when the slot already holds a fast success
(the steady state) there is nothing to change, so it takes no lock; every write that changes the running
totals happens under the breaker's lock, which keeps the totals equal to the ring's contents.

:class:`TimeWindow` keeps one bucket per second for the last ``seconds`` seconds, with running totals;
moving to a new second evicts only the buckets that fell out (at most ``seconds`` of them after a long
idle period, one per second in steady traffic).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import NamedTuple

__all__ = [
    "FAILED",
    "SLOW",
    "SLOW_FAILED",
    "SLOW_SUCCESS",
    "SUCCESS",
    "CountWindow",
    "Snapshot",
    "TimeWindow",
]

SUCCESS = 0
FAILED = 1
SLOW = 2
SLOW_SUCCESS = 2
SLOW_FAILED = 3
#: Ring marker for "judge the window when this slot is first filled" (no failure or slow bit).
JUDGE = 4


class Snapshot(NamedTuple):
    """Totals of a window at one moment."""

    calls: int
    failed: int
    slow: int

    def failure_rate(self) -> float:
        """Failed calls over all calls (0.0 for an empty window)."""
        return self.failed / self.calls if self.calls else 0.0

    def slow_call_rate(self) -> float:
        """Slow calls (failed or not) over all calls (0.0 for an empty window)."""
        return self.slow / self.calls if self.calls else 0.0


def _count_value(counter: itertools.count[int]) -> int:
    # itertools.count has no public accessor for its next value; its repr is documented as
    # "count(n)". Used only by readers (metrics, tests), never on the hot path.
    return int(repr(counter)[6:-1])


class CountWindow:
    """The last ``size`` outcomes, with running totals of failed and slow ones.

    Callers hold the owner's lock around :meth:`record` and :meth:`settle`; :attr:`next` and
    :attr:`ring` are read without it on the success fast path (see the module docstring).
    """

    __slots__ = ("_seq", "failed", "next", "owner", "ring", "size", "slow")

    def __init__(self, size: int, judge_at: int | None = None) -> None:
        self.size = size
        self.ring = [SUCCESS] * size
        if judge_at is not None:
            # A marker with neither bit set: the success fast path, which only looks for a non-zero slot,
            # then takes the locked path for the call that fills the window to ``judge_at + 1`` outcomes.
            self.ring[judge_at % size] = JUDGE
        self.owner = [-1] * size  # sequence number of the last locked write to each slot
        self._seq = itertools.count()
        self.next: Callable[[], int] = self._seq.__next__
        self.failed = 0
        self.slow = 0

    def record(self, outcome: int, seq: int = -1) -> int:
        """Put ``outcome`` in the next slot (or in slot ``seq`` already taken) and return the call count."""
        if seq < 0:
            seq = self.next()
        j = seq % self.size
        if self.owner[j] > seq:
            return min(seq + 1, self.size)  # a newer record already replaced this slot
        old = self.ring[j]
        self.ring[j] = outcome
        self.owner[j] = seq
        if old != outcome:
            self.failed += (outcome & FAILED) - (old & FAILED)
            self.slow += ((outcome & SLOW) - (old & SLOW)) >> 1
        return min(seq + 1, self.size)

    def settle(self, seq: int) -> None:
        """A fast success took sequence ``seq`` and found an old failure or slow call in its slot."""
        self.record(SUCCESS, seq)

    def calls(self) -> int:
        """How many of the slots hold a recorded outcome."""
        return min(_count_value(self._seq), self.size)

    def snapshot(self, now: float = 0.0) -> Snapshot:
        """The current totals (``now`` is accepted for symmetry with :class:`TimeWindow`)."""
        return Snapshot(self.calls(), self.failed, self.slow)


class TimeWindow:
    """Outcomes of the calls made in the last ``seconds`` seconds, in one-second buckets.

    The window at time ``t`` covers the current, partial second ``floor(t)`` and the ``seconds - 1``
    whole seconds before it. All methods need the owner's lock.
    """

    __slots__ = ("_calls", "_failed", "_second", "_slow", "calls_total", "failed", "seconds", "slow")

    def __init__(self, seconds: int, now: float) -> None:
        self.seconds = seconds
        self._second = math.floor(now)
        self._calls = [0] * seconds
        self._failed = [0] * seconds
        self._slow = [0] * seconds
        self.calls_total = 0
        self.failed = 0
        self.slow = 0

    def _roll(self, now: float) -> int:
        second = math.floor(now)
        last = self._second
        if second <= last:
            return last  # same second (a clock never goes back)
        size = self.seconds
        if second - last >= size:
            for j in range(size):
                self._calls[j] = self._failed[j] = self._slow[j] = 0
            self.calls_total = self.failed = self.slow = 0
        else:
            calls, failed, slow = self._calls, self._failed, self._slow
            for s in range(last + 1, second + 1):
                j = s % size
                if calls[j]:
                    self.calls_total -= calls[j]
                    self.failed -= failed[j]
                    self.slow -= slow[j]
                    calls[j] = failed[j] = slow[j] = 0
        self._second = second
        return second

    def record(self, outcome: int, now: float) -> int:
        """Count ``outcome`` in the bucket of ``now`` and return the window's call count."""
        j = self._roll(now) % self.seconds
        self._calls[j] += 1
        self.calls_total += 1
        if outcome:
            f = outcome & FAILED
            s = (outcome & SLOW) >> 1
            self._failed[j] += f
            self._slow[j] += s
            self.failed += f
            self.slow += s
        return self.calls_total

    def snapshot(self, now: float) -> Snapshot:
        """The totals of the window as it stands at ``now``."""
        self._roll(now)
        return Snapshot(self.calls_total, self.failed, self.slow)
