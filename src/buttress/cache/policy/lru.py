"""Least-recently-used eviction: the baseline every smarter policy is measured against.

One :class:`~collections.OrderedDict` keeps keys from least to most recently used; a use moves a key to
the end and eviction pops from the front, both O(1) in C.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from buttress.cache.policy.base import UNBOUNDED, EvictFn
from buttress.cache.policy.entry import DEAD, WINDOW, Entry

__all__ = ["LruPolicy"]


class LruPolicy:
    """Exact LRU over the entries the store holds.

    Args:
        maximum: capacity in policy units (entries, or bytes when ``weighted``).
        evict: called with each entry this policy evicts.
        weighted: count each entry's ``weight`` instead of one per entry.
        max_count: a second ceiling on the number of entries (when ``weighted``).
    """

    __slots__ = ("_count", "_evict", "_order", "_total", "max_count", "maximum", "weighted")

    def __init__(
        self, maximum: int, evict: EvictFn, *, weighted: bool = False, max_count: int | None = None
    ) -> None:
        self.maximum = maximum
        self.max_count = UNBOUNDED if max_count is None else max_count
        self.weighted = weighted
        self._evict = evict
        self._order: OrderedDict[str, Entry] = OrderedDict()
        self._total = 0
        self._count = 0

    @property
    def total(self) -> int:
        """Policy units in use."""
        return self._total

    def keys_in_order(self) -> list[str]:
        """Keys from the next to be evicted to the most recently used."""
        return list(self._order)

    def record(self, entries: Iterable[Entry]) -> None:
        """Move each read entry to the most-recently-used end."""
        move = self._order.move_to_end
        for entry in entries:
            if entry.queue != DEAD:
                move(entry.key)

    def add(self, entry: Entry) -> None:
        """Insert at the most-recently-used end, then evict from the other end while over capacity."""
        entry.queue = WINDOW
        self._order[entry.key] = entry
        self._total += entry.weight if self.weighted else 1
        self._count += 1
        self._shrink()

    def replace(self, old: Entry, new: Entry) -> None:
        """Swap in the new entry for its key and count the write as a use."""
        old.queue = DEAD
        new.queue = WINDOW
        self._order[new.key] = new
        self._order.move_to_end(new.key)
        if self.weighted:
            self._total += new.weight - old.weight
            self._shrink()

    def remove(self, entry: Entry) -> None:
        """Unlink an entry the store removed."""
        entry.queue = DEAD
        del self._order[entry.key]
        self._total -= entry.weight if self.weighted else 1
        self._count -= 1

    def clear(self) -> None:
        """Forget every entry."""
        for entry in self._order.values():
            entry.queue = DEAD
        self._order.clear()
        self._total = 0
        self._count = 0

    def _shrink(self) -> None:
        order = self._order
        weighted = self.weighted
        while (self._total > self.maximum or self._count > self.max_count) and order:
            _, victim = order.popitem(last=False)
            victim.queue = DEAD
            self._total -= victim.weight if weighted else 1
            self._count -= 1
            self._evict(victim, False)
