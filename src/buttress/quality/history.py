"""``.buttress/quality.db``: every gate run per commit, and every test's duration and outcome per session.

One SQLite file (WAL mode, so a test session and a gate run can write at the same time) with three
tables:

* ``runs`` — one row per ``buttress quality check``: time, commit, branch, target, profile, verdict, and
  every figure as JSON (overall, new code, per file). The coverage-drop condition reads the base
  commit's row; ``buttress quality trends`` plots the figures.
* ``sessions`` — one row per pytest session recorded by :mod:`.pytest_plugin`: time, commit, a *code
  key* (the commit plus a hash of uncommitted changes, so two sessions on the same key ran the same
  code), wall time and outcome counts.
* ``results`` — one row per test per session: node id, outcome, duration (setup + call + teardown).

A file that is not a database, or a database from a future schema, raises
:class:`~buttress.errors.StoreError` naming the file; nothing is silently recreated over it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buttress.errors import StoreError

__all__ = ["History", "RunRecord", "SessionRecord", "TestResult"]

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    commit_sha TEXT,
    branch TEXT,
    target TEXT NOT NULL,
    profile TEXT NOT NULL,
    status TEXT NOT NULL,
    overall TEXT NOT NULL,
    new TEXT NOT NULL,
    files TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_commit ON runs (commit_sha, target, time);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    commit_sha TEXT,
    code TEXT NOT NULL,
    duration REAL NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    errors INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    session INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    nodeid TEXT NOT NULL,
    outcome TEXT NOT NULL,
    duration REAL NOT NULL,
    PRIMARY KEY (session, nodeid)
);
CREATE INDEX IF NOT EXISTS results_by_test ON results (nodeid, session);
"""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One recorded gate run."""

    id: int
    time: float
    commit: str | None
    branch: str | None
    target: str
    profile: str
    status: str
    overall: dict[str, float]
    new: dict[str, float]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test's outcome and duration (seconds) in one session."""

    __test__ = False  # not a test class, whatever pytest's naming rule says

    nodeid: str
    outcome: str
    duration: float


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One recorded pytest session."""

    id: int
    time: float
    commit: str | None
    code: str
    duration: float
    passed: int
    failed: int
    skipped: int
    errors: int


class History:
    """The quality history database at ``path`` (created, with its folder, on first write).

    Args:
        path: the SQLite file, usually ``.buttress/quality.db`` under the project root.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            conn = sqlite3.connect(":memory:")
            conn.executescript(_DDL)
            try:
                yield conn
            finally:
                conn.close()
            return
        try:
            conn = sqlite3.connect(self.path, timeout=30.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the quality history {self.path}: {exc}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_DDL)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer buttress (schema {row[0]}); "
                    "upgrade buttress to read it"
                )
            yield conn
            conn.commit()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"the quality history {self.path} is unreadable ({exc}); move it aside to start a new one"
            ) from None
        finally:
            conn.close()

    # -- gate runs -----------------------------------------------------------------------------------

    def record_run(
        self,
        *,
        commit: str | None,
        branch: str | None,
        target: str,
        profile: str,
        status: str,
        overall: dict[str, float],
        new: dict[str, float],
        files: dict[str, dict[str, Any]],
        when: float | None = None,
    ) -> int:
        """Store one gate run; returns its id."""
        with self._connect(write=True) as conn:
            cur = conn.execute(
                "INSERT INTO runs (time, commit_sha, branch, target, profile, status, overall, new, files)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time() if when is None else when,
                    commit,
                    branch,
                    target,
                    profile,
                    status,
                    json.dumps(overall, sort_keys=True),
                    json.dumps(new, sort_keys=True),
                    json.dumps(files, sort_keys=True),
                ),
            )
            return int(cur.lastrowid or 0)

    def run_for_commit(self, commit: str, target: str) -> RunRecord | None:
        """The latest run recorded for ``commit`` on ``target``, if any."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM runs WHERE commit_sha = ? AND target = ? ORDER BY time DESC, id DESC LIMIT 1",
                (commit, target),
            ).fetchone()
        return None if row is None else _run(row)

    def runs(self, target: str | None = None, limit: int = 200) -> list[RunRecord]:
        """The latest ``limit`` runs (oldest first), optionally only for ``target``."""
        sql = "SELECT * FROM runs"
        args: tuple[Any, ...] = ()
        if target is not None:
            sql += " WHERE target = ?"
            args = (target,)
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
        with self._connect() as conn:
            rows = conn.execute(sql, (*args, limit)).fetchall()
        return [_run(r) for r in reversed(rows)]

    # -- test sessions -------------------------------------------------------------------------------

    def record_session(
        self,
        *,
        commit: str | None,
        code: str,
        duration: float,
        results: Iterable[TestResult],
        when: float | None = None,
    ) -> int:
        """Store one pytest session and each test's result; returns the session id."""
        results = list(results)
        counts = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
        for r in results:
            counts[r.outcome if r.outcome in counts else "failed"] += 1
        with self._connect(write=True) as conn:
            cur = conn.execute(
                "INSERT INTO sessions (time, commit_sha, code, duration, passed, failed, skipped, errors)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time() if when is None else when,
                    commit,
                    code,
                    duration,
                    counts["passed"],
                    counts["failed"],
                    counts["skipped"],
                    counts["error"],
                ),
            )
            session = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT OR REPLACE INTO results (session, nodeid, outcome, duration) VALUES (?, ?, ?, ?)",
                [(session, r.nodeid, r.outcome, r.duration) for r in results],
            )
        return session

    def sessions(self, limit: int = 200) -> list[SessionRecord]:
        """The latest ``limit`` sessions, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM sessions ORDER BY time DESC, id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [SessionRecord(*r) for r in reversed(rows)]

    def results(self, session_ids: Iterable[int]) -> dict[int, list[TestResult]]:
        """Each session's test results."""
        ids = list(session_ids)
        out: dict[int, list[TestResult]] = {i: [] for i in ids}
        if not ids:
            return out
        with self._connect() as conn:
            marks = ",".join("?" * len(ids))
            for session, nodeid, outcome, duration in conn.execute(
                f"SELECT session, nodeid, outcome, duration FROM results WHERE session IN ({marks})", ids
            ):
                out[session].append(TestResult(nodeid, outcome, duration))
        return out


def _run(row: tuple[Any, ...]) -> RunRecord:
    rid, when, commit, branch, target, profile, status, overall, new, files = row
    return RunRecord(
        rid,
        when,
        commit,
        branch,
        target,
        profile,
        status,
        json.loads(overall),
        json.loads(new),
        json.loads(files),
    )
