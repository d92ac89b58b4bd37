"""Versioned schema: step 5 moves the old ``confirmation_dead_letters`` rows into buttress's dead-letter
queue and drops the table, on SQLite and PostgreSQL; it never drops undelivered confirmations."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from buttress.demo import database, seed
from buttress.resilience import DeadLetterQueue, open_store


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/demo.db"
        return
    import servers

    server = request.getfixturevalue("postgres_server")
    with servers.running(servers.PostgresDatabase, server) as db:
        yield db.url


async def _has_table(engine, name):
    from sqlalchemy import inspect

    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: inspect(sync).has_table(name))


async def test_a_fresh_database_reaches_the_newest_version_without_the_old_table(database_url):
    engine = database.create_engine(database_url)
    try:
        assert await database.migrate(engine) == [m.version for m in database.MIGRATIONS]
        assert await database.schema_version(engine) == 5
        assert not await _has_table(engine, "confirmation_dead_letters")
        assert await database.migrate(engine) == []  # a no-op on an up-to-date database
    finally:
        await engine.dispose()


async def test_step_5_moves_undelivered_confirmations_into_the_queue(database_url, tmp_path):
    from sqlalchemy import text

    engine = database.create_engine(database_url)
    try:
        # A database as the demo left it before this change: at version 4, with one undelivered email.
        assert await database.migrate(engine, target=4) == [1, 2, 3, 4]
        await seed.seed(engine)
        async with engine.begin() as conn:
            registration_id = await conn.scalar(text("SELECT min(id) FROM registrations"))
            message = {
                "to": "ana@example.org",
                "subject": "Your registration",
                "body": "Hello Ana",
                "idempotency_key": f"registration-{registration_id}",
                "registration_id": registration_id,
                "correlation_id": "corr-1",
            }
            first = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
            await conn.execute(
                text(
                    "INSERT INTO confirmation_dead_letters (registration_id, payload, error, attempts, "
                    "policy, correlation_id, first_failed_at, last_failed_at) "
                    "VALUES (:r, :p, :e, 3, 'email', 'corr-1', :f, :l)"
                ),
                {
                    "r": registration_id,
                    "p": json.dumps(message),
                    "e": "ProviderError: email: answered 503",
                    "f": first,
                    "l": first + dt.timedelta(seconds=7),
                },
            )

        # Without a store to move them to, nothing is dropped.
        with pytest.raises(RuntimeError, match="dead_letter_store"):
            await database.migrate(engine)
        assert await database.schema_version(engine) == 4
        assert await _has_table(engine, "confirmation_dead_letters")

        store = f"sqlite:{tmp_path}/dlq.db"
        assert await database.migrate(engine, dead_letter_store=store) == [5]
        assert not await _has_table(engine, "confirmation_dead_letters")
        assert await database.schema_version(engine) == 5
    finally:
        await engine.dispose()

    with open_store(store) as opened:
        (item,) = opened.list(policy="email")
    assert item.kind == "call"
    assert item.payload == {"args": [message], "kwargs": {}}
    assert item.idempotency_key == f"registration-{registration_id}"
    assert (item.error_type, item.error_message) == ("ProviderError", "email: answered 503")
    assert (item.attempts, item.correlation_id) == (3, "corr-1")
    assert (item.first_failure, item.last_failure) == (first.timestamp(), first.timestamp() + 7)

    # The moved item replays like one the platform dead-lettered itself: the message as the argument.
    sent = []
    queue = DeadLetterQueue(store, policy="email")
    report = queue.replay(sent.append)
    queue.store.close()
    assert (report.replayed, report.remaining) == (1, 0)
    assert sent == [message]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///state/demo.db", "sqlite+aiosqlite:///state/demo.db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),  # a named driver is kept
    ],
)
def test_database_urls_name_their_async_driver(url, expected):
    assert database.async_url(url) == expected


@pytest.mark.parametrize(
    ("url", "words"),
    [("demo.db", "has no scheme"), ("mysql://u@h/db", "scheme 'mysql' is not supported")],
)
def test_unsupported_database_urls_say_what_is(url, words):
    with pytest.raises(ValueError, match=words) as err:
        database.async_url(url)
    assert "use sqlite:///path.db or postgresql://user@host/db" in str(err.value)
