"""Two tiers kept coherent across processes over pub/sub, on RESP2 and RESP3; the race guard; outages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from buttress.cache import AsyncCache, Cache
from buttress.telemetry import Registry

pytestmark = pytest.mark.redis
CHILD = str(Path(__file__).with_name("_child.py"))


def _line(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"child exited early: {proc.stderr.read() if proc.stderr else ''}"
    return json.loads(line)  # type: ignore[no-any-return]


def test_write_in_one_process_evicts_l1_in_another(redis_server, registry: Registry, protocol: int) -> None:
    writer = Cache("ev", backend=redis_server.url, registry=registry, redis_options={"protocol": protocol})
    try:
        writer.set("k", "v1")
        with subprocess.Popen(
            [sys.executable, CHILD, "reader", redis_server.url, str(protocol)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as child:
            try:
                assert _line(child) == {"step": "ready", "value": "v1"}
                writer.set("k", "v2")
                done = _line(child)
            finally:
                child.kill()
        assert done["invisible"] is True
        assert done["now"] == "v2"
        assert isinstance(done["delay"], float)
        assert done["delay"] >= 0
    finally:
        writer.close()


def test_two_caches_one_process_delete_and_tag_propagate(
    redis_server, registry: Registry, protocol: int
) -> None:
    opts = {"backend": redis_server.url, "redis_options": {"protocol": protocol}}
    a = Cache("ev", registry=registry, **opts)  # type: ignore[arg-type]
    b = Cache("ev", registry=Registry(), **opts)  # type: ignore[arg-type]
    try:
        a.set("x", 1, tags=["speakers"])
        a.set("y", 2)
        assert b.get("x") == 1
        assert b.get("y") == 2
        tiered_b = b.core.tiered
        store_b = b.core.store
        assert tiered_b is not None
        assert store_b is not None
        a.delete("y")
        assert tiered_b.wait_for(lambda: store_b.peek("y") is None, timeout=10)
        assert b.get("y") is None
        applied = tiered_b.invalidations_applied
        a.invalidate_tag("speakers")
        assert tiered_b.wait_for(lambda: tiered_b.invalidations_applied > applied, timeout=10)
        assert b.get("x") is None  # L1 copy still there, but its tag stamp is old
        a.clear()
        assert tiered_b.wait_for(lambda: len(store_b) == 0, timeout=10)
        # Tag stamps outlive the clear (they only grow): a value tagged after it is served by both
        # processes, and a later invalidation still reaches B's L1 copy.
        assert a.core.remote is not None
        assert a.core.remote.tag_stamps(["speakers"]) == [1]
        a.set("x", 3, tags=["speakers"])
        assert b.get("x") == 3
        assert a.get("x") == 3
        applied = tiered_b.invalidations_applied
        a.invalidate_tag("speakers")
        assert tiered_b.wait_for(lambda: tiered_b.invalidations_applied > applied, timeout=10)
        assert b.get("x") is None
    finally:
        a.close()
        b.close()


def test_read_invalidate_race_guard(redis_server, registry: Registry) -> None:
    cache = Cache("ev", backend=redis_server.url, registry=registry)
    tiered = cache.core.tiered
    store = cache.core.store
    assert tiered is not None
    assert store is not None
    try:
        cache.set("k", "old")
        store.clear()
        # Simulate an invalidation that arrives while the L2 read is in flight: the value read must
        # not be copied into L1.
        real_get = tiered.l2.get

        def racing_get(key: str) -> object:
            value = real_get(key)
            tiered._on_message(b"someone-else|0|k|k")
            return value

        tiered.l2.get = racing_get  # type: ignore[method-assign]
        assert cache.get("k") == "old"  # returned to this caller…
        assert store.peek("k") is None  # …but not kept
        tiered.l2.get = real_get  # type: ignore[method-assign]
        assert cache.get("k") == "old"
        assert store.peek("k") is not None  # no race this time: copied
    finally:
        cache.close()


def test_l1_flushed_on_reconnect_and_serves_during_outage(redis_server, registry: Registry) -> None:
    cache = Cache("ev", backend=redis_server.url, down_for=0.0, registry=registry)
    tiered = cache.core.tiered
    store = cache.core.store
    assert tiered is not None
    assert store is not None
    try:
        cache.set("k", "v")
        redis_server.stop()
        assert cache.get("k") == "v"  # L1 keeps serving while Redis is down
        assert cache.get_or_load("n", lambda: "loaded") == "loaded"
        redis_server.restart()
        assert tiered.wait_for(lambda: tiered.listening and len(store) == 0, timeout=20)
        assert cache.get("k") is None  # Redis restarted empty; L1 was flushed, nothing stale
        cache.set("k", "again")
        assert cache.get("k") == "again"
    finally:
        cache.close()


async def test_async_tiered_roundtrip(redis_server, registry: Registry, protocol: int) -> None:
    cache = AsyncCache(
        "ev", backend=redis_server.url, registry=registry, redis_options={"protocol": protocol}
    )
    other = Cache("ev", backend=redis_server.url, registry=Registry(), redis_options={"protocol": protocol})
    try:
        await cache.set("a", 1)
        assert await cache.get("a") == 1
        assert other.get("a") == 1
        await cache.set_many({"b": 2, "c": 3}, tags=["t"])
        assert await cache.get_many(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}
        await cache.invalidate_tag("t")
        assert await cache.get("b") is None
        assert await cache.delete("a") is True
        assert await cache.get("a") is None
        await cache.clear()
    finally:
        await cache.aclose()
        other.close()


def _applied(cache: Cache | AsyncCache, count: int) -> None:
    """Wait until ``cache`` has applied ``count`` invalidation messages from other caches."""
    tiered = cache.core.tiered
    assert tiered is not None
    assert tiered.wait_for(lambda: tiered.invalidations_applied >= count, timeout=10)


def test_l2_reads_fill_l1_and_batches_read_l1_first(redis_server, registry: Registry) -> None:
    writer = Cache("ev", backend=redis_server.url, registry=registry)
    reader = Cache("ev", backend=redis_server.url, registry=Registry())
    store = reader.core.store
    assert store is not None
    try:
        writer.set_many({"a": 1, "b": 2, "c": 3})
        _applied(reader, 3)  # a late message would drop what the reads below copy into L1
        assert reader.get_or_load("c", lambda: "not called") == 3  # from L2, through get_or_load
        assert reader.get_many(["a", "b", "zz"]) == {"a": 1, "b": 2}
        assert store.peek("a") is not None  # promoted
        assert store.peek("c") is not None
        hits = store.stats.hits
        assert reader.get_many(["a", "b"]) == {"a": 1, "b": 2}  # all from L1, no round trip
        assert store.stats.hits == hits + 2
    finally:
        writer.close()
        reader.close()


def test_entry_whose_tag_was_invalidated_elsewhere_is_not_promoted(redis_server, registry: Registry) -> None:
    writer = Cache("ev", backend=redis_server.url, registry=registry)
    # A Redis-only namespace bumps the stamp in Redis without a message on the channel: the reader can
    # only learn of it by checking the stamps of what it reads from L2.
    bumper = Cache("ev", backend=redis_server.url, tiered=False, registry=Registry())
    reader = Cache("ev", backend=redis_server.url, registry=Registry())
    store = reader.core.store
    assert store is not None
    try:
        writer.set("x", 1, tags=["speakers"])
        writer.set("y", 2, tags=["other"])
        bumper.invalidate_tag("speakers")
        _applied(reader, 2)
        assert reader.get("x") is None
        assert reader.get_many(["x", "y"]) == {"y": 2}
        assert store.peek("x") is None
        assert store.peek("y") is not None
    finally:
        writer.close()
        bumper.close()
        reader.close()


async def test_async_l2_reads_and_tags_checked_in_redis(redis_server, registry: Registry) -> None:
    writer = Cache("ev", backend=redis_server.url, registry=registry)
    bumper = Cache("ev", backend=redis_server.url, tiered=False, registry=Registry())
    reader = AsyncCache("ev", backend=redis_server.url, registry=Registry())
    store = reader.core.store
    assert store is not None
    try:
        writer.set_many({"a": 1, "b": 2})
        writer.set("x", 1, tags=["speakers"])
        bumper.invalidate_tag("speakers")
        _applied(reader, 3)
        assert await reader.get_or_load("a", lambda: "not called") == 1
        assert await reader.get("x") is None
        assert await reader.get_many(["b", "x", "zz"]) == {"b": 2}
        assert await reader.get_many(["a", "b"]) == {"a": 1, "b": 2}  # both in L1 now
        assert store.peek("x") is None
    finally:
        writer.close()
        bumper.close()
        await reader.aclose()


def test_garbled_and_unknown_channel_messages_are_ignored(redis_server, registry: Registry) -> None:
    writer = Cache("ev", backend=redis_server.url, registry=registry)
    reader = Cache("ev", backend=redis_server.url, registry=Registry())
    tiered, store = reader.core.tiered, reader.core.store
    assert tiered is not None
    assert store is not None
    raw = redis_server.client()
    try:
        writer.set("k", "v")
        _applied(reader, 1)
        assert reader.get("k") == "v"
        applied = tiered.invalidations_applied
        for message in (b"\xff\xfe", b"no separators", b"other|1.0|z|from a newer version"):
            raw.publish(tiered.channel, message)
        writer.set("j", 1)  # published after them on the same channel: applied after them
        assert tiered.wait_for(lambda: tiered.invalidations_applied >= applied + 2, timeout=10)
        assert tiered.invalidations_applied == applied + 2  # the unknown kind, then the write
        assert reader.get("k") == "v"  # nothing dropped by the messages it could not use
        assert tiered.listening
    finally:
        writer.close()
        reader.close()
        raw.close()


def test_a_hung_server_is_noticed_and_l1_flushed_when_it_answers_again(
    redis_server, registry: Registry
) -> None:
    # A paused server keeps the subscriber's connection open and silent; without a heartbeat the
    # listener would never notice (and, behind Sentinel, would stay on a replaced master for good).
    cache = Cache("ev", backend=redis_server.url, registry=registry)
    tiered = cache.core.tiered
    store = cache.core.store
    assert tiered is not None
    assert tiered._listener is not None
    assert store is not None
    tiered._listener.heartbeat = 0.2
    try:
        cache.set("k", "v")
        assert store.peek("k") is not None
        redis_server.pause()
        try:
            assert tiered.wait_for(lambda: not tiered.listening, timeout=30), "hang not noticed"
            assert cache.get("k") == "v"  # L1 keeps serving while Redis is unreachable
        finally:
            redis_server.resume()
        assert tiered.wait_for(lambda: tiered.listening, timeout=30), "not resubscribed"
        assert store.peek("k") is None  # messages may have been missed: L1 was flushed
        assert cache.get("k") == "v"  # and refilled from Redis
    finally:
        cache.close()
