"""The less travelled paths of the memory-backed faces: option checks, loads that race writes, early
refreshes that fail, stale values served, enveloped namespaces, context managers, ``describe``."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from buttress.cache import AsyncCache, Cache, CacheKeyError, MemoryStore
from buttress.cache.core import CacheCore, estimate_size
from buttress.cache.ttl import AdaptiveTTL, JitteredTTL
from buttress.clock import VirtualClock
from buttress.errors import CacheError, ConfigError
from buttress.telemetry import Registry


class FixedRandom:
    """A random source with one answer, so XFetch's draw is known."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.value


def _hits(registry: Registry, ns: str = "ev") -> float:
    return registry.value("buttress_cache_requests", {"namespace": ns, "result": "hit"})


def _misses(registry: Registry, ns: str = "ev") -> float:
    return registry.value("buttress_cache_requests", {"namespace": ns, "result": "miss"})


# -- construction -------------------------------------------------------------------------------------


def test_every_bad_option_is_named_in_one_error() -> None:
    with pytest.raises(ConfigError) as info:
        Cache("ev", ttl=-1, serve_stale=-1, early_recompute=-0.5, lease=-2)
    message = str(info.value)
    for name in ("ttl", "serve_stale", "early_recompute", "lease"):
        assert name in message
    assert "'ev'" in message


def test_backend_of_the_wrong_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="backend must be 'memory', a Redis URL or a MemoryStore"):
        Cache("ev", backend=42)  # type: ignore[arg-type]


def test_a_given_memory_store_is_used_as_is(registry: Registry) -> None:
    store = MemoryStore(max_entries=10)
    cache = Cache("ev", backend=store, registry=registry)
    cache.set("k", 1)
    assert store.get("k") == 1
    assert cache.core.store is store
    assert cache.core.kind == "memory"
    assert cache.name == "ev"
    assert repr(cache) == "Cache('ev', backend='memory')"


def test_write_ttl_must_be_positive(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    with pytest.raises(ConfigError, match="ttl must be a positive number"):
        cache.set("k", 1, ttl=0)


def test_strategy_objects_and_describe(virtual_clock: VirtualClock, registry: Registry) -> None:
    jittered = Cache("j", ttl_strategy="jittered", jitter=0.2, clock=virtual_clock, registry=registry)
    info = jittered.stats()
    assert info["ttl_strategy"] == "JitteredTTL"
    assert info["jitter"] == 0.2
    adaptive_strategy = AdaptiveTTL(60, p_stale=0.1, clock=virtual_clock)
    adaptive = Cache("a", ttl=60, ttl_strategy=adaptive_strategy, registry=registry)
    assert adaptive.core.strategy is adaptive_strategy
    info = adaptive.stats()
    assert info["ttl_strategy"] == "AdaptiveTTL"
    assert "adaptive_rate" in info
    assert isinstance(
        Cache("f", ttl_strategy=JitteredTTL(10, 0.1), registry=registry).core.strategy, JitteredTTL
    )


def test_estimate_size_of_unpicklable_values_falls_back_to_getsizeof() -> None:
    lock = threading.Lock()
    assert estimate_size(lock) >= 1
    assert estimate_size("x" * 1000) > 1000


def test_bytes_estimate_samples_entries_without_a_byte_bound(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    assert cache.stats()["bytes_estimate"] == 0.0
    for i in range(100):
        cache.set(f"k{i}", "x" * 500)
    estimate = cache.stats()["bytes_estimate"]
    assert 100 * 500 <= estimate <= 100 * 700


def test_redis_namespace_keys_must_be_str() -> None:
    # A core is built without connecting: redis-py connects on first use.
    core = CacheCore("ev", backend="redis://127.0.0.1:1/0", tiered=False, registry=Registry())
    try:
        with pytest.raises(CacheKeyError, match="keys must be str, got int"):
            core.check_key(1)
        assert core.check_key("k") == "k"
    finally:
        core.remote.close()


# -- the memory faces' lifecycle ------------------------------------------------------------------------


def test_clear_and_context_manager(registry: Registry) -> None:
    with Cache("ev", registry=registry) as cache:
        cache.set_many({"a": 1, "b": 2})
        cache.clear()
        assert cache.get_many(["a", "b"]) == {}


async def test_async_clear_and_context_manager(registry: Registry) -> None:
    async with AsyncCache("ev", registry=registry) as cache:
        await cache.set_many([("a", 1), ("b", 2)], tags=["t"])
        assert await cache.get_many(["a", "b"]) == {"a": 1, "b": 2}
        assert await cache.delete_many(["a", "zz"]) == 1
        await cache.clear()
        assert await cache.get("b") is None
        assert cache.name == "ev"


# -- enveloped namespaces: the getters that check freshness and tags -------------------------------------


def test_enveloped_get_rejects_unhashable_keys_clearly(registry: Registry) -> None:
    cache = Cache("ev", serve_stale=10, registry=registry)
    assert cache.core.enveloped
    with pytest.raises(CacheKeyError, match="hashable"):
        cache.get(["list"])
    cache.set("k", 1)
    assert cache.get("k") == 1
    assert cache.get("missing", "d") == "d"
    assert (_hits(registry), _misses(registry)) == (1, 1)


async def test_async_get_rejects_unhashable_keys_clearly(registry: Registry) -> None:
    cache = AsyncCache("ev", registry=registry)
    with pytest.raises(CacheKeyError, match="hashable"):
        await cache.get(["list"])


def test_enveloped_get_serves_bare_entries_and_expires_envelopes(
    virtual_clock: VirtualClock, registry: Registry
) -> None:
    store = MemoryStore(max_entries=10, clock=virtual_clock)
    store.put("bare", "written before the switch", 100)
    cache = Cache("ev", backend=store, ttl=10, serve_stale=30, clock=virtual_clock, registry=registry)
    cache.set("k", "v")
    assert cache.get("bare") == "written before the switch"
    virtual_clock.advance(11)  # past freshness, inside the serve-stale grace: the store still has it
    assert store.peek("k") is not None
    assert cache.get("k", "gone") == "gone"
    assert (_hits(registry), _misses(registry)) == (1, 1)


# -- get_or_load: loads that race writes, bad loaders ---------------------------------------------------


def test_a_load_overtaken_by_a_write_is_returned_but_not_stored(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)

    def loader() -> str:
        cache.set("other", 1)  # any write to the namespace while loading
        return "loaded before the write"

    assert cache.get_or_load("k", loader) == "loaded before the write"
    assert cache.get("k") is None


async def test_async_load_overtaken_by_a_delete_is_not_stored(registry: Registry) -> None:
    cache = AsyncCache("ev", registry=registry)

    async def loader() -> str:
        await cache.delete("k")
        return "loaded"

    assert await cache.get_or_load("k", loader) == "loaded"
    assert await cache.get("k") is None
    assert await cache.get_or_load("k", lambda: "plain function result") == "plain function result"
    assert await cache.get("k") == "plain function result"


def test_sync_loader_returning_an_awaitable_is_refused(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)

    async def aloader() -> str:
        return "v"

    coroutine: Awaitable[str] | None = None

    def loader() -> Awaitable[str]:
        nonlocal coroutine
        coroutine = aloader()
        return coroutine

    with pytest.raises(CacheError, match="use AsyncCache for async loaders"):
        cache.get_or_load("k", loader)
    assert coroutine is not None
    coroutine.close()  # type: ignore[attr-defined]
    assert cache.get("k") is None


# -- XFetch and serve-stale, the paths each face has ---------------------------------------------------


def _xfetch_cache(face: type[Any], clock: VirtualClock, registry: Registry, u: float) -> Any:
    return face("ev", ttl=100, early_recompute=1.0, clock=clock, rng=FixedRandom(u), registry=registry)


def test_failed_early_refresh_keeps_the_fresh_value(virtual_clock: VirtualClock, registry: Registry) -> None:
    cache = _xfetch_cache(Cache, virtual_clock, registry, 1e-9)  # -ln(U) ≈ 20.7: refresh when ≥ 80 s old
    attempts: list[int] = []

    def loader() -> str:
        virtual_clock.advance(1)  # Δ = 1 s
        return "v1"

    def broken() -> str:
        attempts.append(1)
        raise ConnectionError("source down")

    assert cache.get_or_load("k", loader) == "v1"
    assert cache.get_or_load("k", broken) == "v1"  # t=1: not due, no attempt
    assert attempts == []
    virtual_clock.advance(85)  # t=86: 86 + 20.7 ≥ 101 → due
    assert cache.get_or_load("k", broken) == "v1"
    assert attempts == [1]
    assert registry.value("buttress_cache_loads", {"namespace": "ev", "result": "error"}) == 1
    assert cache.get("k") == "v1"


async def test_async_early_refresh_due_and_not_due(virtual_clock: VirtualClock, registry: Registry) -> None:
    cache = _xfetch_cache(AsyncCache, virtual_clock, registry, 1e-9)
    attempts: list[str] = []

    async def load(value: str) -> str:
        attempts.append(value)
        virtual_clock.advance(1)
        return value

    async def broken() -> str:
        attempts.append("broken")
        raise ConnectionError("source down")

    assert await cache.get_or_load("k", lambda: load("v1")) == "v1"
    assert await cache.get_or_load("k", broken) == "v1"  # fresh and not due: the loader is not called
    assert attempts == ["v1"]
    virtual_clock.advance(85)
    assert await cache.get_or_load("k", broken) == "v1"  # due, refresh fails: the value is kept
    assert await cache.get_or_load("k", lambda: load("v2")) == "v2"  # due, refresh succeeds
    assert attempts == ["v1", "broken", "v2"]
    assert await cache.get("k") == "v2"


async def test_async_serve_stale_when_loader_fails(virtual_clock: VirtualClock, registry: Registry) -> None:
    cache = AsyncCache("ev", ttl=10, serve_stale=60, clock=virtual_clock, registry=registry)

    async def broken() -> str:
        raise ConnectionError("db down")

    assert await cache.get_or_load("k", lambda: "v1") == "v1"
    virtual_clock.advance(11)
    assert await cache.get_or_load("k", broken) == "v1"
    assert registry.value("buttress_cache_stale_served", {"namespace": "ev"}) == 1
    virtual_clock.advance(80)
    with pytest.raises(ConnectionError):
        await cache.get_or_load("k", broken)


def test_tag_invalidated_entry_is_reloaded_not_served_stale(
    virtual_clock: VirtualClock, registry: Registry
) -> None:
    cache = Cache("ev", ttl=10, serve_stale=60, clock=virtual_clock, registry=registry)
    assert cache.get_or_load("k", lambda: "v1", tags=["t"]) == "v1"
    cache.invalidate_tag("t")

    def broken() -> str:
        raise ConnectionError("db down")

    with pytest.raises(ConnectionError):  # an invalidated value is never served, even as stale
        cache.get_or_load("k", broken)
    assert cache.get_or_load("k", lambda: "v2", tags=["t"]) == "v2"


# -- decorators on the async face -----------------------------------------------------------------------


async def test_async_cached_bare_decorator_and_key_for(registry: Registry) -> None:
    cache = AsyncCache("ev", registry=registry)
    calls: list[int] = []

    @cache.cached
    async def event(code: int) -> dict[str, int]:
        calls.append(code)
        return {"code": code}

    key_for: Callable[..., str] = event.key_for
    assert await event(1) == {"code": 1}
    assert await event(1) == {"code": 1}
    assert calls == [1]
    assert await cache.get(key_for(1)) == {"code": 1}
    assert key_for(1) != key_for(2)


class CountingStore(MemoryStore):
    """A store subclass that does more on a read: the cache must call its get, not inline the dict."""

    reads = 0

    def get(self, key: str) -> object:
        CountingStore.reads += 1
        return super().get(key)


def test_a_store_subclass_keeps_its_own_get(registry: Registry) -> None:
    CountingStore.reads = 0
    cache = Cache("sub", backend=CountingStore(max_entries=10), registry=registry)
    cache.set("k", 1)
    assert cache.get("k") == 1
    assert cache.get("absent", "d") == "d"
    assert CountingStore.reads == 2
    for _ in range(1024):  # crosses the 1-in-1024 latency sample on the method path
        cache.get("k")
    assert registry.value("buttress_cache_requests", {"namespace": "sub", "result": "hit"}) == 1025


async def test_async_store_subclass_keeps_its_own_get(registry: Registry) -> None:
    CountingStore.reads = 0
    cache = AsyncCache("asub", backend=CountingStore(max_entries=10), registry=registry)
    await cache.set("k", 1)
    assert await cache.get("k") == 1
    assert await cache.get("absent", "d") == "d"
    with pytest.raises(CacheKeyError):
        await cache.get(["unhashable"])
    for _ in range(1024):
        await cache.get("k")
    assert CountingStore.reads == 1 + 1 + 1 + 1024 + 1  # + the sampled hit's timed second read


def test_inlined_hit_path_expires_and_samples(virtual_clock: VirtualClock, registry: Registry) -> None:
    cache = Cache("inl", ttl=10, clock=virtual_clock, registry=registry)
    cache.set("k", "v")
    for _ in range(1024):
        assert cache.get("k") == "v"
    virtual_clock.advance(11)
    assert cache.get("k", "gone") == "gone"  # expired: the store's own read removes it
    assert len(cache.core.store) == 0
    sketch = cache.core.metrics.get_latency.sketch
    assert sketch.count == 1  # one hit in 1024 timed


async def test_async_inlined_hit_path_expires_and_samples(
    virtual_clock: VirtualClock, registry: Registry
) -> None:
    cache = AsyncCache("ainl", ttl=10, clock=virtual_clock, registry=registry)
    await cache.set("k", "v")
    for _ in range(1024):
        assert await cache.get("k") == "v"
    virtual_clock.advance(11)
    assert await cache.get("k", "gone") == "gone"
    assert cache.core.metrics.get_latency.sketch.count == 1
