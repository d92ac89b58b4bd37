"""Write-behind: acknowledge a write once it is durable in a journal, write the source later in batches.

::

    behind = WriteBehind(cache, save_rows, journal=SQLiteJournal(".buttress/wb-registrations.db"),
                         batch_size=500, interval=1.0, retry=Retry(attempts=5), dead_letter=dlq)
    behind.write("registration:42", row)     # durable (fsync) and cached when this returns
    ...
    behind.close()                            # flushes what is left

* **Durable acknowledgement.** :meth:`WriteBehind.write` returns after the journal has the write on
  disk: SQLite in WAL mode with ``synchronous=FULL`` (the default journal), or a Redis stream
  (:class:`RedisStreamJournal`, as durable as that Redis's AOF settings). Then the cache is updated, so
  reads see the new value at once.
* **Coalescing.** Several writes of one key before a flush reach the source once, with the last value.
* **Batches.** The flusher thread writes when ``batch_size`` writes are pending or every ``interval``
  seconds, calling ``writer({key: value, …})`` once per batch.
* **Failures.** ``writer`` is called through ``retry`` (any decorator — a
  :class:`buttress.resilience.Retry` or a whole pipeline). When it still fails, the batch goes to
  ``dead_letter`` if one is given (and leaves the journal), else it stays in the journal and is tried
  again at the next flush. Nothing acknowledged is dropped.
* **Crash.** After a crash (kill -9) the next :class:`WriteBehind` on the same journal finds the pending
  writes and flushes them. A crash between the source write and the journal's acknowledgement
  replays that batch: ``writer`` must be idempotent (an upsert), which is what makes the result exactly
  the acknowledged writes.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import pickle
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from buttress.cache.api import AsyncCache, Cache
from buttress.errors import StoreError
from buttress.telemetry import REGISTRY, Registry

__all__ = ["DeadLetterSink", "Journal", "RedisStreamJournal", "SQLiteJournal", "WriteBehind"]

Row = tuple[Any, str, bytes]  # (sequence id, key, pickled value)
Writer = Callable[[Mapping[str, Any]], Any]


class Journal(Protocol):
    """Where acknowledged writes wait for the source; every method is thread-safe."""

    def append(self, key: str, data: bytes) -> None:
        """Store one write durably before returning."""
        ...

    def pending(self, limit: int) -> list[Row]:
        """The oldest ``limit`` writes not yet acknowledged, oldest first."""
        ...

    def ack(self, ids: Sequence[Any]) -> None:
        """Forget the writes ``ids`` (the source has them)."""
        ...

    def count(self) -> int:
        """How many writes are pending."""
        ...

    def close(self) -> None:
        """Release the journal's resources."""
        ...


class DeadLetterSink(Protocol):
    """Where a batch goes when the source keeps refusing it (e.g. buttress.resilience's dead-letter queue)."""

    def put(self, key: str, value: Any, error: BaseException) -> None:
        """Keep ``key``/``value`` with the ``error`` that made the source refuse it."""
        ...


class SQLiteJournal:
    """A SQLite journal in WAL mode; ``synchronous="FULL"`` fsyncs each acknowledged write.

    Args:
        path: the database file (its folder is created).
        synchronous: SQLite's ``synchronous`` pragma; ``"FULL"`` survives power loss, ``"NORMAL"`` only
            process crashes (faster).
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise StoreError(f"synchronous must be FULL, EXTRA or NORMAL for a journal, got {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS journal"
                " (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value BLOB NOT NULL)"
            )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"write-behind journal {self.path} is unreadable: {exc}") from exc

    def append(self, key: str, data: bytes) -> None:
        """``INSERT`` in its own transaction (committed, and fsynced under FULL, before returning)."""
        with self._lock:
            self._conn.execute("INSERT INTO journal (key, value) VALUES (?, ?)", (key, data))

    def pending(self, limit: int) -> list[Row]:
        """The oldest ``limit`` rows."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, key, value FROM journal ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [(seq, key, bytes(value)) for seq, key, value in rows]

    def ack(self, ids: Sequence[Any]) -> None:
        """Delete the rows ``ids`` in one transaction."""
        if not ids:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("DELETE FROM journal WHERE seq = ?", [(i,) for i in ids])
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def count(self) -> int:
        """Rows pending."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


class RedisStreamJournal:
    """A journal in a Redis stream (``XADD``/``XRANGE``/``XDEL``): shared by processes, durable as the AOF.

    Args:
        url: the Redis URL (or pass ``client``).
        stream: the stream's key.
        client: an existing sync redis-py client.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str = "buttress:write-behind",
        client: Any = None,
    ):
        from buttress.cache.backends.redis import connect

        self.stream = stream
        self._client = client if client is not None else connect(url, socket_timeout=5.0)[0]

    def append(self, key: str, data: bytes) -> None:
        """``XADD`` (acknowledged by Redis; fsynced if the server runs ``appendfsync always``)."""
        self._client.xadd(self.stream, {"k": key.encode(), "v": data})

    def pending(self, limit: int) -> list[Row]:
        """``XRANGE - + COUNT limit``."""
        entries = self._client.xrange(self.stream, "-", "+", count=limit)
        return [(eid, fields[b"k"].decode(), bytes(fields[b"v"])) for eid, fields in entries]

    def ack(self, ids: Sequence[Any]) -> None:
        """``XDEL`` the entries."""
        if ids:
            self._client.xdel(self.stream, *ids)

    def count(self) -> int:
        """``XLEN``."""
        return int(self._client.xlen(self.stream))

    def close(self) -> None:
        """Close the client."""
        self._client.close()


class WriteBehind:
    """Durable, coalesced, batched writes to a source behind a cache (see the module docstring).

    Args:
        cache: the namespace reads come from (updated on each write); an :class:`AsyncCache` works with
            :meth:`awrite`.
        writer: ``{key: value} -> None`` writing one batch to the source; may be a coroutine function (it
            then runs on the flusher thread's own event loop). Must be idempotent.
        journal: where writes wait (default ``SQLiteJournal(".buttress/write-behind-<namespace>.db")``).
        batch_size: flush when this many writes are pending (and the most per ``writer`` call).
        interval: flush at least this often, in seconds.
        retry: a decorator applied to ``writer`` (e.g. ``buttress.resilience.Retry(...)``).
        dead_letter: where batches go that ``writer`` still refuses after ``retry``; without one they stay
            in the journal and are retried at the next flush.
        registry: the metrics registry.
        start: start the flusher thread (tests may drive :meth:`flush` themselves).
    """

    def __init__(
        self,
        cache: Cache | AsyncCache,
        writer: Writer,
        *,
        journal: Journal | None = None,
        batch_size: int = 100,
        interval: float = 1.0,
        retry: Callable[[Writer], Writer] | None = None,
        dead_letter: DeadLetterSink | None = None,
        registry: Registry | None = None,
        start: bool = True,
    ) -> None:
        if batch_size < 1:
            raise StoreError(f"batch_size must be at least 1, got {batch_size!r}")
        if not interval > 0:
            raise StoreError(f"interval must be a positive number of seconds, got {interval!r}")
        self.cache = cache
        name = cache.core.name
        self.journal: Journal = (
            journal if journal is not None else SQLiteJournal(f".buttress/write-behind-{name}.db")
        )
        if inspect.iscoroutinefunction(writer):
            async_writer = writer

            def run_async(batch: Mapping[str, Any]) -> Any:
                return asyncio.run(async_writer(batch))

            writer = run_async
        self._write = retry(writer) if retry is not None else writer
        self.batch_size = batch_size
        self.interval = interval
        self.dead_letter = dead_letter
        reg = registry if registry is not None else REGISTRY
        ns = {"namespace": name}
        self.flushed = reg.counter(
            "buttress_cache_writebehind_flushed", "Writes that reached the source.", ns
        )
        self.failures = reg.counter("buttress_cache_writebehind_failures", "Batches the source refused.", ns)
        self.dead_lettered = reg.counter(
            "buttress_cache_writebehind_dead_lettered", "Writes dead-lettered.", ns
        )
        reg.gauge(
            "buttress_cache_writebehind_pending", "Writes waiting for the source.", ns, fn=self._pending
        )
        self._pending_count = self.journal.count()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.last_error: BaseException | None = None
        if start:
            self._thread = threading.Thread(
                target=self._run, name=f"buttress-write-behind-{name}", daemon=True
            )
            self._thread.start()

    def _pending(self) -> float:
        return float(self._pending_count)

    def write(self, key: str, value: Any) -> None:
        """Journal ``value`` durably, update the cache, return: the write is acknowledged.

        Raises:
            SerializationError: when the value cannot be pickled for the journal (names the type).
        """
        from buttress.cache.serialize import PickleSerializer

        data = PickleSerializer().dumps(value)
        self.journal.append(key, data)
        self._pending_count += 1
        cache = self.cache
        if isinstance(cache, Cache):
            cache.set(key, value)
        if self._pending_count >= self.batch_size:
            self._wake.set()

    async def awrite(self, key: str, value: Any) -> None:
        """:meth:`write` for async code: the journal's fsync runs in a worker thread."""
        from buttress.cache.serialize import PickleSerializer

        data = PickleSerializer().dumps(value)
        await asyncio.to_thread(self.journal.append, key, data)
        self._pending_count += 1
        if isinstance(self.cache, AsyncCache):
            await self.cache.set(key, value)
        else:
            self.cache.set(key, value)
        if self._pending_count >= self.batch_size:
            self._wake.set()

    def flush(self) -> int:
        """Write every pending batch to the source now; how many writes reached it.

        Stops at the first batch the source refuses and that has no dead-letter sink (it stays queued).
        """
        total = 0
        with self._flush_lock:
            while True:
                rows = self.journal.pending(self.batch_size)
                if not rows:
                    break
                written = self._send(rows)
                if written is None:
                    break
                total += written
                self.journal.ack([row[0] for row in rows])
                self._pending_count = max(0, self._pending_count - len(rows))
                if len(rows) < self.batch_size:
                    break
        return total

    def _send(self, rows: list[Row]) -> int | None:
        """Write one batch, a key's last write only; how many reached the source.

        ``None`` when the source refused the batch and there is no dead-letter sink: it stays queued.
        A dead-lettered batch counts 0 (it leaves the journal without reaching the source).
        """
        latest: dict[str, bytes] = {}
        for _, key, data in rows:
            latest[key] = data  # rows are oldest first: the last one wins
        batch = {key: pickle.loads(data) for key, data in latest.items()}
        try:
            self._write(batch)
        except Exception as exc:
            self.failures.value += 1
            self.last_error = exc
            if self.dead_letter is None:
                return None
            for key, value in batch.items():
                self.dead_letter.put(key, value, exc)
            self.dead_lettered.value += len(batch)
            return 0
        self.flushed.value += len(batch)
        return len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush()
            except Exception as exc:  # a journal error must not kill the flusher; it is retried next time
                self.last_error = exc

    def close(self) -> None:
        """Stop the flusher, flush what is pending (flush on shutdown), close the journal."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        self.flush()
        self.journal.close()

    async def aclose(self) -> None:
        """:meth:`close` from async code (the final flush runs in a worker thread, off the event loop)."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
