"""How the platform uses each part of buttress: caches, resilience pipelines, dead letters.

:func:`build` reads the demo's configuration — the embedded ``buttress.demo.toml`` unless the settings
name another file — and builds every part once, at startup; the request path only calls what was built.

**Caches.** One :class:`~buttress.cache.AsyncCache` per namespace (``events``, ``speakers``, ``search``,
``media``) from ``[cache.namespaces.*]``; ``--redis-url`` turns each into a two-tier cache (memory L1,
Redis L2). Writes publish domain events (``event.updated``, ``speaker.updated``, …) on an invalidation
bus; an :class:`~buttress.cache.EventInvalidator` maps them to the tags of ``invalidate_on`` and bumps
exactly those tags. With Redis the bump is a Redis counter announced on the namespace's invalidation
channel, so every other worker drops its L1 copies too.
"""

from __future__ import annotations

import asyncio
import hashlib
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buttress.config import Config
    from buttress.demo.platform import Loader, Platform

__all__ = ["NAMESPACES", "Wiring", "build", "demo_config"]

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

    async def signed_url(self, key: str) -> str:
        """A signed URL for ``key`` from object storage (cached in ``media``)."""
        storage = self.platform.storage
        cache = self.caches.get("media")
        if cache is None:
            return await storage.sign(key)
        result: str = await cache.get_or_load(key, lambda: storage.sign(key))
        return result

    async def send_email(self, message: dict[str, Any]) -> bool:
        """Send a confirmation; ``False`` when it was dead-lettered for a later replay."""
        await self.platform.deliver_email(message)
        self.platform.count_email("sent")
        return True

    async def verify_token(self, token: str) -> dict[str, Any] | None:
        """The token's principal from the identity provider, or ``None``."""
        return await self.platform.identity.verify(token)

    # ----------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop listening for invalidations and close cache connections."""
        if self._invalidator is not None:
            self._invalidator.close()
        for cache in self.caches.values():
            await cache.aclose()


async def build(platform: Platform) -> Wiring:
    """Build the parts from configuration for ``platform``."""
    wiring = Wiring(platform, demo_config(platform.settings.config_path))
    if platform.settings.cache:
        wiring.build_caches()
    return wiring
