"""Bad input to the building blocks gets an error that names it; the rarer shapes they accept work.

Serialisers, key templates, TTL strategies, schema fingerprints, warming, single-flight, configuration
and the namespace registry.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, ClassVar

import pytest

from buttress import config
from buttress.cache import (
    AdaptiveTTL,
    AsyncSingleFlight,
    Cache,
    JitteredTTL,
    KeyTemplate,
    RedisBus,
    fingerprint,
)
from buttress.cache import registry as cache_registry
from buttress.cache.patterns.aside import xfetch_due
from buttress.cache.serialize import BytesSerializer, Envelope, SerializationError, serializer_for
from buttress.cache.ttl import make_strategy
from buttress.cache.versioning import describe
from buttress.cache.warming import AsyncWarmer, Progress, Warmer, awarm, warm
from buttress.errors import CacheError, ConfigError
from buttress.telemetry import Registry

# -- serialisers and envelopes --------------------------------------------------------------------------


def test_bytes_serializer_stores_bytes_only() -> None:
    s = serializer_for("bytes")
    assert isinstance(s, BytesSerializer)
    assert s.loads(s.dumps(b"\x00raw")) == b"\x00raw"
    with pytest.raises(SerializationError, match="stores bytes only, got a value of type str"):
        s.dumps("text")


def test_unknown_serializers_are_named() -> None:
    with pytest.raises(CacheError, match="unknown serializer 'yaml'; use one of pickle, json, bytes"):
        serializer_for("yaml")
    with pytest.raises(CacheError, match="one-byte 'ident'"):
        serializer_for(object())  # type: ignore[arg-type]


def test_envelope_repr_shows_what_a_reader_checks() -> None:
    env = Envelope("v", 10.0, 0.5, (("t", 2),))
    assert repr(env) == "Envelope('v', fresh_until=10.0, delta=0.5, tags=(('t', 2),))"


# -- key templates ---------------------------------------------------------------------------------------


def _event(code: str, lang: str = "en", *, draft: bool = False) -> None:
    return None


def test_key_templates_must_name_parameters() -> None:
    for template in ("event:{}", "event:{0}"):
        with pytest.raises(CacheError, match="must name parameters"):
            KeyTemplate(template, _event)
    assert KeyTemplate("event:{code}:{lang}", _event).build(("py25",), {}) == "event:py25:en"
    assert KeyTemplate("literal", _event).build(("py25",), {}) == "literal"


def test_default_keys_include_keyword_arguments_in_a_stable_order() -> None:
    build = KeyTemplate(None, _event).build
    assert build(("py25",), {"lang": "de", "draft": True}) == build(("py25",), {"draft": True, "lang": "de"})
    assert build(("py25",), {"lang": "de", "draft": True}).endswith("_event:py25:draft=True:lang=de")


# -- TTL strategies ---------------------------------------------------------------------------------------


def test_strategies_reject_a_ttl_that_is_not_positive() -> None:
    with pytest.raises(ConfigError, match="ttl must be a positive number"):
        JitteredTTL(0)
    with pytest.raises(ConfigError, match="ttl must be a positive number"):
        AdaptiveTTL(-1, p_stale=0.05)
    with pytest.raises(ConfigError, match="ttl_strategy must be 'fixed', 'jittered' or 'adaptive'"):
        make_strategy("sliding", 60)


# -- schema fingerprints --------------------------------------------------------------------------------


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node]


@dataclasses.dataclass
class Dangling:
    other: NotDefinedAnywhere  # type: ignore[name-defined]  # noqa: F821


class PydanticV1Like:
    """What a pydantic v1 model exposes: ``__fields__`` of ``ModelField`` with ``outer_type_``."""

    __config__ = object()

    class _Field:
        def __init__(self, tp: Any) -> None:
            self.outer_type_ = tp

    __fields__: ClassVar[dict[str, Any]] = {"code": _Field(str), "seats": _Field(int)}


class AttrsLike:
    """What an attrs class exposes: ``__attrs_attrs__`` of attributes with ``name`` and ``type``."""

    @dataclasses.dataclass
    class _Attribute:
        name: str
        type: Any

    __attrs_attrs__ = (_Attribute("code", str), _Attribute("seats", int))


def test_fingerprints_of_recursive_and_unusual_types() -> None:
    assert describe(Node).count("Node") >= 2  # the self-reference is named, not followed forever
    assert fingerprint(Node) == fingerprint(Node)
    assert "other:" in describe(Dangling)  # unresolvable annotations fall back to their text
    assert describe(PydanticV1Like).endswith("{code:str,seats:int}")
    assert describe(AttrsLike).endswith("{code:str,seats:int}")
    assert fingerprint(PydanticV1Like) != fingerprint(AttrsLike)  # the type's name is part of it
    assert describe(list[int]) == "list[int]"
    assert describe("a string annotation") == "'a string annotation'"
    assert fingerprint(None) == ""


# -- warming -----------------------------------------------------------------------------------------------


def test_warming_needs_at_least_one_worker(registry: Registry) -> None:
    cache = Cache("w", registry=registry)
    with pytest.raises(CacheError, match="concurrency must be at least 1, got 0"):
        warm([Warmer("w", cache, dict)], concurrency=0)
    with pytest.raises(CacheError, match="concurrency must be at least 1, got 0"):
        asyncio.run(awarm([], concurrency=0))


async def test_async_warming_reports_progress(registry: Registry) -> None:
    cache = Cache("w", registry=registry).as_async()
    seen: list[Progress] = []

    async def load() -> dict[str, int]:
        return {"a": 1, "b": 2}

    report = await awarm([AsyncWarmer("events", cache, load)], on_progress=seen.append)
    assert [(p.done, p.total, p.name, p.ok, p.entries) for p in seen] == [(1, 1, "events", True, 2)]
    assert report.loaded == {"events": 2}
    assert await cache.get("b") == 2


# -- single-flight and XFetch ----------------------------------------------------------------------------


def test_xfetch_due_follows_the_formula() -> None:
    # now − Δ·β·ln(u) ≥ expiry; ln(0.5) ≈ −0.693
    assert not xfetch_due(now=100, fresh_until=110, delta=10, beta=1, u=0.5)
    assert xfetch_due(now=104, fresh_until=110, delta=10, beta=1, u=0.5)
    assert not xfetch_due(now=104, fresh_until=110, delta=10, beta=0, u=0.5)  # β = 0: never early


async def test_async_single_flight_cancelled_leader_cancels_its_waiters() -> None:
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()
    started, gate = asyncio.Event(), asyncio.Event()

    async def leader() -> str:
        started.set()
        await gate.wait()
        return "never"

    lead = asyncio.ensure_future(flight.do("k", leader))
    follow = asyncio.ensure_future(flight.do("k", leader))
    # Tasks start in order: by the time the leader's signal wakes this test, the follower has joined.
    await started.wait()
    assert flight.in_flight("k")
    lead.cancel()
    with pytest.raises(asyncio.CancelledError):
        await lead
    with pytest.raises(asyncio.CancelledError):
        await follow
    assert not flight.in_flight("k")
    assert not gate.is_set()


# -- configuration and the registry ----------------------------------------------------------------------


def test_config_rejects_bad_backends_and_event_mappings() -> None:
    with pytest.raises(ConfigError) as info:
        config.validate(
            {
                "cache": {
                    "backend": "",
                    "namespaces": {
                        "a": {"invalidate_on": "event.updated"},
                        "b": {"invalidate_on": {"event.updated": [""]}},
                    },
                }
            }
        )
    text = str(info.value)
    assert "cache.backend" in text
    assert "cache.namespaces.a.invalidate_on" in text
    assert "cache.namespaces.b.invalidate_on" in text


def test_config_accepts_every_redis_scheme_and_single_targets() -> None:
    for url in (
        "redis://h:6379/0",
        "rediss://h",
        "unix:///s.sock",
        "redis+cluster://h:7000",
        "redis+sentinel://h/m",
    ):
        cfg = config.validate({"cache": {"backend": url}})
        assert cfg.section("cache")["backend"] == url
    cfg = config.validate(
        {"cache": {"namespaces": {"e": {"invalidate_on": {"event.updated": "tag:events"}}}}}
    )
    assert cfg.section("cache")["namespaces"]["e"]["invalidate_on"] == {"event.updated": ["tag:events"]}


def test_redis_event_bus_needs_a_redis_backend(clean_registry: None) -> None:
    previous = config.use(config.validate({"cache": {"backend": "memory", "events_bus": "redis"}}))
    try:
        with pytest.raises(ConfigError, match=r'events_bus = "redis" needs cache\.backend to be a Redis URL'):
            cache_registry.event_bus()
    finally:
        config.use(previous)


@pytest.mark.redis
def test_registry_reset_closes_what_it_built(redis_server, clean_registry: None, registry: Registry) -> None:
    cfg = config.validate({"cache": {"backend": redis_server.url, "events_bus": "redis"}})
    previous = config.use(cfg)
    try:
        bus = cache_registry.event_bus()
        assert isinstance(bus, RedisBus)
        faces = cache_registry.async_cache("events", registry=registry)  # a core with no sync face
        tiered = faces.core.tiered
        assert tiered is not None
        assert tiered.listening
        cache_registry.reset()
        assert not tiered.listening
        assert cache_registry.event_bus() is not bus
    finally:
        cache_registry.reset()
        config.use(previous)
