"""Redis Streams dead-letter store: consumer groups, XAUTOCLAIM, replay, corruption, and kill -9 with AOF."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from durability import Worker, replayed

import servers
from buttress.errors import StoreError
from buttress.resilience import CircuitBreaker, DeadLetterQueue, Pipeline, Retry, current_letter
from buttress.resilience.dlq import DeadLetter, RedisStore, open_store
from buttress.telemetry import EventStream, Registry
from buttress.testing import Faults

pytestmark = pytest.mark.redis


@pytest.fixture
def store(redis_server: servers.RedisServer) -> RedisStore:
    s = RedisStore(redis_server.url)
    yield s
    s.close()


def letter(n: int, policy: str = "email") -> DeadLetter:
    return DeadLetter(id=f"id{n}", policy=policy, payload={"n": n}, idempotency_key=f"k{n}", created=float(n))


def test_put_get_list_count(store: RedisStore) -> None:
    store.put(letter(1))
    store.put(letter(1))  # the same id again (a retried command) keeps one copy
    store.put(letter(2, "sms"))
    store.put(letter(3))
    assert store.count() == 3
    assert store.count("email") == 2
    assert store.policies() == ["email", "sms"]
    got = store.get("id3")
    assert got is not None
    assert got.payload == {"n": 3}
    assert store.get("missing") is None
    assert [x.id for x in store.list(policy="email")] == ["id1", "id3"]
    assert [x.id for x in store.list()] == ["id1", "id2", "id3"]  # across policies, by created
    assert store.oldest() == 1.0
    assert [x.id for x in store.list(older_than=3600)] == []  # stream ids carry the server's clock
    assert store.purge(ids=["id1"]) == 1
    assert store.purge(policy="sms") == 1
    assert [x.id for x in store.list()] == ["id3"]
    assert isinstance(open_store(store.url), RedisStore)


def test_consumer_group_leases_and_autoclaim(store: RedisStore) -> None:
    for n in range(4):
        store.put(letter(n))
    dead = store.claim("dead", policy="email", limit=2, lease=3600)
    assert [x.id for x in dead] == ["id0", "id1"]
    live = store.claim("live", policy="email", limit=10, lease=3600)
    assert [x.id for x in live] == ["id2", "id3"]  # the dead consumer's items are still leased
    assert store.claim("live", policy="email", limit=10, lease=3600) == []
    # a replayer whose lease is 0 s takes over everything idle, the dead consumer's included (XAUTOCLAIM)
    taken = store.claim("rescuer", policy="email", limit=10, lease=0)
    assert [x.id for x in taken] == ["id0", "id1", "id2", "id3"]
    assert not store.ack(dead[0], "dead")  # it lost the lease
    assert store.ack(taken[0], "rescuer")
    assert store.count() == 3


def test_release_keeps_place_or_moves_back(store: RedisStore) -> None:
    for n in range(3):
        store.put(letter(n))
    first = store.claim("c", policy="email", limit=1)[0]
    store.release(first, "c")
    again = store.claim("c", policy="email", limit=1)[0]  # released items are claimable at once
    assert again.id == "id0"
    store.release(again, "c", failed=again.with_failure("ValueError", "bad", 2, 99.0))
    items = store.list(policy="email")
    assert [x.id for x in items] == ["id1", "id2", "id0"]
    assert (items[-1].attempts, items[-1].replays, items[-1].error_type) == (3, 1, "ValueError")
    assert store.get("id0") == items[-1]
    mark = store.mark("email")
    store.put(letter(7))
    claimed = store.claim("d", policy="email", limit=10, upto=mark)
    assert [x.id for x in claimed] == ["id1", "id2", "id0"]
    assert [x.id for x in store.claim("d", policy="email", limit=10)] == ["id7"]


def test_replay_through_the_queue(redis_server: servers.RedisServer, registry: Registry) -> None:
    queue = DeadLetterQueue(redis_server.url, policy="email", registry=registry)
    for n in range(5):
        queue.put({"n": n})
    keys: list[str] = []

    def handler(payload: dict[str, int]) -> None:
        current = current_letter()
        assert current is not None
        keys.append(current.idempotency_key)
        if payload["n"] == 2:
            raise ValueError("bad")

    report = queue.replay(handler, batch=2)
    assert (report.replayed, report.failed, report.remaining) == (4, 1, 1)
    assert len(keys) == 5
    assert registry.value("buttress_dlq_depth", {"store": queue.store.url, "policy": "email"}) == 1

    breaker = CircuitBreaker("email", window=1, minimum_calls=1, registry=registry, events=EventStream())
    for n in range(3):
        queue.put({"n": 10 + n})
    down = Faults().always(ConnectionError("down"))
    report = queue.replay(
        down.wrap(lambda p: None), Pipeline(Retry("email", attempts=1, registry=registry), breaker)
    )
    assert report.stopped is not None
    assert down.calls == 1
    assert queue.depth() == 4


def test_keys_buttress_did_not_write_are_reported(redis_server: servers.RedisServer) -> None:
    client = redis_server.client(decode_responses=True)
    client.set("{buttress:dlq}:stream:email", "a string, not a stream")
    client.sadd("{buttress:dlq}:policies", "email")
    store = RedisStore(redis_server.url)
    with pytest.raises(StoreError, match="did not write"):
        store.count("email")
    assert client.get("{buttress:dlq}:stream:email") == "a string, not a stream"  # left alone
    client.delete("{buttress:dlq}:stream:email")
    client.xadd("{buttress:dlq}:stream:email", {"junk": "1"})
    with pytest.raises(StoreError, match="corrupt"):
        store.list(policy="email")
    store.close()


def test_unreachable_server(redis_server: servers.RedisServer) -> None:
    url = redis_server.url
    redis_server.kill()
    with pytest.raises(StoreError, match="failed"):
        RedisStore(url, socket_timeout=0.5, retries=1)


@pytest.mark.slow
def test_acknowledged_items_survive_kill_minus_nine_and_a_redis_crash(tmp_path: Path) -> None:
    """Writer-replayers are SIGKILLed at random points while the AOF-backed Redis is killed and restarted."""
    effects = tmp_path / "effects.log"
    rng = random.Random(7)
    acked: list[str] = []
    with servers.running(servers.RedisServer, appendonly=True, appendfsync="always") as redis:
        for round_ in range(4):
            worker = Worker(redis.url, effects, seed=round_)
            worker.run_until(rng.randint(1, 40))
            redis.kill()  # SIGKILL the server mid-stream: no shutdown, no final fsync
            redis.restart()  # same port and directory: the AOF is replayed
            worker.run_until(rng.randint(1, 40))  # the worker reconnects and goes on
            worker.kill()
            acked += worker.acked
        store = RedisStore(redis.url)
        stored = [x.id for x in store.list(policy="durable")]
        assert len(stored) == len(set(stored))
        done = set(replayed(effects))
        assert [i for i in acked if i not in set(stored) and i not in done] == []
        # drain: a replayer with a 0 s lease reclaims what the killed workers held
        drainer = DeadLetterQueue(store, policy="durable", registry=Registry())
        keys: list[str] = []
        drainer.replay(lambda payload: keys.append(current_letter().idempotency_key), lease=0)  # type: ignore[union-attr]
        assert store.count("durable") == 0
        assert set(acked) <= done | set(keys)
        store.close()
