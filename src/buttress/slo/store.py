"""SLO history: per-minute aggregates of every HTTP series in SQLite (``.buttress/slo.db``).

One row per (resolution, bucket start, route, method, status class) holds a request count and the merged
latency :class:`~buttress.telemetry.sketch.Sketch`. Several worker processes of one service write into the
same file: each write is a ``BEGIN IMMEDIATE`` transaction that reads the row, merges the new sketch into it
(bucket counts add exactly) and writes it back, so the stored minute equals the sketch of every worker's
requests together. WAL mode lets readers (reports, ``buttress slo check``) run while workers write.

**Retention and downsampling**: minute rows are kept for ``raw_retention`` (default 8 days, enough for the
3-day alert windows and a week of detail); :meth:`HistoryStore.downsample` merges older minutes into hour
rows, kept for ``retention`` (default 400 days, over a year of monthly reports). A downsampled hour is written
and its minutes deleted in one transaction, so nothing is counted twice or lost.

**Corruption** is reported, never repaired: a file that is not a database, fails SQLite's integrity check,
has an unknown schema version, or holds a sketch that fails its checksum raises
:class:`HistoryCorruptError` naming the file; the file is left untouched for inspection.

The store also records alert intervals (from the engine) so SLA reports can list incidents.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from buttress.errors import StoreError
from buttress.slo.recorder import SeriesSample
from buttress.telemetry.sketch import Sketch

__all__ = ["DEFAULT_PATH", "AlertInterval", "HistoryCorruptError", "HistoryStore", "StoredRow"]

#: Where the history lives unless told otherwise.
DEFAULT_PATH = Path(".buttress") / "slo.db"

_SCHEMA_VERSION = "1"
_MINUTE = 60
_HOUR = 3600

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    resolution INTEGER NOT NULL,
    start INTEGER NOT NULL,
    route TEXT NOT NULL,
    method TEXT NOT NULL,
    status_class TEXT NOT NULL,
    count INTEGER NOT NULL,
    sketch BLOB NOT NULL,
    PRIMARY KEY (resolution, start, route, method, status_class)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    slo TEXT NOT NULL,
    severity TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (slo, severity, ended);
"""


class HistoryCorruptError(StoreError):
    """The history file is damaged or not a buttress history; it was left as it is.

    Attributes:
        path: the file.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(
            f"The SLO history {path} is unreadable: {problem}. It was not modified; move it aside "
            "(or restore a backup) and buttress will start a new history."
        )


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One stored aggregate: ``start`` is epoch seconds, ``resolution`` 60 (minute) or 3600 (hour)."""

    start: int
    resolution: int
    route: str
    method: str
    status_class: str
    count: int
    sketch: Sketch

    def sample(self) -> SeriesSample:
        """As the engine's input type."""
        return SeriesSample(self.route, self.method, self.status_class, self.sketch)


@dataclass(frozen=True, slots=True)
class AlertInterval:
    """An alert that fired at ``started`` and resolved at ``ended`` (``None`` while still firing)."""

    slo: str
    severity: str
    started: float
    ended: float | None
    summary: str


def _check_retention(raw_retention: float, retention: float) -> None:
    if raw_retention < 3 * 86400.0:
        raise ValueError("raw_retention must be at least 3 days: the 3-day alert window is read from minutes")
    if retention < raw_retention:
        raise ValueError("retention (hours) must be at least raw_retention (minutes)")


class HistoryStore:
    """Per-minute HTTP aggregates and alert intervals in one SQLite file, safe for several processes.

    Args:
        path: the database file (created with its folder if missing).
        raw_retention: seconds of minute rows kept before :meth:`downsample` folds them into hours.
        retention: seconds of hour rows kept.
        check: run SQLite's ``quick_check`` when opening (on by default; a corrupt file raises).

    Raises:
        HistoryCorruptError: the file exists but is not a usable history.
        StoreError: the file cannot be created or opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        *,
        raw_retention: float = 8 * 86400.0,
        retention: float = 400 * 86400.0,
        check: bool = True,
    ) -> None:
        _check_retention(raw_retention, retention)
        self.path = Path(path)
        self.raw_retention = raw_retention
        self.retention = retention
        self._local = threading.local()
        existed = self.path.exists() and self.path.stat().st_size > 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for the SLO history {self.path}: {exc}") from None
        conn = self._conn()
        try:
            if existed and check:
                self._quick_check(conn)
            with self._write(conn):
                version = self._read_version(conn) if existed else self._create(conn)
            self._check_version(version)
        except sqlite3.DatabaseError as exc:
            raise HistoryCorruptError(str(self.path), str(exc)) from None

    def _quick_check(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            raise HistoryCorruptError(str(self.path), "; ".join(str(r[0]) for r in rows[:3]))

    def _check_version(self, version: str | None) -> None:
        if version is None:
            raise HistoryCorruptError(str(self.path), "it has no buttress schema version")
        if version != _SCHEMA_VERSION:
            raise HistoryCorruptError(
                str(self.path), f"schema version {version!r}, this buttress reads {_SCHEMA_VERSION!r}"
            )

    @staticmethod
    def _create(conn: sqlite3.Connection) -> str:
        """Create the tables in a new file; returns the schema version written."""
        for statement in _DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (_SCHEMA_VERSION,))
        return _SCHEMA_VERSION

    @staticmethod
    def _read_version(conn: sqlite3.Connection) -> str | None:
        """The schema version an existing file records (None when it records none)."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return None if row is None else str(row[0])

    # -- connections -----------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as exc:
                raise HistoryCorruptError(str(self.path), str(exc)) from None
            self._local.conn = conn
        return conn

    class _Txn:
        __slots__ = ("conn",)

        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            # IMMEDIATE takes the write lock up front, so read-merge-write cannot interleave across processes.
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, kind: object, exc: object, tb: object) -> None:
            self.conn.execute("COMMIT" if kind is None else "ROLLBACK")

    def _write(self, conn: sqlite3.Connection) -> HistoryStore._Txn:
        return HistoryStore._Txn(conn)

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------------

    def write(self, start: float, samples: Iterable[SeriesSample], *, resolution: int = _MINUTE) -> int:
        """Merge one interval's samples into the rows for the bucket starting at ``start`` (epoch seconds).

        Returns:
            How many rows were written.
        """
        bucket = int(start // resolution) * resolution
        samples = list(samples)
        if not samples:
            return 0
        conn = self._conn()
        try:
            with self._write(conn):
                self._merge_rows(conn, resolution, bucket, samples)
        except sqlite3.DatabaseError as exc:
            raise HistoryCorruptError(str(self.path), str(exc)) from None
        return len(samples)

    def _merge_rows(
        self, conn: sqlite3.Connection, resolution: int, bucket: int, samples: Iterable[SeriesSample]
    ) -> None:
        for s in samples:
            key = (resolution, bucket, s.route, s.method, s.status_class)
            found = conn.execute(
                "SELECT sketch FROM series "
                "WHERE resolution=? AND start=? AND route=? AND method=? AND status_class=?",
                key,
            ).fetchone()
            sketch = s.sketch
            if found is not None:
                sketch = self._decode(found[0], key).copy()
                sketch.merge(s.sketch)
            conn.execute(
                "INSERT OR REPLACE INTO series VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*key, sketch.count, sketch.to_bytes()),
            )

    def _decode(self, blob: bytes, key: tuple[object, ...]) -> Sketch:
        try:
            return Sketch.from_bytes(blob)
        except (ValueError, TypeError) as exc:
            raise HistoryCorruptError(str(self.path), f"the row {key!r} holds a bad sketch ({exc})") from None

    def record_alert(self, slo: str, severity: str, status: str, at: float, summary: str) -> None:
        """Open (``status="firing"``) or close (``"resolved"``) an alert interval; the engine calls this."""
        conn = self._conn()
        with self._write(conn):
            if status == "firing":
                open_row = conn.execute(
                    "SELECT id FROM alerts WHERE slo=? AND severity=? AND ended IS NULL", (slo, severity)
                ).fetchone()
                if open_row is None:
                    conn.execute(
                        "INSERT INTO alerts (slo, severity, started, ended, summary) "
                        "VALUES (?, ?, ?, NULL, ?)",
                        (slo, severity, at, summary),
                    )
            else:
                conn.execute(
                    "UPDATE alerts SET ended=? WHERE slo=? AND severity=? AND ended IS NULL",
                    (at, slo, severity),
                )

    # -- reading ---------------------------------------------------------------------------------------

    def rows(self, start: float, end: float) -> Iterator[StoredRow]:
        """Every stored row whose bucket starts in ``[start, end)``, minutes and hours, oldest first."""
        conn = self._conn()
        try:
            cursor = conn.execute(
                "SELECT start, resolution, route, method, status_class, count, sketch FROM series "
                "WHERE start >= ? AND start < ? ORDER BY start",
                (int(start), int(end)),
            )
            for b, res, route, method, cls, count, blob in cursor:
                yield StoredRow(
                    b, res, route, method, cls, count, self._decode(blob, (res, b, route, method, cls))
                )
        except sqlite3.DatabaseError as exc:
            raise HistoryCorruptError(str(self.path), str(exc)) from None

    def minutes(self, start: float, end: float) -> Iterator[tuple[int, list[SeriesSample]]]:
        """Per minute (``epoch_seconds // 60``) in ``[start, end)``, its samples; for warming the engine."""
        current: int | None = None
        batch: list[SeriesSample] = []
        for row in self.rows(start, end):
            if row.resolution != _MINUTE:
                continue
            minute = row.start // 60
            if minute != current:
                if current is not None:
                    yield current, batch
                current, batch = minute, []
            batch.append(row.sample())
        if current is not None:
            yield current, batch

    def alerts(self, start: float, end: float) -> list[AlertInterval]:
        """Alert intervals overlapping ``[start, end)``."""
        conn = self._conn()
        cursor = conn.execute(
            "SELECT slo, severity, started, ended, summary FROM alerts "
            "WHERE started < ? AND (ended IS NULL OR ended > ?) ORDER BY started",
            (end, start),
        )
        return [AlertInterval(*row) for row in cursor]

    def span(self) -> tuple[int, int] | None:
        """The first and last bucket start stored, or ``None`` when empty."""
        row = self._conn().execute("SELECT min(start), max(start) FROM series").fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    # -- maintenance -----------------------------------------------------------------------------------

    def downsample(self, now: float) -> int:
        """Fold minute rows older than ``raw_retention`` into hour rows; drop hours older than ``retention``.

        Only whole hours are folded. Each hour is one transaction: its hour rows are merged and its minute
        rows deleted together.

        Returns:
            How many minute rows were folded.
        """
        cutoff = int((now - self.raw_retention) // _HOUR) * _HOUR
        conn = self._conn()
        folded = 0
        hours = [
            h
            for (h,) in conn.execute(
                "SELECT DISTINCT (start / 3600) * 3600 FROM series WHERE resolution = ? AND start < ?",
                (_MINUTE, cutoff),
            )
        ]
        for hour in hours:
            with self._write(conn):
                rows = conn.execute(
                    "SELECT route, method, status_class, sketch FROM series "
                    "WHERE resolution = ? AND start >= ? AND start < ?",
                    (_MINUTE, hour, hour + _HOUR),
                ).fetchall()
                merged: dict[tuple[str, str, str], Sketch] = {}
                for route, method, cls, blob in rows:
                    sketch = self._decode(blob, (_MINUTE, hour, route, method, cls))
                    if (route, method, cls) in merged:
                        merged[(route, method, cls)].merge(sketch)
                    else:
                        merged[(route, method, cls)] = sketch
                self._merge_rows(conn, _HOUR, hour, [SeriesSample(*k, s) for k, s in merged.items()])
                conn.execute(
                    "DELETE FROM series WHERE resolution = ? AND start >= ? AND start < ?",
                    (_MINUTE, hour, hour + _HOUR),
                )
                folded += len(rows)
        with self._write(conn):
            conn.execute(
                "DELETE FROM series WHERE resolution = ? AND start < ?", (_HOUR, now - self.retention)
            )
            conn.execute("DELETE FROM alerts WHERE ended IS NOT NULL AND ended < ?", (now - self.retention,))
        return folded
