"""Statement timing through SQLAlchemy engine events, on real SQLite and PostgreSQL, sync and async."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from buttress.slo.sql import OTHER_STATEMENT, fingerprint, instrument_engine
from buttress.telemetry.registry import Registry


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM events WHERE id = 42", "SELECT * FROM events WHERE id = ?"),
        ("select *\n  from events -- why\n where id in (1, 2,3)", "select * from events where id in (?)"),
        ("SELECT * FROM t WHERE name = 'O''Brien' AND x = 1.5e3", "SELECT * FROM t WHERE name = ? AND x = ?"),
        (
            "SELECT * FROM t WHERE a = %(a)s AND b = %s AND c = :c AND d = $1 AND e = ?",
            "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? AND e = ?",
        ),
        ("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z');", "INSERT INTO t (a, b) VALUES (?)"),
        (
            "SELECT col1, t2.x FROM t2 WHERE t2.x::int > 10 /* c */",
            "SELECT col1, t2.x FROM t2 WHERE t2.x::int > ?",
        ),
    ],
)
def test_fingerprint(sql, expected):
    assert fingerprint(sql) == expected


def durations(registry: Registry) -> dict[str, int]:
    family = {f.name: f for f in registry.families()}.get("buttress_db_query_duration_seconds")
    return {} if family is None else {c.labels["statement"]: c.sketch.count for c in family.children}


def exercise_sync(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE speakers (id INTEGER PRIMARY KEY, name TEXT, email TEXT)"))
        conn.execute(
            sa.text("INSERT INTO speakers (id, name, email) VALUES (:id, :name, :email)"),
            [{"id": i, "name": f"speaker {i}", "email": f"s{i}@example.org"} for i in range(5)],
        )
        for i in range(3):
            conn.execute(sa.text("SELECT name FROM speakers WHERE id = :id"), {"id": i})
            conn.exec_driver_sql(f"SELECT name FROM speakers WHERE id = {i}")


def check(registry, sql, caplog, *, create):
    counts = durations(registry)
    assert counts[create] == 1
    assert counts["INSERT INTO speakers (id, name, email) VALUES (?)"] == 1  # executemany: one call
    # Bound and inline literals fold into one fingerprint.
    assert counts["SELECT name FROM speakers WHERE id = ?"] == 6
    assert (
        registry.value(
            "buttress_db_queries", {"statement": "SELECT name FROM speakers WHERE id = ?", "outcome": "ok"}
        )
        == 6
    )
    # Everything is "slow" at a zero threshold: logged with values redacted.
    assert sql.slow_queries
    assert all("example.org" not in q.fingerprint for q in sql.slow_queries)
    insert = next(q for q in sql.slow_queries if q.fingerprint.startswith("INSERT"))
    assert insert.parameters == 15
    text = caplog.text
    assert "parameters redacted" in text
    assert "example.org" not in text
    assert "speaker 1" not in text


def test_sync_sqlite(tmp_path, caplog):
    registry = Registry()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    sql = instrument_engine(engine, registry=registry, slow_threshold=0.0)
    with caplog.at_level(logging.WARNING, logger="buttress.slo.sql"):
        exercise_sync(engine)
    check(
        registry, sql, caplog, create="CREATE TABLE speakers (id INTEGER PRIMARY KEY, name TEXT, email TEXT)"
    )
    with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table WHERE id = 3"))
    assert (
        registry.value(
            "buttress_db_queries",
            {"statement": "SELECT * FROM no_such_table WHERE id = ?", "outcome": "error"},
        )
        == 1
    )
    assert sql.slow_queries[-1].failed
    sql.remove()
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    assert "SELECT ?" not in durations(registry)
    engine.dispose()


async def exercise_async(engine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE speakers (id INTEGER PRIMARY KEY, name TEXT, email TEXT)"))
        await conn.execute(
            sa.text("INSERT INTO speakers (id, name, email) VALUES (:id, :name, :email)"),
            [{"id": i, "name": f"speaker {i}", "email": f"s{i}@example.org"} for i in range(5)],
        )
        for i in range(3):
            await conn.execute(sa.text("SELECT name FROM speakers WHERE id = :id"), {"id": i})
            await conn.exec_driver_sql(f"SELECT name FROM speakers WHERE id = {i}")


async def test_async_sqlite(tmp_path, caplog):
    registry = Registry()
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    sql = instrument_engine(engine, registry=registry, slow_threshold=0.0)
    with caplog.at_level(logging.WARNING, logger="buttress.slo.sql"):
        await exercise_async(engine)
    await engine.dispose()
    check(
        registry, sql, caplog, create="CREATE TABLE speakers (id INTEGER PRIMARY KEY, name TEXT, email TEXT)"
    )


@pytest.mark.postgres
def test_sync_postgres(postgres_db, caplog):
    registry = Registry()
    engine = sa.create_engine(postgres_db.url.replace("postgresql://", "postgresql+psycopg://", 1))
    sql = instrument_engine(engine, registry=registry, slow_threshold=0.0)
    with caplog.at_level(logging.WARNING, logger="buttress.slo.sql"):
        exercise_sync(engine)
    engine.dispose()
    check(
        registry, sql, caplog, create="CREATE TABLE speakers (id INTEGER PRIMARY KEY, name TEXT, email TEXT)"
    )


@pytest.mark.postgres
async def test_async_postgres(postgres_db, caplog):
    registry = Registry()
    engine = create_async_engine(postgres_db.url.replace("postgresql://", "postgresql+asyncpg://", 1))
    sql = instrument_engine(engine, registry=registry, slow_threshold=0.0)
    with caplog.at_level(logging.WARNING, logger="buttress.slo.sql"):
        await exercise_async(engine)
    await engine.dispose()
    check(
        registry, sql, caplog, create="CREATE TABLE speakers (id INTEGER PRIMARY KEY, name TEXT, email TEXT)"
    )


def test_fingerprints_are_bounded(tmp_path):
    registry = Registry()
    engine = sa.create_engine("sqlite://")
    instrument_engine(engine, registry=registry, max_statements=2, slow_threshold=None)
    with engine.connect() as conn:
        for i in range(5):
            conn.exec_driver_sql(f"SELECT {i} AS c{i}")
    counts = durations(registry)
    assert counts == {"SELECT ? AS c0": 1, "SELECT ? AS c1": 1, OTHER_STATEMENT: 3}
    engine.dispose()
