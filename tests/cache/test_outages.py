"""Every Redis operation during an outage, sync and async: absorbed, answered as documented, counted.

The server is really stopped (or, for one command, a fault is injected into the redis-py client); the
``down_for`` window runs on a virtual clock.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.exceptions

from buttress.cache import AsyncCache, Cache
from buttress.cache.backends.memory import MISS
from buttress.clock import VirtualClock
from buttress.telemetry import Registry
from buttress.testing import Faults

pytestmark = pytest.mark.redis


def _errors(registry: Registry, ns: str = "ev") -> float:
    return registry.value("buttress_cache_errors", {"namespace": ns, "kind": "backend"})


def _redis_only(url: str, registry: Registry, **options: Any) -> Cache:
    options.setdefault("down_for", 0.0)
    return Cache("ev", backend=url, tiered=False, socket_timeout=0.5, registry=registry, **options)


def test_every_sync_operation_absorbs_an_outage(redis_server, registry: Registry) -> None:
    cache = _redis_only(redis_server.url, registry)
    backend = cache.core.remote
    try:
        cache.set("k", 1)
        redis_server.stop()
        assert backend.get("k") is MISS
        assert backend.get_many(["a", "b"]) == [MISS, MISS]
        assert backend.get_many([]) == []
        backend.set("k", 2, 10)
        backend.set_many([("a", 1, 10), ("b", 2, 10)])
        backend.set_many([])
        assert backend.delete("k") is False
        backend.clear()
        token = backend.acquire_lease("k", 1.0)
        assert isinstance(token, str)  # granted locally: an outage must not stop loads
        backend.release_lease("k", token)
        assert backend.tag_stamps(["t"]) is None
        assert backend.bump_tag("t") is None
        assert backend.publish("ch", "m") is False
        # Every command above except the two empty batches reached for the server and failed.
        assert _errors(registry) == 11
    finally:
        cache.close()
        cache.close()  # closing again, with the server gone, does not raise either


async def test_every_async_operation_absorbs_an_outage(redis_server, registry: Registry) -> None:
    cache = AsyncCache("ev", backend=redis_server.url, tiered=False, down_for=0.0, registry=registry)
    backend = cache.core.remote
    try:
        await cache.set("k", 1)
        redis_server.stop()
        assert await backend.aget("k") is MISS
        assert await backend.aget_many(["a", "b"]) == [MISS, MISS]
        assert await backend.aget_many([]) == []
        await backend.aset("k", 2, 10)
        await backend.aset_many([("a", 1, 10)])
        await backend.aset_many([])
        assert await backend.adelete("k") is False
        await backend.aclear()
        token = await backend.aacquire_lease("k", 1.0)
        assert isinstance(token, str)
        await backend.arelease_lease("k", token)
        assert await backend.atag_stamps(["t"]) is None
        assert await backend.abump_tag("t") is None
        assert await backend.apublish("ch", "m") is False
        assert _errors(registry) == 11
    finally:
        await cache.aclose()


def test_down_for_skips_the_server_for_reads_writes_and_leases(redis_server, registry: Registry) -> None:
    clock = VirtualClock()
    cache = _redis_only(redis_server.url, registry, down_for=5.0, clock=clock)
    backend = cache.core.remote
    try:
        redis_server.stop()
        assert backend.available
        assert backend.get("k") is MISS
        assert not backend.available
        errors = _errors(registry)
        redis_server.restart()
        # Skipped without a connection attempt (the server is back, but nobody asks it yet).
        assert backend.get_many(["a"]) == [MISS]
        backend.set("k", 1, 10)
        backend.set_many([("k", 1, 10)])
        assert backend.delete("k") is False
        assert isinstance(backend.acquire_lease("k", 1.0), str)
        assert backend.tag_stamps(["t"]) is None
        assert _errors(registry) == errors
        clock.advance(5)
        assert backend.available
        backend.set("k", 2, 10)
        assert backend.get("k") == 2
    finally:
        cache.close()


async def test_async_down_for_skips_the_server(redis_server, registry: Registry) -> None:
    clock = VirtualClock()
    cache = AsyncCache(
        "ev", backend=redis_server.url, tiered=False, down_for=5.0, clock=clock, registry=registry
    )
    backend = cache.core.remote
    try:
        redis_server.stop()
        assert await backend.aget("k") is MISS
        errors = _errors(registry)
        redis_server.restart()
        assert await backend.aget("k") is MISS
        assert await backend.aget_many(["a"]) == [MISS]
        await backend.aset("k", 1, 10)
        await backend.aset_many([("k", 1, 10)])
        assert await backend.adelete("k") is False
        assert isinstance(await backend.aacquire_lease("k", 1.0), str)
        assert await backend.atag_stamps(["t"]) is None
        assert _errors(registry) == errors
        clock.advance(5)
        await backend.aset("k", 2, 10)
        assert await backend.aget("k") == 2
    finally:
        await cache.aclose()


def test_tagged_writes_during_an_outage_use_local_stamps(redis_server, registry: Registry) -> None:
    cache = _redis_only(redis_server.url, registry)
    try:
        redis_server.stop()
        cache.set("k", 1, tags=["t"])  # the stamps come from the local mirror; the write is dropped
        cache.invalidate_tag("t")
        assert cache.get("k") is None
        redis_server.restart()
        cache.set("k", 2, tags=["t"])
        assert cache.get("k") == 2
    finally:
        cache.close()


async def test_async_tagged_writes_during_an_outage_use_local_stamps(
    redis_server, registry: Registry
) -> None:
    cache = AsyncCache("ev", backend=redis_server.url, tiered=False, down_for=0.0, registry=registry)
    try:
        redis_server.stop()
        await cache.set("k", 1, tags=["t"])
        await cache.set_many({"a": 1}, tags=["t"])
        await cache.invalidate_tag("t")  # Redis unreachable: bumped in the local mirror
        assert await cache.get("k") is None
        redis_server.restart()
        await cache.set("k", 2, tags=["t"])
        assert await cache.get("k") == 2
    finally:
        await cache.aclose()


def _fail_tag_reads(backend: Any, name: str) -> Faults:
    """Fail the next MGET the backend sends (tag stamps are read with MGET), once."""
    faults = Faults().fail(1, redis.exceptions.ConnectionError("injected"))
    inner = getattr(backend, name)
    failing = faults.wrap(inner)
    if name == "_aexecute":

        async def aexecute(*args: Any) -> Any:
            return await (failing if args[0] == "MGET" else inner)(*args)

        setattr(backend, name, aexecute)
    else:
        setattr(backend, name, lambda *args: (failing if args[0] == "MGET" else inner)(*args))
    return faults


def test_tags_that_cannot_be_checked_make_a_miss(redis_server, registry: Registry) -> None:
    cache = _redis_only(redis_server.url, registry)
    try:
        cache.set("k", "v", tags=["t"])
        faults = _fail_tag_reads(cache.core.remote, "_execute")
        assert cache.get("k") is None  # the value came back, its tags could not be confirmed
        assert faults.calls == 1
        assert cache.get("k") == "v"
    finally:
        cache.close()


async def test_async_tags_that_cannot_be_checked_make_a_miss(redis_server, registry: Registry) -> None:
    cache = AsyncCache("ev", backend=redis_server.url, tiered=False, down_for=0.0, registry=registry)
    try:
        await cache.set("k", "v", tags=["t"])
        faults = _fail_tag_reads(cache.core.remote, "_aexecute")
        assert await cache.get("k") is None
        assert faults.calls == 1
        assert await cache.get("k") == "v"
    finally:
        await cache.aclose()
