"""Read/write-through, write-behind (journal, coalescing, retries, dead letters, kill -9), XFetch, leases."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from buttress.cache import AsyncCache, Cache, SerializationError
from buttress.cache.patterns.behind import RedisStreamJournal, SQLiteJournal, WriteBehind
from buttress.cache.patterns.through import AsyncReadThrough, AsyncWriteThrough, ReadThrough, WriteThrough
from buttress.clock import VirtualClock
from buttress.errors import StoreError
from buttress.telemetry import Registry
from buttress.testing import Faults

CHILD = str(Path(__file__).with_name("_child.py"))


# -- read-through / write-through -------------------------------------------------------------------------


def test_read_through(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    calls: list[Any] = []

    def load(key: str) -> str:
        calls.append(key)
        return key.upper()

    def load_many(keys: list[str]) -> dict[str, str]:
        calls.append(tuple(keys))
        return {k: k.upper() for k in keys}

    rt = ReadThrough(cache, load, many=load_many)
    assert rt.get("a") == "A"
    assert rt.get("a") == "A"
    assert rt.get_many(["a", "b", "c"]) == {"a": "A", "b": "B", "c": "C"}
    assert calls == ["a", ("b", "c")]
    assert ReadThrough(cache, load).get_many(["d"]) == {"d": "D"}


async def test_async_read_and_write_through(registry: Registry) -> None:
    cache = AsyncCache("ev", registry=registry)
    source: dict[str, int] = {"a": 1}

    async def load(key: str) -> int:
        return source[key]

    async def write(key: str, value: int) -> None:
        source[key] = value

    rt = AsyncReadThrough(cache, load)
    assert await rt.get("a") == 1
    wt = AsyncWriteThrough(cache, write)
    await wt.write("a", 2)
    assert source["a"] == 2
    assert await rt.get("a") == 2
    assert await rt.get_many(["a"]) == {"a": 2}


def test_write_through_source_first_and_failures(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    source: dict[str, Any] = {}
    fail = {"on": False}

    def write(key: str, value: Any) -> None:
        if fail["on"]:
            raise ConnectionError("db down")
        source[key] = value

    wt = WriteThrough(cache, write)
    wt.write("k", 1)
    assert source["k"] == 1
    assert cache.get("k") == 1
    fail["on"] = True
    with pytest.raises(ConnectionError):
        wt.write("k", 2)
    assert source["k"] == 1
    assert cache.get("k") == 1


def test_write_through_unserialisable_deletes_key(redis_server, registry: Registry) -> None:
    cache = Cache("ev", backend=redis_server.url, registry=registry)
    source: dict[str, Any] = {}
    try:
        wt = WriteThrough(cache, lambda k, v: source.__setitem__(k, v))
        wt.write("k", "old")
        with pytest.raises(SerializationError):
            wt.write("k", threading.Lock())
        assert "k" in source
        assert cache.get("k") is None  # no stale copy left behind
        redis_server.stop()
        cache.core.remote.down_for = 0.0
        wt.write("k2", "v")  # source ok, Redis down: acknowledged, counted as a stale risk
        assert wt.stale_risk == 1
    finally:
        cache.close()


def test_read_through_batches_only_what_is_missing(registry: Registry) -> None:
    cache = Cache("ev", registry=registry)
    source = {"a": 1, "b": 2}
    batches: list[list[str]] = []

    def load_many(keys: list[str]) -> dict[str, int]:
        batches.append(keys)
        return {k: source[k] for k in keys if k in source}

    rt = ReadThrough(cache, source.__getitem__, many=load_many)
    assert rt.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert rt.get_many(["a", "b"]) == {"a": 1, "b": 2}  # all cached: no batch
    assert rt.get_many(["nope"]) == {}  # the source has none of them: nothing to store
    assert batches == [["a", "b"], ["nope"]]
    assert cache.get("nope") is None


async def test_async_read_through_batches(registry: Registry) -> None:
    cache = AsyncCache("ev", registry=registry)
    source = {"a": 1, "b": 2, "c": 3}
    batches: list[list[str]] = []

    async def load(key: str) -> int:
        return source[key]

    async def load_many(keys: list[str]) -> dict[str, int]:
        batches.append(keys)
        return {k: source[k] for k in keys if k in source}

    rt = AsyncReadThrough(cache, load, many=load_many)
    assert await rt.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert await rt.get_many(["a", "b", "zz"]) == {"a": 1, "b": 2}
    assert batches == [["a", "b"], ["zz"]]
    assert await AsyncReadThrough(cache, load).get_many(["b", "c"]) == {"b": 2, "c": 3}
    assert await cache.get("c") == 3


async def test_async_write_through_unserialisable_and_outage(redis_server, registry: Registry) -> None:
    cache = AsyncCache("ev", backend=redis_server.url, tiered=False, down_for=0.0, registry=registry)
    source: dict[str, Any] = {}

    async def write(key: str, value: Any) -> None:
        source[key] = value

    try:
        wt = AsyncWriteThrough(cache, write)
        await wt.write("k", "old")
        with pytest.raises(SerializationError):
            await wt.write("k", threading.Lock())
        assert "k" in source
        assert await cache.get("k") is None
        assert wt.stale_risk == 0
        redis_server.stop()
        await wt.write("k2", "v")  # the source has it; the cache write was dropped
        assert source["k2"] == "v"
        assert wt.stale_risk == 1
    finally:
        await cache.aclose()


# -- write-behind -------------------------------------------------------------------------------------------


class Source:
    """A real SQLite 'source of truth' with an idempotent batch upsert."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, value TEXT, writes INTEGER)")
        self.batches: list[int] = []

    def write(self, batch: Mapping[str, Any]) -> None:
        self.batches.append(len(batch))
        with sqlite3.connect(self.path) as conn:
            conn.executemany(
                "INSERT INTO rows (key, value, writes) VALUES (?, ?, 1) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, writes = writes + 1",
                [(k, json.dumps(v)) for k, v in batch.items()],
            )

    def rows(self) -> dict[str, Any]:
        with sqlite3.connect(self.path) as conn:
            return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM rows")}


def test_write_behind_coalesces_and_batches(tmp_path: Path, registry: Registry) -> None:
    cache = Cache("wb", registry=registry)
    source = Source(tmp_path / "source.db")
    wb = WriteBehind(
        cache,
        source.write,
        journal=SQLiteJournal(tmp_path / "j.db"),
        batch_size=3,
        start=False,
        registry=registry,
    )
    for i in range(5):
        wb.write("a", i)  # five writes of one key…
    wb.write("b", "x")
    assert cache.get("a") == 4  # reads see the write at once
    assert wb.journal.count() == 6
    assert wb.flush() == 3
    assert source.rows() == {"a": 4, "b": "x"}
    assert wb.journal.count() == 0
    assert registry.value("buttress_cache_writebehind_pending", {"namespace": "wb"}) == 0
    wb.close()


def test_write_behind_flusher_thread_and_close(tmp_path: Path, registry: Registry) -> None:
    cache = Cache("wb", registry=registry)
    source = Source(tmp_path / "source.db")
    done = threading.Event()

    def writer(batch: Mapping[str, Any]) -> None:
        source.write(batch)
        done.set()

    wb = WriteBehind(
        cache,
        writer,
        journal=SQLiteJournal(tmp_path / "j.db"),
        batch_size=2,
        interval=3600,
        registry=registry,
    )
    wb.write("a", 1)
    wb.write("b", 2)  # reaches batch_size: the flusher wakes
    assert done.wait(10)
    wb.write("c", 3)  # below batch_size, interval far away: flushed by close()
    wb.close()
    assert source.rows() == {"a": 1, "b": 2, "c": 3}


def test_write_behind_rejects_settings_that_cannot_work(tmp_path: Path, registry: Registry) -> None:
    with pytest.raises(StoreError, match="synchronous must be FULL, EXTRA or NORMAL"):
        SQLiteJournal(tmp_path / "j.db", synchronous="OFF")
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_bytes(b"these are not the pages of a SQLite database" * 100)
    with pytest.raises(StoreError, match="unreadable"):
        SQLiteJournal(not_sqlite)
    cache = Cache("wb", registry=registry)
    journal = SQLiteJournal(tmp_path / "j.db")
    with pytest.raises(StoreError, match="batch_size must be at least 1"):
        WriteBehind(cache, dict, journal=journal, batch_size=0, start=False, registry=registry)
    with pytest.raises(StoreError, match="interval must be a positive number"):
        WriteBehind(cache, dict, journal=journal, interval=0, start=False, registry=registry)
    journal.close()


def test_sqlite_journal_acknowledges_exactly_what_it_is_given(tmp_path: Path) -> None:
    journal = SQLiteJournal(tmp_path / "j.db", synchronous="normal")
    journal.append("a", b"1")
    journal.append("b", b"2")
    journal.ack([])  # nothing to forget
    rows = journal.pending(10)
    assert [(key, data) for _, key, data in rows] == [("a", b"1"), ("b", b"2")]
    journal.ack([rows[0][0]])
    assert journal.count() == 1
    assert [key for _, key, _ in journal.pending(10)] == ["b"]
    journal.close()


def test_flusher_survives_a_journal_error(tmp_path: Path, registry: Registry) -> None:
    journal = SQLiteJournal(tmp_path / "j.db")
    failing_pending = Faults().fail(1, StoreError("journal unreadable for a moment")).wrap(journal.pending)
    tried = threading.Event()

    def pending(limit: int) -> list[Any]:
        try:
            return failing_pending(limit)
        finally:
            tried.set()

    journal.pending = pending  # type: ignore[method-assign]
    written: dict[str, Any] = {}
    flushed = threading.Event()

    def writer(batch: Mapping[str, Any]) -> None:
        written.update(batch)
        if "b" in batch:
            flushed.set()

    cache = Cache("wb", registry=registry)
    with WriteBehind(cache, writer, journal=journal, batch_size=1, interval=3600, registry=registry) as wb:
        wb.write("a", 1)  # wakes the flusher, whose read of the journal fails
        assert tried.wait(10)
        wb.write("b", 2)  # the flusher is still alive: it wakes again and writes both
        assert flushed.wait(10)
    assert written == {"a": 1, "b": 2}
    assert isinstance(wb.last_error, StoreError)
    assert registry.value("buttress_cache_writebehind_pending", {"namespace": "wb"}) == 0


async def test_write_behind_awrite_updates_either_face(tmp_path: Path, registry: Registry) -> None:
    source = Source(tmp_path / "source.db")
    sync_cache = Cache("wb", registry=registry)
    wb = WriteBehind(
        sync_cache, source.write, journal=SQLiteJournal(tmp_path / "j.db"), batch_size=1, registry=registry
    )
    await wb.awrite("a", 1)  # a sync cache behind async code: updated directly
    assert sync_cache.get("a") == 1
    await wb.aclose()
    async_cache = AsyncCache("wb2", registry=registry)
    wb2 = WriteBehind(
        async_cache, source.write, journal=SQLiteJournal(tmp_path / "j2.db"), start=False, registry=registry
    )
    wb2.write("b", 2)  # journaled; an AsyncCache cannot be updated from sync code, so it is not
    assert await async_cache.get("b") is None
    await wb2.aclose()
    assert source.rows() == {"a": 1, "b": 2}


def test_write_behind_failures_retry_then_dead_letter(tmp_path: Path, registry: Registry) -> None:
    cache = Cache("wb", registry=registry)
    source = Source(tmp_path / "source.db")
    failures_left = {"n": 1}

    def flaky(batch: Mapping[str, Any]) -> None:
        if failures_left["n"] > 0:
            failures_left["n"] -= 1
            raise ConnectionError("source down")
        source.write(batch)

    def retry_twice(fn: Callable[[Mapping[str, Any]], None]) -> Callable[[Mapping[str, Any]], None]:
        def wrapped(batch: Mapping[str, Any]) -> None:
            try:
                fn(batch)
            except ConnectionError:
                fn(batch)

        return wrapped

    # No dead-letter sink: a refused batch stays in the journal and is written by a later flush.
    wb = WriteBehind(cache, flaky, journal=SQLiteJournal(tmp_path / "j1.db"), start=False, registry=registry)
    wb.write("a", 1)
    assert wb.flush() == 0
    assert wb.journal.count() == 1
    assert isinstance(wb.last_error, ConnectionError)
    assert wb.flush() == 1
    assert source.rows() == {"a": 1}
    wb.close()

    # With retry: the policy absorbs a transient failure.
    failures_left["n"] = 1
    wb2 = WriteBehind(cache, flaky, journal=SQLiteJournal(tmp_path / "j2.db"), retry=retry_twice, start=False)
    wb2.write("b", 2)
    assert wb2.flush() == 1
    wb2.close()

    # Still failing after retries, with a sink: dead-lettered, never dropped.
    letters: list[tuple[str, Any, BaseException]] = []

    class Sink:
        def put(self, key: str, value: Any, error: BaseException) -> None:
            letters.append((key, value, error))

    def refuse(batch: Mapping[str, Any]) -> None:
        raise ValueError("constraint violated")

    wb3 = WriteBehind(
        cache,
        refuse,
        journal=SQLiteJournal(tmp_path / "j3.db"),
        dead_letter=Sink(),
        start=False,
        registry=registry,
    )
    wb3.write("c", 3)
    assert wb3.flush() == 0
    assert [(k, v) for k, v, _ in letters] == [("c", 3)]
    assert wb3.journal.count() == 0
    assert registry.value("buttress_cache_writebehind_dead_lettered", {"namespace": "wb"}) == 1
    wb3.close()


async def test_write_behind_async_face(tmp_path: Path, registry: Registry) -> None:
    cache = AsyncCache("wb", registry=registry)
    source = Source(tmp_path / "source.db")

    async def writer(batch: Mapping[str, Any]) -> None:
        source.write(batch)

    wb = WriteBehind(cache, writer, journal=SQLiteJournal(tmp_path / "j.db"), start=False, registry=registry)
    await wb.awrite("a", {"x": 1})
    assert await cache.get("a") == {"x": 1}
    await wb.aclose()
    assert source.rows() == {"a": {"x": 1}}


def test_write_behind_redis_stream_journal(redis_server, tmp_path: Path, registry: Registry) -> None:
    cache = Cache("wb", registry=registry)
    source = Source(tmp_path / "source.db")
    journal = RedisStreamJournal(redis_server.url, stream="wb:test")
    wb = WriteBehind(cache, source.write, journal=journal, start=False, registry=registry)
    wb.write("a", 1)
    wb.write("a", 2)
    wb.write("b", 3)
    assert journal.count() == 3
    wb.close()
    assert source.rows() == {"a": 2, "b": 3}
    assert redis_server.client().xlen("wb:test") == 0


@pytest.mark.slow
def test_write_behind_survives_kill_9(tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.db"
    n = 200
    with subprocess.Popen(
        [sys.executable, CHILD, "behind", str(journal_path), str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    ) as child:
        assert child.stdout is not None
        acked = set()
        for line in child.stdout:
            message = json.loads(line)
            if message["step"] == "ack":
                acked.add(message["i"])
            if message["step"] == "acked":
                break
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert acked == set(range(n))
    source = Source(tmp_path / "source.db")
    wb = WriteBehind(
        Cache("wb", registry=Registry()), source.write, journal=SQLiteJournal(journal_path), start=False
    )
    wb.close()  # restart: close() flushes everything the killed process acknowledged
    assert source.rows() == {f"row:{i}": {"i": i} for i in range(n)}
    with sqlite3.connect(source.path) as conn:
        assert conn.execute("SELECT MAX(writes) FROM rows").fetchone()[0] == 1  # exactly once


# -- XFetch and serve-stale on the virtual clock ------------------------------------------------------


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.value


def test_xfetch_recomputes_early_on_the_virtual_clock(
    virtual_clock: VirtualClock, registry: Registry
) -> None:
    rng = FixedRandom(0.5)  # -ln(0.5) ≈ 0.693
    cache = Cache("ev", ttl=100, early_recompute=1.0, clock=virtual_clock, rng=rng, registry=registry)  # type: ignore[arg-type]
    loads: list[float] = []

    def loader() -> float:
        virtual_clock.advance(10)  # the load takes 10 s: Δ = 10
        loads.append(virtual_clock.monotonic())
        return virtual_clock.monotonic()

    first = cache.get_or_load("k", loader)  # stored at t=10, fresh until t=110
    assert loads == [10]
    virtual_clock.advance(90)  # t=100: 100 + 10·1·0.693 = 106.9 < 110 → no recompute yet
    assert cache.get_or_load("k", loader) == first
    assert len(loads) == 1
    virtual_clock.advance(4)  # t=104: 104 + 6.93 = 110.9 ≥ 110 → recompute early, before expiry
    value = cache.get_or_load("k", loader)
    assert len(loads) == 2
    assert value == 114
    assert cache.get("k") == 114


async def test_async_xfetch_and_failed_refresh_keeps_value(
    virtual_clock: VirtualClock, registry: Registry
) -> None:
    rng = FixedRandom(1e-9)  # -ln(U) huge: always recompute
    cache = AsyncCache("ev", ttl=100, early_recompute=1.0, clock=virtual_clock, rng=rng, registry=registry)  # type: ignore[arg-type]

    async def slow() -> str:
        virtual_clock.advance(1)
        return "v1"

    async def broken() -> str:
        raise ConnectionError("source down")

    assert await cache.get_or_load("k", slow) == "v1"
    virtual_clock.advance(85)  # t=86: 86 + 1·1·20.7 ≥ 101, so the next hit refreshes early
    assert await cache.get_or_load("k", broken) == "v1"  # failed early refresh: current value kept
    assert registry.value("buttress_cache_loads", {"namespace": "ev", "result": "error"}) == 1


def test_serve_stale_when_loader_fails(virtual_clock: VirtualClock, registry: Registry) -> None:
    cache = Cache("ev", ttl=10, serve_stale=60, clock=virtual_clock, registry=registry)
    assert cache.get_or_load("k", lambda: "v1") == "v1"
    virtual_clock.advance(11)
    assert cache.get("k") is None  # expired for plain reads

    def broken() -> str:
        raise ConnectionError("db down")

    assert cache.get_or_load("k", broken) == "v1"  # …but served stale when reloading fails
    assert registry.value("buttress_cache_stale_served", {"namespace": "ev"}) == 1
    assert cache.get_or_load("k", lambda: "v2") == "v2"
    virtual_clock.advance(80)
    with pytest.raises(ConnectionError):
        cache.get_or_load("k", broken)  # beyond the grace period: nothing to serve


# -- distributed lease ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_lease_four_processes_load_once(redis_server, tmp_path: Path) -> None:
    db = tmp_path / "loads.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE loads (pid INTEGER)")
    children = [
        subprocess.Popen(
            [sys.executable, CHILD, "lease", redis_server.url, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert json.loads(child.stdout.readline())["step"] == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            assert child.stdout is not None
            assert json.loads(child.stdout.readline()) == {"step": "done", "value": "value"}
    finally:
        for child in children:
            child.kill()
            child.communicate()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM loads").fetchone()[0] == 1


async def test_async_lease_waits_for_the_holder(redis_server, registry: Registry) -> None:
    a = AsyncCache("ls", backend=redis_server.url, tiered=False, lease=5.0, registry=registry)
    b = AsyncCache("ls", backend=redis_server.url, tiered=False, lease=5.0, registry=Registry())
    try:
        remote = a.core.remote
        token = await remote.aacquire_lease("k", 5.0)  # "another process" holds the lease
        assert token is not None
        await b.set("k", "from-holder")
        assert await a.get_or_load("k", lambda: "mine") == "from-holder"
        await a.delete("k")
        loaded = []

        async def loader() -> str:
            loaded.append(1)
            return "mine"

        # The holder never writes and its lease is released: the waiter loads itself.
        await remote.arelease_lease("k", token)
        assert await a.get_or_load("k", loader) == "mine"
        assert loaded == [1]
    finally:
        await a.aclose()
        await b.aclose()
