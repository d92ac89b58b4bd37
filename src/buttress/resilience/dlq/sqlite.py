"""The embedded dead-letter store: one SQLite file (``.buttress/dlq.db`` by default).

The file runs in WAL mode with ``synchronous=FULL``: every :meth:`~SQLiteStore.put` is its own committed
transaction whose WAL frames are fsynced before it returns, so an item acknowledged to the caller survives
``kill -9`` of the process and a power cut. Several processes may share the file; claims take a write
transaction (``BEGIN IMMEDIATE``) so two replayers never lease the same item.

The file carries an application id (``PRAGMA application_id``) and a schema version. Opening a file that
is not SQLite, belongs to another program, or fails ``PRAGMA quick_check`` raises
:class:`~buttress.errors.StoreError` and leaves the file untouched: a corrupt store is reported, never
reset.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import StoreError
from buttress.resilience.dlq.base import DeadLetter, Store, dump_payload, load_payload

__all__ = ["APPLICATION_ID", "SQLiteStore"]

#: ``PRAGMA application_id`` of a buttress dead-letter file ("BDLQ").
APPLICATION_ID: Final = 0x42444C51
SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE dead_letters (
    id              TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE,
    policy          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    error_type      TEXT NOT NULL,
    error_message   TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    first_failure   REAL NOT NULL,
    last_failure    REAL NOT NULL,
    correlation_id  TEXT,
    idempotency_key TEXT NOT NULL,
    created         REAL NOT NULL,
    replays         INTEGER NOT NULL DEFAULT 0,
    claimed_by      TEXT,
    claimed_until   REAL
);
CREATE INDEX dead_letters_policy ON dead_letters (policy, seq);
CREATE INDEX dead_letters_created ON dead_letters (created);
"""
_SCHEMA_STATEMENTS: Final = tuple(statement for statement in _SCHEMA.split(";") if statement.strip())

_COLUMNS: Final = (
    "id, policy, kind, payload, error_type, error_message, attempts, first_failure, last_failure, "
    "correlation_id, idempotency_key, created, replays, seq"
)


class SQLiteStore(Store):
    """Dead letters in a SQLite file.

    Args:
        path: the file; its folder is created when missing.
        clock: wall-clock source for ages and leases (``clock.time()``).
        busy_timeout: seconds to wait for another process's write lock.

    Raises:
        StoreError: when the file cannot be opened, is not a buttress dead-letter store, or is corrupt.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, clock: Clock = SYSTEM_CLOCK, busy_timeout: float = 30.0
    ):
        self.path = Path(path)
        self.url = f"sqlite:{self.path}"
        self._time = clock.time
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the folder of dead-letter store {self.url}: {exc}.") from None
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open dead-letter store {self.url}: {exc}.") from None
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"Dead-letter store {self.url} is corrupt or not a SQLite file ({exc}). "
                "It was left as it is; move it aside to start a new store, or restore it from a backup."
            ) from None
        except StoreError:
            self._db.close()
            raise

    def _open(self) -> None:
        db = self._db
        # Read first: a file that is not SQLite fails here, before anything is written to it.
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables or app_id:
            self._check_existing(app_id, tables)
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"Dead-letter store {self.url} could not switch to WAL mode (got {mode!r}).")
        db.execute("PRAGMA synchronous = FULL")
        if not tables:
            self._create()

    def _check_existing(self, app_id: int, tables: set[str]) -> None:
        """Refuse a file that is another program's, of another schema version, or damaged."""
        db = self._db
        if app_id != APPLICATION_ID or "dead_letters" not in tables:
            raise StoreError(
                f"{self.path} is a SQLite file of another program (application id {app_id:#x}, "
                f"tables {sorted(tables)}), not a buttress dead-letter store; it was left untouched."
            )
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"Dead-letter store {self.url} has schema version {version}; this buttress reads version "
                f"{SCHEMA_VERSION}. Use the buttress version that wrote it."
            )
        check = db.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            problems = "; ".join(str(r[0]) for r in check[:3])
            raise StoreError(f"Dead-letter store {self.url} failed its integrity check: {problems}.")

    def _create(self) -> None:
        """Create the schema in an empty file, once, even when several processes open it together."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have created it between our look and the lock.
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'dead_letters'").fetchone():
                # One statement at a time: executescript() would commit our transaction first.
                for statement in _SCHEMA_STATEMENTS:
                    db.execute(statement)
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- plumbing ------------------------------------------------------------------------------------

    @contextmanager
    def _cursor(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                if write:
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        yield self._db
                    except BaseException:
                        self._db.execute("ROLLBACK")
                        raise
                    self._db.execute("COMMIT")
                else:
                    yield self._db
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"Dead-letter store {self.url} failed: {exc}.") from exc

    def _letter(self, row: tuple[Any, ...]) -> DeadLetter:
        (lid, policy, kind, payload, etype, emsg, attempts, first, last, corr, key, created, replays, seq) = (
            row
        )
        return DeadLetter(
            id=lid,
            policy=policy,
            payload=load_payload(payload, self.url),
            kind=kind,
            error_type=etype,
            error_message=emsg,
            attempts=attempts,
            first_failure=first,
            last_failure=last,
            correlation_id=corr,
            idempotency_key=key,
            created=created,
            replays=replays,
            extra={"seq": seq},
        )

    @staticmethod
    def _where(policy: str | None, cutoff: float | None) -> tuple[str, list[Any]]:
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        if policy is not None:
            clauses.append("policy = ?")
            params.append(policy)
        if cutoff is not None:
            clauses.append("created <= ?")
            params.append(cutoff)
        return (" AND ".join(clauses) or "1"), params

    def _cutoff(self, older_than: float | None) -> float | None:
        return None if older_than is None else self._time() - older_than

    # -- Store ---------------------------------------------------------------------------------------

    def put(self, letter: DeadLetter) -> None:
        """Insert ``letter`` in one committed, fsynced transaction (a repeated id is ignored)."""
        payload = dump_payload(letter.payload)
        with self._cursor() as db:
            db.execute(
                "INSERT OR IGNORE INTO dead_letters (id, seq, policy, kind, payload, error_type, "
                "error_message, attempts, first_failure, last_failure, correlation_id, idempotency_key, "
                "created, replays) VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM dead_letters), "
                "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    letter.id,
                    letter.policy,
                    letter.kind,
                    payload,
                    letter.error_type,
                    letter.error_message,
                    letter.attempts,
                    letter.first_failure,
                    letter.last_failure,
                    letter.correlation_id,
                    letter.idempotency_key,
                    letter.created,
                    letter.replays,
                ),
            )

    def get(self, letter_id: str) -> DeadLetter | None:
        """The item with ``letter_id``."""
        with self._cursor() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM dead_letters WHERE id = ?", (letter_id,)).fetchone()
        return self._letter(row) if row else None

    def list(
        self, *, policy: str | None = None, older_than: float | None = None, limit: int | None = None
    ) -> builtins.list[DeadLetter]:
        """Items in queue order."""
        where, params = self._where(policy, self._cutoff(older_than))
        sql = f"SELECT {_COLUMNS} FROM dead_letters WHERE {where} ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._cursor() as db:
            rows = db.execute(sql, params).fetchall()
        return [self._letter(r) for r in rows]

    def count(self, policy: str | None = None) -> int:
        """How many items."""
        where, params = self._where(policy, None)
        with self._cursor() as db:
            return int(db.execute(f"SELECT count(*) FROM dead_letters WHERE {where}", params).fetchone()[0])

    def oldest(self, policy: str | None = None) -> float | None:
        """The oldest item's ``created`` time."""
        where, params = self._where(policy, None)
        with self._cursor() as db:
            value = db.execute(f"SELECT min(created) FROM dead_letters WHERE {where}", params).fetchone()[0]
        return None if value is None else float(value)

    def policies(self) -> builtins.list[str]:
        """Policies with items."""
        with self._cursor() as db:
            return [r[0] for r in db.execute("SELECT DISTINCT policy FROM dead_letters ORDER BY policy")]

    def mark(self, policy: str | None = None) -> int:
        """The highest queue position now."""
        with self._cursor() as db:
            return int(db.execute("SELECT coalesce(max(seq), 0) FROM dead_letters").fetchone()[0])

    def claim(
        self,
        consumer: str,
        *,
        policy: str | None = None,
        older_than: float | None = None,
        upto: Any = None,
        limit: int = 10,
        lease: float = 300.0,
    ) -> builtins.list[DeadLetter]:
        """Lease up to ``limit`` items, oldest position first, in one write transaction."""
        now = self._time()
        where, params = self._where(policy, self._cutoff(older_than))
        if upto is not None:
            where += " AND seq <= ?"
            params.append(int(upto))
        with self._cursor(write=True) as db:
            rows = db.execute(
                f"UPDATE dead_letters SET claimed_by = ?, claimed_until = ? WHERE id IN ("
                f"SELECT id FROM dead_letters WHERE {where} AND (claimed_until IS NULL OR claimed_until < ?) "
                f"ORDER BY seq LIMIT ?) RETURNING {_COLUMNS}",
                [consumer, now + lease, *params, now, limit],
            ).fetchall()
        return sorted((self._letter(r) for r in rows), key=lambda item: item.extra["seq"])

    def ack(self, letter: DeadLetter, consumer: str) -> bool:
        """Delete ``letter`` if ``consumer`` still holds its lease."""
        with self._cursor() as db:
            cur = db.execute(
                "DELETE FROM dead_letters WHERE id = ? AND claimed_by = ?", (letter.id, consumer)
            )
            return cur.rowcount == 1

    def release(self, letter: DeadLetter, consumer: str, *, failed: DeadLetter | None = None) -> None:
        """End the lease; a failed item moves to the back with its new error."""
        with self._cursor(write=True) as db:
            if failed is None:
                db.execute(
                    "UPDATE dead_letters SET claimed_by = NULL, claimed_until = NULL "
                    "WHERE id = ? AND claimed_by = ?",
                    (letter.id, consumer),
                )
                return
            db.execute(
                "UPDATE dead_letters SET claimed_by = NULL, claimed_until = NULL, "
                "seq = (SELECT max(seq) + 1 FROM dead_letters), error_type = ?, error_message = ?, "
                "attempts = ?, last_failure = ?, replays = ? WHERE id = ? AND claimed_by = ?",
                (
                    failed.error_type,
                    failed.error_message,
                    failed.attempts,
                    failed.last_failure,
                    failed.replays,
                    letter.id,
                    consumer,
                ),
            )

    def purge(
        self, *, policy: str | None = None, older_than: float | None = None, ids: Sequence[str] | None = None
    ) -> int:
        """Delete matching items."""
        where, params = self._where(policy, self._cutoff(older_than))
        if ids is not None:
            if not ids:
                return 0
            where += f" AND id IN ({', '.join('?' * len(ids))})"
            params.extend(ids)
        with self._cursor() as db:
            return int(db.execute(f"DELETE FROM dead_letters WHERE {where}", params).rowcount)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"
