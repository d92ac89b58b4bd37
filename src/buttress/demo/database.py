"""The demo's database: async engine from a URL, and versioned schema creation.

``sqlite:///path.db`` (the default, in the demo's state directory) runs on aiosqlite; ``postgresql://…``
runs on asyncpg. SQLite files are opened in WAL mode with ``synchronous=FULL`` (a registration answered
201 survives a kill -9) and a busy timeout, so several worker processes can share one file.

The schema is created by numbered migrations recorded in ``demo_schema_version``: :func:`migrate` applies
each missing step in order, each in its own transaction, and is a no-op on an up-to-date database — so a
worker that starts against an existing database never re-creates or drops anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from buttress._extras import require

__all__ = ["MIGRATIONS", "Migration", "async_url", "create_engine", "migrate", "schema_version"]


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
class Migration:
    """One schema step: its number, a description, and the function applying it on a sync connection."""

    version: int
    description: str
    apply: Callable[[Any], None]


def _catalog(connection: Any) -> None:
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


def _registrations(connection: Any) -> None:
    from buttress.demo import models

    models.Base.metadata.create_all(connection, tables=[models.table(models.Registration)])


def _search_index(connection: Any) -> None:
    from sqlalchemy import text

    # Company search matches on the lower-cased display name; the index serves its prefix matches.
    connection.execute(
        text("CREATE INDEX IF NOT EXISTS ix_companies_display_lower ON companies (lower(display_name))")
    )


def _dead_letters(connection: Any) -> None:
    from buttress.demo import models

    models.Base.metadata.create_all(connection, tables=[models.table(models.ConfirmationDeadLetter)])


#: Every schema step, in order. Append; never edit a step that has shipped.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "catalog: companies, venues, events, speakers, sessions", _catalog),
    Migration(2, "registrations with capacity and waitlist", _registrations),
    Migration(3, "index for company search", _search_index),
    Migration(4, "dead letters of confirmation emails", _dead_letters),
)


def _ensure_version_table(connection: Any) -> None:
    from buttress.demo import models

    models.Base.metadata.create_all(connection, tables=[models.table(models.SchemaVersion)])


def _applied(connection: Any) -> set[int]:
    from sqlalchemy import select

    from buttress.demo import models

    return set(connection.execute(select(models.SchemaVersion.version)).scalars())


async def migrate(engine: Any) -> list[int]:
    """Apply every missing migration in order; returns the versions applied now (empty when current).

    Each step and its ``demo_schema_version`` row commit together, so a crash between steps leaves the
    database at a recorded version and the next start continues from there.
    """
    from sqlalchemy import insert

    from buttress.demo import models

    async with engine.begin() as conn:
        await conn.run_sync(_ensure_version_table)
    async with engine.connect() as conn:
        done = await conn.run_sync(_applied)
    applied: list[int] = []
    for step in MIGRATIONS:
        if step.version in done:
            continue
        async with engine.begin() as conn:
            await conn.run_sync(step.apply)
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
