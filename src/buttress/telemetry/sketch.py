"""A mergeable quantile sketch with a relative-error guarantee, built for latencies.

:class:`Sketch` follows DDSketch (Masson, Rim and Lee, VLDB 2019): a positive value ``v`` is counted in
the logarithmic bucket ``k = floor(log(v) / log(gamma))`` with ``gamma = (1 + a) / (1 - a)``, where ``a``
is the relative accuracy (0.01 by default). Bucket ``k`` holds the values in ``[gamma**k, gamma**(k+1))``
and answers for all of them with one representative value, ``2 * gamma**(k+1) / (gamma + 1)``, which lies
within a relative distance ``a`` of every value in the bucket. So every quantile the sketch reports is
within 1 % of a value that really is at that rank, whatever the distribution; a fixed-bucket histogram
(Prometheus' default buckets) cannot promise that, because its error grows with the bucket it lands in.

Two sketches with the same accuracy merge exactly: the buckets are fixed by the accuracy alone, so merging
adds counts bucket by bucket and the result equals the sketch of all the samples together. That is how
per-process or per-shard latencies roll up into one distribution.

Memory: counts live in one dense ``array`` of two-byte counts covering the buckets seen so far. A bucket
that reaches 65 536 samples does not widen the whole array (that doubled the memory of every bucket for
the sake of a few hot ones); it restarts at zero and carries one unit into a sparse carry, so the true
count of bucket ``i`` is ``counts[i] + 65536 * carry[i]``. The carry is a compact array of
``(index, multiple)`` pairs, absent until some bucket overflows: a few dozen buckets carry in a series
of 10 M latencies, and even the worst case, ``n // 65536`` carried buckets for ``n`` samples, costs
four bytes each (eight once one bucket passes 2**32 samples). At 1 % a latency series spanning the
whole 10 µs to 1 h range needs 985 buckets: about 2.7 KiB in all (the shared per-accuracy constants
included), about 3 KiB with 10 M samples in it. A real endpoint spans two to five decades: a million
log-normal latencies (median 50 ms, sigma 1) take about 1.9 KiB. ``max_buckets`` bounds the span: when
a new value would stretch it further, the lowest buckets fold into the lowest kept one, as in DDSketch's
collapsing-lowest store. Only the low quantiles lose accuracy, which is the right trade for latencies.

Recording is one method call of about 250 ns on CPython 3.11 (see ``benchmarks/telemetry.py``). Its fast
path takes no lock: like the registry's counters, two threads adding to the same sketch at once may,
rarely, lose or misplace one sample. Give each thread its own sketch and merge them if exact counts
matter. The rare structural changes (a new extreme reallocating the array, a bucket carrying, a merge)
and every reader of the counts share one module-wide lock, so a scrape running beside the recording
threads never sees a bucket half carried (65 536 off) or an array with the wrong offset.
"""

from __future__ import annotations

import math
import os
import struct
import sys
import threading
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from itertools import accumulate
from math import floor as _floor
from math import log as _log
from typing import Any, Final, NamedTuple

__all__ = ["Sketch"]

_DEFAULT_ACCURACY: Final = 0.01
_DEFAULT_MIN_VALUE: Final = 1e-9
# Spare buckets allocated past a new extreme, so a slowly widening distribution does not reallocate the
# array on every new minimum or maximum. Small, because memory per series is a budget.
_SLACK: Final = 16
# Array typecodes for the serialised counts and the carry, narrowest first; each has the itemsize in
# the comment on every platform CPython supports ('L' would be 4 or 8 bytes depending on the OS, so it
# is not used). The last limit is also the most one bucket may hold.
_TYPECODES: Final = ("H", "I", "Q")  # 2, 4, 8 bytes
_LIMITS: Final = tuple(1 << (8 * array(tc).itemsize) for tc in _TYPECODES)
# The dense counts are two-byte ("H"): a count holds the true count modulo 2**16, the carry the rest.
_CARRY_SHIFT: Final = 16
_LOW_MASK: Final = (1 << _CARRY_SHIFT) - 1

# One lock for every sketch, not one per series: it costs no memory per series, and what it guards is
# rare (reallocations and carries while recording; reads at scrape or evaluation time), so sketches do
# not contend for it. Never taken by add()'s fast path. Code that holds it calls only the helpers that
# assume it is held (_fit, _full, _span, _store, ...), never a public method, since it is not reentrant.
_LOCK = threading.Lock()


def _new_lock_after_fork() -> None:
    # A thread of the parent holding the lock at fork() would leave it held forever in the child.
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX only; elsewhere there is no fork
    os.register_at_fork(after_in_child=_new_lock_after_fork)

_MAGIC: Final = b"BTSK"
_VERSION: Final = 1
# magic, version, count itemsize, two reserved bytes, accuracy, min_value, max_buckets, offset (key of
# the first stored bucket), number of stored buckets, zero count, sum, min, max. The counts follow,
# little-endian, then a CRC-32 of everything before it.
_HEADER: Final = struct.Struct("<4sBBxx d d I q I Q d d d")
_CRC: Final = struct.Struct("<I")


class _Params(NamedTuple):
    """Constants shared by every sketch with the same accuracy and zero threshold."""

    accuracy: float
    min_value: float
    gamma: float
    ln_gamma: float
    mult: float  # 1 / ln(gamma): key = floor(log(v) * mult)
    bias: float  # see _params for why keys are computed with a large offset added
    ibias: int
    rep: float  # 2 / (gamma + 1): representative = gamma**(k+1) * rep
    min_key: int  # the lowest stored key; lower keys count as zero
    max_key: int  # the key of the largest finite float
    default_max_buckets: int


@lru_cache(maxsize=64)
def _params(accuracy: float, min_value: float) -> _Params:
    gamma = (1.0 + accuracy) / (1.0 - accuracy)
    ln_gamma = math.log(gamma)
    mult = 1.0 / ln_gamma
    # Keys must be identical in every sketch of this accuracy, or merging would not be exact. The hot
    # path computes ``log(v) * mult + bias - base`` and truncates it to the array index, where ``base``
    # is ``bias`` plus the key stored at index 0. Adding ``bias`` first makes every key's position a
    # float in one binade, [1.25 * 2**p, 1.75 * 2**p], whatever the offset; subtracting ``base`` (in the
    # same binade) is then exact (Sterbenz), so the index is floor(log(v) * mult + bias) - base, exactly,
    # in every sketch. ``bias`` also keeps the truncated number positive, so int() acts as floor().
    span = 746.0 * mult  # |log(v)| <= 745.2 for every positive finite float
    p = math.ceil(math.log2(span)) + 2
    bias = 1.5 * 2.0**p
    ibias = int(bias)

    def key(v: float) -> int:
        return _floor(_log(v) * mult + bias) - ibias

    return _Params(
        accuracy=accuracy,
        min_value=min_value,
        gamma=gamma,
        ln_gamma=ln_gamma,
        mult=mult,
        bias=bias,
        ibias=ibias,
        rep=2.0 / (gamma + 1.0),
        min_key=key(min_value),
        max_key=key(sys.float_info.max),
        default_max_buckets=math.ceil(math.log(1e9) * mult),
    )


def _check_params(relative_accuracy: object, min_value: object, max_buckets: object) -> None:
    if (
        not isinstance(relative_accuracy, float | int)
        or isinstance(relative_accuracy, bool)
        or not 1e-6 <= relative_accuracy <= 0.5
    ):
        raise ValueError(f"relative_accuracy must be a number from 1e-6 to 0.5; got {relative_accuracy!r}")
    if (
        not isinstance(min_value, float | int)
        or isinstance(min_value, bool)
        or not 0.0 < min_value < math.inf
    ):
        raise ValueError(f"min_value must be a positive, finite number; got {min_value!r}")
    if max_buckets is not None and (
        not isinstance(max_buckets, int) or isinstance(max_buckets, bool) or not 2 <= max_buckets < 2**32
    ):
        raise ValueError(f"max_buckets must be an integer from 2 to 2**32 - 1, or None; got {max_buckets!r}")


def _typecode_for(largest: int) -> str:
    for tc, limit in zip(_TYPECODES, _LIMITS, strict=True):
        if largest < limit:
            return tc
    raise OverflowError(f"a sketch bucket cannot hold {largest} samples (the limit is {_LIMITS[-1] - 1})")


def _nonzero_span(counts: array[int]) -> tuple[int, int] | None:
    """Index of the first and last non-zero count, or None when all are zero (scanned in C)."""
    raw = counts.tobytes()
    head = raw.lstrip(b"\0")
    if not head:
        return None
    size = counts.itemsize
    first = (len(raw) - len(head)) // size
    last = (len(raw.rstrip(b"\0")) - 1) // size
    return first, last


class Sketch:
    """A mergeable latency distribution answering any quantile within a relative error.

    Record with :meth:`add`; ask with :meth:`quantile`, :attr:`count`, :attr:`sum`, :attr:`min`,
    :attr:`max` and :attr:`mean`; roll up with :meth:`merge`; ship with :meth:`to_bytes` or
    :meth:`to_dict`::

        sketch = Sketch()                   # 1 % relative accuracy
        for seconds in durations:
            sketch.add(seconds)
        sketch.quantile(0.99)               # within 1 % of a true p99 sample

    What :meth:`add` accepts: a non-negative, finite number of seconds (any unit works; the sketch
    does not care). Zero and values below ``min_value`` count in a separate zero bucket; quantiles
    that fall there read as ``0.0`` raised to the smallest value seen, so their error is absolute (at
    most ``min_value``) rather than relative. Negative, NaN and infinite values are bugs in the caller
    (a clock that went backwards, a failed subtraction) and raise :class:`ValueError` naming the
    value, leaving the sketch unchanged; non-numbers raise :class:`TypeError`.

    Args:
        relative_accuracy: the guaranteed relative error ``a`` of every quantile, from 1e-6 to 0.5.
            Buckets are ``gamma = (1 + a) / (1 - a)`` wide, so halving ``a`` doubles the buckets.
        min_value: values below this (rounded down to a bucket edge) count as zero. The default,
            1 ns in seconds, is far below any latency a Python process can measure.
        max_buckets: the most buckets kept; ``None`` means enough for nine decades at the chosen
            accuracy (1 037 at 1 %, covering 1 ms to 11 days or 10 µs to 2.7 hours). When a value
            would widen the span further, the lowest buckets fold into the lowest kept one.
    """

    # Slots rather than a __dict__: about 100 bytes less per series, and add() reads them faster.
    __slots__ = (
        "_base",
        "_bias",
        "_carry",
        "_counts",
        "_max",
        "_max_buckets",
        "_min",
        "_mult",
        "_p",
        "_sum",
        "_top",
        "_zero",
    )

    _p: _Params
    _counts: array[int]
    # None until a bucket first overflows its two-byte count; then flat pairs ``index, multiple`` sorted
    # by index: bucket ``index`` holds ``counts[index] + multiple * 65536``. Only the slow path writes it.
    _carry: array[int] | None
    _max_buckets: int
    _mult: float
    _bias: float
    _base: float
    _top: float
    _zero: int
    _sum: float
    _min: float
    _max: float

    def __init__(
        self,
        relative_accuracy: float = _DEFAULT_ACCURACY,
        *,
        min_value: float = _DEFAULT_MIN_VALUE,
        max_buckets: int | None = None,
    ) -> None:
        _check_params(relative_accuracy, min_value, max_buckets)
        p = _params(float(relative_accuracy), float(min_value))
        self._p = p
        self._max_buckets = p.default_max_buckets if max_buckets is None else max_buckets
        self._mult = p.mult
        self._bias = p.bias
        self._carry = None
        self._set_counts(array("H"), p.min_key)
        self._zero = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    # -- recording -----------------------------------------------------------------------------------

    def add(self, value: float) -> None:
        """Record one value (a duration in seconds, by convention).

        Args:
            value: a non-negative, finite number. Zero and values below ``min_value`` go to the zero
                bucket.

        Raises:
            ValueError: ``value`` is negative, NaN or infinite; the sketch is unchanged.
            TypeError: ``value`` is not a number; the sketch is unchanged.
        """
        # The common case, a positive value inside the buckets already allocated, is this block: one
        # log, three float operations, one chained comparison and one array increment. Everything else
        # falls to _add_slow: log() raises for zero, negatives and non-numbers; NaN fails every
        # comparison; infinity and values outside the array fail the range check; a bucket whose
        # two-byte count is full raises OverflowError before changing anything, and carries there.
        try:
            x = _log(value) * self._mult + self._bias - self._base
        except (ValueError, TypeError):
            self._add_slow(value)
            return
        if 0.0 <= x < self._top:
            try:
                # floor() rather than int(): the same for x >= 0, and a specialised call in CPython 3.11
                # where int() goes through the type constructor, about 30 ns slower.
                self._counts[_floor(x)] += 1
            except OverflowError:
                self._add_slow(value)
                return
            self._sum += value
            if value < self._min:
                self._min = value
            if value > self._max:
                self._max = value
        else:
            self._add_slow(value)

    def _add_slow(self, value: float) -> None:
        given: object = value  # callers without type checking pass anything
        if isinstance(given, str | bytes | bytearray):
            raise TypeError(f"Sketch.add() needs a number of seconds; got {value!r}")
        try:
            v = float(value)
        except OverflowError:
            v = math.inf
        except (TypeError, ValueError):
            raise TypeError(f"Sketch.add() needs a number of seconds; got {value!r}") from None
        if not 0.0 <= v < math.inf:
            hint = (
                " A negative duration usually means a wall clock was used; measure with time.perf_counter()."
                if v < 0.0
                else ""
            )
            raise ValueError(f"Sketch.add() needs a finite, non-negative duration; got {value!r}.{hint}")
        p = self._p
        if v == 0.0 or (key := self._key(v)) < p.min_key:
            self._zero += 1
        else:
            self._increment(key)
        self._sum += v
        if v < self._min:
            self._min = v
        if v > self._max:
            self._max = v

    def _key(self, v: float) -> int:
        # The same arithmetic as add()'s fast path (see _params), so both always agree on the bucket.
        p = self._p
        return _floor(_log(v) * p.mult + p.bias) - p.ibias

    def _increment(self, key: int) -> None:
        with _LOCK:
            self._increment_locked(key)

    def _increment_locked(self, key: int) -> None:
        offset = int(self._base) - self._p.ibias
        index = key - offset
        if index < 0 and self._is_collapsed():
            index = 0  # below a collapsed span: count in its lowest bucket without reallocating
        elif not 0 <= index < len(self._counts):
            self._fit(key, key)
            offset = int(self._base) - self._p.ibias
            index = max(key - offset, 0)  # a key below a collapsed span counts in its lowest bucket
        counts = self._counts
        try:
            counts[index] += 1
        except OverflowError:
            # The two-byte count is full: carry one unit of 65 536 and restart it at zero. This runs once
            # per 65 536 samples of a bucket, so rebuilding the small carry array costs nothing that shows.
            # Other threads' fast paths cannot touch this slot meanwhile: at 65 535 their increment
            # raises too and they queue on the lock, to find the count restarted.
            carries = self._carries()
            carried = carries.get(index, 0) + 1
            _typecode_for(carried << _CARRY_SHIFT)  # past the per-bucket limit: OverflowError, unchanged
            carries[index] = carried
            self._set_carries(carries)
            counts[index] = 0

    def _is_collapsed(self) -> bool:
        """Whether the array starts exactly max_buckets below the highest key seen (lower keys fold)."""
        span = self._span()
        return span is not None and span[1] == self._max_buckets - 1

    def _fit(self, low: int, high: int) -> None:
        """Reallocate the array to cover keys ``low..high`` too, within ``max_buckets``."""
        offset = int(self._base) - self._p.ibias
        span = self._span()
        if span is not None:
            low = min(low, offset + span[0])
            high = max(high, offset + span[1])
        limit = self._max_buckets
        # Collapsing lowest: keep the top max_buckets keys; anything lower folds into the lowest kept.
        low = max(low, high - limit + 1)
        room = (limit - (high - low + 1)) // 2
        slack = min(_SLACK, room)
        new_low = max(low - slack, self._p.min_key)
        new_high = min(high + slack, self._p.max_key)
        fresh = [0] * (new_high - new_low + 1)
        for i, c in enumerate(self._full()):
            if c:
                fresh[max(offset + i, low) - new_low] += c
        self._store(fresh, new_low)

    def _set_counts(self, counts: array[int], offset: int) -> None:
        self._counts = counts
        self._base = float(self._p.ibias + offset)
        self._top = float(len(counts))

    # Everything but add()'s fast path reads and writes counts through the helpers below, which see true
    # counts, so no reader can forget the carry. They assume _LOCK is held (or the sketch is not yet
    # shared); _snapshot takes it for the readers.

    def _snapshot(self) -> tuple[int, list[int]]:
        """The key of array slot 0 and every slot's true count, read together under the lock."""
        with _LOCK:
            return int(self._base) - self._p.ibias, self._full()

    def _carries(self) -> dict[int, int]:
        """The carry as a fresh ``{array index: multiple of 65 536}`` (empty when nothing carries)."""
        carry = self._carry
        if carry is None:
            return {}
        flat = carry.tolist()
        return dict(zip(flat[::2], flat[1::2], strict=True))

    def _set_carries(self, carries: Mapping[int, int]) -> None:
        if not carries:
            self._carry = None
            return
        flat = [n for pair in sorted(carries.items()) for n in pair]
        self._carry = array(_typecode_for(max(flat)), flat)

    def _full(self) -> list[int]:
        """The true count of every array slot: ``counts[i] + 65536 * carry.get(i, 0)``."""
        full = self._counts.tolist()
        carry = self._carry
        if carry is not None:
            flat = carry.tolist()
            for i, multiple in zip(flat[::2], flat[1::2], strict=True):
                full[i] += multiple << _CARRY_SHIFT
        return full

    def _store(self, full: list[int], offset: int) -> None:
        """Replace the counts with ``full`` (true counts, array index 0 at key ``offset``).

        Raises:
            OverflowError: a count exceeds the per-bucket limit; the sketch is unchanged.
        """
        top = max(full, default=0)
        _typecode_for(top)  # raises past the limit, before anything changes
        if top <= _LOW_MASK:
            self._set_counts(array("H", full), offset)
            self._carry = None
            return
        self._set_counts(array("H", [c & _LOW_MASK for c in full]), offset)
        self._set_carries({i: c >> _CARRY_SHIFT for i, c in enumerate(full) if c > _LOW_MASK})

    def _span(self) -> tuple[int, int] | None:
        """Array index of the first and last non-empty bucket, carries included; None when empty."""
        span = _nonzero_span(self._counts)
        carry = self._carry
        if carry is None:
            return span
        first, last = carry[0], carry[-2]  # indices sit at even positions, sorted
        if span is None:
            return first, last
        return min(span[0], first), max(span[1], last)

    # -- reading -------------------------------------------------------------------------------------

    @property
    def relative_accuracy(self) -> float:
        """The guaranteed relative error of every quantile (``a``)."""
        return self._p.accuracy

    @property
    def min_value(self) -> float:
        """Values below this count in the zero bucket."""
        return self._p.min_value

    @property
    def max_buckets(self) -> int:
        """The most buckets this sketch keeps before it folds the lowest together."""
        return self._max_buckets

    @property
    def count(self) -> int:
        """How many values were recorded (computed from the buckets, so reading it is O(buckets))."""
        with _LOCK:
            n = sum(self._counts)
            carry = self._carry
            if carry is not None:
                n += sum(carry[1::2]) << _CARRY_SHIFT
        return self._zero + n

    @property
    def zero_count(self) -> int:
        """How many values were zero or below ``min_value``."""
        return self._zero

    @property
    def sum(self) -> float:
        """The exact sum of the recorded values (0.0 when empty)."""
        return self._sum

    @property
    def min(self) -> float:
        """The smallest recorded value, exactly; NaN when empty."""
        return self._min if self._min <= self._max else math.nan

    @property
    def max(self) -> float:
        """The largest recorded value, exactly; NaN when empty."""
        return self._max if self._min <= self._max else math.nan

    @property
    def mean(self) -> float:
        """The exact mean of the recorded values; NaN when empty."""
        n = self.count
        return self._sum / n if n else math.nan

    def quantile(self, q: float) -> float:
        """The value at quantile ``q``, within ``relative_accuracy`` of a true sample at that rank.

        The rank is ``q * (count - 1)`` (numpy's "lower" convention): ``quantile(0.99)`` of 1 000
        samples answers for the 990th smallest (0-based 989.01, rounded down). The answer is the
        bucket's representative value, clamped to the exact ``min`` and ``max``.

        Args:
            q: the quantile, from 0 to 1.

        Returns:
            The estimate, or NaN when the sketch is empty.

        Raises:
            ValueError: ``q`` is outside [0, 1] or NaN.
        """
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Iterable[float]) -> list[float]:
        """Several quantiles in one pass over the buckets; see :meth:`quantile`.

        Args:
            qs: quantiles from 0 to 1, in any order.

        Returns:
            One estimate per quantile, in the order given (NaN each when the sketch is empty).

        Raises:
            ValueError: a quantile is outside [0, 1] or NaN.
        """
        qs = list(qs)
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"a quantile must be between 0 and 1; got {q!r}")
        offset, full = self._snapshot()
        cumulative = list(accumulate(full))
        total = self._zero + (cumulative[-1] if cumulative else 0)
        if total == 0:
            return [math.nan] * len(qs)
        p = self._p
        out = []
        for q in qs:
            rank = math.floor(q * (total - 1)) - self._zero
            if rank < 0:
                value = 0.0
            else:
                key = offset + bisect_right(cumulative, rank)
                value = math.exp((key + 1) * p.ln_gamma) * p.rep
            out.append(min(max(value, self._min), self._max))
        return out

    def buckets(self) -> Iterator[tuple[float, int]]:
        """The cumulative distribution: ``(upper_bound, count)`` for each non-empty bucket.

        ``count`` is the number of values recorded below ``upper_bound`` (up to floating-point rounding
        at the exact edge), in increasing order of ``upper_bound``; the last count equals
        :attr:`count`. The zero bucket, when used, comes first with the lowest bucket edge as its bound.

        Yields:
            ``(upper_bound, cumulative_count)`` pairs.
        """
        p = self._p
        running = self._zero
        offset, full = self._snapshot()
        if running:
            yield math.exp(p.min_key * p.ln_gamma), running
        for i, c in enumerate(full):
            if c:
                running += c
                yield math.exp((offset + i + 1) * p.ln_gamma), running

    def cumulative_counts(self, bounds: Sequence[float]) -> list[int]:
        """For each bound, how many values lie in buckets entirely below it (a histogram's ``le`` view).

        A bucket counts toward ``b`` only when its upper edge is at most ``b``, so the answer is the
        exact number of values below some edge within one bucket width (``2 * relative_accuracy``)
        under ``b``: it may miss values just under ``b``, it never counts a value above it. That is
        the conservative side for SLOs built on ``le`` buckets. ``math.inf`` gives :attr:`count`.

        Args:
            bounds: upper bounds in any order (seconds, like the values).

        Returns:
            One count per bound, in the order given.

        Raises:
            ValueError: a bound is NaN.
        """
        p = self._p
        offset, full = self._snapshot()
        cumulative = list(accumulate(full))
        total = self._zero + (cumulative[-1] if cumulative else 0)
        out = []
        for b in bounds:
            if b != b:
                raise ValueError("a histogram bound cannot be NaN")
            if b == math.inf:
                out.append(total)
                continue
            if b <= 0.0:
                out.append(0)
                continue
            below = self._key(b) - 1  # keys <= below have upper edge <= b
            if below < p.min_key - 1:
                out.append(0)
                continue
            i = below - offset  # last array index counted
            stored = 0 if i < 0 or not cumulative else cumulative[min(i, len(cumulative) - 1)]
            out.append(self._zero + stored)
        return out

    def __repr__(self) -> str:
        n = self.count
        if not n:
            return f"Sketch(relative_accuracy={self._p.accuracy!r}, count=0)"
        p50, p99 = self.quantiles((0.5, 0.99))
        return f"Sketch(relative_accuracy={self._p.accuracy!r}, count={n}, p50={p50:.6g}, p99={p99:.6g})"

    # -- combining -----------------------------------------------------------------------------------

    def merge(self, other: Sketch) -> None:
        """Add every value recorded in ``other`` to this sketch, exactly.

        Bucket counts add up one by one, so merging shards gives the same buckets as recording all
        their values into one sketch (``sum`` may differ in the last bits, floating-point addition not
        being associative). If the union spans more than ``max_buckets``, the lowest fold together as
        they would have when recording. ``other`` is not modified.

        Args:
            other: a sketch with the same ``relative_accuracy`` and ``min_value``.

        Raises:
            ValueError: the accuracies or zero thresholds differ; nothing is merged.
            TypeError: ``other`` is not a :class:`Sketch`.
        """
        if not isinstance(other, Sketch):
            raise TypeError(f"Sketch.merge() needs a Sketch; got {type(other).__name__}")
        if other._p != self._p:
            raise ValueError(
                "cannot merge sketches with different settings: "
                f"relative_accuracy {self._p.accuracy!r} vs {other._p.accuracy!r}, "
                f"min_value {self._p.min_value!r} vs {other._p.min_value!r}"
            )
        with _LOCK:  # one lock for all sketches, so ``other`` holds still too
            self._merge_locked(other)

    def _merge_locked(self, other: Sketch) -> None:
        theirs = other._full()  # a snapshot, so s.merge(s) doubles correctly
        their_span = other._span()
        if their_span is not None:
            their_offset = int(other._base) - other._p.ibias
            low, high = their_offset + their_span[0], their_offset + their_span[1]
            offset = int(self._base) - self._p.ibias
            if low < offset or high >= offset + len(self._counts):
                self._fit(low, high)
                offset = int(self._base) - self._p.ibias
            merged = self._full()
            for i in range(their_span[0], their_span[1] + 1):
                merged[max(their_offset + i - offset, 0)] += theirs[i]
            self._store(merged, offset)  # OverflowError past the per-bucket limit, counts unchanged
        self._zero += other._zero
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def __iadd__(self, other: Sketch) -> Sketch:
        self.merge(other)
        return self

    def copy(self) -> Sketch:
        """An independent sketch with the same settings and contents."""
        new = type(self).__new__(type(self))
        new._p = self._p
        new._max_buckets = self._max_buckets
        new._mult = self._mult
        new._bias = self._bias
        with _LOCK:
            new._counts = self._counts[:]
            new._carry = None if self._carry is None else self._carry[:]
            new._base = self._base
            new._top = self._top
        new._zero = self._zero
        new._sum = self._sum
        new._min = self._min
        new._max = self._max
        return new

    __copy__ = copy

    def clear(self) -> None:
        """Forget every value, keeping the settings (and releasing the bucket memory)."""
        with _LOCK:
            self._set_counts(array("H"), self._p.min_key)
            self._carry = None
        self._zero = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    # -- serialisation -------------------------------------------------------------------------------

    def _trimmed(self) -> tuple[int, list[int]]:
        """The key of the first non-empty bucket and the true counts from it to the last non-empty."""
        with _LOCK:
            offset = int(self._base) - self._p.ibias
            span = self._span()
            full = self._full()
        if span is None:
            return self._p.min_key, []
        return offset + span[0], full[span[0] : span[1] + 1]

    def to_bytes(self) -> bytes:
        """A compact, checksummed binary form; :meth:`from_bytes` reads it back.

        Layout (little-endian): ``b"BTSK"``, version 1, count width, accuracy, min_value,
        max_buckets, the key of the first stored bucket, the number of buckets, the zero count, sum,
        min, max, the counts (leading and trailing empty buckets trimmed, each in the narrowest width
        that holds the largest), then a CRC-32 of all that. A sketch of 1 M latencies is about 1 KiB.
        The counts written are the true ones: the in-memory split into two-byte counts and a carry
        does not reach the format, which is why sketches written before the carry existed (whose
        counts widened to four or eight bytes) still load unchanged.

        Returns:
            The encoded sketch.
        """
        offset, counts = self._trimmed()
        stored = array(_typecode_for(max(counts, default=0)), counts)
        if sys.byteorder == "big":
            stored.byteswap()
        body = (
            _HEADER.pack(
                _MAGIC,
                _VERSION,
                stored.itemsize,
                self._p.accuracy,
                self._p.min_value,
                self._max_buckets,
                offset,
                len(stored),
                self._zero,
                self._sum,
                self._min,
                self._max,
            )
            + stored.tobytes()
        )
        return body + _CRC.pack(zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Sketch:
        """Decode :meth:`to_bytes` output, checking everything before building anything.

        Args:
            data: the encoded sketch.

        Returns:
            A new sketch equal to the one encoded.

        Raises:
            ValueError: the data is not a sketch, is truncated, has trailing bytes, fails its checksum,
                has an unknown version or holds impossible values; the message says which.
            TypeError: ``data`` is not bytes-like.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"Sketch.from_bytes() needs bytes; got {type(data).__name__}")
        raw = bytes(data)
        if not raw.startswith(_MAGIC) and not (len(raw) < len(_MAGIC) and _MAGIC.startswith(raw)):
            raise ValueError(f"not a buttress sketch: expected magic {_MAGIC!r}, got {raw[:4]!r}")
        if len(raw) < _HEADER.size + _CRC.size:
            raise ValueError(
                f"truncated sketch: {len(raw)} bytes, the header alone needs {_HEADER.size + _CRC.size}"
            )
        (_, version, itemsize, accuracy, min_value, max_buckets, offset, n, zero, total, lo, hi) = (
            _HEADER.unpack_from(raw)
        )
        if version != _VERSION:
            raise ValueError(f"unsupported sketch version {version}; this buttress reads version {_VERSION}")
        if itemsize not in (2, 4, 8):
            raise ValueError(f"corrupt sketch: count width must be 2, 4 or 8 bytes, got {itemsize}")
        expected = _HEADER.size + n * itemsize + _CRC.size
        if len(raw) != expected:
            problem = "truncated" if len(raw) < expected else "trailing bytes after"
            raise ValueError(f"{problem} sketch: {len(raw)} bytes where {n} buckets need {expected}")
        (crc,) = _CRC.unpack_from(raw, expected - _CRC.size)
        if crc != zlib.crc32(raw[: expected - _CRC.size]):
            raise ValueError("corrupt sketch: checksum mismatch")
        counts = array(_TYPECODES[(2, 4, 8).index(itemsize)])
        counts.frombytes(raw[_HEADER.size : expected - _CRC.size])
        if sys.byteorder == "big":
            counts.byteswap()
        return cls._build(accuracy, min_value, max_buckets, offset, counts.tolist(), zero, total, lo, hi)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary; :meth:`from_dict` reads it back.

        ``counts[i]`` is the number of values in bucket ``offset + i``, whose values lie in
        ``[gamma**key, gamma**(key+1))``; ``min`` and ``max`` are ``None`` when the sketch is empty.

        Returns:
            A dictionary of plain ints, floats, lists and ``None``.
        """
        offset, counts = self._trimmed()
        empty = self._min > self._max
        return {
            "version": _VERSION,
            "relative_accuracy": self._p.accuracy,
            "min_value": self._p.min_value,
            "max_buckets": self._max_buckets,
            "offset": offset,
            "counts": counts,
            "zero_count": self._zero,
            "sum": self._sum,
            "min": None if empty else self._min,
            "max": None if empty else self._max,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sketch:
        """Build a sketch from :meth:`to_dict` output, checking every field first.

        Args:
            data: the dictionary.

        Returns:
            A new sketch equal to the one described.

        Raises:
            ValueError: a field is missing, unknown, of the wrong type or impossible (a negative count,
                say); the message names it.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a sketch dictionary must be a mapping; got {type(data).__name__}")
        fields = {"version", "relative_accuracy", "min_value", "max_buckets", "offset", "counts",
                  "zero_count", "sum", "min", "max"}  # fmt: skip
        missing, unknown = fields - data.keys(), data.keys() - fields
        if missing or unknown:
            raise ValueError(f"bad sketch dictionary: missing {sorted(missing)}, unknown {sorted(unknown)}")
        if data["version"] != _VERSION:
            raise ValueError(
                f"unsupported sketch version {data['version']!r}; this buttress reads {_VERSION}"
            )

        def integer(name: str, value: object) -> int:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"bad sketch dictionary: {name} must be an integer, got {value!r}")
            return value

        def number(name: str, value: object) -> float:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"bad sketch dictionary: {name} must be a number, got {value!r}")
            return float(value)

        counts = data["counts"]
        if not isinstance(counts, list):
            raise ValueError(f"bad sketch dictionary: counts must be a list, got {type(counts).__name__}")
        empty = data["min"] is None and data["max"] is None
        return cls._build(
            number("relative_accuracy", data["relative_accuracy"]),
            number("min_value", data["min_value"]),
            integer("max_buckets", data["max_buckets"]),
            integer("offset", data["offset"]),
            [integer(f"counts[{i}]", c) for i, c in enumerate(counts)],
            integer("zero_count", data["zero_count"]),
            number("sum", data["sum"]),
            math.inf if empty else number("min", data["min"]),
            -math.inf if empty else number("max", data["max"]),
        )

    @classmethod
    def _build(
        cls,
        accuracy: float,
        min_value: float,
        max_buckets: int,
        offset: int,
        counts: list[int],
        zero: int,
        total: float,
        lo: float,
        hi: float,
    ) -> Sketch:
        """Validate decoded fields as a whole, then build; never returns a half-checked sketch."""
        try:
            _check_params(accuracy, min_value, max_buckets)
        except ValueError as exc:
            raise ValueError(f"corrupt sketch: {exc}") from None
        _check_buckets(_params(accuracy, min_value), max_buckets, offset, counts, zero)
        _check_summary(zero + sum(counts), total, lo, hi)
        sketch = cls(accuracy, min_value=min_value, max_buckets=max_buckets)
        if counts:
            sketch._store(counts, offset)
        sketch._zero = zero
        sketch._sum = total
        sketch._min = lo
        sketch._max = hi
        return sketch

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # Pickle through the validated binary form: compact, and safe to load from another process.
        return (Sketch.from_bytes, (self.to_bytes(),))

    def __eq__(self, other: object) -> bool:
        """Equal settings, buckets, min, max and count; ``sum`` is compared with a relative 1e-9."""
        if not isinstance(other, Sketch):
            return NotImplemented
        return (
            self._p == other._p
            and self._trimmed() == other._trimmed()
            and self._zero == other._zero
            and self._min == other._min
            and self._max == other._max
            and math.isclose(self._sum, other._sum, rel_tol=1e-9, abs_tol=1e-12)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable


def _check_buckets(p: _Params, max_buckets: int, offset: int, counts: list[int], zero: int) -> None:
    """Raise ``ValueError`` unless decoded bucket data could have come from a real sketch."""
    if len(counts) > max_buckets:
        raise ValueError(f"corrupt sketch: {len(counts)} buckets exceed max_buckets {max_buckets}")
    if counts and not p.min_key <= offset <= p.max_key - len(counts) + 1:
        raise ValueError(f"corrupt sketch: bucket keys {offset}..{offset + len(counts) - 1} are out of range")
    for i, c in enumerate(counts):
        if not 0 <= c < _LIMITS[-1]:
            raise ValueError(f"corrupt sketch: impossible count {c} in bucket {offset + i}")
    if zero < 0:
        raise ValueError(f"corrupt sketch: negative zero count {zero}")


def _check_summary(n: int, total: float, lo: float, hi: float) -> None:
    """Raise ``ValueError`` unless min, max and sum fit a sketch holding ``n`` values."""
    if n == 0:
        if not (lo == math.inf and hi == -math.inf and total == 0.0):
            raise ValueError("corrupt sketch: an empty sketch must have no min, max or sum")
    elif not (0.0 <= lo <= hi < math.inf and 0.0 <= total < math.inf):
        raise ValueError(f"corrupt sketch: impossible min {lo!r}, max {hi!r} or sum {total!r}")
