"""The one object per cached key that the store, the policy and the timer wheel all share.

An :class:`Entry` is a snapshot: :meth:`~buttress.cache.backends.memory.MemoryStore.put` of a key
that already exists builds a new entry rather than mutating the old one, so a caller holding an entry
from :meth:`~buttress.cache.backends.memory.MemoryStore.get_entry` never sees its value or deadline
change under it. The last three slots are engine bookkeeping; read them if you like, never write them.
"""

from __future__ import annotations

__all__ = ["DEAD", "PROBATION", "PROTECTED", "WINDOW", "Entry", "spread"]

#: Which region of the policy an entry sits in (``Entry.queue``). ``DEAD`` marks an entry that has been
#: removed or replaced, so buffered reads that still point at it are skipped when the buffer drains.
DEAD = -1
WINDOW = 0
PROBATION = 1
PROTECTED = 2

_M64 = 0xFFFF_FFFF_FFFF_FFFF
_GOLDEN = 0x9E37_79B9_7F4A_7C15


def spread(key: object) -> int:
    """A well-mixed, non-negative 64-bit hash of ``key`` for the frequency sketch.

    ``hash()`` of a small int is the int itself, so consecutive integer keys would land in consecutive
    counters; multiplying by the golden-ratio constant (Fibonacci hashing) makes the *high* bits of
    the product depend on every bit of the key, and the sketch reads its first row from the top.
    """
    return (hash(key) * _GOLDEN) & _M64


class Entry:
    """A cached value with its deadline, age and weight.

    Attributes:
        key: the key it is stored under.
        value: the cached object.
        expires_at: the :meth:`Clock.monotonic <buttress.clock.Clock.monotonic>` reading at which the
            entry expires, or ``None`` when it never does. An entry is expired when ``now >= expires_at``.
        created_at: the monotonic reading when it was stored (for age-based decisions such as early
            recomputation).
        weight: the caller's estimate of its size, counted against ``max_bytes`` when that is set.
        hash: the sketch hash of ``key``, computed once at ``put`` (bookkeeping).
        queue: which policy region holds the entry, or ``DEAD`` once it left the cache (bookkeeping).
        timer: the timer-wheel bucket holding the entry, or ``None`` (bookkeeping).
    """

    __slots__ = ("created_at", "expires_at", "hash", "key", "queue", "timer", "value", "weight")

    def __init__(
        self,
        key: str,
        value: object,
        expires_at: float | None,
        created_at: float,
        weight: int,
        hash: int,
    ) -> None:
        self.key = key
        self.value = value
        self.expires_at = expires_at
        self.created_at = created_at
        self.weight = weight
        self.hash = hash
        self.queue = WINDOW
        self.timer: set[Entry] | None = None

    def __repr__(self) -> str:
        return (
            f"Entry(key={self.key!r}, expires_at={self.expires_at!r}, created_at={self.created_at!r}, "
            f"weight={self.weight!r})"
        )
