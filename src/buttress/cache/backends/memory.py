"""The in-process store: a bounded dict with adaptive W-TinyLFU eviction and per-entry TTL.

:class:`MemoryStore` is the engine under every memory namespace and under the two-tier cache's L1. It is
built so that a hit costs about what a dict lookup does:

* **Reads** look the key up in a plain dict, check the deadline against one ``monotonic()`` call (only
  for entries that have one), append the entry to a *read buffer* (a list) and return the value. No
  lock, no policy work: the buffer is replayed into the eviction policy in a batch on the next write
  (or :meth:`MemoryStore.cleanup`), so the policy's cost is paid off the hit path (Caffeine's
  read-buffer idea). Like Caffeine's, the buffer is *lossy*: once it holds :data:`READ_BUFFER` reads,
  further reads until the next replay are not recorded. Eviction — what the policy is for — only
  happens on writes, and the reads it needs to rank entries are the ones since the last write; on the
  benchmark traces (``benchmarks/hitrate.py``) a 1 024-read buffer loses nothing that changes the hit
  rate, while a replay never takes more than about a millisecond.
* **Writes** take the lock, replay the buffered reads, insert, let the policy evict while over
  capacity, and turn the :class:`~buttress.cache.timerwheel.TimerWheel` so expired entries leave in
  O(1) amortised work each.
* **Eviction callbacks** run after the lock is released, so an ``on_evict`` that calls back into the
  store cannot deadlock.

::

    store = MemoryStore(max_entries=10_000)
    store.put("event:42", page, ttl=900)
    value = store.get("event:42")
    if value is MISS:
        ...

The policy is ``"tinylfu"`` (adaptive W-TinyLFU, see :mod:`buttress.cache.policy.tinylfu`) or
``"lru"``. ``benchmarks/hitrate.py`` measures both against Belady's optimum on standard traces.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator

from buttress.cache.policy.base import Policy
from buttress.cache.policy.entry import _GOLDEN, _M64, Entry
from buttress.cache.policy.lru import LruPolicy
from buttress.cache.policy.tinylfu import WTinyLfuPolicy
from buttress.cache.policy.unbounded import UnboundedPolicy
from buttress.cache.timerwheel import TimerWheel
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError, ConfigProblem

__all__ = ["MISS", "POLICIES", "Entry", "MemoryStats", "MemoryStore"]

_log = logging.getLogger("buttress.cache")

#: What :meth:`MemoryStore.get` returns for an absent or expired key; compare with ``is``. A sentinel
#: rather than ``None`` so that ``None`` can be cached like any other value.
MISS: object = object()

#: The eviction policies :class:`MemoryStore` accepts.
POLICIES = ("tinylfu", "lru")

#: Reads buffered between two replays into the policy; reads beyond it are not recorded (see above).
#: An entry removed while a read of it is buffered stays referenced until the next replay.
READ_BUFFER = 1024

_INF = math.inf

#: Causes passed to ``on_evict``.
SIZE = "size"
EXPIRED = "expired"
EXPLICIT = "explicit"


class MemoryStats:
    """Counters of one store, plain ints bumped on the hot path (read them, reset with :meth:`reset`).

    Under heavy thread contention an increment can be lost (``+=`` is not atomic); the counts are for
    monitoring, not accounting.

    Attributes:
        hits: reads that found a live entry.
        misses: reads that found nothing or an expired entry.
        evictions_size: entries evicted to stay within ``max_entries``/``max_bytes`` (including
            newcomers refused by admission).
        evictions_expired: entries removed because their TTL ran out.
        evictions_explicit: entries removed by :meth:`MemoryStore.delete` or :meth:`MemoryStore.clear`.
        admissions_rejected: newcomers the TinyLFU filter judged less popular than the entry they
            would have displaced (a subset of ``evictions_size``).
    """

    __slots__ = (
        "admissions_rejected",
        "evictions_expired",
        "evictions_explicit",
        "evictions_size",
        "hits",
        "misses",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Set every counter to zero."""
        self.hits = 0
        self.misses = 0
        self.evictions_size = 0
        self.evictions_expired = 0
        self.evictions_explicit = 0
        self.admissions_rejected = 0

    @property
    def requests(self) -> int:
        """Reads counted: hits plus misses."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Hits over reads, 0.0 before the first read."""
        requests = self.hits + self.misses
        return self.hits / requests if requests else 0.0

    @property
    def evictions(self) -> int:
        """Entries removed for any cause."""
        return self.evictions_size + self.evictions_expired + self.evictions_explicit

    def snapshot(self) -> dict[str, int]:
        """The counters as a dict (for logs and JSON)."""
        return {name: getattr(self, name) for name in sorted(self.__slots__)}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.snapshot().items())
        return f"MemoryStats({fields})"


class MemoryStore:
    """A thread-safe, bounded, expiring key → value store for one process.

    Args:
        max_entries: the most entries kept, or ``None`` for no entry bound.
        max_bytes: the most total ``weight`` kept (callers pass an estimated size in bytes as each
            entry's weight), or ``None`` for no weight bound. With both bounds set, both hold.
        policy: ``"tinylfu"`` (adaptive W-TinyLFU, the default) or ``"lru"``.
        clock: the time source for TTLs; tests pass a :class:`~buttress.clock.VirtualClock`.
        on_evict: called as ``on_evict(key, value, cause)`` for each entry that leaves, with ``cause``
            ``"size"``, ``"expired"`` or ``"explicit"`` (delete, clear); not called when ``put``
            replaces a key. It runs after the store's lock is released; an exception it raises is
            logged and does not disturb the store.

    With neither bound set the store never evicts for size (entries still expire).

    Attributes:
        stats: the store's :class:`MemoryStats`.
        max_entries: the entry bound given.
        max_bytes: the weight bound given.
        policy_name: ``"tinylfu"`` or ``"lru"``.

    Raises:
        ConfigError: listing every bad argument.
    """

    __slots__ = (
        "_buffer",
        "_data",
        "_lock",
        "_now",
        "_on_evict",
        "_pending",
        "_policy",
        "_weight",
        "_wheel",
        "max_bytes",
        "max_entries",
        "policy_name",
        "stats",
    )

    def __init__(
        self,
        max_entries: int | None = 10_000,
        *,
        max_bytes: int | None = None,
        policy: str = "tinylfu",
        clock: Clock = SYSTEM_CLOCK,
        on_evict: Callable[[str, object, str], None] | None = None,
    ) -> None:
        problems = _check_arguments(max_entries, max_bytes, policy, on_evict)
        if problems:
            raise ConfigError(problems, source="MemoryStore(...)")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.policy_name = policy
        self.stats = MemoryStats()
        self._data: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._now = clock.monotonic
        self._on_evict = on_evict
        self._pending: list[tuple[str, object, str]] = []
        self._weight = 0
        self._wheel = TimerWheel(clock.monotonic())
        self._policy = self._make_policy(policy)
        self._buffer: list[Entry] = []

    def _make_policy(self, policy: str) -> Policy:
        weighted = self.max_bytes is not None
        if weighted:
            maximum = self.max_bytes
            max_count = self.max_entries
        else:
            maximum = self.max_entries
            max_count = None
        if maximum is None:
            return UnboundedPolicy()
        if policy == "lru":
            return LruPolicy(maximum, self._evicted, weighted=weighted, max_count=max_count)
        return WTinyLfuPolicy(maximum, self._evicted, weighted=weighted, max_count=max_count)

    @property
    def policy(self) -> Policy:
        """The eviction policy object (for inspection and tests)."""
        return self._policy

    @property
    def weight(self) -> int:
        """The total weight of the entries held (their estimated bytes, when callers pass sizes)."""
        return self._weight

    # -- reads: lock-free, no policy work ----------------------------------------------------------------

    def get(self, key: str) -> object:
        """The value stored under ``key``, or :data:`MISS` when absent or expired.

        An expired entry found here is removed (cause ``"expired"``).
        """
        try:
            entry = self._data[key]
        except KeyError:
            self.stats.misses += 1
            return MISS
        expires_at = entry.expires_at
        if expires_at is not None and expires_at <= self._now():
            return self._expired_on_read(entry)
        buffer = self._buffer
        if len(buffer) < READ_BUFFER:
            buffer.append(entry)
        self.stats.hits += 1
        return entry.value

    def get_entry(self, key: str) -> Entry | None:
        """The live :class:`Entry` for ``key`` (value, deadline, age, weight), or ``None``.

        Counts as a read exactly like :meth:`get`. The entry is a snapshot: a later ``put`` of the
        same key makes a new one.
        """
        try:
            entry = self._data[key]
        except KeyError:
            self.stats.misses += 1
            return None
        expires_at = entry.expires_at
        if expires_at is not None and expires_at <= self._now():
            self._expired_on_read(entry)
            return None
        buffer = self._buffer
        if len(buffer) < READ_BUFFER:
            buffer.append(entry)
        self.stats.hits += 1
        return entry

    def peek(self, key: str) -> Entry | None:
        """The stored entry for ``key`` even if expired, without counting a read or touching the policy.

        For callers that serve stale data when their source is down: check ``expires_at`` yourself.
        An expired entry stays visible here until maintenance removes it.
        """
        return self._data.get(key)

    def __contains__(self, key: object) -> bool:
        entry = self._data.get(key)  # type: ignore[call-overload]
        if entry is None:
            return False
        expires_at = entry.expires_at
        return expires_at is None or expires_at > self._now()

    def __len__(self) -> int:
        """Entries held, including any expired ones that maintenance has not yet removed."""
        return len(self._data)

    def keys(self) -> Iterator[str]:
        """The keys of live (unexpired) entries, from a snapshot taken now."""
        now = self._now()
        items = list(self._data.items())
        return iter([key for key, e in items if e.expires_at is None or e.expires_at > now])

    def __iter__(self) -> Iterator[str]:
        """Iterate over :meth:`keys`."""
        return self.keys()

    # -- writes: under the lock -------------------------------------------------------------------------

    def put(self, key: str, value: object, ttl: float | None = None, weight: int = 1) -> None:
        """Store ``value`` under ``key``, replacing any previous entry.

        Args:
            key: the key.
            value: any object; it is stored by reference, not copied.
            ttl: seconds until the entry expires, or ``None`` (or ``math.inf``) for never.
            weight: the entry's estimated size, a positive int; counts against ``max_bytes``.

        Raises:
            ValueError: for a ``ttl`` that is not a positive number or a ``weight`` that is not a
                positive int.
        """
        # The checks' common case is one comparison each; the rare cases (inf, bad values) are out of line.
        if ttl is not None and not (0 < ttl < _INF):
            ttl = _checked_ttl(ttl, key)
        if weight.__class__ is not int or weight < 1:
            weight = _checked_weight(weight, key)
        with self._lock:
            now = self._now()
            self._before_write(now, ttl is not None)
            # spread(key), inlined: this is the write path's hottest line.
            entry = Entry(
                key, value, None if ttl is None else now + ttl, now, weight, (hash(key) * _GOLDEN) & _M64
            )
            data = self._data
            old = data.get(key)
            data[key] = entry
            self._weight += weight
            if ttl is not None:
                self._wheel.schedule(entry)
            if old is None:
                self._policy.add(entry)
            else:
                self._replaced(old, entry)
            events = self._take_pending()
        if events:
            self._notify(events)

    def _before_write(self, now: float, timed: bool) -> None:
        """Catch the policy up on buffered reads and expire what is due (under the lock)."""
        if self._buffer:
            self._drain()
        wheel = self._wheel
        if (wheel.count or timed) and now >= wheel.next_tick:
            wheel.advance(now, self._expire)

    def _replaced(self, old: Entry, entry: Entry) -> None:
        """``entry`` took ``old``'s key: undo old's weight and timer, and let the policy swap them."""
        self._weight -= old.weight
        if old.timer is not None:
            self._wheel.deschedule(old)
        self._policy.replace(old, entry)

    def delete(self, key: str) -> bool:
        """Remove ``key``; true when a live entry was there (cause ``"explicit"``).

        Deleting an entry that had already expired removes it as expired and returns false.
        """
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return False
            expires_at = entry.expires_at
            live = expires_at is None or expires_at > self._now()
            self._unlink(entry)
            self._policy.remove(entry)
            self._removed(entry, EXPLICIT if live else EXPIRED)
            events = self._take_pending()
        if events:
            self._notify(events)
        return live

    def clear(self) -> None:
        """Remove every entry (cause ``"explicit"``); the frequency history is kept."""
        with self._lock:
            entries = list(self._data.values())
            self._data.clear()
            self._buffer = []
            self._policy.clear()
            self._wheel.clear()
            self._weight = 0
            self.stats.evictions_explicit += len(entries)
            if self._on_evict is not None:
                self._pending.extend((e.key, e.value, EXPLICIT) for e in entries)
            events = self._take_pending()
        if events:
            self._notify(events)

    def cleanup(self) -> int:
        """Run maintenance now: replay buffered reads and expire every entry past its deadline.

        Returns:
            How many entries expired.
        """
        with self._lock:
            if self._buffer:
                self._drain()
            expired = self._wheel.advance(self._now(), self._expire, exact=True)
            events = self._take_pending()
        if events:
            self._notify(events)
        return expired

    # -- internals (lock held unless noted) -------------------------------------------------------------

    def _drain(self) -> None:
        # Swap in a fresh list first: a reader that loaded the old one may still append to it while
        # the policy iterates it (list iteration tolerates appends); only an append that lands after
        # the replay finished is lost.
        entries = self._buffer
        self._buffer = []
        self._policy.record(entries)

    def _expired_on_read(self, entry: Entry) -> object:
        # Lock not held on entry: reads never hold it.
        with self._lock:
            if self._data.get(entry.key) is entry:
                self._unlink(entry)
                self._policy.remove(entry)
                self._removed(entry, EXPIRED)
            events = self._take_pending()
        self.stats.misses += 1
        if events:
            self._notify(events)
        return MISS

    def _unlink(self, entry: Entry) -> None:
        del self._data[entry.key]
        if entry.timer is not None:
            self._wheel.deschedule(entry)
        self._weight -= entry.weight

    def _removed(self, entry: Entry, cause: str) -> None:
        stats = self.stats
        if cause is EXPIRED:
            stats.evictions_expired += 1
        elif cause is EXPLICIT:
            stats.evictions_explicit += 1
        else:
            stats.evictions_size += 1
        if self._on_evict is not None:
            self._pending.append((entry.key, entry.value, cause))

    def _evicted(self, entry: Entry, rejected: bool) -> None:
        # The policy's eviction callback (it has already unlinked the entry from its own order); the
        # steady state of a full cache runs this on every insert, hence written out rather than shared.
        del self._data[entry.key]
        if entry.timer is not None:
            self._wheel.deschedule(entry)
        self._weight -= entry.weight
        stats = self.stats
        stats.evictions_size += 1
        if rejected:
            stats.admissions_rejected += 1
        if self._on_evict is not None:
            self._pending.append((entry.key, entry.value, SIZE))

    def _expire(self, entry: Entry) -> None:
        # The timer wheel's callback: it has already taken the entry off the wheel.
        del self._data[entry.key]
        self._weight -= entry.weight
        self._policy.remove(entry)
        self._removed(entry, EXPIRED)

    def _take_pending(self) -> list[tuple[str, object, str]] | None:
        if not self._pending:
            return None
        events = self._pending
        self._pending = []
        return events

    def _notify(self, events: list[tuple[str, object, str]]) -> None:
        # Lock released: the callback may use the store.
        on_evict = self._on_evict
        assert on_evict is not None
        for key, value, cause in events:
            try:
                on_evict(key, value, cause)
            except Exception:
                _log.exception("on_evict(%r, ..., %r) raised; the store is unaffected", key, cause)

    def __repr__(self) -> str:
        return (
            f"MemoryStore(entries={len(self._data)}, max_entries={self.max_entries!r}, "
            f"max_bytes={self.max_bytes!r}, policy={self.policy_name!r})"
        )


def _check_arguments(
    max_entries: object, max_bytes: object, policy: object, on_evict: object
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for name, value in (("max_entries", max_entries), ("max_bytes", max_bytes)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            problems.append(ConfigProblem(name, "must be a positive int, or None for no such bound", value))
    if policy not in POLICIES:
        problems.append(ConfigProblem("policy", f"must be one of {', '.join(map(repr, POLICIES))}", policy))
    if on_evict is not None and not callable(on_evict):
        problems.append(ConfigProblem("on_evict", "must be a callable (key, value, cause) or None", on_evict))
    return problems


def _checked_ttl(ttl: float, key: str) -> float | None:
    """``None`` for an infinite ``ttl``; ``ValueError`` for one that is not a positive number."""
    if ttl == _INF:
        return None
    raise ValueError(
        f"MemoryStore.put(ttl=...) must be a positive number of seconds, or None for no expiry; "
        f"got {ttl!r} for key {key!r}"
    )


def _checked_weight(weight: int, key: str) -> int:
    """``weight`` as an int; ``ValueError`` unless it is a positive whole number (bools are not)."""
    if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
        raise ValueError(
            f"MemoryStore.put(weight=...) must be a positive int (an estimated size in bytes); "
            f"got {weight!r} for key {key!r}"
        )
    return int(weight)
