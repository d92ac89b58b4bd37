"""TTL strategies, versioning, keys, frames, warming, config schema, the registry and event invalidation."""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from typing import Any, NamedTuple, NotRequired, TypedDict

import attrs
import msgspec
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress import config
from buttress.cache import (
    AdaptiveTTL,
    AsyncCache,
    Cache,
    CacheKeyError,
    EventInvalidator,
    FixedTTL,
    JitteredTTL,
    LocalBus,
    RedisBus,
    fingerprint,
)
from buttress.cache import registry as cache_registry
from buttress.cache.keys import MAX_KEY_BYTES, safe_key
from buttress.cache.serialize import CorruptEntry, Envelope, JsonSerializer, PickleSerializer, decode, encode
from buttress.cache.warming import AsyncWarmer, Warmer, WarmingError, awarm, warm
from buttress.clock import VirtualClock
from buttress.errors import ConfigError
from buttress.telemetry import Registry

# -- TTL strategies ------------------------------------------------------------------------------------------


def test_fixed_and_jittered_ttl() -> None:
    assert FixedTTL(60).ttl_for("k") == 60
    jit = JitteredTTL(100, 0.2, rng=random.Random(1))
    values = [jit.ttl_for("k") for _ in range(2000)]
    assert 80 <= min(values) < 82
    assert 118 < max(values) <= 120
    with pytest.raises(ConfigError):
        JitteredTTL(100, 1.5)
    with pytest.raises(ConfigError):
        FixedTTL(0)


def test_adaptive_ttl_follows_update_rate_on_virtual_clock(virtual_clock: VirtualClock) -> None:
    ttl = AdaptiveTTL(900, p_stale=0.1, ttl_min=1, ttl_max=3600, alpha=0.5, clock=virtual_clock)
    assert ttl.ttl_for("k") == 900  # nothing observed yet
    for _ in range(20):  # every key changes every 100 s: λ = 0.01/s
        for key in ("a", "b"):
            ttl.observe(key)
        virtual_clock.advance(100)
    assert ttl.rate == pytest.approx(0.01)
    assert ttl.ttl_for("k") == pytest.approx(-math.log(0.9) / 0.01)  # ≈ 10.5 s
    for _ in range(20):  # changes slow down to one per 100 000 s: the TTL grows, clamped at ttl_max
        ttl.observe("a")
        virtual_clock.advance(100_000)
    assert ttl.ttl_for("k") == 3600


def test_adaptive_namespace_observes_writes_and_invalidations(
    virtual_clock: VirtualClock, registry: Registry
) -> None:
    cache = Cache(
        "ev",
        ttl=600,
        ttl_strategy="adaptive",
        p_stale=0.05,
        ttl_min=1,
        ttl_max=6000,
        clock=virtual_clock,
        registry=registry,
    )
    for i in range(10):
        cache.set("e", i)
        virtual_clock.advance(30)
        cache.delete("e")
        virtual_clock.advance(30)
    strategy = cache.core.strategy
    assert isinstance(strategy, AdaptiveTTL)
    assert strategy.rate == pytest.approx(1 / 30)
    cache.set("e", "x")
    store = cache.core.store
    assert store is not None
    entry = store.get_entry("e")
    assert entry is not None
    assert entry.expires_at is not None
    assert entry.expires_at - virtual_clock.monotonic() == pytest.approx(-math.log(0.95) * 30)
    assert cache.stats()["adaptive_rate"] == pytest.approx(1 / 30)


def test_adaptive_ttl_bounds_memory() -> None:
    ttl = AdaptiveTTL(60, track=10, clock=VirtualClock())
    for i in range(100):
        ttl.observe(i)
    assert len(ttl._last) <= 11
    with pytest.raises(ConfigError):
        AdaptiveTTL(60, p_stale=1.0)
    with pytest.raises(ConfigError):
        AdaptiveTTL(60, ttl_min=10, ttl_max=5)


# -- versioning -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Speaker:
    name: str


@dataclasses.dataclass
class EventA:
    code: str
    speakers: list[Speaker]


@dataclasses.dataclass
class EventB:  # same fields, different nested shape
    code: str
    speakers: list[str]


class EventModel(pydantic.BaseModel):
    code: str
    year: int


class EventModel2(pydantic.BaseModel):
    code: str
    year: str


class EventDict(TypedDict):
    code: str
    venue: NotRequired[str]


class EventTuple(NamedTuple):
    code: str


class EventStruct(msgspec.Struct):
    code: str
    year: int


class EventStruct2(msgspec.Struct):
    code: str
    year: str


@attrs.define
class EventAttrs:
    code: str
    year: int


@attrs.define
class EventAttrs2:
    code: str
    year: int
    venue: str


def test_fingerprints_follow_shape() -> None:
    assert fingerprint(None) == ""
    assert fingerprint(EventA) == fingerprint(EventA)
    assert fingerprint(EventA) != fingerprint(EventB)
    assert fingerprint(EventModel) != fingerprint(EventModel2)
    assert fingerprint(EventStruct) != fingerprint(EventStruct2)
    assert fingerprint(EventAttrs) != fingerprint(EventAttrs2)
    kinds = (EventA, EventModel, EventDict, EventTuple, EventStruct, EventAttrs, int)
    prints = {fingerprint(t) for t in kinds}
    assert len(prints) == len(kinds)
    assert all(len(p) == 10 for p in prints)


# -- keys and frames ------------------------------------------------------------------------------


@given(st.text(max_size=400))
def test_safe_key_always_redis_friendly_and_stable(key: str) -> None:
    out = safe_key("buttress:ev:1:-:", key)
    assert out.startswith("buttress:ev:1:-:")
    assert out.isascii()
    assert out.isprintable()
    assert " " not in out
    assert len(out) <= MAX_KEY_BYTES + 100
    assert out == safe_key("buttress:ev:1:-:", key)


def test_safe_key_distinguishes_keys_with_the_same_head() -> None:
    a = safe_key("p:", "x" * 300 + "a")
    b = safe_key("p:", "x" * 300 + "b")
    assert a != b
    with pytest.raises(CacheKeyError):
        safe_key("p:", 5)  # type: ignore[arg-type]


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_frames_roundtrip(value: Any) -> None:
    for serializer in (PickleSerializer(), JsonSerializer()):
        assert decode(serializer, encode(serializer, value)) == value
        env = decode(serializer, encode(serializer, Envelope(value, 12.5, 0.25, (("t", 3),))))
        assert isinstance(env, Envelope)
        assert (env.value, env.fresh_until, env.delta, env.tags) == (value, 12.5, 0.25, (("t", 3),))


def test_corrupt_frames_raise_corrupt_entry() -> None:
    for data in (b"", b"xx", b"\xb7\x02\x00p", b"\xb7\x01\x00j{", b"\xb7\x01\x01p\x00"):
        with pytest.raises(CorruptEntry):
            decode(JsonSerializer() if data[3:4] == b"j" else PickleSerializer(), data)


# -- warming ---------------------------------------------------------------------------------------------


def test_warming_concurrency_progress_and_failures(registry: Registry) -> None:
    events = Cache("events", registry=registry)
    speakers = Cache("speakers", registry=registry)
    running = 0
    peak = 0
    lock = threading.Lock()
    barrier = threading.Barrier(2, timeout=10)

    def loader(n: int) -> Any:
        def load() -> dict[str, int]:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            barrier.wait()  # two warmers must run at once to pass this
            with lock:
                running -= 1
            return {f"k{i}": i for i in range(n)}

        return load

    def broken() -> dict[str, int]:
        raise ConnectionError("db down")

    progress: list[str] = []
    report = warm(
        [
            Warmer("events", events, loader(3)),
            Warmer("speakers", speakers, loader(2)),
            Warmer("broken", events, broken),
        ],
        concurrency=2,
        on_progress=lambda p: progress.append(str(p)),
    )
    assert peak == 2
    assert report.loaded == {"events": 3, "speakers": 2}
    assert report.entries == 5
    assert list(report.failed) == ["broken"]
    assert not report.ok
    assert len(progress) == 3
    assert any("broken: FAILED" in p for p in progress)
    assert events.get("k2") == 2
    assert speakers.get("k1") == 1
    with pytest.raises(WarmingError, match="broken") as info:
        warm([Warmer("broken", events, broken, required=True), Warmer("ok", events, lambda: [("a", 1)])])
    assert info.value.report.loaded == {"ok": 1}
    with pytest.raises(WarmingError):
        warm([Warmer("broken", events, broken)], required=["broken"])


async def test_async_warming(registry: Registry) -> None:
    cache = AsyncCache("events", registry=registry)

    async def load() -> dict[str, int]:
        return {"a": 1}

    async def broken() -> dict[str, int]:
        raise ConnectionError("down")

    report = await awarm([AsyncWarmer("a", cache, load), AsyncWarmer("b", cache, broken)], concurrency=1)
    assert report.loaded == {"a": 1}
    assert list(report.failed) == ["b"]
    assert await cache.get("a") == 1
    with pytest.raises(WarmingError):
        await awarm([AsyncWarmer("b", cache, broken, required=True)])


def test_warmed_entries_carry_tags_and_are_invalidated_with_them(registry: Registry) -> None:
    cache = Cache("events", registry=registry)
    events = {"event:py25": {"code": "py25"}, "event:ep26": {"code": "ep26"}}
    report = warm(
        [
            Warmer("by-event", cache, lambda: events, tags=lambda key, e: [f"event:{e['code']}"]),
            Warmer("list", cache, lambda: {"events": ["py25", "ep26"]}, tags=["events-list"]),
            Warmer("none", cache, dict, tags=["unused"]),
        ]
    )
    assert report.loaded == {"by-event": 2, "list": 1, "none": 0}
    cache.invalidate_tag("event:py25")
    assert cache.get("event:py25") is None  # warmed, then invalidated by its own tag
    assert cache.get("event:ep26") == {"code": "ep26"}
    cache.invalidate_tag("events-list")
    assert cache.get("events") is None


async def test_async_warmed_entries_carry_tags(registry: Registry) -> None:
    cache = AsyncCache("events", registry=registry)

    async def load() -> list[tuple[str, int]]:
        return [("a", 1), ("b", 2)]

    await awarm([AsyncWarmer("ab", cache, load, tags=lambda key, _: [f"t:{key}"])])
    await cache.invalidate_tag("t:a")
    assert await cache.get("a") is None
    assert await cache.get("b") == 2


# -- config schema and the registry ------------------------------------------------------------------------


def test_config_schema_accepts_the_design_example() -> None:
    cfg = config.loads(
        """
        [cache]
        backend = "memory"
        [cache.namespaces.events]
        ttl = "15m"
        ttl_strategy = "adaptive"
        max_entries = 10000
        invalidate_on = { "event.updated" = ["event:{code}", "tag:events-list"] }
        [cache.namespaces.search]
        ttl = "5m"
        ttl_strategy = "jittered"
        jitter = 0.2
        """
    )
    ns = cfg.section("cache")["namespaces"]
    assert ns["events"]["ttl"] == 900
    assert ns["events"]["p_stale"] == 0.05
    assert ns["search"]["jitter"] == 0.2


def test_config_schema_reports_every_problem() -> None:
    with pytest.raises(ConfigError) as info:
        config.loads(
            """
            [cache]
            backend = "memcached://x"
            [cache.namespaces.events]
            ttl = "forever"
            ttl_strategy = "adaptiv"
            ttl_min = "2h"
            ttl_max = "1h"
            invalidate_on = { "event.updated" = [] }
            unknown = 1
            """
        )
    text = str(info.value)
    for needle in (
        "cache.backend",
        "cache.namespaces.events.ttl:",
        "ttl_strategy",
        "unknown key",
        "invalidate_on",
    ):
        assert needle in text


def test_registry_builds_namespaces_from_config_and_wires_events(
    clean_registry: None, registry: Registry
) -> None:
    cfg = config.validate(
        {
            "cache": {
                "namespaces": {
                    "events": {
                        "ttl": "15m",
                        "version": "7",
                        "invalidate_on": {"event.updated": ["event:{code}", "tag:events-list"]},
                    }
                }
            }
        }
    )
    previous = config.use(cfg)
    try:
        events = cache_registry.cache("events", registry=registry)
        assert cache_registry.cache("events") is events
        assert events.core.ttl == 900
        assert events.core.version == "7"
        assert cache_registry.async_cache("events").core is events.core
        events.set("event:py25", "page")
        events.set("list", ["py25"], tags=["events-list"])
        cache_registry.publish_event("event.updated", code="py25")
        assert events.get("event:py25") is None
        assert events.get("list") is None
        other = cache_registry.cache("unconfigured", registry=registry)
        assert other.core.ttl == 300
    finally:
        config.use(previous)


def test_event_invalidator_reports_missing_payload_field(registry: Registry) -> None:
    bus = LocalBus()
    cache = Cache("ev", registry=registry)
    inv = EventInvalidator(bus, {cache: {"event.updated": ["event:{code}"]}})
    with pytest.raises(CacheKeyError, match="no field 'code'"):
        bus.publish("event.updated", {"slug": "x"})
    inv.close()
    bus.publish("event.updated", {"slug": "x"})  # unsubscribed: nothing happens


@pytest.mark.redis
def test_redis_bus_carries_domain_events_between_processes(redis_server, registry: Registry) -> None:
    publisher = RedisBus(redis_server.url, channel="test:events")
    subscriber = RedisBus(redis_server.url, channel="test:events")
    cache = Cache("ev", registry=registry)
    received = threading.Event()
    try:
        inv = EventInvalidator(subscriber, {cache: {"event.updated": ["event:{code}"]}})
        subscriber.subscribe(lambda event, payload: received.set())
        cache.set("event:py25", "page")
        publisher.publish("event.updated", {"code": "py25"})
        assert received.wait(10)
        assert cache.get("event:py25") is None
        inv.close()
    finally:
        publisher.close()
        subscriber.close()
