"""Adaptive W-TinyLFU: a recency window in front of a frequency-guarded main space.

The design follows Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache Admission Policy"
(ACM ToS 2017) and the adaptive variant Caffeine ships; this is an independent Python implementation.

::

    new key ──► window (LRU) ──overflow──► candidate ──admission──► main (SLRU)
                                              │  freq(candidate) > freq(victim)?   probation ─use─► protected
                                              └── no: the candidate is evicted     ▲                 │
                                                  yes: main's victim is evicted     └──── demoted ◄───┘

* **Window**: a small LRU (1 % of capacity to start) that every new key enters. It lets a burst of
  new keys be hit a few times before they must prove themselves, which is what recency workloads need.
* **Admission**: when the window overflows, its least recent entry becomes a *candidate* for the main
  space and is compared, by the :class:`~buttress.cache.policy.sketch.FrequencySketch`'s estimate,
  with main's eviction victim. The less popular of the two leaves. A one-off scan therefore cannot
  flush popular entries: every scanned key has frequency ≈ 1 and loses to any resident used twice.
  A candidate that is at least warm (estimate > 5) but not more popular than the victim is admitted at
  random one time in 128, which stops an attacker from pinning a victim with colliding keys.
* **Main**: a segmented LRU. Admitted entries start in *probation*; a use promotes one to *protected*
  (80 % of main). Protected overflow is demoted back to probation, whose least recent entry is the
  victim admission compares against.
* **Adaptation**: a :class:`~buttress.cache.policy.climber.HillClimber` resizes the window from the
  hit rate of each sample of requests. Growing the window re-labels main's least recent entries as
  window entries (nothing is evicted, so no hits are lost); shrinking is lazy — the next eviction
  pass moves the window's oldest entries into probation as candidates.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Iterable

from buttress.cache.policy.base import UNBOUNDED, EvictFn
from buttress.cache.policy.climber import HillClimber
from buttress.cache.policy.entry import DEAD, PROBATION, PROTECTED, WINDOW, Entry
from buttress.cache.policy.sketch import FrequencySketch

__all__ = ["WTinyLfuPolicy"]

#: A candidate this popular that still loses is admitted at random one time in 128 (see module doc).
_WARM = 5
#: The most entries re-labelled from main to window per hill-climbing step.
_TRANSFER = 1000


class WTinyLfuPolicy:
    """Window LRU + TinyLFU admission + segmented-LRU main, with a hill-climbed window size.

    Args:
        maximum: capacity in policy units (entries, or bytes when ``weighted``).
        evict: called with each entry this policy evicts and whether admission rejected it.
        weighted: count each entry's ``weight`` instead of one per entry.
        max_count: a second ceiling on the number of entries (when ``weighted``).
        window_percent: the window's initial share of capacity.
        protected_percent: protected's share of the main space.
        adaptive: resize the window by hill climbing (off: the window stays at ``window_percent``).
        sample_size: requests per hill-climbing sample; defaults to ten per entry of capacity
            (Caffeine's choice) but at least 10 000, so that sampling noise in a small cache's hit
            rate does not walk the window around, and at most 100 000.
        seed: seeds the random admission of warm candidates, for reproducible runs.
        expected_count: how many entries to size the sketch for when capacity is in bytes.

    Attributes:
        sketch: the frequency sketch (shared by admission and read recording).
        climber: the hill climber, or ``None`` when not adaptive.
        window_maximum: the window's current capacity in policy units.
        protected_maximum: protected's current capacity in policy units.
    """

    __slots__ = (
        "_count",
        "_evict",
        "_probation",
        "_protected",
        "_protected_total",
        "_rand",
        "_total",
        "_window",
        "_window_total",
        "climber",
        "max_count",
        "maximum",
        "protected_maximum",
        "protected_percent",
        "sketch",
        "weighted",
        "window_maximum",
    )

    def __init__(
        self,
        maximum: int,
        evict: EvictFn,
        *,
        weighted: bool = False,
        max_count: int | None = None,
        window_percent: float = 0.01,
        protected_percent: float = 0.8,
        adaptive: bool = True,
        sample_size: int | None = None,
        seed: int = 0x5EED,
        expected_count: int | None = None,
    ) -> None:
        self.maximum = maximum
        self.max_count = UNBOUNDED if max_count is None else max_count
        self.weighted = weighted
        self._evict = evict
        self._window: OrderedDict[str, Entry] = OrderedDict()
        self._probation: OrderedDict[str, Entry] = OrderedDict()
        self._protected: OrderedDict[str, Entry] = OrderedDict()
        self._window_total = 0
        self._protected_total = 0
        self._total = 0
        self._count = 0
        self.protected_percent = protected_percent
        self.window_maximum = int(maximum * window_percent)
        self.protected_maximum = int((maximum - self.window_maximum) * protected_percent)
        if expected_count is None:
            expected_count = maximum if not weighted else min(self.max_count, 1024)
        self.sketch = FrequencySketch(expected_count)
        if sample_size is None:
            sample_size = min(max(10 * expected_count, 10_000), 100_000)
        self.climber = HillClimber(maximum, sample_size) if adaptive else None
        self._rand = random.Random(seed).getrandbits

    # -- introspection ---------------------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Policy units in use."""
        return self._total

    @property
    def window_total(self) -> int:
        """Policy units in the window."""
        return self._window_total

    @property
    def protected_total(self) -> int:
        """Policy units in protected."""
        return self._protected_total

    def regions(self) -> tuple[list[str], list[str], list[str]]:
        """Keys of (window, probation, protected), each from least to most recently used."""
        return list(self._window), list(self._probation), list(self._protected)

    # -- the store's calls ------------------------------------------------------------------------------

    def record(self, entries: Iterable[Entry]) -> None:
        """Replay reads: count each in the sketch and move it as SLRU says."""
        increment = self.sketch.increment
        window, probation, protected = self._window, self._probation, self._protected
        weighted = self.weighted
        hits = 0
        for entry in entries:
            queue = entry.queue
            if queue == DEAD:
                continue
            hits += 1
            increment(entry.hash)
            if queue == WINDOW:
                window.move_to_end(entry.key)
            elif queue == PROTECTED:
                protected.move_to_end(entry.key)
            else:
                # A second use in probation earns protection.
                key = entry.key
                del probation[key]
                protected[key] = entry
                entry.queue = PROTECTED
                self._protected_total += entry.weight if weighted else 1
                if self._protected_total > self.protected_maximum:
                    self._demote()
        if self.climber is not None:
            self.climber.hits += hits

    def add(self, entry: Entry) -> None:
        """Count the new key, put it at the window's recent end, and evict while over capacity."""
        self.sketch.increment(entry.hash)
        entry.queue = WINDOW
        self._window[entry.key] = entry
        if self.weighted:
            weight = entry.weight
            self._window_total += weight
            self._total += weight
            self._count += 1
            if self._count > self.sketch.capacity:
                self.sketch.ensure_capacity(2 * self._count)
        else:
            self._window_total += 1
            self._total += 1
            self._count += 1
        climber = self.climber
        if climber is not None:
            climber.misses += 1
            if climber.hits + climber.misses >= climber.sample_size:
                self._climb(climber)
        if (
            self._window_total > self.window_maximum
            or self._total > self.maximum
            or self._count > self.max_count
        ):
            self._evict_overflow()

    def replace(self, old: Entry, new: Entry) -> None:
        """Swap in a new entry for the same key where the old one was, counting the write as a use."""
        self.sketch.increment(new.hash)
        key = new.key
        queue = old.queue
        old.queue = DEAD
        new.queue = queue
        region = (
            self._window if queue == WINDOW else self._protected if queue == PROTECTED else self._probation
        )
        region[key] = new
        region.move_to_end(key)
        if self.weighted:
            delta = new.weight - old.weight
            self._total += delta
            if queue == WINDOW:
                self._window_total += delta
            elif queue == PROTECTED:
                self._protected_total += delta
            if delta > 0:
                if self._protected_total > self.protected_maximum:
                    self._demote()
                self._evict_overflow()

    def remove(self, entry: Entry) -> None:
        """Unlink an entry the store removed."""
        queue = entry.queue
        entry.queue = DEAD
        weight = entry.weight if self.weighted else 1
        if queue == WINDOW:
            del self._window[entry.key]
            self._window_total -= weight
        elif queue == PROTECTED:
            del self._protected[entry.key]
            self._protected_total -= weight
        else:
            del self._probation[entry.key]
        self._total -= weight
        self._count -= 1

    def clear(self) -> None:
        """Forget every entry; the sketch keeps its history of what was popular."""
        for region in (self._window, self._probation, self._protected):
            for entry in region.values():
                entry.queue = DEAD
            region.clear()
        self._window_total = self._protected_total = self._total = self._count = 0

    # -- internals -------------------------------------------------------------------------------------

    def _over(self) -> bool:
        return self._total > self.maximum or self._count > self.max_count

    def _demote(self) -> None:
        protected, probation = self._protected, self._probation
        weighted = self.weighted
        while self._protected_total > self.protected_maximum and protected:
            key, entry = protected.popitem(last=False)
            entry.queue = PROBATION
            probation[key] = entry
            self._protected_total -= entry.weight if weighted else 1

    def _climb(self, climber: HillClimber) -> None:
        if self._total < self.maximum // 2:
            # Still filling: a hit rate that rises only because the cache is warming up says nothing
            # about the window, so discard the sample (Caffeine waits for its sketch the same way).
            climber.discard(remember=False)
            return
        amount = climber.adjust()
        before = self.window_maximum
        if amount > 0:
            self._grow_window(min(amount, self.maximum - self.window_maximum))
        elif amount < 0:
            # Shrinking is lazy: the next eviction pass moves the window's oldest entries into
            # probation as candidates.
            self.window_maximum = max(self.window_maximum + amount, 0)
            self.protected_maximum = int((self.maximum - self.window_maximum) * self.protected_percent)
        climber.blocked = self.window_maximum == before

    def _grow_window(self, quota: int) -> None:
        # Re-label main's least recent entries as window entries rather than evicting them, so that
        # growing the window costs no hits; at most _TRANSFER entries move per step to bound the pause.
        self.window_maximum += quota
        self.protected_maximum = int((self.maximum - self.window_maximum) * self.protected_percent)
        window, probation, protected = self._window, self._probation, self._protected
        weighted = self.weighted
        room = self.window_maximum - self._window_total
        for _ in range(_TRANSFER):
            if room <= 0:
                break
            if probation:
                key, entry = probation.popitem(last=False)
            elif protected:
                key, entry = protected.popitem(last=False)
                self._protected_total -= entry.weight if weighted else 1
            else:
                break
            entry.queue = WINDOW
            window[key] = entry
            window.move_to_end(key, last=False)
            weight = entry.weight if weighted else 1
            self._window_total += weight
            room -= weight
        if self._protected_total > self.protected_maximum:
            self._demote()

    def _evict_overflow(self) -> None:
        candidates = self._window_overflow()
        maximum = self.maximum
        while self._total > maximum or self._count > self.max_count:
            candidate = _newest_on_probation(candidates)
            if candidate is None:
                self._evict_one_resident()
                continue
            loser, rejected = self._duel(candidate)
            del self._probation[loser.key]
            loser.queue = DEAD
            self._total -= loser.weight if self.weighted else 1
            self._count -= 1
            self._evict(loser, rejected)

    def _window_overflow(self) -> list[Entry]:
        """Move the window's overflow to probation's recent end, oldest first; they are the candidates."""
        weighted = self.weighted
        window, probation = self._window, self._probation
        candidates: list[Entry] = []
        while self._window_total > self.window_maximum and window:
            key, entry = window.popitem(last=False)
            entry.queue = PROBATION
            probation[key] = entry
            self._window_total -= entry.weight if weighted else 1
            candidates.append(entry)
        return candidates

    def _duel(self, candidate: Entry) -> tuple[Entry, bool]:
        """Newest candidate against main's least recent entry: the less popular one leaves.

        Returns:
            The entry to evict, and whether that is the candidate being refused admission.
        """
        victim = self._probation[next(iter(self._probation))]
        if victim is candidate:
            return candidate, False
        if (candidate.weight if self.weighted else 1) > self.maximum:
            return candidate, True
        frequency = self.sketch.frequency
        candidate_freq = frequency(candidate.hash)
        # A warm candidate sometimes wins a tie-or-loss at random, so an attacker cannot pin the victim.
        if candidate_freq > frequency(victim.hash) or (candidate_freq > _WARM and self._rand(7) == 0):
            return victim, False
        return candidate, True

    def _evict_one_resident(self) -> None:
        # No candidate left: take main's least recent entry, then protected's, then the window's.
        for region in (self._probation, self._protected, self._window):
            if region:
                self._drop(region[next(iter(region))], False)
                return

    def _drop(self, entry: Entry, rejected: bool) -> None:
        self.remove(entry)
        self._evict(entry, rejected)


def _newest_on_probation(candidates: list[Entry]) -> Entry | None:
    """Pop candidates newest first until one is still on probation (others were touched meanwhile)."""
    while candidates:
        candidate = candidates.pop()
        if candidate.queue == PROBATION:
            return candidate
    return None
