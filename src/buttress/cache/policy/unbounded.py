"""The policy of a store with no size bound: nothing to order, nothing to evict."""

from __future__ import annotations

from collections.abc import Iterable

from buttress.cache.policy.entry import DEAD, WINDOW, Entry

__all__ = ["UnboundedPolicy"]


class UnboundedPolicy:
    """Keeps every entry; only marks entries in and out so buffered reads of removed ones are skipped."""

    __slots__ = ("_total",)

    weighted = False

    def __init__(self) -> None:
        self._total = 0

    @property
    def total(self) -> int:
        """Entries held."""
        return self._total

    def record(self, entries: Iterable[Entry]) -> None:
        """Reads change nothing when nothing is ever evicted."""

    def add(self, entry: Entry) -> None:
        """Count the entry in."""
        entry.queue = WINDOW
        self._total += 1

    def replace(self, old: Entry, new: Entry) -> None:
        """Swap one entry for another."""
        old.queue = DEAD
        new.queue = WINDOW

    def remove(self, entry: Entry) -> None:
        """Count the entry out."""
        entry.queue = DEAD
        self._total -= 1

    def clear(self) -> None:
        """Forget every entry (the store marks nothing else)."""
        self._total = 0
