"""Read-through and write-through: the cache stands in front of the source for callers.

**Read-through** binds a loader to a cache, so callers ask the cache only: ``events.get(code)`` loads
and stores on a miss, with the single-flight, XFetch and lease behaviour of
:meth:`~buttress.cache.Cache.get_or_load`.

**Write-through** writes the source first, then the cache. The cases:

==================================== ======================================================================
source write fails                   the exception reaches the caller; the cache is not touched (it still
                                     holds what the source still holds)
source ok, value not serialisable    the key is deleted from the cache (no stale copy), then
                                     :class:`~buttress.cache.serialize.SerializationError` is raised
source ok, cache backend unreachable the write is acknowledged (the source has it); the cache write is dropped
                                     and counted in ``buttress_cache_errors_total{kind="backend"}``. The old
                                     value may be served until its TTL ends — from Redis, and from other
                                     processes' L1 copies, whose invalidation message could not be sent.
                                     :attr:`WriteThrough.stale_risk` counts these writes.
==================================== ======================================================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from buttress.cache.api import AsyncCache, Cache
from buttress.cache.serialize import SerializationError

__all__ = ["AsyncReadThrough", "AsyncWriteThrough", "ReadThrough", "WriteThrough"]

K = TypeVar("K", bound=str)
V = TypeVar("V")


class ReadThrough(Generic[V]):
    """A cache that loads what it lacks with ``loader(key)``.

    Args:
        cache: the namespace.
        loader: ``key -> value`` from the source of truth.
        many: optional ``keys -> {key: value}`` used by :meth:`get_many` for the keys missing.
        ttl: seconds, overriding the namespace strategy.
    """

    def __init__(
        self,
        cache: Cache,
        loader: Callable[[Any], V],
        *,
        many: Callable[[list[Any]], dict[Any, V]] | None = None,
        ttl: float | None = None,
    ) -> None:
        self.cache = cache
        self.loader = loader
        self.many = many
        self.ttl = ttl

    def get(self, key: Any) -> V:
        """The value of ``key``, from the cache or loaded into it."""
        loader = self.loader
        return self.cache.get_or_load(key, lambda: loader(key), ttl=self.ttl)

    def get_many(self, keys: Iterable[Any]) -> dict[Any, V]:
        """Values of ``keys``: one cache round trip, then one batch load for the missing keys."""
        keys = list(keys)
        found = self.cache.get_many(keys)
        missing = [k for k in keys if k not in found]
        if missing:
            loaded = self.many(missing) if self.many is not None else {k: self.loader(k) for k in missing}
            if loaded:
                self.cache.set_many(loaded, ttl=self.ttl)
            found.update(loaded)
        return found


class AsyncReadThrough(Generic[V]):
    """:class:`ReadThrough` for :class:`~buttress.cache.AsyncCache` with an async loader."""

    def __init__(
        self,
        cache: AsyncCache,
        loader: Callable[[Any], Awaitable[V]],
        *,
        many: Callable[[list[Any]], Awaitable[dict[Any, V]]] | None = None,
        ttl: float | None = None,
    ) -> None:
        self.cache = cache
        self.loader = loader
        self.many = many
        self.ttl = ttl

    async def get(self, key: Any) -> V:
        """The value of ``key``, from the cache or loaded into it."""
        loader = self.loader
        return await self.cache.get_or_load(key, lambda: loader(key), ttl=self.ttl)

    async def get_many(self, keys: Iterable[Any]) -> dict[Any, V]:
        """Values of ``keys``, batch-loading the missing ones."""
        keys = list(keys)
        found = await self.cache.get_many(keys)
        missing = [k for k in keys if k not in found]
        if missing:
            if self.many is not None:
                loaded = await self.many(missing)
            else:
                loaded = {k: await self.loader(k) for k in missing}
            if loaded:
                await self.cache.set_many(loaded, ttl=self.ttl)
            found.update(loaded)
        return found


class WriteThrough(Generic[V]):
    """Writes go to the source, then to the cache (see the module docstring for the failure cases).

    Args:
        cache: the namespace.
        writer: ``(key, value) -> None`` writing the source of truth; raises when it fails.
        ttl: seconds, overriding the namespace strategy.
    """

    def __init__(self, cache: Cache, writer: Callable[[Any, V], None], *, ttl: float | None = None) -> None:
        self.cache = cache
        self.writer = writer
        self.ttl = ttl
        self.stale_risk = 0

    def write(self, key: Any, value: V) -> None:
        """Write the source, then the cache.

        Raises:
            Exception: whatever the source writer raised (the cache is then untouched).
            SerializationError: the value reached the source but cannot be cached; the key was deleted.
        """
        self.writer(key, value)
        errors = self.cache.core.metrics.errors
        before = errors.value
        try:
            self.cache.set(key, value, ttl=self.ttl)
        except SerializationError:
            self.cache.delete(key)
            raise
        if errors.value != before:
            self.stale_risk += 1


class AsyncWriteThrough(Generic[V]):
    """:class:`WriteThrough` for :class:`~buttress.cache.AsyncCache` with an async writer."""

    def __init__(
        self, cache: AsyncCache, writer: Callable[[Any, V], Awaitable[None]], *, ttl: float | None = None
    ) -> None:
        self.cache = cache
        self.writer = writer
        self.ttl = ttl
        self.stale_risk = 0

    async def write(self, key: Any, value: V) -> None:
        """Write the source, then the cache (see :meth:`WriteThrough.write`)."""
        await self.writer(key, value)
        errors = self.cache.core.metrics.errors
        before = errors.value
        try:
            await self.cache.set(key, value, ttl=self.ttl)
        except SerializationError:
            await self.cache.delete(key)
            raise
        if errors.value != before:
            self.stale_risk += 1
