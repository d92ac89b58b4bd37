"""What the cache API needs from a shared backend, as two protocols with distinct method names.

A backend never raises for an outage: a read that cannot reach the server is a miss (``MISS``), a write
that cannot is dropped, and both are counted in ``buttress_cache_errors_total{kind="backend"}``. It does
raise :class:`~buttress.cache.serialize.SerializationError` for a value that cannot be stored at all —
that is the caller's bug, not an outage.

Sync methods and async methods have different names (``get`` / ``aget``) so one object can serve both
faces of a namespace. The cache builds its shared backends itself from the ``backend=`` URL
(:class:`~buttress.cache.backends.redis.RedisBackend`, and
:class:`~buttress.cache.backends.tiered.TieredBackend` in front of it); both keep these two contracts,
which the tests check. A namespace does not accept a backend object of another kind yet.

The in-process :class:`~buttress.cache.backends.memory.MemoryStore` is not a backend in this sense: the
cache binds its methods directly, which is what keeps a memory hit near 150 ns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["AsyncBackend", "SyncBackend"]


@runtime_checkable
class SyncBackend(Protocol):
    """A blocking shared backend for :class:`~buttress.cache.Cache`.

    Keys are the namespace's keys (strings); the backend adds its own prefix.
    """

    def get(self, key: str) -> Any:
        """The stored value, or ``MISS``."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """Values (or ``MISS``) in the order of ``keys``, in one round trip."""
        ...

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        ...

    def set_many(self, items: Sequence[tuple[str, Any, float]]) -> None:
        """Store ``(key, value, ttl)`` triples in one round trip."""
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; true when it existed."""
        ...

    def clear(self) -> None:
        """Remove every entry of the namespace."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...


@runtime_checkable
class AsyncBackend(Protocol):
    """The asyncio counterpart of :class:`SyncBackend` for :class:`~buttress.cache.AsyncCache`."""

    async def aget(self, key: str) -> Any:
        """The stored value, or ``MISS``."""
        ...

    async def aget_many(self, keys: Sequence[str]) -> list[Any]:
        """Values (or ``MISS``) in the order of ``keys``, in one round trip."""
        ...

    async def aset(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        ...

    async def aset_many(self, items: Sequence[tuple[str, Any, float]]) -> None:
        """Store ``(key, value, ttl)`` triples in one round trip."""
        ...

    async def adelete(self, key: str) -> bool:
        """Remove ``key``; true when it existed."""
        ...

    async def aclear(self) -> None:
        """Remove every entry of the namespace."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
