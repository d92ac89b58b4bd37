"""SQLite dead-letter store and the DeadLetterQueue: durability, leases, replay, corruption, metrics."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
from pathlib import Path

import pytest
from durability import Worker, replayed

from buttress.clock import VirtualClock
from buttress.errors import StoreError
from buttress.resilience import (
    CircuitBreaker,
    DeadLetterQueue,
    Pipeline,
    RateLimitedError,
    Retry,
    current_letter,
)
from buttress.resilience.dlq import CORRELATION_ID, DeadLetter, SQLiteStore, open_store
from buttress.telemetry import EventStream, Registry
from buttress.testing import Faults

WALL = 1_767_225_600.0


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(auto_advance=True, wall_start=WALL)


@pytest.fixture
def store(tmp_path: Path, clock: VirtualClock) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "dlq.db", clock=clock)
    yield s
    s.close()


def letter(n: int, policy: str = "email", created: float = WALL) -> DeadLetter:
    return DeadLetter(id=f"id{n}", policy=policy, payload={"n": n}, idempotency_key=f"k{n}", created=created)


# -- the store ------------------------------------------------------------------------------------------


def test_put_is_durable_and_idempotent(store: SQLiteStore, tmp_path: Path) -> None:
    store.put(letter(1))
    store.put(letter(1))  # the same id again keeps one copy
    store.put(letter(2, "sms"))
    assert store.count() == 2
    assert store.count("email") == 1
    assert store.policies() == ["email", "sms"]
    assert store.get("id1") == letter(1)
    assert store.get("nope") is None
    # WAL with synchronous=FULL
    db = sqlite3.connect(tmp_path / "dlq.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_list_filters_and_purge(store: SQLiteStore, clock: VirtualClock) -> None:
    for n in range(5):
        store.put(letter(n, created=WALL + n * 600))
    clock.advance(3600)  # now = WALL + 1 h
    old = store.list(older_than=2400)  # created at or before WALL + 20 min
    assert [x.id for x in old] == ["id0", "id1", "id2"]
    assert [x.id for x in store.list(limit=2)] == ["id0", "id1"]
    assert store.oldest() == WALL
    assert store.purge(older_than=2400) == 3
    assert store.purge(ids=["id4", "missing"]) == 1
    assert store.purge(ids=[]) == 0
    assert [x.id for x in store.list()] == ["id3"]
    assert store.purge(policy="email") == 1
    assert store.oldest() is None


def test_leases_expire_so_dead_consumers_lose_their_items(store: SQLiteStore, clock: VirtualClock) -> None:
    for n in range(3):
        store.put(letter(n))
    held = store.claim("dead-replayer", limit=2, lease=60)
    assert [x.id for x in held] == ["id0", "id1"]
    assert [x.id for x in store.claim("other", limit=5, lease=60)] == ["id2"]  # leased items are skipped
    clock.advance(61)
    again = store.claim("other", limit=5, lease=60)
    assert [x.id for x in again] == ["id0", "id1", "id2"]  # every lease ran out, its own included
    assert not store.ack(held[0], "dead-replayer")  # its lease passed to "other"
    assert store.ack(again[0], "other")
    assert store.count() == 2


def test_release_keeps_place_or_moves_back_with_the_error(store: SQLiteStore) -> None:
    for n in range(3):
        store.put(letter(n))
    first = store.claim("c", limit=1)[0]
    store.release(first, "c")
    assert [x.id for x in store.list()] == ["id0", "id1", "id2"]
    first = store.claim("c", limit=1)[0]
    store.release(first, "c", failed=first.with_failure("ValueError", "bad", 2, WALL + 5))
    items = store.list()
    assert [x.id for x in items] == ["id1", "id2", "id0"]
    moved = items[-1]
    assert (moved.error_type, moved.error_message, moved.attempts, moved.replays, moved.last_failure) == (
        "ValueError",
        "bad",
        3,
        1,
        WALL + 5,
    )
    mark = store.mark()
    store.put(letter(9))
    assert [x.id for x in store.claim("c", limit=10, upto=mark)] == ["id1", "id2", "id0"]


def test_concurrent_claims_never_share_an_item(tmp_path: Path) -> None:
    path = tmp_path / "dlq.db"
    with SQLiteStore(path) as s:
        for n in range(200):
            s.put(letter(n))
    taken: list[list[str]] = [[] for _ in range(4)]

    def consume(i: int) -> None:
        with SQLiteStore(path) as mine:  # a connection of its own, like another process
            while batch := mine.claim(f"c{i}", limit=7, lease=600):
                taken[i] += [x.id for x in batch]

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [x for part in taken for x in part]
    assert sorted(everything) == sorted(f"id{n}" for n in range(200))


# -- corruption -----------------------------------------------------------------------------------------


def test_garbage_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "dlq.db"
    garbage = b"this is not a database at all" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="corrupt or not a SQLite file"):
        SQLiteStore(path)
    assert path.read_bytes() == garbage


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (id INTEGER)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="another program"):
        open_store(f"sqlite:{path}")
    assert path.read_bytes() == before


def test_damaged_store_is_reported_never_reset(tmp_path: Path) -> None:
    path = tmp_path / "dlq.db"
    with SQLiteStore(path) as s:
        for n in range(300):
            s.put(DeadLetter(id=f"id{n}", policy="p", payload={"blob": "y" * 500}))
    # checkpoint the WAL into the main file, then damage a page in the middle
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle : middle + page] = b"\xff" * page
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        SQLiteStore(path)
    assert path.read_bytes() == bytes(data)


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dlq.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 99"):
        SQLiteStore(path)


def test_open_store_addresses(tmp_path: Path) -> None:
    assert isinstance(open_store(f"sqlite:{tmp_path}/a.db"), SQLiteStore)
    assert isinstance(open_store(f"sqlite://{tmp_path}/b.db"), SQLiteStore)
    assert isinstance(open_store(str(tmp_path / "c.db")), SQLiteStore)
    with pytest.raises(ValueError, match="unknown dead-letter store"):
        open_store("mysql://db/dlq")
    with pytest.raises(ValueError, match="needs a path"):
        open_store("sqlite:")
    with pytest.raises(StoreError, match="Cannot create the folder"):
        SQLiteStore(tmp_path / "a.db" / "inside-a-file" / "x.db")


# -- the queue ------------------------------------------------------------------------------------------


def make_queue(store: SQLiteStore, clock: VirtualClock, registry: Registry, **kw: object) -> DeadLetterQueue:
    return DeadLetterQueue(store, policy="email", clock=clock, registry=registry, **kw)  # type: ignore[arg-type]


def test_failed_calls_are_dead_lettered_with_their_history(store, clock, registry) -> None:
    queue = make_queue(store, clock, registry)
    retry = Retry("email", attempts=3, base=1, jitter="none", clock=clock, registry=registry)
    send = Pipeline(queue, retry)(
        Faults(clock=clock).always(ConnectionError("smtp down")).wrap(lambda *a, **k: 1)
    )
    token = CORRELATION_ID.set("req-7")
    try:
        with pytest.raises(ConnectionError) as info:
            send(42, address="ana@example.org")
    finally:
        CORRELATION_ID.reset(token)
    (item,) = queue.list()
    assert info.value.dead_letter_id == item.id  # type: ignore[attr-defined]
    assert item.kind == "call"
    assert item.payload == {"args": [42], "kwargs": {"address": "ana@example.org"}}
    assert (item.error_type, item.error_message, item.attempts) == ("ConnectionError", "smtp down", 3)
    assert item.first_failure == WALL
    assert item.last_failure == WALL + 3  # after the 1 s and 2 s backoffs
    assert item.correlation_id == "req-7"
    assert item.idempotency_key == item.id
    labels = {"store": store.url, "policy": "email"}
    assert registry.value("buttress_dlq_depth", labels) == 1
    clock.advance(90)
    assert registry.value("buttress_dlq_oldest_age_seconds", labels) == 90
    assert registry.value("buttress_dlq_items", {**labels, "kind": "dead_lettered"}) == 1


def test_custom_payload_key_and_filters(store, clock, registry) -> None:
    queue = make_queue(
        store,
        clock,
        registry,
        payload=lambda registration_id, address: {"registration": registration_id},
        idempotency_key=lambda registration_id, address: f"confirm:{registration_id}",
        on=ConnectionError,
    )
    send = queue(Faults(clock=clock).fail(1, ConnectionError()).fail(1, ValueError()).wrap(lambda *a: None))
    with pytest.raises(ConnectionError):
        send(5, "a@example.org")
    with pytest.raises(ValueError):
        send(6, "b@example.org")  # not a ConnectionError: not dead-lettered
    (item,) = queue.list()
    assert (item.kind, item.payload, item.idempotency_key) == ("value", {"registration": 5}, "confirm:5")


def test_unsaveable_work_is_never_silent(store, clock, registry) -> None:
    queue = make_queue(store, clock, registry)
    send = queue(Faults().always(ConnectionError("down")).wrap(lambda obj: None))
    with pytest.raises(StoreError, match="NOT saved") as info:
        send(object())  # not JSON
    assert isinstance(info.value.__cause__, ConnectionError)
    store.close()
    with pytest.raises(StoreError, match="NOT saved"):
        send(1)  # the store is gone


def test_replay_deletes_done_items_and_moves_failures_back(store, clock, registry) -> None:
    queue = make_queue(store, clock, registry)
    for n in range(4):
        queue.put({"n": n})
    seen: list[tuple[int, str]] = []

    def handler(payload: dict[str, int]) -> None:
        current = current_letter()
        assert current is not None
        seen.append((payload["n"], current.idempotency_key))
        if payload["n"] == 1:
            raise ValueError("still bad")

    progress: list[tuple[int, int]] = []
    report = queue.replay(handler, on_progress=lambda done, total, item: progress.append((done, total)))
    assert (report.replayed, report.failed, report.remaining, report.stopped) == (3, 1, 1, None)
    assert [n for n, _ in seen] == [0, 1, 2, 3]  # the failed one was not retried within the same replay
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    (left,) = queue.list()
    assert (left.payload, left.replays, left.error_type) == ({"n": 1}, 1, "ValueError")
    assert current_letter() is None


def test_an_open_circuit_stops_the_replay_without_burning_items(store, clock, registry) -> None:
    queue = make_queue(store, clock, registry)
    breaker = CircuitBreaker(
        "email", window=2, minimum_calls=2, clock=clock, registry=registry, events=EventStream()
    )
    pipeline = Pipeline(queue, Retry("email", attempts=1, registry=registry), breaker)
    for n in range(6):
        queue.put({"n": n})
    down = Faults(clock=clock).always(ConnectionError("still down"))
    report = queue.replay(down.wrap(lambda payload: None), pipeline)
    assert report.stopped is not None
    assert "open" in report.stopped
    assert (report.replayed, report.failed, report.remaining) == (0, 2, 6)
    assert down.calls == 2
    untouched = [x for x in queue.list() if x.replays == 0]
    assert len(untouched) == 4  # never tried, never burned
    assert queue.depth() == 6  # and the pipeline's own queue did not dead-letter them again


def test_replay_limit_age_and_rate_limit_stop(store, clock, registry) -> None:
    queue = make_queue(store, clock, registry)
    for n in range(5):
        queue.put({"n": n})
        clock.advance(60)
    done: list[int] = []
    report = queue.replay(lambda p: done.append(p["n"]), older_than=150, limit=2)
    assert done == [0, 1]
    assert report.replayed == 2

    def limited(payload: dict[str, int]) -> None:
        raise RateLimitedError("api", retry_after=1.0)

    report = queue.replay(limited)
    assert report.stopped is not None
    assert queue.depth() == 3


def test_async_face(tmp_path: Path, clock, registry) -> None:
    store = SQLiteStore(tmp_path / "a.db", clock=clock)
    queue = make_queue(store, clock, registry)

    @queue
    async def send(n: int) -> None:
        raise ConnectionError("down")

    async def handler(n: int) -> None:
        await asyncio.sleep(0)
        handled.append(n)

    handled: list[int] = []

    async def main() -> None:
        for n in range(3):
            with pytest.raises(ConnectionError):
                await send(n)
        report = await queue.areplay(handler)
        assert report.replayed == 3

    asyncio.run(main())
    assert handled == [0, 1, 2]
    with pytest.raises(TypeError, match="areplay"):
        queue.replay(handler)  # type: ignore[arg-type]
    store.close()


def test_put_from_a_coroutine_and_misuse(store, clock, registry) -> None:
    queue = make_queue(store, clock, registry)

    async def main() -> DeadLetter:
        return await queue.aput({"n": 1}, attempts=4, correlation_id="req-7")

    stored = asyncio.run(main())
    assert queue.get(stored.id) == stored
    assert (stored.attempts, stored.correlation_id, stored.kind) == (4, "req-7", "value")
    with pytest.raises(ValueError, match="kind must be"):
        queue.put({"n": 2}, kind="message")
    with pytest.raises(TypeError, match="areplay"):
        asyncio.run(queue.areplay(lambda payload: None))  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="takes a Store or a store address"):
        DeadLetterQueue(42, registry=registry)  # type: ignore[arg-type]
    assert queue.depth() == 1


# -- durability -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_acknowledged_items_survive_kill_minus_nine(tmp_path: Path) -> None:
    """A writer-replayer is SIGKILLed at random points; every acknowledged item is stored or replayed."""
    path = tmp_path / "dlq.db"
    effects = tmp_path / "effects.log"
    rng = random.Random(20260101)
    acked: list[str] = []
    for round_ in range(6):
        worker = Worker(f"sqlite:{path}", effects, seed=round_)
        worker.run_until(rng.randint(1, 60))
        worker.kill()
        acked += worker.acked
    assert len(acked) > 6
    store = SQLiteStore(path)  # opens cleanly: the kills never corrupted it
    stored = [x.id for x in store.list()]
    assert len(stored) == len(set(stored))
    done = set(replayed(effects))
    missing = [i for i in acked if i not in set(stored) and i not in done]
    assert missing == []
    # drain what is left, from "an hour later" so leases of the killed workers have run out
    later = VirtualClock(wall_start=__import__("time").time() + 3600)
    drainer = DeadLetterQueue(
        SQLiteStore(path, clock=later), policy="durable", clock=later, registry=Registry()
    )
    keys: list[str] = []
    drainer.replay(lambda payload: keys.append(current_letter().idempotency_key))  # type: ignore[union-attr]
    assert store.count() == 0
    assert set(acked) <= done | set(keys)
    store.close()
