"""Cache and AsyncCache over the in-process store: the API, TTLs on the virtual clock, tags, decorators."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest

from buttress.cache import MISS, AsyncCache, Cache, CacheKeyError
from buttress.clock import VirtualClock
from buttress.errors import CacheError, ConfigError
from buttress.telemetry import Registry


def test_get_set_delete_and_default(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    assert cache.get("a") is None
    assert cache.get("a", 7) == 7
    cache.set("a", {"x": 1})
    assert cache.get("a") == {"x": 1}
    cache.set("none", None)
    assert cache.get("none", "default") is None  # None is a value like any other
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert cache.get("a") is None
    assert registry.value("buttress_cache_requests", {"namespace": "ev", "result": "hit"}) == 2
    assert registry.value("buttress_cache_requests", {"namespace": "ev", "result": "miss"}) == 3


def test_fast_path_agrees_with_store_get(virtual_clock: VirtualClock, registry: Registry) -> None:
    cache = Cache("ev", ttl=10, clock=virtual_clock, registry=registry)
    store = cache.core.store
    assert store is not None
    cache.set("k", 1)
    assert cache.get("k") == store.get("k") == 1
    virtual_clock.advance(10)
    assert cache.get("k") is None
    assert store.get("k") is MISS
    assert len(store) == 0  # the expired entry was removed by the read


def test_ttl_expiry_on_virtual_clock(virtual_clock: VirtualClock, registry: Registry) -> None:
    cache = Cache("ev", ttl=60, clock=virtual_clock, registry=registry)
    cache.set("a", 1)
    cache.set("b", 2, ttl=5)
    virtual_clock.advance(4.9)
    assert cache.get("b") == 2
    virtual_clock.advance(0.2)
    assert cache.get("b") is None
    assert cache.get("a") == 1
    virtual_clock.advance(60)
    assert cache.get("a") is None


def test_get_many_set_many_delete_many(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    cache.set_many({"a": 1, "b": 2})
    cache.set_many([("c", 3)])
    assert cache.get_many(["a", "b", "c", "zz"]) == {"a": 1, "b": 2, "c": 3}
    assert cache.delete_many(["a", "zz", "b"]) == 2
    assert cache.get_many(["a", "b", "c"]) == {"c": 3}


def test_unhashable_key_is_a_clear_error(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    with pytest.raises(CacheKeyError, match="hashable"):
        cache.set(["list"], 1)
    with pytest.raises(CacheKeyError, match="hashable"):
        cache.get(["list"])


def test_bad_options_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="ttl"):
        Cache("ev", ttl=0)
    with pytest.raises(ConfigError, match="scheme"):
        Cache("ev", backend="memcached://x")  # type: ignore[arg-type]
    with pytest.raises(CacheKeyError, match="namespace"):
        Cache("bad name", backend="redis://127.0.0.1:1/0")


def test_get_or_load_loads_once_then_hits(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    calls = []

    def loader() -> str:
        calls.append(1)
        return "page"

    assert cache.get_or_load("e:1", loader) == "page"
    assert cache.get_or_load("e:1", loader) == "page"
    assert calls == [1]
    assert registry.value("buttress_cache_loads", {"namespace": "ev", "result": "ok"}) == 1


def test_loader_error_propagates_and_is_counted(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)

    def loader() -> str:
        raise LookupError("no such event")

    with pytest.raises(LookupError):
        cache.get_or_load("e:1", loader)
    assert registry.value("buttress_cache_loads", {"namespace": "ev", "result": "error"}) == 1
    assert cache.get("e:1") is None


def test_single_flight_threads(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    release = threading.Event()
    started = threading.Event()
    calls = []

    def loader() -> int:
        calls.append(1)
        started.set()
        release.wait(10)
        return 42

    results: list[int] = []
    leader = threading.Thread(target=lambda: results.append(cache.get_or_load("k", loader)))
    leader.start()
    assert started.wait(10)
    followers = [
        threading.Thread(target=lambda: results.append(cache.get_or_load("k", loader))) for _ in range(8)
    ]
    for t in followers:
        t.start()
    # Followers are parked on the flight once it has waiters; wait for them on the flight itself.
    flight = cache._flight._flights["k"]
    deadline = 0
    while flight.waiters < 8 and deadline < 10_000_000:
        deadline += 1
    release.set()
    for t in [leader, *followers]:
        t.join(10)
    assert results == [42] * 9
    assert calls == [1]


async def test_single_flight_1000_coroutines(registry: Registry) -> None:
    cache = AsyncCache("ev", registry=registry)
    calls = 0
    gate = asyncio.Event()

    async def loader() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "v"

    tasks = [asyncio.create_task(cache.get_or_load("hot", loader)) for _ in range(1000)]
    await asyncio.sleep(0)  # let every task reach the flight
    gate.set()
    assert await asyncio.gather(*tasks) == ["v"] * 1000
    assert calls == 1
    assert registry.value("buttress_cache_stampede_suppressed", {"namespace": "ev"}) == 999


async def test_async_loader_error_reaches_every_waiter(registry: Registry) -> None:
    cache = AsyncCache("ev", registry=registry)
    gate = asyncio.Event()

    async def loader() -> str:
        await gate.wait()
        raise LookupError("gone")

    tasks = [asyncio.create_task(cache.get_or_load("k", loader)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)


async def test_async_api(registry: Registry) -> None:
    cache = AsyncCache("ev", registry=registry)
    assert await cache.get("a", 1) == 1
    await cache.set("a", 2)
    assert await cache.get("a") == 2
    await cache.set_many({"b": 3, "c": 4})
    assert await cache.get_many(["a", "b", "c", "d"]) == {"a": 2, "b": 3, "c": 4}
    assert await cache.delete("a") is True
    assert await cache.delete_many(["b", "x"]) == 1
    await cache.clear()
    assert await cache.get("c") is None
    assert await cache.get_or_load("s", lambda: "sync loader ok") == "sync loader ok"


def test_cached_decorator_with_key_template_and_tags(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    calls = []

    @cache.cached(key="event:{code}", tags=["events", "event:{code}"])
    def event_page(code: str, lang: str = "en") -> str:
        calls.append(code)
        return f"{code}/{lang}"

    assert event_page("py25") == "py25/en"
    assert event_page(code="py25") == "py25/en"
    assert calls == ["py25"]
    assert event_page.key_for("py25") == "event:py25"  # type: ignore[attr-defined]
    cache.invalidate_tag("events")
    assert event_page("py25") == "py25/en"
    assert calls == ["py25", "py25"]
    assert event_page.invalidate("py25") is True  # type: ignore[attr-defined]
    assert cache.get("event:py25") is None


def test_cached_default_key_and_bare_decorator(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    calls = []

    @cache.cached
    def add(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b

    assert add(1, 2) == 3
    assert add(1, 2) == 3
    assert add(2, 1) == 3
    assert calls == [(1, 2), (2, 1)]
    assert add.key_for(1, 2).endswith("add:1:2")  # type: ignore[attr-defined]


def test_cached_template_naming_unknown_parameter_fails_at_decoration(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    with pytest.raises(CacheKeyError, match="no parameter 'slug'"):

        @cache.cached(key="event:{slug}")
        def page(code: str) -> str:
            return code


def test_cached_rejects_wrong_kind_of_function(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    acache = AsyncCache("ev2", registry=registry)

    async def coro() -> int:
        return 1

    def plain() -> int:
        return 1

    with pytest.raises(CacheError, match="async"):
        cache.cached()(coro)
    with pytest.raises(CacheError, match="not async"):
        acache.cached()(plain)


async def test_async_cached_decorator(registry: Registry) -> None:
    cache = AsyncCache("ev", registry=registry)
    calls = []

    @cache.cached(key="speaker:{sid}", tags=["speakers"])
    async def speaker(sid: int) -> dict[str, int]:
        calls.append(sid)
        return {"id": sid}

    assert await speaker(5) == {"id": 5}
    assert await speaker(5) == {"id": 5}
    await cache.invalidate_tag("speakers")
    assert await speaker(5) == {"id": 5}
    assert calls == [5, 5]
    assert await speaker.invalidate(5) is True  # type: ignore[attr-defined]


def test_tags_invalidate_in_o1_and_switch_to_envelopes(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    cache.set("plain", 1)
    assert not cache.core.enveloped
    cache.set("a", 1, tags=["t1"])
    cache.set("b", 2, tags=["t1", "t2"])
    cache.set("c", 3, tags=["t2"])
    assert cache.core.enveloped
    assert cache.get("plain") == 1  # bare entries written before the switch still read
    cache.invalidate_tag("t1")
    assert cache.get("a") is None
    assert cache.get("b") is None
    assert cache.get("c") == 3
    assert cache.get_many(["a", "b", "c", "plain"]) == {"c": 3, "plain": 1}
    cache.set("a", 10, tags=["t1"])  # written after the invalidation: current stamp
    assert cache.get("a") == 10


def test_sync_and_async_faces_share_one_core(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    acache = cache.as_async()
    assert acache.core is cache.core
    cache.set("k", "v")
    assert asyncio.run(acache.get("k")) == "v"
    assert acache.sync().get("k") == "v"


def test_max_bytes_bounds_estimated_size(registry: Registry) -> None:
    cache = Cache("ev", max_entries=None, max_bytes=20_000, registry=registry)
    for i in range(100):
        cache.set(f"k{i}", "x" * 1000)
    store = cache.core.store
    assert store is not None
    assert store.weight <= 20_000
    assert len(store) < 100
    assert registry.value("buttress_cache_evictions", {"namespace": "ev"}) > 0
    assert registry.value("buttress_cache_bytes", {"namespace": "ev"}) == store.weight


def test_stats_and_gauges(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    cache.set("a", "x" * 100)
    cache.get("a")
    cache.get("b")
    stats = cache.stats()
    assert stats["hits"] == 1
    assert stats["misses"] == 1
    assert stats["entries"] == 1
    assert registry.value("buttress_cache_hit_ratio", {"namespace": "ev"}) == 0.5
    assert registry.value("buttress_cache_entries", {"namespace": "ev"}) == 1
    assert registry.value("buttress_cache_bytes", {"namespace": "ev"}) > 100
    assert "Cache('ev'" in repr(cache)


def test_get_latency_is_sampled(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    cache.set("a", 1)
    for _ in range(2048):
        cache.get("a")
    latency = registry.get("buttress_cache_get_duration_seconds", {"namespace": "ev"})
    assert latency is not None
    assert latency.sketch.count == 2  # type: ignore[union-attr]


@dataclasses.dataclass
class Event:
    code: str


def test_schema_and_version_change_the_prefix(registry: Registry) -> None:
    a = Cache("ev", schema=Event, version="3", registry=registry)
    assert a.core.prefix.startswith("buttress:ev:3:")
    assert a.core.fingerprint
    assert a.core.fingerprint in a.core.prefix


async def test_async_get_latency_is_sampled(registry: Registry) -> None:
    cache = AsyncCache("ev", registry=registry)
    await cache.set("a", 1)
    for _ in range(1024):
        assert await cache.get("a") == 1
    latency = registry.get("buttress_cache_get_duration_seconds", {"namespace": "ev"})
    assert latency is not None
    assert latency.sketch.count == 1  # type: ignore[union-attr]
