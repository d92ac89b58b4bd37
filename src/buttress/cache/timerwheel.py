"""A hierarchical timer wheel: per-entry expiry with O(1) work per entry, never a scan of the cache.

Each level is a ring of buckets; a bucket holds the entries whose deadline falls in its time slice.
Level 0 has 64 one-second buckets, level 1 has 64 buckets of 64 s, and so on, like the hands of a
clock (the idea of Varghese and Lauck, "Hashed and Hierarchical Timing Wheels", SOSP 1987, as Caffeine
uses it for variable expiration). An entry is placed in the finest level whose span still reaches its
deadline, so scheduling and cancelling are a set insertion and removal.

:meth:`TimerWheel.advance` turns the wheel: for each level whose hand moved it empties the buckets the
hand swept, expiring the entries that are due and re-placing the rest, which now fit a finer level
(the *cascade*). Each entry is touched once per level at most, so the work is amortised O(1) per
entry, and an advance that moves no hand costs a few comparisons.

Expiry is exact where it matters: an entry is expired exactly when ``now >= expires_at``. The store's
read path checks that itself, and :meth:`advance` with ``exact=True`` also sweeps the current
one-second bucket, so after :meth:`~buttress.cache.backends.memory.MemoryStore.cleanup` no entry past
its deadline remains.
"""

from __future__ import annotations

from collections.abc import Callable

from buttress.cache.policy.entry import Entry

__all__ = ["TimerWheel"]

#: Seconds per bucket at each level. Level ``i`` covers ``BUCKETS[i] × SPANS[i]`` ahead, which is
#: ``SPANS[i + 1]``: 64 s, ~68 min, ~73 h, ~194 days; the last level is one overflow bucket.
SPANS = (1.0, 64.0, 4096.0, 262_144.0, 16_777_216.0)
BUCKETS = (64, 64, 64, 64, 1)


class TimerWheel:
    """Schedules entries by ``expires_at`` and expires them as time advances.

    Args:
        now: the monotonic reading the wheel starts at.

    The wheel is not thread-safe; the memory store calls it with its lock held.
    """

    __slots__ = ("_time", "_wheel", "count", "next_tick")

    def __init__(self, now: float = 0.0) -> None:
        self._time = now
        #: The reading at which the finest hand next moves: before it, :meth:`advance` has nothing to
        #: do but note the time, so a caller on a hot path may skip calling it.
        self.next_tick = (now // SPANS[0] + 1) * SPANS[0]
        self._wheel: list[list[set[Entry]]] = [[set() for _ in range(n)] for n in BUCKETS]
        #: Entries on the wheel (read-only; the store checks it to skip turning an empty wheel).
        self.count = 0

    def __len__(self) -> int:
        return self.count

    @property
    def time(self) -> float:
        """The reading the wheel was last advanced to."""
        return self._time

    def schedule(self, entry: Entry) -> None:
        """Place ``entry`` (which must have ``expires_at``) in the bucket for its deadline."""
        if entry.timer is not None:
            entry.timer.discard(entry)
        else:
            self.count += 1
        bucket = self._bucket_for(entry.expires_at)  # type: ignore[arg-type]
        bucket.add(entry)
        entry.timer = bucket

    def deschedule(self, entry: Entry) -> None:
        """Take ``entry`` off the wheel (a no-op when it is not on it)."""
        bucket = entry.timer
        if bucket is not None:
            bucket.discard(entry)
            entry.timer = None
            self.count -= 1

    def clear(self) -> None:
        """Take every entry off the wheel."""
        for level in self._wheel:
            for bucket in level:
                for entry in bucket:
                    entry.timer = None
                bucket.clear()
        self.count = 0

    def advance(self, now: float, expire: Callable[[Entry], None], *, exact: bool = False) -> int:
        """Turn the wheel to ``now``, calling ``expire`` for each entry whose deadline has come.

        Args:
            now: the current monotonic reading; a reading before the wheel's time is ignored.
            expire: called with each due entry, already off the wheel.
            exact: also sweep the current one-second bucket, so that no entry with
                ``expires_at <= now`` is left (the hands alone release an entry up to a second late).

        Returns:
            How many entries were expired.
        """
        previous = self._time
        if now < previous:
            return 0
        self._time = now
        self.next_tick = (now // SPANS[0] + 1) * SPANS[0]
        if not self.count:
            return 0
        expired = 0
        for level, span in enumerate(SPANS):
            previous_ticks = int(previous // span)
            ticks = int(now // span)
            delta = ticks - previous_ticks
            if delta <= 0:
                break
            expired += self._sweep(level, previous_ticks, delta, now, expire)
        if exact and self.count:
            expired += self._sweep(0, int(now // SPANS[0]), 0, now, expire)
        return expired

    def _sweep(
        self, level: int, first_tick: int, delta: int, now: float, expire: Callable[[Entry], None]
    ) -> int:
        ring = self._wheel[level]
        size = len(ring)
        mask = size - 1
        expired = 0
        # The buckets from the previous tick to the current one inclusive, at most once round the ring.
        for tick in range(first_tick, first_tick + min(delta + 1, size)):
            index = tick & mask
            bucket = ring[index]
            if not bucket:
                continue
            # Detach the bucket so re-placed entries that land back in this slot are not revisited.
            ring[index] = set()
            for entry in bucket:
                entry.timer = None
                if entry.expires_at <= now:  # type: ignore[operator]
                    self.count -= 1
                    expired += 1
                    expire(entry)
                else:
                    new_bucket = self._bucket_for(entry.expires_at)  # type: ignore[arg-type]
                    new_bucket.add(entry)
                    entry.timer = new_bucket
        return expired

    def _bucket_for(self, deadline: float) -> set[Entry]:
        remaining = deadline - self._time
        wheel = self._wheel
        for level in range(4):
            if remaining < SPANS[level + 1]:
                ring = wheel[level]
                return ring[int(deadline // SPANS[level]) & (len(ring) - 1)]
        return wheel[4][0]
