"""The ``get`` hot paths, built once per namespace as closures over local variables.

A memory hit is the part of a service's request path that runs most often, so it is written for
CPython's interpreter: the store's bound ``get`` and the counters are closure variables (no attribute
lookups on ``self``), the common case is one call and one identity test, and everything that is rare —
key checks, tiers, envelopes, latency samples — is behind the ``MISS`` branch. Key validation happens
only on that branch: an unhashable key makes the store raise ``TypeError``, which is turned into the
clear :class:`~buttress.cache.keys.CacheKeyError` there.

Each variant has its own small factory, chosen when the namespace is built or switches to envelopes:

======================  ===============================================================================
``_memory_get``         memory namespace, bare values: the store's answer is the value (sampled timing)
``_enveloped_get``      store-backed (memory with envelopes, or the L1 of a tiered namespace)
``_remote_get``         Redis-only; also what a tiered L1 miss falls through to. Every get is timed
                        into the latency sketch (the network dominates the cost)
======================  ===============================================================================

The async factories mirror them (``_astore_get``, ``_aremote_get``); they await only the remote tier.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from buttress.cache.backends.memory import MISS, READ_BUFFER, MemoryStore
from buttress.cache.core import CacheCore
from buttress.cache.metrics import SAMPLE_MASK
from buttress.cache.serialize import Envelope

__all__ = ["async_get", "sync_get"]

Get = Callable[..., Any]
AGet = Callable[..., Awaitable[Any]]
Unwrap = Callable[[Envelope, Any], Any]
AUnwrap = Callable[[Envelope, Any], Awaitable[Any]]


def sync_get(core: CacheCore) -> Get:
    """The sync ``get(key, default=None)`` for ``core``: the variant its backend and mode call for."""
    if core.store is None:
        return _remote_get(core)
    # Another process may write envelopes (tags) to a shared backend at any time: shared namespaces
    # always check for them; memory namespaces switch when they first write one themselves.
    if core.enveloped or core.kind != "memory":
        return _enveloped_get(core)
    return _memory_get(core)


def async_get(core: CacheCore) -> AGet:
    """The async ``get(key, default=None)`` for ``core``: the same logic, awaiting only the remote tier."""
    if core.store is None:
        return _aremote_get(core, core.remote.aget)
    return _astore_get(core)


# -- sync ------------------------------------------------------------------------------------------------


def _memory_get(core: CacheCore) -> Get:
    """A memory namespace storing bare values: a hit is one dict lookup, one test, two increments.

    The store's own read (:meth:`MemoryStore.get`) is inlined when the store is a plain
    :class:`MemoryStore`: one Python call fewer is about a quarter of a hit. Anything but a live hit —
    absent, expired, unhashable — goes through the store's method, which does the bookkeeping.
    """
    slow = _memory_get_via_store(core)
    if type(core.store) is not MemoryStore:  # a subclass may do more on a read: keep its method
        return slow
    return _memory_get_inline(core, slow)


def _memory_get_via_store(core: CacheCore) -> Get:
    """:func:`_memory_get` through the store's ``get`` method."""
    assert core.store is not None
    store_get = core.store.get
    # The store counts its own hits; which of them to time is read from that count rather than from
    # a second counter kept here (one increment fewer per hit).
    store_stats = core.store.stats
    hits = core.metrics.hits
    timed = _timed_lookup(core)
    miss = _miss_path(core)

    def get(key: Any, default: Any = None) -> Any:
        try:
            v = store_get(key)
        except TypeError:  # unhashable: the miss path raises the clear error
            return miss(key, default)
        if v is MISS:
            return miss(key, default)
        hits.value += 1
        if not store_stats.hits & SAMPLE_MASK:
            timed(key)
        return v

    return get


def _memory_get_inline(core: CacheCore, slow: Get) -> Get:
    """:func:`_memory_get` with the store's read inlined; ``slow`` takes everything but a live hit."""
    store = core.store
    assert type(store) is MemoryStore
    data = store._data
    store_now = store._now
    store_stats = store.stats
    hits = core.metrics.hits
    timed = _timed_lookup(core)

    def get(key: Any, default: Any = None) -> Any:
        try:
            entry = data[key]
        except (KeyError, TypeError):
            return slow(key, default)
        expires_at = entry.expires_at
        if expires_at is not None and expires_at <= store_now():
            return slow(key, default)
        # The same steps as MemoryStore.get; the buffer is read each time (a replay swaps it).
        buffer = store._buffer
        if len(buffer) < READ_BUFFER:
            buffer.append(entry)
        store_stats.hits += 1
        hits.value += 1
        if not store_stats.hits & SAMPLE_MASK:
            timed(key)
        return entry.value

    return get


def _timed_lookup(core: CacheCore) -> Callable[[Any], None]:
    """Time one more lookup of ``key`` into the get-latency sketch (the 1-in-1024 sample of hits)."""
    assert core.store is not None
    store_get = core.store.get
    record = core.metrics.get_latency.sketch.add
    now = core.clock.monotonic

    def timed(key: Any) -> None:
        # One hit in 1024 is timed, by looking the same key up again (see buttress.cache.metrics).
        t0 = now()
        store_get(key)
        record(now() - t0)

    return timed


def _enveloped_get(core: CacheCore) -> Get:
    """A store-backed namespace whose entries may be envelopes (checked for freshness and tags)."""
    assert core.store is not None
    store_get = core.store.get
    hits = core.metrics.hits
    miss = _miss_path(core)
    unwrap = _unwrap(core)

    def get(key: Any, default: Any = None) -> Any:
        try:
            v = store_get(key)
        except TypeError:
            return miss(key, default)
        if v is MISS:
            return miss(key, default)
        if type(v) is Envelope:
            return unwrap(v, default)
        hits.value += 1
        return v

    return get


def _miss_path(core: CacheCore) -> Get:
    """What runs when the in-process store has nothing: the remote tier if any, else a counted miss."""
    if core.remote is not None:
        return _remote_get(core)
    misses = core.metrics.misses
    check_key = core.check_key

    def miss(key: Any, default: Any = None) -> Any:
        check_key(key)  # raises the clear CacheKeyError for an unhashable key
        misses.value += 1
        return default

    return miss


def _remote_get(core: CacheCore) -> Get:
    """The shared tier, timed: Redis itself, or a tiered namespace's L2 (its L1 having missed)."""
    metrics = core.metrics
    hits, misses = metrics.hits, metrics.misses
    record = metrics.get_latency.sketch.add
    now = core.clock.monotonic
    check_key = core.check_key
    fetch: Get = core.tiered.get_l2 if core.tiered is not None else core.remote.get
    unwrap = _unwrap(core)

    def get(key: Any, default: Any = None) -> Any:
        check_key(key)
        t0 = now()
        v = fetch(key)
        record(now() - t0)
        if v is MISS:
            misses.value += 1
            return default
        if type(v) is Envelope:
            return unwrap(v, default)
        hits.value += 1
        return v

    return get


def _unwrap(core: CacheCore) -> Unwrap:
    """An envelope's value while it is fresh and its tags are valid; else ``default``, counted a miss."""
    hits, misses = core.metrics.hits, core.metrics.misses
    wall = core.clock.time
    tags = core.tags

    def unwrap(v: Envelope, default: Any) -> Any:
        if v.fresh_until <= wall() or (v.tags and not tags.valid(v.tags)):
            misses.value += 1
            return default
        hits.value += 1
        return v.value

    return unwrap


# -- async -----------------------------------------------------------------------------------------------


def _astore_get(core: CacheCore) -> AGet:
    """A store-backed namespace (memory, or a tiered L1): only a miss there awaits anything.

    As in :func:`_memory_get`, a plain :class:`MemoryStore`'s read is inlined for live hits.
    """
    slow = _astore_get_via_store(core)
    if type(core.store) is not MemoryStore:
        return slow
    return _astore_get_inline(core, slow)


def _astore_get_via_store(core: CacheCore) -> AGet:
    """:func:`_astore_get` through the store's ``get`` method."""
    assert core.store is not None
    store_get = core.store.get
    store_stats = core.store.stats  # timed hits are picked from the store's count, as in _memory_get
    hits = core.metrics.hits
    timed = _timed_lookup(core)
    miss = _amiss_path(core)
    unwrap = _aunwrap(core)

    async def get(key: Any, default: Any = None) -> Any:
        try:
            v = store_get(key)
        except TypeError:  # unhashable: the miss path raises the clear error
            return await miss(key, default)
        if v is MISS:
            return await miss(key, default)
        if type(v) is Envelope:
            return await unwrap(v, default)
        hits.value += 1
        if not store_stats.hits & SAMPLE_MASK:
            timed(key)
        return v

    return get


def _astore_get_inline(core: CacheCore, slow: AGet) -> AGet:
    """:func:`_astore_get` with the store's read inlined; ``slow`` takes everything but a live entry."""
    store = core.store
    assert type(store) is MemoryStore
    data = store._data
    store_now = store._now
    store_stats = store.stats
    hits = core.metrics.hits
    timed = _timed_lookup(core)
    unwrap = _aunwrap(core)

    async def get(key: Any, default: Any = None) -> Any:
        try:
            entry = data[key]
        except (KeyError, TypeError):
            return await slow(key, default)
        expires_at = entry.expires_at
        if expires_at is not None and expires_at <= store_now():
            return await slow(key, default)
        buffer = store._buffer
        if len(buffer) < READ_BUFFER:
            buffer.append(entry)
        store_stats.hits += 1
        v = entry.value
        if type(v) is Envelope:
            return await unwrap(v, default)
        hits.value += 1
        if not store_stats.hits & SAMPLE_MASK:
            timed(key)
        return v

    return get


def _amiss_path(core: CacheCore) -> AGet:
    """After the store missed: check the key, then a tiered namespace's L2, else a counted miss."""
    check_key = core.check_key
    if core.tiered is not None:
        fetch = _aremote_get(core, core.tiered.aget_l2)

        async def from_l2(key: Any, default: Any) -> Any:
            check_key(key)
            return await fetch(key, default)

        return from_l2
    misses = core.metrics.misses

    async def miss(key: Any, default: Any) -> Any:
        check_key(key)  # raises the clear CacheKeyError for an unhashable key
        misses.value += 1
        return default

    return miss


def _aremote_get(core: CacheCore, fetch: AGet) -> AGet:
    """``fetch`` (Redis, or a tiered L2) awaited and timed, its answer unwrapped and counted."""
    metrics = core.metrics
    hits, misses = metrics.hits, metrics.misses
    record = metrics.get_latency.sketch.add
    now = core.clock.monotonic
    unwrap = _aunwrap(core)

    async def get(key: Any, default: Any = None) -> Any:
        t0 = now()
        v = await fetch(key)
        record(now() - t0)
        if v is MISS:
            misses.value += 1
            return default
        if type(v) is Envelope:
            return await unwrap(v, default)
        hits.value += 1
        return v

    return get


def _aunwrap(core: CacheCore) -> AUnwrap:
    """Async :func:`_unwrap`: a Redis-only namespace checks tag stamps in Redis."""
    hits, misses = core.metrics.hits, core.metrics.misses
    wall = core.clock.time
    tags = core.tags

    async def unwrap(v: Envelope, default: Any) -> Any:
        if v.fresh_until <= wall() or (v.tags and not await tags.avalid(v.tags)):
            misses.value += 1
            return default
        hits.value += 1
        return v.value

    return unwrap
