"""How the platform uses each part of buttress: caches, resilience pipelines, dead letters.

:func:`build` reads the demo's configuration — the embedded ``buttress.demo.toml`` unless the settings
name another file — and builds every part once, at startup; the request path only calls what was built.

**Caches.** One :class:`~buttress.cache.AsyncCache` per namespace (``events``, ``speakers``, ``search``,
``media``) from ``[cache.namespaces.*]``; ``--redis-url`` turns each into a two-tier cache (memory L1,
Redis L2). Writes publish domain events (``event.updated``, ``speaker.updated``, …) on an invalidation
bus; an :class:`~buttress.cache.EventInvalidator` maps them to the tags of ``invalidate_on`` and bumps
exactly those tags. With Redis the bump is a Redis counter announced on the namespace's invalidation
channel, so every other worker drops its L1 copies too.

**Providers.** Each provider call runs through its named policies, ``Retry`` outermost, a
``CircuitBreaker`` inside it (an open circuit stops retrying at once) and a ``Bulkhead`` innermost,
with the HTTP timeouts of ``[demo.policies.<name>]``. What happens when a call still fails is the
platform's choice per provider:

* email — the confirmation is dead-lettered (:mod:`buttress.demo.deadletters`) and replayed when the
  email breaker closes again, or by the periodic replay once the breaker lets a trial through;
* storage — the page gets a placeholder image (not cached), counted as a fallback;
* identity — a token verified in the last five minutes is accepted again, counted as a fallback; any
  other is refused with 503 and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buttress.config import Config
    from buttress.demo.platform import Loader, Platform

__all__ = ["NAMESPACES", "PLACEHOLDER_IMAGE", "Wiring", "build", "demo_config"]

log = logging.getLogger("buttress.demo")

#: What an event page shows when object storage cannot sign its image.
PLACEHOLDER_IMAGE = "/placeholder.svg"
#: How long a token the identity provider accepted is accepted again while the provider is failing.
TOKEN_GRACE = 300.0
#: Seconds between checks for dead letters to replay (worker 0 only).
REPLAY_INTERVAL = 5.0

#: The cache namespaces the platform reads through.
NAMESPACES = ("events", "speakers", "search", "media")


def demo_config(path: str | None = None) -> Config:
    """The demo's configuration: the file at ``path``, or the embedded ``buttress.demo.toml``."""
    from buttress import config

    if path is not None:
        return config.load(path)
    text = resources.files("buttress.demo").joinpath("buttress.demo.toml").read_text(encoding="utf-8")
    return config.loads(text, "buttress.demo.toml (embedded)")


class Wiring:
    """The buttress parts one platform process uses.

    Args:
        platform: the platform process.
        cfg: the validated configuration.
    """

    def __init__(self, platform: Platform, cfg: Config) -> None:
        self.platform = platform
        self.config = cfg
        self.caches: dict[str, Any] = {}
        self.bus: Any = None
        self._invalidator: Any = None
        self._remote_bus = False
        self.breakers: dict[str, Any] = {}
        self.dead_letters: Any = None
        self._calls: dict[str, Any] = {}
        self._tokens: dict[str, tuple[dict[str, Any], float]] = {}
        self._replay_lock = asyncio.Lock()
        self._unsubscribe: Any = None
        registry = platform.registry
        self._fallbacks = {
            name: registry.counter(
                "buttress_demo_fallbacks", "Provider failures answered by a fallback.", {"provider": name}
            )
            for name in ("storage", "identity")
        }
        self._depth = registry.gauge(
            "buttress_demo_dead_letters",
            "Confirmation emails waiting in the dead-letter queue.",
            {"queue": "email"},
        )

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
        """A retry and a circuit breaker per provider, from ``[demo.policies]``; the dead letters."""
        import httpx

        from buttress.demo.deadletters import DeadLetters
        from buttress.demo.schema import POLICY
        from buttress.resilience.bulkhead import Bulkhead
        from buttress.resilience.circuit import CircuitBreaker
        from buttress.resilience.retry import Retry
        from buttress.telemetry import EVENTS, StateTransition

        platform = self.platform
        configured = self.config.section("demo")["policies"]
        targets: dict[str, Callable[..., Any]] = {
            "email": platform.email.send,
            "storage": platform.storage.sign,
            "identity": platform.identity.verify,
        }
        clients = {"email": platform.email, "storage": platform.storage, "identity": platform.identity}
        for name, fn in targets.items():
            where = f"demo.policies.{name}"
            policy = dict(configured.get(name) or POLICY.parse({}, where, _no_problems()))
            # A sub-table left out of the file comes back as None: fill it with its defaults.
            for part in ("retry", "breaker", "bulkhead"):
                if policy[part] is None:
                    policy[part] = POLICY.fields[part].parse({}, f"{where}.{part}", _no_problems())
            b, r = policy["breaker"], policy["retry"]
            breaker = CircuitBreaker(
                name,
                window=b["window"],
                failure_rate=b["failure_rate"],
                minimum_calls=min(b["minimum_calls"], b["window"]),
                wait_open=b["wait_open"],
                half_open_calls=b["half_open_calls"],
                clock=platform.clock,
                registry=platform.registry,
                events=EVENTS,
            )
            retry = Retry(
                name,
                attempts=r["attempts"],
                base=r["base"],
                factor=r["factor"],
                max_delay=r["max"],
                jitter=r["jitter"],
                clock=platform.clock,
                registry=platform.registry,
            )
            bulkhead = Bulkhead(
                name,
                max_concurrent=policy["bulkhead"]["max_concurrent"],
                max_wait=policy["bulkhead"]["max_wait"],
                clock=platform.clock,
                registry=platform.registry,
            )
            clients[name].timeout = httpx.Timeout(policy["timeout"], connect=policy["connect_timeout"])
            self.breakers[name] = breaker
            # Resilience4j's order: retry outermost, then the breaker, the bulkhead innermost.
            self._calls[name] = retry(breaker(bulkhead(fn)))
        self.dead_letters = DeadLetters(platform.engine, "email")
        if platform.settings.worker == "0":
            loop = asyncio.get_running_loop()

            def on_transition(event: Any) -> None:
                # Called on whichever thread moved the breaker; the replay runs on the platform's loop.
                if (
                    isinstance(event, StateTransition)
                    and event.name == "email"
                    and event.to_state == "closed"
                ):
                    loop.call_soon_threadsafe(self._kick_replay)

            self._unsubscribe = EVENTS.subscribe(on_transition, StateTransition)
            platform.spawn(self._replay_loop(), "dead-letter replay")

    def _kick_replay(self) -> None:
        self.platform.spawn(self.replay(), "dead-letter replay after recovery")

    async def _replay_loop(self) -> None:
        breaker = self.breakers["email"]
        while True:
            try:
                depth = await self.dead_letters.depth()
                self._depth.set(depth)
                # Replay when the breaker is closed, or would let a trial call through now.
                if depth and breaker.retry_after <= 0:
                    await self.replay()
            except Exception:
                log.exception("dead-letter replay failed")
            await asyncio.sleep(REPLAY_INTERVAL)

    async def replay(self) -> int:
        """Replay the dead-lettered confirmations through the email pipeline; returns how many were sent."""
        from buttress.resilience import CircuitOpenError

        platform = self.platform
        async with self._replay_lock:
            result = await self.dead_letters.replay(self._deliver, stop_on=(CircuitOpenError,))
            for _ in range(result.replayed):
                platform.count_email("replayed")
            self._depth.set(await self.dead_letters.depth())
        if result.replayed or result.stopped:
            log.info(
                "replayed %d confirmation emails%s",
                result.replayed,
                f" ({result.stopped})" if result.stopped else "",
            )
        return int(result.replayed)

    async def _deliver(self, message: dict[str, Any]) -> None:
        payload = {k: message[k] for k in ("to", "subject", "body", "idempotency_key")}
        await self._calls["email"](payload)

    async def signed_url(self, key: str) -> str:
        """A signed URL for ``key`` (cached in ``media``); the placeholder when storage is failing."""
        sign = self._calls.get("storage", self.platform.storage.sign)
        cache = self.caches.get("media")
        try:
            if cache is None:
                return str(await sign(key))
            result: str = await cache.get_or_load(key, lambda: sign(key))
            return result
        except Exception:
            self._fallbacks["storage"].value += 1
            return PLACEHOLDER_IMAGE

    async def send_email(self, message: dict[str, Any]) -> bool:
        """Send a confirmation; ``False`` when it was dead-lettered for a later replay."""
        from buttress.demo.errors import correlation_id

        platform = self.platform
        try:
            if "email" in self._calls:
                await self._deliver(message)
            else:
                await platform.email.send(
                    {k: message[k] for k in ("to", "subject", "body", "idempotency_key")}
                )
        except Exception as exc:
            if self.dead_letters is None:
                raise
            attempts = int(getattr(exc, "retry_attempts", 1))
            await self.dead_letters.put(
                message, exc, attempts, message.get("correlation_id") or correlation_id()
            )
            platform.count_email("dead_lettered")
            if platform.settings.worker == "0":
                self._depth.set(await self.dead_letters.depth())
            return False
        await platform.mark_sent(message)
        platform.count_email("sent")
        return True

    async def verify_token(self, token: str) -> dict[str, Any] | None:
        """The token's principal from the identity provider, or ``None`` when it says no.

        Raises:
            ApiError: 503 when the provider cannot be asked and the token was not verified recently.
        """
        from buttress.demo.errors import ApiError
        from buttress.resilience import CircuitOpenError

        verify = self._calls.get("identity", self.platform.identity.verify)
        now = time.monotonic()
        try:
            principal: dict[str, Any] | None = await verify(token)
        except Exception as exc:
            known = self._tokens.get(token)
            if known is not None and now - known[1] <= TOKEN_GRACE:
                self._fallbacks["identity"].value += 1
                return known[0]
            wait = exc.retry_after if isinstance(exc, CircuitOpenError) else 5.0
            raise ApiError(
                503,
                "identity_unavailable",
                "The identity provider cannot check the token right now; try again shortly.",
                headers={"Retry-After": str(max(1, round(wait)))},
            ) from None
        if principal is not None:
            self._tokens[token] = (principal, now)
        else:
            self._tokens.pop(token, None)
        return principal

    # ----------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop listening for invalidations and transitions, and close cache connections."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._invalidator is not None:
            self._invalidator.close()
        for cache in self.caches.values():
            await cache.aclose()


async def build(platform: Platform) -> Wiring:
    """Build the parts from configuration for ``platform``."""
    wiring = Wiring(platform, demo_config(platform.settings.config_path))
    if platform.settings.cache:
        wiring.build_caches()
    wiring.build_resilience()
    return wiring


def _no_problems() -> Any:
    from buttress.config import Problems

    return Problems()
