"""``Cache`` and ``AsyncCache``: the two faces of a cache namespace, over one shared core.

::

    events = Cache("events", ttl=900)                      # in process
    events = Cache("events", backend="redis://redis:6379/0")   # Redis with an L1 in each process
    page = events.get_or_load(f"event:{code}", lambda: db.load_event(code))

    @events.cached(key="event:{code}", tags=["events-list"])
    def event_page(code: str) -> Page: ...

    async with AsyncCache("events", backend="redis://redis:6379/0") as events:
        page = await events.get_or_load(f"event:{code}", lambda: db.aload_event(code))

Reads never fail because a backend is down (they miss), and a miss never runs the loader twice at once
in one process (single-flight) — or across processes, with ``lease=``. Everything that can be decided
when the namespace is built (backend, key prefix with version and schema fingerprint, TTL strategy,
whether entries carry envelopes) is decided then: ``get`` is a closure over local variables, about
150 ns for a memory hit.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar, Unpack, cast, overload

from buttress.cache.backends.memory import MISS
from buttress.cache.core import CacheCore, CacheOptions
from buttress.cache.getters import async_get as _async_get
from buttress.cache.getters import sync_get as _sync_get
from buttress.cache.keys import KeyTemplate
from buttress.cache.patterns.aside import AsyncSingleFlight, SingleFlight
from buttress.cache.serialize import Envelope
from buttress.errors import CacheError

__all__ = ["AsyncCache", "Cache"]

P = ParamSpec("P")
T = TypeVar("T")
_POLL_FIRST = 0.005
_POLL_MAX = 0.05


def _tag_templates(tags: Sequence[str], fn: Callable[..., Any]) -> list[KeyTemplate | str]:
    return [KeyTemplate(t, fn) if "{" in t else t for t in tags]


def _fill_tags(
    templates: list[KeyTemplate | str], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[str]:
    return [t if isinstance(t, str) else t.build(args, kwargs) for t in templates]


class _Face:
    """What both faces share: the core, naming, and the read paths that need no I/O decisions."""

    core: CacheCore
    _flight: SingleFlight[Any] | AsyncSingleFlight[Any]

    @property
    def name(self) -> str:
        """The namespace name."""
        return self.core.name

    def stats(self) -> dict[str, Any]:
        """Counters and settings of the namespace (hits, misses, loads, errors, entries, …)."""
        return self.core.describe()

    def _unwrap_many(self, keys: Sequence[Any], values: Sequence[Any]) -> dict[Any, Any]:
        core = self.core
        hits = misses = 0
        out: dict[Any, Any] = {}
        now = core.clock.time()
        for key, value in zip(keys, values, strict=True):
            if value is MISS:
                misses += 1
                continue
            if type(value) is Envelope:
                if value.fresh_until <= now or (value.tags and not core.tags.valid(value.tags)):
                    misses += 1
                    continue
                value = value.value
            hits += 1
            out[key] = value
        core.metrics.hits.value += hits
        core.metrics.misses.value += misses
        return out

    def _judge(self, v: Envelope, live: bool) -> tuple[float | None, Any]:
        """Judge an envelope ``get_or_load`` found: ``(now, MISS)`` for a fresh hit, else ``(None, stale)``.

        ``stale`` is the value to serve if reloading fails (``MISS`` unless ``serve_stale`` allows one);
        ``live`` is whether the envelope's tags are still valid (the caller checks, as it may need to await).
        """
        if not live:
            return None, MISS
        core = self.core
        now = core.clock.time()
        if now < v.fresh_until:
            return now, MISS
        return None, (v.value if core.serve_stale else MISS)

    def _due(self, key: Any, v: Envelope, now: float) -> bool:
        """Count a fresh hit; whether XFetch says to refresh it early (and no refresh is running)."""
        core = self.core
        core.metrics.hits.value += 1
        beta = core.beta
        return bool(beta) and core.xfetch(now, v, beta, core.random()) and not self._flight.in_flight(key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.core.name!r}, backend={self.core.kind!r})"


# ------------------------------------------------------------------------------------------------------
# sync
# ------------------------------------------------------------------------------------------------------


class Cache(_Face):
    """A cache namespace for synchronous code (thread-safe).

    Args:
        name: the namespace; it prefixes keys in shared backends and labels metrics.
        core: an existing core to share (what :meth:`AsyncCache.sync` does); the options are then ignored.
        backend: ``"memory"`` (default), a Redis URL (``redis://``, ``redis+cluster://``,
            ``redis+sentinel://``), or a :class:`~buttress.cache.backends.memory.MemoryStore` to use.
        ttl: seconds an entry lives (the base of the TTL strategy).
        ttl_strategy: ``"fixed"``, ``"jittered"``, ``"adaptive"`` or a strategy object
            (:mod:`buttress.cache.ttl`); ``jitter``, ``p_stale``, ``ttl_min``, ``ttl_max`` tune them.
        max_entries: bound of the in-process store (memory, or the L1 of a Redis namespace).
        max_bytes: optional byte bound of the in-process store (sizes estimated by ``weigher``).
        policy: ``"tinylfu"`` (default) or ``"lru"`` for the in-process store.
        version: bump to make every existing entry a miss (a deploy that changes meaning, not shape).
        schema: the type cached; its fingerprint joins the key prefix (:mod:`buttress.cache.versioning`).
        serializer: ``"pickle"`` (default), ``"json"``, ``"bytes"`` or a
            :class:`~buttress.cache.serialize.Serializer`, for Redis.
        tiered: keep an L1 in process in front of Redis (default true for Redis backends).
        l1_ttl: the longest an L1 copy lives.
        serve_stale: seconds past expiry a value may still be served when reloading fails.
        early_recompute: XFetch β; 0 turns early recomputation off, 1 is the paper's optimum.
        lease: seconds of the distributed load lease (Redis backends); 0 turns it off.
        key_prefix: the first part of every Redis key.
        socket_timeout: Redis command timeout in seconds.
        down_for: seconds Redis is skipped after a connection error.
        redis_options: more redis-py client options (``{"protocol": 3}``…).
        weigher: ``value -> estimated bytes`` for ``max_bytes``.
        clock: time for TTLs, freshness and leases (a ``VirtualClock`` in tests).
        registry: the metrics registry (default the process-wide one).
        rng: random source for jitter and XFetch.

    Raises:
        ConfigError: for options that cannot work, naming each.
    """

    def __init__(
        self, name: str = "default", *, core: CacheCore | None = None, **options: Unpack[CacheOptions]
    ):
        self.core = core if core is not None else CacheCore(name, **options)
        self._flight: SingleFlight[Any] = SingleFlight()
        self.core.on_rebind(self._bind)
        self._bind()

    # The hot paths are closures built here; the methods below are their documented shape (and are
    # what runs when a method is called on the class rather than on an instance).

    def _bind(self) -> None:
        core = self.core
        vars(self)["get"] = _sync_get(core)
        if core.kind == "memory":
            assert core.store is not None
            self._bget = core.store.get
        else:
            self._bget = (core.tiered or core.remote).get

    def get(self, key: Any, default: Any = None) -> Any:
        """The cached value of ``key``, or ``default`` (also when the backend is unreachable)."""
        return self.get(key, default)  # pragma: no cover - replaced per instance by _bind

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        """The cached values of ``keys`` that are present, in one backend round trip."""
        keys = list(keys)
        core = self.core
        if core.kind == "memory":
            assert core.store is not None
            get = core.store.get
            values = [get(k) for k in keys]
        else:
            values = (core.tiered or core.remote).get_many([core.check_key(k) for k in keys])
        return self._unwrap_many(keys, values)

    def set(self, key: Any, value: Any, *, ttl: float | None = None, tags: Sequence[str] = ()) -> None:
        """Store ``value`` under ``key``.

        Args:
            key: the key (``str`` for Redis-backed namespaces).
            value: the value (picklable/serialisable for Redis-backed namespaces).
            ttl: seconds, overriding the namespace's strategy.
            tags: tags whose invalidation (:meth:`invalidate_tag`) makes this entry a miss.

        Raises:
            SerializationError: when the value cannot be serialised for Redis (names the type).
        """
        core = self.core
        core.epoch += 1
        self._put(core.check_key(key), value, ttl, tags, 0.0, observe=True)

    def _put(
        self, key: Any, value: Any, ttl: float | None, tags: Sequence[str], delta: float, *, observe: bool
    ) -> None:
        core = self.core
        t = core.ttl_for(key, ttl)
        if observe:
            core.observe(key)
        pairs = core.tag_pairs(tags) if tags else ()
        stored = core.wrap(value, t, delta, pairs)
        if core.kind == "memory":
            assert core.store is not None
            weigher = core.weigher
            core.store.put(key, stored, core.stored_ttl(t), weigher(value) if weigher is not None else 1)
        else:
            (core.tiered or core.remote).set(key, stored, core.stored_ttl(t))

    def set_many(
        self,
        items: Mapping[Any, Any] | Iterable[tuple[Any, Any]],
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        """Store several values (one pipeline for Redis)."""
        pairs_in = list(items.items() if isinstance(items, Mapping) else items)
        core = self.core
        core.epoch += 1
        if core.kind == "memory":
            for key, value in pairs_in:
                self._put(core.check_key(key), value, ttl, tags, 0.0, observe=True)
            return
        stamps = core.tag_pairs(tags) if tags else ()
        triples = []
        for key, value in pairs_in:
            key = core.check_key(key)
            t = core.ttl_for(key, ttl)
            core.observe(key)
            triples.append((key, core.wrap(value, t, 0.0, stamps), core.stored_ttl(t)))
        (core.tiered or core.remote).set_many(triples)

    def delete(self, key: Any) -> bool:
        """Remove ``key`` here and, for Redis namespaces, from every process's L1. True if it existed."""
        core = self.core
        core.epoch += 1
        core.observe(key)
        if core.kind == "memory":
            assert core.store is not None
            return core.store.delete(key)
        return bool((core.tiered or core.remote).delete(core.check_key(key)))

    def delete_many(self, keys: Iterable[Any]) -> int:
        """Remove several keys; how many existed."""
        return sum(1 for key in keys if self.delete(key))

    def invalidate_tag(self, tag: str) -> None:
        """Make every entry written with ``tag`` a miss, in O(1) (see :mod:`buttress.cache.invalidation`)."""
        core = self.core
        core.epoch += 1
        if core.tiered is not None:
            core.tiered.bump_tag(tag)
        else:
            core.tags.bump(tag)

    def clear(self) -> None:
        """Remove every entry of the namespace (everywhere, for Redis namespaces)."""
        core = self.core
        core.epoch += 1
        if core.kind == "memory":
            assert core.store is not None
            core.store.clear()
        else:
            (core.tiered or core.remote).clear()

    def get_or_load(
        self, key: Any, loader: Callable[[], T], *, ttl: float | None = None, tags: Sequence[str] = ()
    ) -> T:
        """The cached value of ``key``, or ``loader()``'s result, stored.

        Concurrent misses of one key share one ``loader()`` call (and with ``lease``, one across
        processes). With ``early_recompute`` a hit may refresh the value before it expires (XFetch).
        With ``serve_stale``, a loader that raises is answered with the expired value when there is one.

        Raises:
            Exception: what ``loader`` raised, when there is no stale value to serve.
        """
        core = self.core
        v = self._bget(key)
        stale: Any = MISS
        if type(v) is Envelope:
            now, stale = self._judge(v, not v.tags or core.tags.valid(v.tags))
            if now is not None:
                if self._due(key, v, now):
                    return self._refresh(key, loader, ttl, tags, cast(T, v.value))
                return cast(T, v.value)
        elif v is not MISS:
            core.metrics.hits.value += 1
            return cast(T, v)
        core.metrics.misses.value += 1
        return self._load(core.check_key(key), loader, ttl, tags, stale)

    def _load(
        self, key: Any, loader: Callable[[], T], ttl: float | None, tags: Sequence[str], stale: Any
    ) -> T:
        core = self.core
        try:
            value, shared = self._flight.do(key, lambda: self._load_once(key, loader, ttl, tags))
        except Exception:
            if stale is MISS:
                raise
            core.metrics.stale_served.value += 1
            return cast(T, stale)
        if shared:
            core.metrics.suppressed.value += 1
        return cast(T, value)

    def _refresh(
        self, key: Any, loader: Callable[[], T], ttl: float | None, tags: Sequence[str], current: T
    ) -> T:
        try:
            value, _ = self._flight.do(key, lambda: self._call_and_store(key, loader, ttl, tags))
        except Exception:
            return current  # an early refresh that fails changes nothing: the value is still fresh
        return cast(T, value)

    def _load_once(self, key: Any, loader: Callable[[], T], ttl: float | None, tags: Sequence[str]) -> T:
        core = self.core
        remote = core.remote
        if not core.lease or remote is None:
            return self._call_and_store(key, loader, ttl, tags)
        token = remote.acquire_lease(key, core.lease)
        if token is None:
            found = self._await_peer(key)
            if found is not MISS:
                core.metrics.suppressed.value += 1
                return cast(T, found)
            token = remote.acquire_lease(key, core.lease)
        try:
            return self._call_and_store(key, loader, ttl, tags)
        finally:
            if token is not None:
                remote.release_lease(key, token)

    def _await_peer(self, key: Any) -> Any:
        """Poll the cache while another process holds the lease; MISS if its lease runs out first."""
        core = self.core
        clock = core.clock
        deadline = clock.monotonic() + core.lease
        interval = _POLL_FIRST
        backend = core.tiered or core.remote
        while clock.monotonic() < deadline:
            clock.sleep(interval)
            interval = min(interval * 2, _POLL_MAX)
            v = backend.get(key)
            if v is not MISS:
                return v.value if type(v) is Envelope else v
        return MISS

    def _call_and_store(self, key: Any, loader: Callable[[], T], ttl: float | None, tags: Sequence[str]) -> T:
        core = self.core
        metrics = core.metrics
        epoch = core.epoch
        t0 = core.clock.monotonic()
        try:
            value = loader()
        except BaseException:
            metrics.load_errors.value += 1
            raise
        delta = core.clock.monotonic() - t0
        metrics.loads.value += 1
        metrics.load_latency.sketch.add(delta)
        if inspect.isawaitable(value):
            raise CacheError(
                f"cache {core.name!r}: the loader returned an awaitable; use AsyncCache for async loaders"
            )
        if epoch == core.epoch:  # nothing changed the namespace while we loaded
            self._put(key, value, ttl, tags, delta, observe=False)
        return value

    def cached(
        self,
        key: str | Callable[P, T] | None = None,
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> Any:
        """Decorate a function so its results are cached (cache-aside with single-flight).

        Args:
            key: a template such as ``"event:{code}"`` filled from the call's arguments; default the
                function's qualified name and its arguments.
            ttl: seconds, overriding the namespace's strategy.
            tags: tags (templates allowed: ``"speaker:{speaker_id}"``) for :meth:`invalidate_tag`.

        The wrapper has ``key_for(*args, **kwargs)`` (the key a call uses) and ``invalidate(*args,
        **kwargs)`` (drop that call's entry).
        """
        if callable(key):
            return self.cached()(key)
        template = key

        def decorate(fn: Callable[P, T]) -> Callable[P, T]:
            if inspect.iscoroutinefunction(fn):
                raise CacheError(f"{fn.__qualname__} is async; decorate it with an AsyncCache's cached()")
            build = KeyTemplate(template, fn).build
            tag_templates = _tag_templates(tags, fn)
            get_or_load = self.get_or_load

            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                k = build(args, kwargs)
                call_tags = _fill_tags(tag_templates, args, kwargs) if tag_templates else ()
                return get_or_load(k, lambda: fn(*args, **kwargs), ttl=ttl, tags=call_tags)

            def key_for(*args: Any, **kwargs: Any) -> str:
                return build(args, kwargs)

            def invalidate(*args: Any, **kwargs: Any) -> bool:
                return self.delete(build(args, kwargs))

            wrapper.key_for = key_for  # type: ignore[attr-defined]
            wrapper.invalidate = invalidate  # type: ignore[attr-defined]
            return wrapper

        return decorate

    def as_async(self) -> AsyncCache:
        """An :class:`AsyncCache` over the same core (same entries, metrics and invalidation)."""
        return AsyncCache(core=self.core)

    def close(self) -> None:
        """Stop the invalidation listener and close Redis connections."""
        core = self.core
        if core.tiered is not None:
            core.tiered.close()
        elif core.remote is not None:
            core.remote.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------------
# async
# ------------------------------------------------------------------------------------------------------


class AsyncCache(_Face):
    """A cache namespace for asyncio code; the same options as :class:`Cache`.

    Loaders are coroutine functions (a plain function's result is used as is). Single-flight works
    within one event loop; build one ``AsyncCache`` per loop (they may share a core via
    :meth:`Cache.as_async`).
    """

    def __init__(
        self, name: str = "default", *, core: CacheCore | None = None, **options: Unpack[CacheOptions]
    ):
        self.core = core if core is not None else CacheCore(name, **options)
        self._flight: AsyncSingleFlight[Any] = AsyncSingleFlight()
        self.core.on_rebind(self._bind)
        self._bind()

    def _bind(self) -> None:
        core = self.core
        vars(self)["get"] = _async_get(core)
        if core.kind == "memory":
            assert core.store is not None
            mget = core.store.get

            async def aget_memory(key: Any) -> Any:
                return mget(key)

            self._aget: Callable[[Any], Awaitable[Any]] = aget_memory
        else:
            self._aget = (core.tiered or core.remote).aget

    async def get(self, key: Any, default: Any = None) -> Any:
        """The cached value of ``key``, or ``default`` (also when the backend is unreachable)."""
        return await self.get(key, default)  # pragma: no cover - replaced per instance by _bind

    async def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        """The cached values of ``keys`` that are present, in one backend round trip."""
        keys = list(keys)
        core = self.core
        if core.kind == "memory":
            assert core.store is not None
            get = core.store.get
            values = [get(k) for k in keys]
        else:
            values = await (core.tiered or core.remote).aget_many([core.check_key(k) for k in keys])
        out = (
            self._unwrap_many(keys, values)
            if core.kind != "redis"
            else await self._unwrap_remote(keys, values)
        )
        return out

    async def _unwrap_remote(self, keys: Sequence[Any], values: Sequence[Any]) -> dict[Any, Any]:
        # Redis-only namespaces check tags against Redis, which needs I/O.
        core = self.core
        checked = []
        for value in values:
            if type(value) is Envelope and value.tags and not await core.tags.avalid(value.tags):
                value = MISS
            checked.append(value)
        core_tags, core.tags = core.tags, core.local_tags
        try:
            return self._unwrap_many(keys, checked)
        finally:
            core.tags = core_tags

    async def set(self, key: Any, value: Any, *, ttl: float | None = None, tags: Sequence[str] = ()) -> None:
        """Store ``value`` under ``key`` (see :meth:`Cache.set`)."""
        core = self.core
        core.epoch += 1
        await self._put(core.check_key(key), value, ttl, tags, 0.0, observe=True)

    async def _put(
        self, key: Any, value: Any, ttl: float | None, tags: Sequence[str], delta: float, *, observe: bool
    ) -> None:
        core = self.core
        t = core.ttl_for(key, ttl)
        if observe:
            core.observe(key)
        pairs: tuple[tuple[str, int], ...] = ()
        if tags:
            core.need_envelopes()
            pairs = core.tags.stamps(tags) if core.kind == "memory" else await self._astamps(tags)
        stored = core.wrap(value, t, delta, pairs)
        if core.kind == "memory":
            assert core.store is not None
            weigher = core.weigher
            core.store.put(key, stored, core.stored_ttl(t), weigher(value) if weigher is not None else 1)
        else:
            await (core.tiered or core.remote).aset(key, stored, core.stored_ttl(t))

    async def _astamps(self, tags: Sequence[str]) -> tuple[tuple[str, int], ...]:
        core = self.core
        current = await core.remote.atag_stamps(tags)
        if current is None:
            return core.local_tags.stamps(tags)
        for tag, stamp in zip(tags, current, strict=True):
            core.local_tags.observe(tag, stamp)
        return tuple(zip(tags, current, strict=True))

    async def set_many(
        self,
        items: Mapping[Any, Any] | Iterable[tuple[Any, Any]],
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        """Store several values (one pipeline for Redis)."""
        pairs_in = list(items.items() if isinstance(items, Mapping) else items)
        core = self.core
        core.epoch += 1
        if core.kind == "memory":
            for key, value in pairs_in:
                await self._put(core.check_key(key), value, ttl, tags, 0.0, observe=True)
            return
        stamps: tuple[tuple[str, int], ...] = ()
        if tags:
            core.need_envelopes()
            stamps = await self._astamps(tags)
        triples = []
        for key, value in pairs_in:
            key = core.check_key(key)
            t = core.ttl_for(key, ttl)
            core.observe(key)
            triples.append((key, core.wrap(value, t, 0.0, stamps), core.stored_ttl(t)))
        await (core.tiered or core.remote).aset_many(triples)

    async def delete(self, key: Any) -> bool:
        """Remove ``key`` (see :meth:`Cache.delete`)."""
        core = self.core
        core.epoch += 1
        core.observe(key)
        if core.kind == "memory":
            assert core.store is not None
            return core.store.delete(key)
        return bool(await (core.tiered or core.remote).adelete(core.check_key(key)))

    async def delete_many(self, keys: Iterable[Any]) -> int:
        """Remove several keys; how many existed."""
        count = 0
        for key in keys:
            count += await self.delete(key)
        return count

    async def invalidate_tag(self, tag: str) -> None:
        """Make every entry written with ``tag`` a miss, in O(1)."""
        core = self.core
        core.epoch += 1
        if core.tiered is not None:
            await core.tiered.abump_tag(tag)
        else:
            await core.tags.abump(tag)

    async def clear(self) -> None:
        """Remove every entry of the namespace."""
        core = self.core
        core.epoch += 1
        if core.kind == "memory":
            assert core.store is not None
            core.store.clear()
        else:
            await (core.tiered or core.remote).aclear()

    # Two overloads so a coroutine function's result type is inferred (a union of the two callable
    # types makes mypy infer ``Never``); the first wins for loaders that return awaitables.
    @overload
    async def get_or_load(
        self,
        key: Any,
        loader: Callable[[], Awaitable[T]],
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> T: ...

    @overload
    async def get_or_load(
        self, key: Any, loader: Callable[[], T], *, ttl: float | None = None, tags: Sequence[str] = ()
    ) -> T: ...

    async def get_or_load(
        self,
        key: Any,
        loader: Callable[[], Awaitable[T]] | Callable[[], T],
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> T:
        """The cached value of ``key``, or the loader's result, stored (see :meth:`Cache.get_or_load`).

        One thousand coroutines missing one key at once run the loader once.
        """
        core = self.core
        v = await self._aget(key)
        stale: Any = MISS
        if type(v) is Envelope:
            now, stale = self._judge(v, not v.tags or await core.tags.avalid(v.tags))
            if now is not None:
                if self._due(key, v, now):
                    return await self._refresh(key, loader, ttl, tags, v.value)
                return cast(T, v.value)
        elif v is not MISS:
            core.metrics.hits.value += 1
            return cast(T, v)
        core.metrics.misses.value += 1
        return await self._load(core.check_key(key), loader, ttl, tags, stale)

    async def _load(
        self,
        key: Any,
        loader: Callable[[], Awaitable[T]] | Callable[[], T],
        ttl: float | None,
        tags: Sequence[str],
        stale: Any,
    ) -> T:
        core = self.core
        try:
            value, shared = await self._flight.do(key, lambda: self._load_once(key, loader, ttl, tags))
        except Exception:
            if stale is MISS:
                raise
            core.metrics.stale_served.value += 1
            return cast(T, stale)
        if shared:
            core.metrics.suppressed.value += 1
        return cast(T, value)

    async def _refresh(
        self, key: Any, loader: Callable[[], Any], ttl: float | None, tags: Sequence[str], current: T
    ) -> T:
        try:
            value, _ = await self._flight.do(key, lambda: self._call_and_store(key, loader, ttl, tags))
        except Exception:
            return current
        return cast(T, value)

    async def _load_once(
        self, key: Any, loader: Callable[[], Any], ttl: float | None, tags: Sequence[str]
    ) -> Any:
        core = self.core
        remote = core.remote
        if not core.lease or remote is None:
            return await self._call_and_store(key, loader, ttl, tags)
        token = await remote.aacquire_lease(key, core.lease)
        if token is None:
            found = await self._await_peer(key)
            if found is not MISS:
                core.metrics.suppressed.value += 1
                return found
            token = await remote.aacquire_lease(key, core.lease)
        try:
            return await self._call_and_store(key, loader, ttl, tags)
        finally:
            if token is not None:
                await remote.arelease_lease(key, token)

    async def _await_peer(self, key: Any) -> Any:
        core = self.core
        clock = core.clock
        deadline = clock.monotonic() + core.lease
        interval = _POLL_FIRST
        backend = core.tiered or core.remote
        while clock.monotonic() < deadline:
            await clock.asleep(interval)
            interval = min(interval * 2, _POLL_MAX)
            v = await backend.aget(key)
            if v is not MISS:
                return v.value if type(v) is Envelope else v
        return MISS

    async def _call_and_store(
        self, key: Any, loader: Callable[[], Any], ttl: float | None, tags: Sequence[str]
    ) -> Any:
        core = self.core
        metrics = core.metrics
        epoch = core.epoch
        t0 = core.clock.monotonic()
        try:
            value = loader()
            if inspect.isawaitable(value):
                value = await value
        except BaseException:
            metrics.load_errors.value += 1
            raise
        delta = core.clock.monotonic() - t0
        metrics.loads.value += 1
        metrics.load_latency.sketch.add(delta)
        if epoch == core.epoch:
            await self._put(key, value, ttl, tags, delta, observe=False)
        return value

    def cached(
        self,
        key: str | Callable[P, Awaitable[T]] | None = None,
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> Any:
        """Decorate a coroutine function so its results are cached (see :meth:`Cache.cached`)."""
        if callable(key):
            return self.cached()(key)
        template = key

        def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
            if not inspect.iscoroutinefunction(fn):
                raise CacheError(f"{fn.__qualname__} is not async; decorate it with a Cache's cached()")
            build = KeyTemplate(template, fn).build
            tag_templates = _tag_templates(tags, fn)
            get_or_load = self.get_or_load

            @functools.wraps(fn)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                k = build(args, kwargs)
                call_tags = _fill_tags(tag_templates, args, kwargs) if tag_templates else ()
                return await get_or_load(k, lambda: fn(*args, **kwargs), ttl=ttl, tags=call_tags)

            def key_for(*args: Any, **kwargs: Any) -> str:
                return build(args, kwargs)

            async def invalidate(*args: Any, **kwargs: Any) -> bool:
                return await self.delete(build(args, kwargs))

            wrapper.key_for = key_for  # type: ignore[attr-defined]
            wrapper.invalidate = invalidate  # type: ignore[attr-defined]
            return wrapper

        return decorate

    def sync(self) -> Cache:
        """A :class:`Cache` over the same core."""
        return Cache(core=self.core)

    async def aclose(self) -> None:
        """Stop the invalidation listener and close Redis connections (in this event loop)."""
        core = self.core
        if core.tiered is not None:
            await core.tiered.aclose()
        elif core.remote is not None:
            await core.remote.aclose()
            core.remote.close()

    async def __aenter__(self) -> AsyncCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
