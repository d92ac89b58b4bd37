"""How the platform uses each part of buttress: caches, resilience pipelines, fallbacks, dead letters.

:func:`build` reads the demo's configuration — the embedded ``buttress.demo.toml`` unless the settings
name another file — and builds every part once, at startup; the request path only calls what was built.

**Caches.** One :class:`~buttress.cache.AsyncCache` per namespace (``events``, ``speakers``, ``search``,
``media``) from ``[cache.namespaces.*]``; ``--redis-url`` turns each into a two-tier cache (memory L1,
Redis L2). Writes publish domain events (``event.updated``, ``speaker.updated``, …) on an invalidation
bus; an :class:`~buttress.cache.EventInvalidator` maps them to the tags of ``invalidate_on`` and bumps
exactly those tags. With Redis the bump is a Redis counter announced on the namespace's invalidation
channel, so every other worker drops its L1 copies too.

**Providers.** Each provider call runs through the named pipeline of ``[resilience.policies.<name>]``
(``email``, ``storage``, ``identity``; built by :mod:`buttress.demo.policies`): ``Retry`` outermost, a
``CircuitBreaker`` inside it (an open circuit stops retrying at once) and a ``Bulkhead`` innermost, with
the entry's ``http`` timeouts on the provider's HTTP client. What happens when a call still fails is the
platform's choice per provider:

* email — a :class:`~buttress.resilience.DeadLetterQueue` outermost keeps the confirmation (idempotency
  key ``registration-<id>``) in the demo's store — ``sqlite:<state-dir>/dlq.db``, or Redis Streams with
  ``--redis-url`` — and :meth:`Wiring.replay` runs it again through the email pipeline when the email
  breaker closes (a ``StateTransition`` to ``closed``) or, every ``[demo] replay_interval``, once the
  breaker would let a trial through;
* storage — a :class:`~buttress.resilience.Fallback` outside the ``media`` cache answers with a
  placeholder image (so it is never cached);
* identity — a :class:`~buttress.resilience.Fallback` hook accepts again a token the provider accepted
  within ``[demo] token_grace``; any other token is refused with 503 and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from importlib import resources
from typing import TYPE_CHECKING, Any

from buttress.resilience import NO_FALLBACK, current_letter
from buttress.resilience.dlq import CORRELATION_ID

if TYPE_CHECKING:
    from buttress.config import Config
    from buttress.demo.platform import Loader, Platform

__all__ = [
    "NAMESPACES",
    "PLACEHOLDER_IMAGE",
    "Wiring",
    "build",
    "confirmation_key",
    "dead_letter_store",
    "demo_config",
]

log = logging.getLogger("buttress.demo")

#: What an event page shows when object storage cannot sign its image.
PLACEHOLDER_IMAGE = "/placeholder.svg"

#: How many of the most recent events' pages are warmed into the ``events`` cache at start-up.
WARM_EVENTS = 20

#: The cache namespaces the platform reads through.
NAMESPACES = ("events", "speakers", "search", "media")


def demo_config(path: str | None = None) -> Config:
    """The demo's configuration: the file at ``path``, or the embedded ``buttress.demo.toml``."""
    from buttress import config

    if path is not None:
        return config.load(path)
    text = resources.files("buttress.demo").joinpath("buttress.demo.toml").read_text(encoding="utf-8")
    return config.loads(text, "buttress.demo.toml (embedded)")


def dead_letter_store(cfg: Config, *, state_dir: str, redis_url: str | None) -> str:
    """The store of the confirmation emails' dead letters (what ``buttress dlq list --store`` takes).

    ``[resilience.policies.email] dead_letter`` when the configuration names one; else Redis Streams on
    ``redis_url`` (``--redis-url``) when given, else ``sqlite:<state_dir>/dlq.db``.
    """
    entry = cfg.section("resilience")["policies"].get("email") or {}
    configured: str | None = entry.get("dead_letter")
    if configured:
        return configured
    if redis_url:
        return redis_url
    return f"sqlite:{os.path.join(state_dir, 'dlq.db')}"


def confirmation_key(message: dict[str, Any]) -> str:
    """The idempotency key of a registration's confirmation email: ``registration-<id>``."""
    return f"registration-{message['registration_id']}"


class Wiring:
    """The buttress parts one platform process uses.

    Args:
        platform: the platform process.
        cfg: the validated configuration.
    """

    def __init__(self, platform: Platform, cfg: Config) -> None:
        self.platform = platform
        self.config = cfg
        demo = cfg.section("demo")
        self._replay_interval: float = demo["replay_interval"]
        self._token_grace: float = demo["token_grace"]
        self.caches: dict[str, Any] = {}
        self.bus: Any = None
        self._invalidator: Any = None
        self._remote_bus = False
        self.pipelines: dict[str, Any] = {}
        self.breakers: dict[str, Any] = {}
        self.dead_letters: Any = None
        self.dead_letter_store = ""
        self._send: Any = None
        self._sign: Any = None
        self._signed_url: Any = None
        self._verify: Any = None
        self._tokens: dict[str, tuple[dict[str, Any], float]] = {}
        self._replay_lock = asyncio.Lock()
        self._replayed: list[dict[str, Any]] = []
        self._unsubscribe: Any = None

    # ----------------------------------------------------------------------------------------------
    # caches

    def build_caches(self) -> None:
        """One async cache per namespace, and the invalidation bus with the configured rules."""
        from buttress.cache import AsyncCache, EventInvalidator, LocalBus
        from buttress.cache.registry import options_for

        settings = self.platform.settings
        section = self.config.section("cache")
        rules: dict[Any, Any] = {}
        for name in NAMESPACES:
            options = options_for(name, self.config)
            if settings.redis_url:
                options["backend"] = settings.redis_url
                # Entries describe one database: runs against another database must not read them.
                digest = hashlib.blake2b(settings.database_url.encode(), digest_size=4).hexdigest()
                options["key_prefix"] = f"{options['key_prefix']}-{digest}"
            cache = AsyncCache(name, registry=self.platform.registry, **options)
            self.caches[name] = cache
            mapping = section["namespaces"].get(name, {}).get("invalidate_on") or {}
            if mapping:
                rules[cache.sync()] = mapping
        # The bus is in-process: the worker that made a change applies it before answering, so its
        # caller reads its own write; other workers learn of it from the Redis tag channel.
        self.bus = LocalBus()
        self._remote_bus = bool(settings.redis_url)
        self._invalidator = EventInvalidator(self.bus, rules)

    async def read(self, namespace: str, key: str, loader: Loader, tags: list[str]) -> Any:
        """Serve ``key`` of ``namespace`` from its cache, loading from the database on a miss."""
        cache = self.caches.get(namespace)
        platform = self.platform
        if cache is None:
            return await platform.load(loader)
        return await cache.get_or_load(key, lambda: platform.load(loader), tags=tags)

    async def warm(self) -> Any:
        """Fill ``events`` at start-up with what the first visitors ask for.

        That is the current event and the :data:`WARM_EVENTS` most recent events' pages, under the
        keys and tags the API reads and invalidates them by (a warmed page is evicted by an update
        like any other).

        A failure is logged and start-up goes on (the pages load on first use). Returns the
        :class:`~buttress.cache.warming.WarmReport`, or ``None`` with the cache switched off.
        """
        from buttress.cache.warming import AsyncWarmer, awarm
        from buttress.demo import repository as repo

        cache = self.caches.get("events")
        if cache is None:
            return None
        platform = self.platform

        async def current() -> dict[str, Any]:
            data = await platform.load(repo.current_event)
            return {"current": data} if data is not None else {}

        async def recent() -> dict[str, Any]:
            events = await platform.load(lambda conn: repo.recent_event_details(conn, WARM_EVENTS))
            return {f"event:{e['code']}:": e for e in events}

        report = await awarm(
            [
                AsyncWarmer("current event", cache, current, tags=["events-list"]),
                AsyncWarmer("recent events", cache, recent, tags=lambda key, e: [f"event:{e['code']}"]),
            ]
        )
        for name, error in report.failed.items():
            log.warning("cache warmer %r failed (pages load on first use): %r", name, error)
        log.info("warmed the events cache: %d entries in %.3f s", report.entries, report.seconds)
        return report

    async def invalidate(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish domain events; the invalidator bumps the tags they map to."""
        if self.bus is None:
            return
        for event, payload in events:
            if self._remote_bus:
                # Bumping a tag in Redis is a blocking call on the sync face: keep it off the loop.
                await asyncio.to_thread(self.bus.publish, event, payload)
            else:
                self.bus.publish(event, payload)

    # ----------------------------------------------------------------------------------------------
    # providers

    def build_resilience(self) -> None:
        """The providers' named pipelines, their fallbacks, and the confirmation emails' dead letters."""
        from buttress.demo.policies import PROVIDERS, build_pipeline, provider_entries
        from buttress.resilience import (
            CircuitBreaker,
            DeadLetterQueue,
            Fallback,
            Pipeline,
            open_store,
        )
        from buttress.telemetry import StateTransition

        platform = self.platform
        entries = provider_entries(self.config)
        clients = {"email": platform.email, "storage": platform.storage, "identity": platform.identity}
        for name in PROVIDERS:
            pipeline = build_pipeline(
                name, entries[name], clock=platform.clock, registry=platform.registry, events=platform.events
            )
            self.pipelines[name] = pipeline
            breaker = pipeline.find(CircuitBreaker)
            if breaker is not None:
                self.breakers[name] = breaker
            # The pipeline does not enforce `http`; the client does, per socket operation.
            clients[name].timeout = pipeline.http.as_httpx() if pipeline.http is not None else None

        # email: what cannot be sent is kept, durably, before the error reaches the sender.
        settings = platform.settings
        self.dead_letter_store = dead_letter_store(
            self.config, state_dir=settings.state_dir, redis_url=settings.redis_url
        )
        self.dead_letters = DeadLetterQueue(
            open_store(self.dead_letter_store, clock=platform.clock),
            policy="email",
            idempotency_key=confirmation_key,
            clock=platform.clock,
            registry=platform.registry,
        )
        self._send = Pipeline(self.dead_letters, self.pipelines["email"], name="email")(self._deliver)
        # storage: the fallback sits outside the cache, so a placeholder is never cached.
        self._sign = self.pipelines["storage"](platform.storage.sign)
        self._signed_url = Fallback(PLACEHOLDER_IMAGE, name="storage", registry=platform.registry)(
            self._cached_signed_url
        )
        # identity: a token accepted recently is accepted again; any other error goes on to a 503.
        self._verify = Fallback(hook=self._recent_principal, name="identity", registry=platform.registry)(
            self.pipelines["identity"](platform.identity.verify)
        )

        loop = asyncio.get_running_loop()

        def on_transition(event: Any) -> None:
            # Called on whichever thread moved the breaker; the replay runs on the platform's loop.
            if isinstance(event, StateTransition) and event.name == "email" and event.to_state == "closed":
                loop.call_soon_threadsafe(self._kick_replay)

        self._unsubscribe = platform.events.subscribe(on_transition, StateTransition)
        platform.spawn(self._replay_loop(), "dead-letter replay")

    def _kick_replay(self) -> None:
        self.platform.spawn(self.replay(), "dead-letter replay after recovery")

    async def _replay_loop(self) -> None:
        breaker = self.breakers.get("email")
        while True:
            await asyncio.sleep(self._replay_interval)
            try:
                # Replay when the breaker is closed, or would let a trial call through now.
                if (breaker is None or breaker.retry_after <= 0) and await asyncio.to_thread(
                    self.dead_letters.depth
                ):
                    await self.replay()
            except Exception:
                log.exception("dead-letter replay failed")

    async def replay(self) -> int:
        """Replay the dead-lettered confirmations through the email pipeline; returns how many were sent.

        Every worker may replay: the queue leases each item to one replayer, and the message carries the
        registration's idempotency key, so the provider delivers it once even if a replayer dies mid-item.
        """
        async with self._replay_lock:
            self._replayed = []
            report = await self.dead_letters.areplay(self._deliver, self.pipelines["email"])
            for message in self._replayed:
                await self.platform.mark_sent(message)
        if report.replayed or report.failed or report.stopped:
            log.info(
                "replayed %d confirmation emails, %d failed again, %d waiting%s",
                report.replayed,
                report.failed,
                report.remaining,
                f" (stopped: {report.stopped})" if report.stopped else "",
            )
        return int(report.replayed)

    async def _deliver(self, message: dict[str, Any]) -> None:
        """One call to the email provider (the function the email pipeline and the replay run)."""
        letter = current_letter()
        payload = {k: message[k] for k in ("to", "subject", "body")}
        # On replay the queue's idempotency key is the one the provider deduplicates on.
        payload["idempotency_key"] = (
            letter.idempotency_key if letter is not None else confirmation_key(message)
        )
        await self.platform.email.send(payload)
        if letter is not None:
            self._replayed.append(message)

    async def send_email(self, message: dict[str, Any]) -> bool:
        """Send a confirmation; ``False`` when it was dead-lettered for a later replay.

        Raises:
            StoreError: when it could neither be sent nor dead-lettered (the work was not saved).
        """
        from buttress.demo.errors import correlation_id

        token = CORRELATION_ID.set(message.get("correlation_id") or correlation_id())
        try:
            await self._send(message)
        except Exception as exc:
            if getattr(exc, "dead_letter_id", None) is None:
                raise
            return False
        finally:
            CORRELATION_ID.reset(token)
        await self.platform.mark_sent(message)
        self.platform.count_sent()
        return True

    async def _cached_signed_url(self, key: str) -> str:
        cache = self.caches.get("media")
        if cache is None:
            return str(await self._sign(key))
        result: str = await cache.get_or_load(key, lambda: self._sign(key))
        return result

    async def signed_url(self, key: str) -> str:
        """A signed URL for ``key`` (cached in ``media``); the placeholder when storage is failing."""
        result: str = await self._signed_url(key)
        return result

    def _recent_principal(self, error: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        token = args[0] if args else kwargs.get("token")
        known = self._tokens.get(token) if isinstance(token, str) else None
        if known is not None and self.platform.clock.monotonic() - known[1] <= self._token_grace:
            return known[0]
        return NO_FALLBACK

    async def verify_token(self, token: str) -> dict[str, Any] | None:
        """The token's principal from the identity provider, or ``None`` when it says no.

        Raises:
            ApiError: 503 when the provider cannot be asked and the token was not verified recently.
        """
        from buttress.demo.errors import ApiError
        from buttress.resilience import CircuitOpenError

        try:
            principal: dict[str, Any] | None = await self._verify(token)
        except Exception as exc:
            wait = exc.retry_after if isinstance(exc, CircuitOpenError) else 5.0
            raise ApiError(
                503,
                "identity_unavailable",
                "The identity provider cannot check the token right now; try again shortly.",
                headers={"Retry-After": str(max(1, round(wait)))},
            ) from None
        known = self._tokens.get(token)
        if known is not None and principal is known[0]:
            return principal  # the fallback's answer: the grace runs from the provider's last "yes"
        if principal is not None:
            self._tokens[token] = (principal, self.platform.clock.monotonic())
        else:
            self._tokens.pop(token, None)
        return principal

    # ----------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop listening for invalidations and transitions; close cache and dead-letter connections."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._invalidator is not None:
            self._invalidator.close()
        for cache in self.caches.values():
            await cache.aclose()
        if self.dead_letters is not None:
            await asyncio.to_thread(self.dead_letters.store.close)


async def build(platform: Platform) -> Wiring:
    """Build the parts from configuration for ``platform``."""
    wiring = Wiring(platform, demo_config(platform.settings.config_path))
    if platform.settings.cache:
        wiring.build_caches()
    wiring.build_resilience()
    return wiring
