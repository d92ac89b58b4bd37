"""What the memory store asks of an eviction policy, and the capacity bookkeeping every policy shares.

The store owns the key → entry map and the timer wheel; a policy owns the *order* of entries and
decides which leave when the cache is over capacity. The store calls the policy only with its lock
held and only off the read path: reads are buffered and replayed through :meth:`Policy.record` in
batches, so a hit costs a dict lookup and a list append, never a policy update.

Capacity is counted in *policy units*: one per entry, or the entry's ``weight`` when the store is
bounded by bytes. With both bounds set, units are weights and the entry count is a second ceiling.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Protocol

from buttress.cache.policy.entry import Entry

__all__ = ["EvictFn", "Policy"]

#: How a policy hands an entry it evicted back to the store: ``(entry, rejected)``, where ``rejected``
#: says the entry was a newcomer refused by admission rather than a resident pushed out.
EvictFn = Callable[[Entry, bool], None]

#: The entry-count ceiling when only a weight bound applies.
UNBOUNDED = sys.maxsize


class Policy(Protocol):
    """An eviction policy driven by the memory store.

    Every method is called with the store's lock held. ``add`` and ``replace`` may evict, through the
    ``evict`` callback given at construction, any number of entries — including the one just added.
    """

    @property
    def weighted(self) -> bool:
        """Whether capacity counts entry weights (bytes) rather than entries."""
        ...

    @property
    def total(self) -> int:
        """Policy units in use."""
        ...

    def record(self, entries: Iterable[Entry]) -> None:
        """Replay buffered reads, oldest first; entries marked ``DEAD`` are skipped."""
        ...

    def add(self, entry: Entry) -> None:
        """Take in a new key's entry and evict as needed."""
        ...

    def replace(self, old: Entry, new: Entry) -> None:
        """Put ``new`` in ``old``'s place (same key, counted as a use) and evict as needed."""
        ...

    def remove(self, entry: Entry) -> None:
        """Forget an entry the store removed (explicit delete or expiry)."""
        ...

    def clear(self) -> None:
        """Forget every entry (the frequency history, if any, is kept)."""
        ...
