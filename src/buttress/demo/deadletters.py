"""Confirmation emails that could not be sent: kept in the platform's database until replayed.

This is the demo's dead-letter queue for one kind of work. It stores what a dead-letter item carries
(payload, error, attempts, first and last failure, policy, correlation id) in the platform's own database,
in the same place as the registration, so an acknowledged registration can never lose its email. It is a
workaround: ``buttress.resilience``'s dead-letter queues had not landed when the demo was wired (see
docs/demo.md); the interface is the one the demo needs from them — put, depth, and a replay that stops when
the circuit is open.

Replay is at-least-once: an item is deleted only after the provider accepted it, and the message carries
its idempotency key, so a replay interrupted between the two sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

from buttress.demo import models

__all__ = ["DeadLetters", "ReplayResult"]

T = models.table(models.ConfirmationDeadLetter)
R = models.table(models.Registration)


class ReplayResult:
    """What one replay did."""

    __slots__ = ("failed", "replayed", "stopped")

    def __init__(self) -> None:
        self.replayed = 0
        self.failed = 0
        self.stopped: str | None = None


class DeadLetters:
    """The dead letters of confirmation emails in ``engine``'s database.

    Args:
        engine: the platform's async engine.
        policy: the name of the policy whose failures land here (``"email"``).
    """

    def __init__(self, engine: Any, policy: str = "email") -> None:
        self.engine = engine
        self.policy = policy

    async def put(
        self, message: dict[str, Any], error: BaseException, attempts: int, correlation_id: str
    ) -> None:
        """Keep ``message`` (it failed with ``error`` after ``attempts``); a second failure updates it."""
        from sqlalchemy import insert, select, update

        now = dt.datetime.now(dt.UTC)
        text = f"{type(error).__name__}: {error}"[:500]
        async with self.engine.begin() as conn:
            existing = await conn.scalar(
                select(T.c.id).where(T.c.registration_id == message["registration_id"])
            )
            if existing is None:
                await conn.execute(
                    insert(T).values(
                        registration_id=message["registration_id"],
                        payload=json.dumps(message),
                        error=text,
                        attempts=attempts,
                        policy=self.policy,
                        correlation_id=correlation_id,
                        first_failed_at=now,
                        last_failed_at=now,
                    )
                )
            else:
                await conn.execute(
                    update(T)
                    .where(T.c.id == existing)
                    .values(error=text, attempts=T.c.attempts + attempts, last_failed_at=now)
                )

    async def depth(self) -> int:
        """Items waiting."""
        from sqlalchemy import func, select

        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(T)) or 0)

    async def items(self, limit: int = 100) -> list[dict[str, Any]]:
        """The oldest waiting items, with their payloads."""
        from sqlalchemy import select

        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(T).order_by(T.c.id).limit(limit))).all()
        return [{**row._asdict(), "payload": json.loads(row.payload)} for row in rows]

    async def replay(
        self,
        send: Callable[[dict[str, Any]], Awaitable[Any]],
        *,
        stop_on: tuple[type[BaseException], ...] = (),
        limit: int = 500,
    ) -> ReplayResult:
        """Send the waiting items with ``send`` (the same pipeline as first time), oldest first.

        An item is removed, and its registration marked sent, once ``send`` returns. An error in
        ``stop_on`` (an open circuit) ends the replay without touching the item; any other error counts a
        failed attempt on the item and the replay goes on.
        """
        from sqlalchemy import delete, update

        result = ReplayResult()
        for item in await self.items(limit):
            try:
                await send(item["payload"])
            except stop_on as exc:
                result.stopped = f"{type(exc).__name__}: {exc}"
                break
            except Exception as exc:
                result.failed += 1
                async with self.engine.begin() as conn:
                    await conn.execute(
                        update(T)
                        .where(T.c.id == item["id"])
                        .values(
                            error=f"{type(exc).__name__}: {exc}"[:500],
                            attempts=T.c.attempts + 1,
                            last_failed_at=dt.datetime.now(dt.UTC),
                        )
                    )
                continue
            async with self.engine.begin() as conn:
                await conn.execute(delete(T).where(T.c.id == item["id"]))
                await conn.execute(
                    update(R).where(R.c.id == item["registration_id"]).values(confirmation_sent=True)
                )
            result.replayed += 1
        return result
