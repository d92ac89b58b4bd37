"""The Redis backend through redis+cluster:// and redis+sentinel:// URLs, against real servers."""

from __future__ import annotations

import pytest

from buttress.cache import Cache
from buttress.telemetry import Registry


@pytest.mark.cluster
def test_cluster_url_roundtrip(redis_cluster, registry: Registry) -> None:
    cache = Cache("ev", backend=redis_cluster.url, tiered=False, registry=registry)
    try:
        cache.set_many({f"k{i}": i for i in range(20)})  # spread over every master
        assert cache.get_many([f"k{i}" for i in range(20)]) == {f"k{i}": i for i in range(20)}
        cache.set("t", 1, tags=["x"])
        cache.invalidate_tag("x")
        assert cache.get("t") is None
        assert cache.delete("k1") is True
        cache.clear()
        assert cache.get("k2") is None
    finally:
        cache.close()


@pytest.mark.sentinel
def test_sentinel_url_roundtrip(redis_sentinel, registry: Registry) -> None:
    cache = Cache("ev", backend=redis_sentinel.url, registry=registry)
    try:
        cache.set("a", {"x": 1})
        assert cache.get("a") == {"x": 1}
        assert cache.get_or_load("b", lambda: 2) == 2
        assert cache.delete("a") is True
    finally:
        cache.close()


@pytest.mark.sentinel
def test_domain_event_bus_over_a_sentinel_url_closes_every_connection(redis_sentinel) -> None:
    import threading

    from buttress.cache import RedisBus
    from buttress.cache.backends.redis import _sentinel_clients

    publisher = RedisBus(redis_sentinel.url, channel="test:events")
    subscriber = RedisBus(redis_sentinel.url, channel="test:events")
    received = threading.Event()
    try:
        subscriber.subscribe(lambda event, payload: received.set())
        while not received.is_set():  # the subscription may not be live yet: publish until it is
            publisher.publish("event.updated", {"code": "py25"})
            received.wait(0.05)
    finally:
        publisher.close()
        subscriber.close()
    for bus in (publisher, subscriber):
        sentinels = _sentinel_clients(bus._client)
        assert sentinels  # the client asked the Sentinel for the master…
        for sentinel in sentinels:  # …and that connection is closed with the bus
            assert all(c._sock is None for c in sentinel.connection_pool._available_connections)
