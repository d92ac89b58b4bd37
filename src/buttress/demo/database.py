"""The demo's database: async engine from a URL, and versioned schema creation.

``sqlite:///path.db`` (the default, in the demo's state directory) runs on aiosqlite; ``postgresql://…``
runs on asyncpg. SQLite files are opened in WAL mode with ``synchronous=FULL`` (a registration answered
201 survives a kill -9) and a busy timeout, so several worker processes can share one file.

The schema is created by numbered migrations recorded in ``demo_schema_version``: :func:`migrate` applies
each missing step in order, each in its own transaction, and is a no-op on an up-to-date database — so a
worker that starts against an existing database never re-creates or drops anything.

Steps are history and are never edited: step 4 created ``confirmation_dead_letters``, where the demo kept
undeliverable confirmation emails before it used buttress's dead-letter queue; step 5 moves whatever that
table still holds into the queue's store (``migrate(engine, dead_letter_store=...)``) and drops it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from buttress._extras import require

__all__ = [
    "MIGRATIONS",
    "Migration",
    "MigrationContext",
    "async_url",
    "create_engine",
    "migrate",
    "schema_version",
]


def async_url(url: str) -> str:
    """The SQLAlchemy async URL for a plain database URL.

    ``sqlite:///x.db`` becomes ``sqlite+aiosqlite:///x.db``; ``postgresql://`` and ``postgres://`` become
    ``postgresql+asyncpg://``. URLs that already name a driver are returned unchanged.

    Raises:
        ValueError: for a scheme the demo does not support, naming the ones it does.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            f"database URL {url!r} has no scheme; use sqlite:///path.db or postgresql://user@host/db"
        )
    if "+" in scheme:
        return url
    if scheme == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(
        f"database URL scheme {scheme!r} is not supported; use sqlite:///path.db or postgresql://user@host/db"
    )


def create_engine(url: str, *, pool_size: int = 10) -> Any:
    """An :class:`~sqlalchemy.ext.asyncio.AsyncEngine` for ``url`` with the demo's connection settings."""
    require("sqlalchemy", "sql")
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine

    full = async_url(url)
    if full.startswith("sqlite"):
        require("aiosqlite", "sql")
        engine = create_async_engine(full, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    require("asyncpg", "sql")
    return create_async_engine(full, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False)


@dataclass(frozen=True)
class MigrationContext:
    """What a migration step may need besides the database connection.

    Attributes:
        dead_letter_store: the dead-letter store (``sqlite:PATH`` or a Redis URL) that step 5 moves the
            old table's confirmation emails into; ``None`` when the caller has none.
    """

    dead_letter_store: str | None = None


@dataclass(frozen=True)
class Migration:
    """One schema step: its number, a description, and ``apply(sync_connection, context)``."""

    version: int
    description: str
    apply: Callable[[Any, MigrationContext], None]


def _catalog(connection: Any, _context: MigrationContext) -> None:
    from buttress.demo import models

    tables = [
        models.table(m)
        for m in (
            models.Company,
            models.Venue,
            models.Event,
            models.Speaker,
            models.Session,
            models.SessionSpeaker,
        )
    ]
    models.Base.metadata.create_all(connection, tables=tables)


def _registrations(connection: Any, _context: MigrationContext) -> None:
    from buttress.demo import models

    models.Base.metadata.create_all(connection, tables=[models.table(models.Registration)])


def _search_index(connection: Any, _context: MigrationContext) -> None:
    from sqlalchemy import text

    # Company search matches on the lower-cased display name; the index serves its prefix matches.
    connection.execute(
        text("CREATE INDEX IF NOT EXISTS ix_companies_display_lower ON companies (lower(display_name))")
    )


def _legacy_dead_letters() -> Any:
    """``confirmation_dead_letters`` as step 4 created it (no longer a model: only steps 4 and 5 use it)."""
    from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text

    metadata = MetaData()
    # Declared only so the foreign key below resolves; it is never created from here.
    Table("registrations", metadata, Column("id", Integer, primary_key=True))
    return Table(
        "confirmation_dead_letters",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("registration_id", ForeignKey("registrations.id"), nullable=False, unique=True),
        Column("payload", Text, nullable=False),
        Column("error", String(500), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("policy", String(40), nullable=False),
        Column("correlation_id", String(100), nullable=False),
        Column("first_failed_at", DateTime(timezone=True), nullable=False),
        Column("last_failed_at", DateTime(timezone=True), nullable=False),
    )


def _dead_letters(connection: Any, _context: MigrationContext) -> None:
    table = _legacy_dead_letters()
    table.create(connection, checkfirst=True)


def _epoch(value: dt.datetime) -> float:
    # SQLite hands timezone-aware columns back naive; the demo always wrote UTC.
    return (value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)).timestamp()


def _as_dead_letter(row: Any) -> Any:
    """A row of ``confirmation_dead_letters`` as the dead letter the platform's queue would have stored."""
    from buttress.resilience import DeadLetter

    message = json.loads(row.payload)
    error_type, _, error_message = str(row.error).partition(": ")
    first, last = _epoch(row.first_failed_at), _epoch(row.last_failed_at)
    return DeadLetter(
        # A fixed id per row: a step interrupted after some puts stores nothing twice when it runs again.
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"buttress-demo:confirmation:{row.registration_id}:{first}").hex,
        policy=str(row.policy),
        payload={"args": [message], "kwargs": {}},
        kind="call",
        error_type=error_type,
        error_message=error_message,
        attempts=int(row.attempts),
        first_failure=first,
        last_failure=last,
        correlation_id=row.correlation_id,
        idempotency_key=str(message.get("idempotency_key") or f"registration-{row.registration_id}"),
        created=first,
    )


def _dead_letters_to_queue(connection: Any, context: MigrationContext) -> None:
    """Move the old table's undelivered confirmations into the dead-letter store, then drop the table.

    The puts are durable before the table is dropped (in this step's transaction), so a crash between the
    two leaves the rows in place and the step runs again; the fixed ids keep the store from holding an item
    twice.

    Raises:
        RuntimeError: when the table holds items and no store was given (nothing is dropped).
    """
    from sqlalchemy import inspect, select

    if not inspect(connection).has_table("confirmation_dead_letters"):
        return
    table = _legacy_dead_letters()
    rows = connection.execute(select(table).order_by(table.c.id)).all()
    if rows:
        if context.dead_letter_store is None:
            raise RuntimeError(
                f"confirmation_dead_letters holds {len(rows)} undelivered confirmation email(s); migrate "
                "with dead_letter_store= (the platform's dead-letter queue) so they move there instead "
                "of being dropped"
            )
        from buttress.resilience import open_store

        with open_store(context.dead_letter_store) as store:
            for row in rows:
                store.put(_as_dead_letter(row))
    table.drop(connection)


#: Every schema step, in order. Append; never edit a step that has shipped.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "catalog: companies, venues, events, speakers, sessions", _catalog),
    Migration(2, "registrations with capacity and waitlist", _registrations),
    Migration(3, "index for company search", _search_index),
    Migration(4, "dead letters of confirmation emails", _dead_letters),
    Migration(5, "confirmation dead letters moved to buttress's dead-letter queue", _dead_letters_to_queue),
)


def _ensure_version_table(connection: Any) -> None:
    from buttress.demo import models

    models.Base.metadata.create_all(connection, tables=[models.table(models.SchemaVersion)])


def _applied(connection: Any) -> set[int]:
    from sqlalchemy import select

    from buttress.demo import models

    return set(connection.execute(select(models.SchemaVersion.version)).scalars())


async def migrate(
    engine: Any, *, dead_letter_store: str | None = None, target: int | None = None
) -> list[int]:
    """Apply every missing migration in order; returns the versions applied now (empty when current).

    Each step and its ``demo_schema_version`` row commit together, so a crash between steps leaves the
    database at a recorded version and the next start continues from there.

    Args:
        engine: the platform's async engine.
        dead_letter_store: where step 5 moves undelivered confirmation emails (see
            :class:`MigrationContext`); needed only when the old table holds some.
        target: stop after this version (default: the newest).
    """
    from sqlalchemy import insert

    from buttress.demo import models

    async with engine.begin() as conn:
        await conn.run_sync(_ensure_version_table)
    async with engine.connect() as conn:
        done = await conn.run_sync(_applied)
    context = MigrationContext(dead_letter_store=dead_letter_store)
    applied: list[int] = []
    for step in MIGRATIONS:
        if step.version in done or (target is not None and step.version > target):
            continue
        async with engine.begin() as conn:
            await conn.run_sync(step.apply, context)
            await conn.execute(
                insert(models.SchemaVersion).values(
                    version=step.version,
                    description=step.description,
                    applied_at=dt.datetime.now(dt.UTC),
                )
            )
        applied.append(step.version)
    return applied


async def schema_version(engine: Any) -> int:
    """The highest applied migration, 0 for an empty database."""
    from sqlalchemy import func, inspect, select

    from buttress.demo import models

    async with engine.connect() as conn:
        has_table = await conn.run_sync(
            lambda sync: inspect(sync).has_table(models.SchemaVersion.__tablename__)
        )
        if not has_table:
            return 0
        value = await conn.scalar(select(func.max(models.SchemaVersion.version)))
    return int(value or 0)
