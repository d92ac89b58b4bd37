"""The Redis and two-tier backends against a real redis-server: reads, writes, bad entries, outages."""

from __future__ import annotations

import dataclasses
import threading

import msgspec
import pytest

from buttress.cache import AsyncCache, Cache, SerializationError
from buttress.cache.backends.memory import MISS
from buttress.cache.keys import MAX_KEY_BYTES
from buttress.clock import VirtualClock
from buttress.telemetry import Registry

pytestmark = pytest.mark.redis


def _errors(registry: Registry, ns: str, kind: str) -> float:
    return registry.value("buttress_cache_errors", {"namespace": ns, "kind": kind})


def test_redis_only_roundtrip(redis_server, registry: Registry, protocol: int) -> None:
    cache = Cache(
        "ev", backend=redis_server.url, tiered=False, registry=registry, redis_options={"protocol": protocol}
    )
    try:
        cache.set("a", {"x": [1, 2]})
        assert cache.get("a") == {"x": [1, 2]}
        assert cache.get("missing", 0) == 0
        cache.set_many({"b": 2, "c": 3})
        assert cache.get_many(["a", "b", "c", "d"]) == {"a": {"x": [1, 2]}, "b": 2, "c": 3}
        assert cache.delete("a") is True
        assert cache.get("a") is None
        raw = redis_server.client()
        keys = sorted(k.decode() for k in raw.keys("*"))
        assert keys == ["buttress:ev:1:-:b", "buttress:ev:1:-:c"]
        assert 0 < raw.pttl("buttress:ev:1:-:b") <= 300_000
        cache.clear()
        assert raw.keys("*") == []
    finally:
        cache.close()


async def test_async_redis_roundtrip(redis_server, registry: Registry, protocol: int) -> None:
    cache = AsyncCache(
        "ev", backend=redis_server.url, tiered=False, registry=registry, redis_options={"protocol": protocol}
    )
    try:
        await cache.set("a", 1, ttl=30)
        assert await cache.get("a") == 1
        await cache.set_many({"b": 2}, tags=["t"])
        assert await cache.get_many(["a", "b", "z"]) == {"a": 1, "b": 2}
        await cache.invalidate_tag("t")
        assert await cache.get("b") is None
        assert await cache.get_many(["b"]) == {}
        assert await cache.get_or_load("l", lambda: 5) == 5
        assert await cache.get("l") == 5
        assert await cache.delete("l") is True
        await cache.clear()
        assert await cache.get("a") is None
        remote = cache.core.remote
        assert remote is not None
        assert await remote.atag_stamps(["t"]) == [1]  # stamps only grow: a clear keeps them
    finally:
        await cache.aclose()


def test_unserialisable_value_names_the_type(redis_server, registry: Registry) -> None:
    cache = Cache("ev", backend=redis_server.url, registry=registry)
    try:
        with pytest.raises(SerializationError, match=r"_thread\.lock"):
            cache.set("a", threading.Lock())
        json_cache = Cache("js", backend=redis_server.url, serializer="json", registry=registry)
        with pytest.raises(SerializationError, match="set"):
            json_cache.set("a", {1, 2})
        json_cache.close()
    finally:
        cache.close()


def test_corrupt_and_foreign_entries_are_counted_misses(redis_server, registry: Registry) -> None:
    cache = Cache("ev", backend=redis_server.url, tiered=False, registry=registry)
    raw = redis_server.client()
    try:
        raw.set("buttress:ev:1:-:junk", b"not a frame")
        raw.set("buttress:ev:1:-:bad", b"\xb7\x01\x00p\x80\x05garbage")
        raw.rpush("buttress:ev:1:-:list", b"x")  # wrong Redis type
        json_cache = Cache(
            "ev", backend=redis_server.url, tiered=False, serializer="json", registry=Registry()
        )
        json_cache.set("j", [1])  # written by a JSON namespace, read by a pickle one: foreign
        json_cache.close()
        assert cache.get("junk") is None
        assert cache.get("bad") is None
        assert cache.get("list") is None
        assert cache.get("j") is None
        assert cache.get_many(["junk", "bad"]) == {}
        assert _errors(registry, "ev", "corrupt") == 6
        assert cache.get_or_load("junk", lambda: "reloaded") == "reloaded"
        assert cache.get("junk") == "reloaded"
    finally:
        cache.close()


def test_long_and_odd_keys_are_hashed(redis_server, registry: Registry) -> None:
    cache = Cache("ev", backend=redis_server.url, tiered=False, registry=registry)
    raw = redis_server.client()
    try:
        long_key = "k" * 1000
        odd_key = "event: with spaces\nand newline ünïcode"
        cache.set(long_key, 1)
        cache.set(odd_key, 2)
        assert cache.get(long_key) == 1
        assert cache.get(odd_key) == 2
        for key in raw.keys("*"):
            text = key.decode()
            assert len(text) <= MAX_KEY_BYTES + 100
            assert text.isascii()
            assert " " not in text
            assert "\n" not in text
            assert text.startswith("buttress:ev:1:-:")
        with pytest.raises(Exception, match="must be str"):
            cache.set(("tuple", 1), 1)
    finally:
        cache.close()


@dataclasses.dataclass
class EventV1:
    code: str


@dataclasses.dataclass
class EventV2:
    code: str
    title: str = ""


def test_other_schema_or_version_entries_are_misses(redis_server, registry: Registry) -> None:
    v1 = Cache("ev", backend=redis_server.url, tiered=False, schema=EventV1, registry=registry)
    v2 = Cache("ev", backend=redis_server.url, tiered=False, schema=EventV2, registry=Registry())
    v1b = Cache(
        "ev", backend=redis_server.url, tiered=False, schema=EventV1, version="2", registry=Registry()
    )
    try:
        v1.set("e", EventV1("py"))
        assert v1.get("e") == EventV1("py")
        assert v2.get("e") is None
        assert v1b.get("e") is None
        assert v2.get_or_load("e", lambda: EventV2("py", "PyCon")) == EventV2("py", "PyCon")
        assert v1.get("e") == EventV1("py")  # both generations coexist until TTL, no flush needed
    finally:
        for c in (v1, v2, v1b):
            c.close()


class EventStruct(msgspec.Struct):
    code: str
    year: int


class EventStruct2(msgspec.Struct):
    code: str
    year: str


def test_a_msgspec_struct_change_needs_no_flush(redis_server, registry: Registry) -> None:
    old = Cache("ev", backend=redis_server.url, tiered=False, schema=EventStruct, registry=registry)
    new = Cache("ev", backend=redis_server.url, tiered=False, schema=EventStruct2, registry=Registry())
    try:
        old.set("e", EventStruct("BAT1", 2024))
        assert old.get("e") == EventStruct("BAT1", 2024)
        assert new.get("e") is None  # the field changed type: a miss under the new shape, not an error
        new.set("e", EventStruct2("BAT1", "2024"))
        assert old.get("e") == EventStruct("BAT1", 2024)  # a rolling deploy: both shapes served
    finally:
        old.close()
        new.close()


def test_tags_against_redis_without_l1(redis_server, registry: Registry) -> None:
    a = Cache("ev", backend=redis_server.url, tiered=False, registry=registry)
    b = Cache("ev", backend=redis_server.url, tiered=False, registry=Registry())
    try:
        a.set("x", 1, tags=["speakers"])
        assert b.get("x") == 1
        b.invalidate_tag("speakers")
        assert a.get("x") is None
        assert b.get("x") is None
    finally:
        a.close()
        b.close()


def test_redis_stopped_mid_test_callers_get_loader_results(redis_server, registry: Registry) -> None:
    cache = Cache(
        "ev", backend=redis_server.url, tiered=False, down_for=0.0, socket_timeout=0.5, registry=registry
    )
    loads = []

    def loader() -> str:
        loads.append(1)
        return "fresh"

    try:
        assert cache.get_or_load("k", loader) == "fresh"
        assert cache.get_or_load("k", loader) == "fresh"
        assert len(loads) == 1
        redis_server.stop()
        for _ in range(3):
            assert cache.get_or_load("k", loader) == "fresh"
        assert cache.get("k", "default") == "default"
        cache.set("other", 1)  # dropped, not raised
        assert cache.delete("other") is False
        cache.invalidate_tag("t")
        assert len(loads) == 4
        assert _errors(registry, "ev", "backend") >= 4
        redis_server.restart()
        assert cache.get_or_load("k2", loader) == "fresh"
        assert cache.get("k2") == "fresh"  # caching resumed
    finally:
        cache.close()


def test_down_for_skips_redis_on_the_clock(redis_server, registry: Registry) -> None:
    clock = VirtualClock()
    cache = Cache("ev", backend=redis_server.url, tiered=False, down_for=5.0, clock=clock, registry=registry)
    try:
        cache.set("k", 1)
        redis_server.stop()
        assert cache.get("k") is None
        errors = _errors(registry, "ev", "backend")
        redis_server.restart()
        assert cache.get("k") is None  # still skipping: no connection attempt, no new error
        assert _errors(registry, "ev", "backend") == errors
        clock.advance(5)
        cache.set("k", 2)
        assert cache.get("k") == 2
    finally:
        cache.close()


async def test_async_redis_stopped_mid_test(redis_server, registry: Registry) -> None:
    cache = AsyncCache("ev", backend=redis_server.url, down_for=0.0, registry=registry)
    try:
        assert await cache.get_or_load("k", lambda: 1) == 1
        redis_server.stop()
        assert await cache.get("k") == 1  # the L1 copy keeps serving
        assert await cache.get_or_load("k2", lambda: 2) == 2
        assert await cache.get("nope") is None
        redis_server.restart()
        await cache.set("k3", 3)
        assert await cache.get("k3") == 3
    finally:
        await cache.aclose()


def test_lease_is_granted_locally_when_redis_is_down(redis_server, registry: Registry) -> None:
    cache = Cache("ev", backend=redis_server.url, tiered=False, lease=1.0, down_for=0.0, registry=registry)
    try:
        redis_server.stop()
        assert cache.get_or_load("k", lambda: "v") == "v"
    finally:
        cache.close()


def test_backend_returns_miss_sentinel(redis_server, registry: Registry) -> None:
    cache = Cache("ev", backend=redis_server.url, tiered=False, registry=registry)
    try:
        assert cache.core.remote.get("nothing") is MISS
    finally:
        cache.close()


def test_shared_backends_keep_both_protocols(redis_server, registry: Registry) -> None:
    from buttress.cache.backends.base import AsyncBackend, SyncBackend

    tiered = Cache("ev", backend=redis_server.url, registry=registry)
    redis_only = Cache("ro", backend=redis_server.url, tiered=False, registry=registry)
    try:
        for backend in (tiered.core.tiered, tiered.core.remote, redis_only.core.remote):
            assert isinstance(backend, SyncBackend)
            assert isinstance(backend, AsyncBackend)
        assert not isinstance(tiered.core.store, AsyncBackend)  # the L1 store is bound directly
    finally:
        tiered.close()
        redis_only.close()
