"""The ``get`` hot paths, built once per namespace as closures over local variables.

A memory hit is the part of a service's request path that runs most often, so it is written for
CPython's interpreter: the store's bound ``get`` and the counters are closure variables (no attribute
lookups on ``self``), the common case is one call and one identity test, and everything that is rare —
key checks, tiers, envelopes, latency samples — is behind the ``MISS`` branch. Key validation happens
only on that branch: an unhashable key makes the store raise ``TypeError``, which is turned into the
clear :class:`~buttress.cache.keys.CacheKeyError` there.

Variants, chosen when the namespace is built or switches to envelopes:

* store-backed (memory, or the L1 of a tiered namespace), bare values or envelopes;
* Redis-only: every get is timed into the latency sketch (the network dominates the cost).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from buttress.cache.backends.memory import MISS
from buttress.cache.core import CacheCore
from buttress.cache.metrics import SAMPLE_MASK
from buttress.cache.serialize import Envelope

__all__ = ["async_get", "sync_get"]

Get = Callable[..., Any]
AGet = Callable[..., Awaitable[Any]]


def sync_get(core: CacheCore) -> Get:
    """The sync ``get(key, default=None)`` for ``core``."""
    metrics = core.metrics
    hits, misses = metrics.hits, metrics.misses
    record = metrics.get_latency.sketch.add
    now = core.clock.monotonic
    wall = core.clock.time
    tags = core.tags
    # Another process may write envelopes (tags) to a shared backend at any time: shared namespaces
    # always check for them; memory namespaces switch when they first write one themselves.
    enveloped = core.enveloped or core.kind != "memory"
    remote_get: Get | None = None
    if core.tiered is not None:
        remote_get = core.tiered.get_l2
    elif core.remote is not None:
        remote_get = core.remote.get

    def unwrap(v: Any, default: Any) -> Any:
        if v.fresh_until <= wall() or (v.tags and not tags.valid(v.tags)):
            misses.value += 1
            return default
        hits.value += 1
        return v.value

    def slow(key: Any, default: Any = None) -> Any:
        # Not in L1 (or expired there): the store's own get expires it; then the remote tier, timed.
        core.check_key(key)
        v = MISS
        if remote_get is not None:
            t0 = now()
            v = remote_get(key if type(key) is str else core.check_key(key))
            record(now() - t0)
        if v is MISS:
            misses.value += 1
            return default
        if type(v) is Envelope:
            return unwrap(v, default)
        hits.value += 1
        return v

    store = core.store
    if store is None:
        store_get = None
        return slow
    store_get = store.get
    n = 0

    def get(key: Any, default: Any = None) -> Any:
        nonlocal n
        try:
            v = store_get(key)
        except TypeError:  # unhashable: slow() raises the clear error
            return slow(key, default)
        if v is MISS:
            return slow(key, default)
        hits.value += 1
        n += 1
        if n & SAMPLE_MASK:
            return v
        t0 = now()
        store_get(key)
        record(now() - t0)
        return v

    def get_enveloped(key: Any, default: Any = None) -> Any:
        try:
            v = store_get(key)
        except TypeError:
            return slow(key, default)
        if v is MISS:
            return slow(key, default)
        if type(v) is Envelope:
            return unwrap(v, default)
        hits.value += 1
        return v

    return get_enveloped if enveloped else get


def async_get(core: CacheCore) -> AGet:
    """The async ``get(key, default=None)`` for ``core``: the same logic, awaiting only the remote tier."""
    metrics = core.metrics
    hits, misses = metrics.hits, metrics.misses
    record = metrics.get_latency.sketch.add
    now = core.clock.monotonic
    wall = core.clock.time
    tags = core.tags
    remote_aget: AGet | None = None
    if core.tiered is not None:
        remote_aget = core.tiered.aget_l2
    elif core.remote is not None:
        remote_aget = core.remote.aget
    store = core.store

    async def unwrap(v: Any, default: Any) -> Any:
        if v.fresh_until <= wall() or (v.tags and not await tags.avalid(v.tags)):
            misses.value += 1
            return default
        hits.value += 1
        return v.value

    if store is None:
        assert remote_aget is not None
        aget = remote_aget

        async def get_remote(key: Any, default: Any = None) -> Any:
            t0 = now()
            v = await aget(key)
            record(now() - t0)
            if v is MISS:
                misses.value += 1
                return default
            if type(v) is Envelope:
                return await unwrap(v, default)
            hits.value += 1
            return v

        return get_remote

    store_get = store.get
    n = 0

    async def slow(key: Any, default: Any) -> Any:
        core.check_key(key)
        v = MISS
        if remote_aget is not None:
            t0 = now()
            v = await remote_aget(key)
            record(now() - t0)
        if v is MISS:
            misses.value += 1
            return default
        if type(v) is Envelope:
            return await unwrap(v, default)
        hits.value += 1
        return v

    async def get(key: Any, default: Any = None) -> Any:
        nonlocal n
        try:
            v = store_get(key)
        except TypeError:
            return await slow(key, default)
        if v is MISS:
            return await slow(key, default)
        if type(v) is Envelope:
            return await unwrap(v, default)
        hits.value += 1
        n += 1
        if n & SAMPLE_MASK:
            return v
        t0 = now()
        store_get(key)
        record(now() - t0)
        return v

    return get
