"""One process of the event platform: database, caches, provider pipelines and dead letters together.

The API handlers talk only to :class:`Platform`:

* :meth:`Platform.read` serves a hot path through the namespace's cache (``events`` 15 min, ``speakers``
  1 h, ``search`` 5 min) with the entry's tags, loading from the database on a miss;
* :meth:`Platform.changed` bumps the tags a write touched, so exactly the entries holding the changed
  row are evicted, in this process and (with Redis) in every other worker;
* provider calls run through their named resilience pipelines (``email``, ``storage``, ``identity``,
  from ``[resilience.policies]``); a confirmation email that cannot be sent goes to buttress's
  dead-letter queue and is replayed when the email breaker closes again.

How each part of buttress is built from configuration lives in :mod:`buttress.demo.wiring`; this module
only uses what it built.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.demo import repository as repo
from buttress.demo.errors import ApiError, correlation_id
from buttress.demo.providers.clients import EmailClient, IdentityClient, StorageClient
from buttress.demo.settings import Settings
from buttress.telemetry import EVENTS, REGISTRY, EventStream, Registry

__all__ = ["Platform"]

log = logging.getLogger("buttress.demo")

Loader = Callable[[Any], Awaitable[Any]]


class Platform:
    """The platform's process-wide state; built by :func:`buttress.demo.app.create_app`.

    Args:
        settings: where the database, providers and state are.
        registry: the telemetry registry to count into.
        clock: the clock of the resilience policies and dead letters (a ``VirtualClock`` in tests).
        events: where breakers publish their transitions (the dashboard and the replay listen there).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry = REGISTRY,
        clock: Clock = SYSTEM_CLOCK,
        events: EventStream = EVENTS,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.clock = clock
        self.events = events
        self.engine: Any = None
        self.http: Any = None
        self.wiring: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._snapshots: Any = None
        self._emails_in_flight: set[asyncio.Task[None]] = set()
        self._registrations = {
            status: registry.counter(
                "buttress_demo_registrations", "Registrations taken, by outcome.", {"status": status}
            )
            for status in ("confirmed", "waitlisted")
        }
        # Sent at the first attempt; dead-lettered and replayed ones are the queue's own
        # buttress_dlq_items_total{policy="email"}.
        self._sent = registry.counter(
            "buttress_demo_confirmation_emails", "Confirmation emails, by outcome.", {"outcome": "sent"}
        )
        from buttress.slo import HttpRecorder

        #: Where the SLO middleware records every request of this process.
        self.recorder = HttpRecorder(registry)
        self.dashboard: Any = None
        self.warm_report: Any = None
        self.monitor: Any = None

    # ----------------------------------------------------------------------------------------------
    # lifecycle

    async def start(self) -> None:
        """Open the database (migrating, and seeding when empty), the HTTP client and the buttress parts."""
        import httpx

        from buttress.demo import database, seed, wiring

        self.engine = database.create_engine(self.settings.database_url)
        from buttress.slo.sql import instrument_engine

        # Every statement timed per fingerprint (buttress_db_query_duration_seconds), slow ones logged.
        self.sql = instrument_engine(self.engine, registry=self.registry, slow_threshold=0.5)
        if self.settings.seed:
            await database.migrate(self.engine, dead_letter_store=self._dead_letter_store())
            await seed.seed(self.engine)
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self.email = EmailClient(self.http, self.settings.email_url)
        self.storage = StorageClient(self.http, self.settings.storage_url)
        self.identity = IdentityClient(self.http, self.settings.identity_url)
        self.wiring = await wiring.build(self)
        # What start-up warming loaded (``None`` with the cache switched off).
        self.warm_report = await self.wiring.warm()
        if self.settings.snapshot_interval > 0:
            self._start_snapshots()
        self._start_slo()

    def _dead_letter_store(self) -> str:
        from buttress.demo.wiring import dead_letter_store, demo_config

        settings = self.settings
        cfg = demo_config(settings.config_path)
        return dead_letter_store(cfg, state_dir=settings.state_dir, redis_url=settings.redis_url)

    def _start_slo(self) -> None:
        from buttress.demo.observe import SLOView, dashboard_for
        from buttress.slo import HistoryStore, SLOMonitor, from_config

        specs = from_config(self.wiring.config.section("slo"))
        store = HistoryStore(os.path.join(self.settings.state_dir, "slo.db"))
        self.monitor = SLOMonitor(specs, self.recorder, store=store, registry=self.registry)
        self.monitor.start()
        self.dashboard = dashboard_for(self, SLOView(specs, store))

    def _start_snapshots(self) -> None:
        from buttress.dashboard.snapshot import SnapshotWriter

        writer = SnapshotWriter(
            self.telemetry_dir, f"worker-{self.settings.worker}", registry=self.registry, events=self.events
        )
        self._snapshots = writer
        interval = self.settings.snapshot_interval

        async def loop() -> None:
            # In the event loop rather than a thread: a snapshot then never races the sketches it reads.
            while True:
                await asyncio.sleep(interval)
                try:
                    writer.write()
                except OSError:
                    log.warning("could not write the telemetry snapshot to %s", writer.file)

        self.spawn(loop(), "telemetry snapshots")

    @property
    def telemetry_dir(self) -> str:
        """Where the workers' telemetry snapshots are written (read by the dashboard and the runner)."""
        return os.path.join(self.settings.state_dir, "telemetry")

    async def stop(self) -> None:
        """Stop background work, write the final telemetry and close connections."""
        try:
            await asyncio.wait_for(self.drain_emails(), 10)
        except TimeoutError:
            log.warning("stopping with %d confirmation emails still in flight", len(self._emails_in_flight))
        if self.monitor is not None:
            self.monitor.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self._snapshots is not None:
            # The final counts, for the runner's summary; before the wiring closes the dead-letter
            # store, whose depth the snapshot reads.
            self._snapshots.write()
        if self.wiring is not None:
            await self.wiring.close()
        if self.http is not None:
            await self.http.aclose()
        if self.engine is not None:
            await self.engine.dispose()

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        """Run ``coro`` in the background until :meth:`stop`."""
        self._tasks.append(asyncio.ensure_future(coro))
        self._tasks[-1].set_name(name)

    # ----------------------------------------------------------------------------------------------
    # reads

    async def load(self, loader: Loader) -> Any:
        """Run ``loader(connection)`` against the database."""
        async with self.engine.connect() as conn:
            return await loader(conn)

    async def read(self, namespace: str, key: str, loader: Loader, tags: Iterable[str] = ()) -> Any:
        """The value of ``key`` in cache ``namespace``, loaded with ``loader`` on a miss.

        With the cache switched off this is :meth:`load`.
        """
        return await self.wiring.read(namespace, key, loader, list(tags))

    @staticmethod
    def event_tags(code: str, include: frozenset[str]) -> list[str]:
        """Tags of an event-detail entry: the event, plus its speakers' profiles when embedded."""
        tags = [f"event:{code}"]
        if "speakers" in include:
            tags.append(f"event:{code}:people")
        return tags

    async def with_image(self, data: dict[str, Any]) -> dict[str, Any]:
        """A copy of an event with a signed ``image_url`` (a placeholder when storage is failing)."""
        key = data.get("image_key") or f"events/{data['code']}.jpg"
        url = await self.wiring.signed_url(key)
        return {**data, "image_url": url}

    # ----------------------------------------------------------------------------------------------
    # writes

    async def register(self, code: str, person: dict[str, Any]) -> dict[str, Any]:
        """Register ``person`` for ``code`` and send (or defer) the confirmation email.

        Raises:
            ApiError: 404 unknown event, 409 registration closed or already registered.
        """
        try:
            async with self.engine.begin() as conn:
                result = await repo.register(conn, code, person)
        except repo.RegistrationRefused as exc:
            if exc.reason == "closed":
                raise ApiError(
                    409, "registration_closed", f"Event {code!r} is not open for registration."
                ) from None
            raise ApiError(
                409, "already_registered", f"{person['email']} is already registered for {code!r}."
            ) from None
        except Exception as exc:
            if _is_unique_violation(exc):  # two requests with the same email at the same moment
                raise ApiError(
                    409, "already_registered", f"{person['email']} is already registered for {code!r}."
                ) from None
            raise
        if result is None:
            raise ApiError(404, "not_found", f"No event {code!r}.")
        self._registrations[result.status].value += 1
        message = {
            "to": result.email,
            "subject": f"Your registration for {result.event_title}",
            "body": f"Hello {person['first_name']}, you are {result.status} for {result.event_title}.",
            "idempotency_key": f"registration-{result.id}",
            "registration_id": result.id,
            "correlation_id": correlation_id(),
        }
        # The email goes out after the answer: a slow or failing provider never holds up a registration,
        # and what cannot be sent is dead-lettered (see Wiring.send_email).
        task = asyncio.ensure_future(self._confirm(message))
        self._emails_in_flight.add(task)
        task.add_done_callback(self._emails_in_flight.discard)
        return {
            "id": result.id,
            "event": code,
            "email": result.email,
            "status": result.status,
            "waitlist_position": result.position,
            "confirmation_email": "queued",
        }

    async def _confirm(self, message: dict[str, Any]) -> None:
        try:
            await self.wiring.send_email(message)
        except Exception:
            log.exception("confirmation email for registration %s failed", message["registration_id"])

    async def drain_emails(self) -> None:
        """Wait for the confirmation emails already queued (tests, and shutdown)."""
        while self._emails_in_flight:
            await asyncio.gather(*list(self._emails_in_flight), return_exceptions=True)

    async def mark_sent(self, message: dict[str, Any]) -> None:
        """Record that the confirmation of ``message``'s registration went out."""
        async with self.engine.begin() as conn:
            await repo.mark_confirmation_sent(conn, int(message["registration_id"]))

    def count_sent(self) -> None:
        """Count a confirmation email sent at the first attempt.

        Dead-lettered and replayed confirmations are counted by the dead-letter queue itself
        (``buttress_dlq_items_total{policy="email",kind="dead_lettered"|"replayed"}``).
        """
        self._sent.value += 1

    async def authorize(self, header: str | None) -> dict[str, Any]:
        """The principal of the request's bearer token, checked with the identity provider.

        Raises:
            ApiError: 401 without a valid token; 503 when the identity provider cannot be asked and the
                token was not verified recently.
        """
        if header is None or not header.lower().startswith("bearer ") or not header[7:].strip():
            raise ApiError(
                401,
                "unauthorized",
                "This endpoint needs an 'Authorization: Bearer <token>' header.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal: dict[str, Any] | None = await self.wiring.verify_token(header[7:].strip())
        if principal is None:
            raise ApiError(
                401, "unauthorized", "The bearer token is not valid.", headers={"WWW-Authenticate": "Bearer"}
            )
        return principal

    async def update_event(self, code: str, changes: dict[str, Any]) -> None:
        """Apply ``changes`` to event ``code`` and evict what held it.

        Raises:
            ApiError: 404 for an unknown event.
        """
        async with self.engine.begin() as conn:
            found = await repo.update_event(conn, code, changes)
        if not found:
            raise ApiError(404, "not_found", f"No event {code!r}.")
        await self.changed([("event.updated", {"code": code})])

    async def update_speaker(self, username: str, changes: dict[str, Any]) -> None:
        """Apply ``changes`` to speaker ``username`` and evict what held them.

        Raises:
            ApiError: 404 for an unknown speaker, 422 for an unknown company.
        """
        async with self.engine.begin() as conn:
            before = await repo.speaker_company(conn, username)
            try:
                found = await repo.update_speaker(conn, username, changes)
            except LookupError:
                raise ApiError(
                    422,
                    "validation_failed",
                    "The request body is invalid; see fields.",
                    fields=[{"field": "company", "message": f"no company named {changes['company']!r}"}],
                ) from None
            codes = await repo.speaker_events(conn, username) if found else []
        if not found:
            raise ApiError(404, "not_found", f"No speaker {username!r}.")
        events: list[tuple[str, dict[str, Any]]] = [("speaker.updated", {"username": username})]
        # Event pages that embed this speaker's profile, and the company pages listing them.
        events.extend(("event.people_changed", {"code": c}) for c in codes)
        if "company" in changes and changes["company"] != before:
            for company in sorted(c for c in (before, changes["company"]) if c):
                events.append(("company.changed", {"name": company}))
        await self.changed(events)

    async def changed(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish domain events (``event.updated {"code": …}``); the caches evict what they map to."""
        await self.wiring.invalidate(events)


def _is_unique_violation(exc: Exception) -> bool:
    from sqlalchemy.exc import IntegrityError

    return isinstance(exc, IntegrityError)
