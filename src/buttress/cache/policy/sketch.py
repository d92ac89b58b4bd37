"""A count-min sketch of how often each key was asked for recently: TinyLFU's memory of popularity.

The sketch answers "about how many times was this key used lately?" for any key, cached or not, in
constant space. It keeps four rows of small saturating counters (0–15, the range Caffeine packs into 4
bits; here one byte each so that a row is a plain :class:`bytearray` Python indexes quickly). A key maps
to one counter per row; its estimate is the smallest of the four, since collisions only ever add.

An increment raises the key's counter in every row (Caffeine's choice too; the "conservative update"
that raises only the smallest was measured here and lost hit rate on looping traces). **Aging** keeps
the counts recent: after ``sample_size`` increments (ten per key of capacity) every counter is halved,
so yesterday's favourites fade and the sketch follows a shifting popularity. Halving is one
:meth:`bytes.translate` over the table, done in C.
"""

from __future__ import annotations

__all__ = ["FrequencySketch"]

#: ``_HALVE[c] == c // 2``: the translation table that ages every counter at once.
_HALVE = bytes(i >> 1 for i in range(256))
#: Counters saturate here: four bits' worth, enough to rank "hot" above "warm" above "cold".
MAX_COUNT = 15


class FrequencySketch:
    """Approximate recent access counts for hashed keys.

    Args:
        capacity: how many distinct keys the cache holds; sizes the table (four rows of
            ``8 × capacity`` counters rounded up to a power of two: 32 bytes per entry of capacity,
            wider than Caffeine's 8 bytes because Python indexes bytes far faster than it unpacks
            nibbles, and the extra width measurably cut collisions on Zipf and loop traces) and the
            aging period (``10 × capacity`` increments).

    Keys enter as 64-bit hashes (:func:`buttress.cache.policy.entry.spread`). Row ``r`` reads a window
    of the hash's bits starting ``r × step`` below the top, with ``step`` chosen so the four windows
    fit in 64 bits: for tables up to 2¹⁶ wide they are disjoint, and wider ones overlap so little that
    two keys colliding in one row still collide in the next only by chance (2⁻¹³ at worst). Shifts and
    masks on one int are the cheapest index arithmetic Python offers, which matters because every
    recorded read pays for it.
    """

    __slots__ = ("_consts", "_size", "_table", "capacity", "resets", "sample_size")

    def __init__(self, capacity: int) -> None:
        self.capacity = 0
        self.resets = 0
        self.ensure_capacity(capacity)

    def ensure_capacity(self, capacity: int) -> None:
        """Grow the table to fit ``capacity`` keys; growing forgets all counts (like a cold start).

        A no-op when the table is already at least that large, so a store whose entry count is unknown
        (bounded by bytes only) can call it as it grows.
        """
        capacity = max(int(capacity), 16)
        if capacity <= self.capacity:
            return
        bits = min(max(8 * capacity - 1, 127).bit_length(), 24)  # at most 64 MiB
        width = 1 << bits
        step = min(bits, (64 - bits) // 3)
        top = 64 - bits
        self.capacity = capacity
        self.sample_size = 10 * capacity
        # (shift row 0, shift row 1, shift row 2, shift row 3, mask, offset row 1, row 2, row 3)
        shifts = (top, top - step, top - 2 * step, top - 3 * step)
        self._consts = (*shifts, width - 1, width, 2 * width, 3 * width)
        self._table = bytearray(4 * width)
        self._size = 0

    @property
    def width(self) -> int:
        """Counters per row."""
        return self._consts[4] + 1

    @property
    def size(self) -> int:
        """Increments since the last aging (halving)."""
        return self._size

    def increment(self, h: int) -> None:
        """Count one more use of the key whose hash is ``h``, then age the table if its period is up."""
        t = self._table
        s0, s1, s2, s3, m, w1, w2, w3 = self._consts
        # Every row's counter goes up (not only the smallest, as "conservative update" would): on
        # traces with loops the extra collision noise is what lets a stable subset of the loop win
        # admission instead of the whole loop churning through the cache.
        i = h >> s0
        added = False
        if t[i] < MAX_COUNT:
            t[i] += 1
            added = True
        i = ((h >> s1) & m) + w1
        if t[i] < MAX_COUNT:
            t[i] += 1
            added = True
        i = ((h >> s2) & m) + w2
        if t[i] < MAX_COUNT:
            t[i] += 1
            added = True
        i = ((h >> s3) & m) + w3
        if t[i] < MAX_COUNT:
            t[i] += 1
            added = True
        if added:
            self._size += 1
            if self._size >= self.sample_size:
                self.age()

    def frequency(self, h: int) -> int:
        """The estimated recent use count (0–15) of the key whose hash is ``h``."""
        t = self._table
        s0, s1, s2, s3, m, w1, w2, w3 = self._consts
        a = t[h >> s0]
        b = t[((h >> s1) & m) + w1]
        c = t[((h >> s2) & m) + w2]
        d = t[((h >> s3) & m) + w3]
        low = a if a < b else b
        if c < low:
            low = c
        return d if d < low else low

    def age(self) -> None:
        """Halve every counter and the increment count: the periodic decay that makes counts recent."""
        self._table = bytearray(self._table.translate(_HALVE))
        self._size //= 2
        self.resets += 1

    def clear(self) -> None:
        """Forget every count."""
        self._table = bytearray(len(self._table))
        self._size = 0
