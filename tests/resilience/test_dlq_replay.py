"""Replay makes the same decisions from sync and async code, on the SQLite and the Redis store.

``replay`` and ``areplay`` drive one written-once sequence of steps (``dlq/_replay.py``); these tests run
each scenario through both faces and both stores and expect the same items handled, in the same order,
with the same report and counters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from buttress.clock import VirtualClock
from buttress.resilience import CircuitBreaker, CircuitOpenError, DeadLetterQueue, Pipeline, RateLimitedError
from buttress.resilience.dlq import CORRELATION_ID, DeadLetter, RedisStore, ReplayReport, SQLiteStore, Store
from buttress.telemetry import EventStream, Registry

WALL = 1_767_225_600.0

Handler = Callable[[dict[str, int]], None]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(auto_advance=True, wall_start=WALL)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: VirtualClock) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SQLiteStore(tmp_path / "dlq.db", clock=clock)
    else:
        s = RedisStore(request.getfixturevalue("redis_server").url, clock=clock)
    yield s
    s.close()


@pytest.fixture(params=["sync", "async"])
def face(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def replay(queue: DeadLetterQueue, face: str, handler: Handler, **kwargs: Any) -> ReplayReport:
    """``queue.replay(handler)``, or ``areplay`` of a coroutine doing what ``handler`` does."""
    if face == "sync":
        return queue.replay(handler, **kwargs)

    async def ahandler(payload: dict[str, int]) -> None:
        await asyncio.sleep(0)  # a real suspension, as an async handler has
        handler(payload)

    return asyncio.run(queue.areplay(ahandler, **kwargs))


def items(registry: Registry, queue: DeadLetterQueue, kind: str) -> float:
    labels = {"store": queue.store.url, "policy": queue.policy, "kind": kind}
    return registry.value("buttress_dlq_items", labels)


def make_queue(store: Store, clock: VirtualClock, registry: Registry) -> DeadLetterQueue:
    return DeadLetterQueue(store, policy="email", clock=clock, registry=registry)


def test_failures_move_back_and_an_open_circuit_hands_the_rest_back(store, clock, registry, face) -> None:
    queue = make_queue(store, clock, registry)
    for n in range(5):
        queue.put({"n": n})
    breaker = CircuitBreaker("email", registry=Registry(), events=EventStream())
    seen: list[int] = []

    def handler(payload: dict[str, int]) -> None:
        seen.append(payload["n"])
        if payload["n"] == 1:
            raise ValueError("still bad")
        if payload["n"] == 2:
            breaker.force_open()  # the provider's breaker opens while the replay runs

    progress: list[tuple[int, int, int]] = []
    report = replay(
        queue,
        face,
        handler,
        pipeline=Pipeline(breaker),
        batch=2,
        on_progress=lambda done, total, item: progress.append((done, total, item.payload["n"])),
    )
    assert seen == [0, 1, 2]  # item 3 was refused by the open breaker, item 4 never claimed
    assert report.stopped is not None
    assert "email" in report.stopped
    assert (report.replayed, report.failed, report.remaining) == (2, 1, 3)
    assert progress == [(1, 5, 0), (2, 5, 1), (3, 5, 2)]  # the refused item is not progress
    assert (items(registry, queue, "replayed"), items(registry, queue, "replay_failed")) == (2, 1)
    left = queue.list()
    assert [(x.payload["n"], x.replays) for x in left] == [(3, 0), (4, 0), (1, 1)]  # the failure went last
    assert left[-1].error_type == "ValueError"

    breaker.reset()
    seen.clear()
    report = replay(queue, face, handler, pipeline=Pipeline(breaker))
    assert seen == [3, 4, 1]  # the handed-back item was claimable at once, not after its lease
    assert (report.replayed, report.failed, report.remaining, report.stopped) == (2, 1, 1, None)


def test_a_stopping_error_from_the_handler_itself(store, clock, registry, face) -> None:
    queue = make_queue(store, clock, registry)
    for n in range(3):
        queue.put({"n": n})

    def limited(payload: dict[str, int]) -> None:
        if payload["n"] == 0:
            raise CircuitOpenError("smtp", "open", 5.0)  # a breaker inside the handler
        raise AssertionError("not reached")

    report = replay(queue, face, limited)
    assert report.stopped is not None
    assert "smtp" in report.stopped
    assert (report.replayed, report.failed, report.remaining) == (0, 0, 3)
    assert [x.replays for x in queue.list()] == [0, 0, 0]

    def rate_limited(payload: dict[str, int]) -> None:
        raise RateLimitedError("smtp", retry_after=1.0)

    assert replay(queue, face, rate_limited).stopped is not None
    assert queue.depth() == 3


def test_limit_spans_batches_and_age_filters(store, clock, registry, face) -> None:
    queue = make_queue(store, clock, registry)
    for n in range(5):
        queue.put({"n": n})
    seen: list[int] = []
    # Nothing is an hour old (the Redis store measures age on the server's clock, the SQLite one on ours).
    report = replay(queue, face, lambda p: seen.append(p["n"]), older_than=3600)
    assert (seen, report.replayed, report.remaining) == ([], 0, 5)
    report = replay(queue, face, lambda p: seen.append(p["n"]), limit=3, batch=2)
    assert seen == [0, 1, 2]
    assert (report.replayed, report.remaining) == (3, 2)
    report = replay(queue, face, lambda p: seen.append(p["n"]), limit=10)
    assert seen == [0, 1, 2, 3, 4]
    assert (report.replayed, report.remaining) == (2, 0)


def test_items_added_during_a_replay_wait_for_the_next_one(store, clock, registry, face) -> None:
    queue = make_queue(store, clock, registry)
    queue.put({"n": 0})
    seen: list[int] = []

    def handler(payload: dict[str, int]) -> None:
        seen.append(payload["n"])
        if payload["n"] < 3:
            queue.put({"n": payload["n"] + 1})  # e.g. the handler's own failure, dead-lettered again

    report = replay(queue, face, handler)
    assert seen == [0]  # a replay ends at the queue's end as it was when it began
    assert (report.replayed, report.remaining) == (1, 1)
    replay(queue, face, handler)
    assert seen == [0, 1]


def test_call_items_are_replayed_as_calls_with_their_correlation_id(store, clock, registry, face) -> None:
    queue = make_queue(store, clock, registry)

    @queue
    def send(registration_id: int, address: str, *, urgent: bool = False) -> None:
        raise ConnectionError("smtp down")

    token = CORRELATION_ID.set("req-42")
    try:
        with pytest.raises(ConnectionError):
            send(7, "ana@example.org", urgent=True)
    finally:
        CORRELATION_ID.reset(token)
    (item,) = queue.list()
    assert item.kind == "call"
    assert item.correlation_id == "req-42"
    assert queue.get(item.id) == item
    calls: list[tuple[Any, ...]] = []

    def handler(registration_id: int, address: str, *, urgent: bool = False) -> None:
        calls.append((registration_id, address, urgent))

    if face == "sync":
        report = queue.replay(handler)
    else:

        async def ahandler(registration_id: int, address: str, *, urgent: bool = False) -> None:
            handler(registration_id, address, urgent=urgent)

        report = asyncio.run(queue.areplay(ahandler))
    assert calls == [(7, "ana@example.org", True)]
    assert report.replayed == 1


def test_claim_respects_the_limit_across_policies_and_unknown_policies(store) -> None:
    for n in range(2):
        for policy in ("email", "sms"):
            store.put(DeadLetter(id=f"{policy}{n}", policy=policy, payload=n, created=WALL + n))
    assert store.claim("c", policy="never-stored") == []
    first = store.claim("c", limit=3)
    assert len(first) == 3
    assert len(store.claim("c", limit=3)) == 1  # the others are leased to this consumer
    for item in first:
        assert store.ack(item, "c")
    assert store.count() == 1


def test_purge_through_the_queue_counts(store, clock, registry) -> None:
    queue = make_queue(store, clock, registry)
    kept = queue.put({"n": 0})
    gone = [queue.put({"n": n}).id for n in (1, 2)]
    assert queue.purge(ids=gone) == 2
    assert items(registry, queue, "purged") == 2
    assert [x.id for x in queue.list()] == [kept.id]
    assert queue.get(gone[0]) is None


def test_replaying_a_policy_that_never_had_an_item(store, clock, registry, face) -> None:
    queue = make_queue(store, clock, registry)
    report = replay(queue, face, lambda p: None)  # e.g. a periodic replay before the first failure
    assert report == ReplayReport(0, 0, 0, None)
