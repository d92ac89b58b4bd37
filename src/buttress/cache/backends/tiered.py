"""Two tiers: a memory L1 in each process in front of a shared Redis L2, kept coherent over pub/sub.

Reads try L1, then L2; a value found in L2 is copied into L1. Writes go to L2, then L1, then a message on
the namespace's invalidation channel (``<prefix>__inv__``) tells every other process to drop its L1
copy. Messages carry the sender's id (so a process ignores its own) and the publish time (so the
receiver records publish → applied delay).

**The read/invalidate race.** Process A reads ``k`` from L2 (old value); before A stores it in L1, B
writes ``k`` and A receives B's invalidation. If A then stored what it read, L1 would hold the old value
until TTL. Every invalidation and local write bumps an epoch counter; a read remembers the epoch before
going to L2 and copies into L1 only if the epoch has not moved. (A per-key sequence would waste fewer
copies but costs a dictionary per key; invalidations are rare next to reads, so a skipped copy is rare.)

**Lost messages.** Pub/sub keeps nothing for a disconnected subscriber, so when the listener loses its
connection L1 is flushed as soon as it is back. Until then L1 keeps serving: with Redis down, its copies
are the only cache there is (bounded by their TTL, and by ``l1_ttl`` when set).

Works the same on RESP2 and RESP3 (redis-py ``protocol=3``) and on Redis ≥ 6; it does not use
client-side tracking, whose RESP3 push messages are what make some two-tier caches silently serve stale
data.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from buttress.cache.backends.memory import MISS, MemoryStore
from buttress.cache.backends.redis import RedisBackend
from buttress.cache.invalidation import LocalTags, RedisTags, _Listener
from buttress.cache.metrics import CacheMetrics
from buttress.cache.serialize import Envelope

__all__ = ["TieredBackend"]


class TieredBackend:
    """L1 :class:`MemoryStore` + L2 :class:`RedisBackend`, one object for the sync and async faces.

    Args:
        l1: the in-process store.
        l2: the Redis backend of the namespace.
        metrics: where the invalidation delay is recorded.
        tags: the namespace's Redis tag stamps (their local mirror is kept current here).
        promote_ttl: how long a copy read from L2 lives in L1 (the namespace TTL, or ``l1_ttl``).
        l1_ttl: the longest an L1 copy lives (default: the TTL it is written with).
        listen: start the invalidation listener thread (off only in tests of the race guard).
    """

    def __init__(
        self,
        l1: MemoryStore,
        l2: RedisBackend,
        *,
        metrics: CacheMetrics,
        tags: RedisTags,
        promote_ttl: float,
        l1_ttl: float | None = None,
        listen: bool = True,
    ) -> None:
        self.l1 = l1
        self.l2 = l2
        self.metrics = metrics
        self.tags = tags
        self.local_tags: LocalTags = tags.local
        self.l1_ttl = l1_ttl
        self.promote_ttl = promote_ttl if l1_ttl is None else min(promote_ttl, l1_ttl)
        self.channel = l2.prefix + "__inv__"
        self.origin = secrets.token_hex(6)
        self._epochs = itertools.count(1)
        self.epoch = 0
        self._l1_get = l1.get
        self._l1_put = l1.put
        self._listener: _Listener | None = None
        self.invalidations_applied = 0
        self._applied = threading.Condition()
        if listen:
            self._listener = _Listener(
                l2.client,
                self.channel,
                self._on_message,
                name=f"buttress-cache-{l2.prefix}",
                on_connect=self._flush,
                on_disconnect=self._disconnected,
            )
            self._listener.start()
            self._listener.ready.wait(5)

    # -- coherence ------------------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        """True while the invalidation channel is subscribed."""
        return self._listener is not None and self._listener.connected

    def _bump(self) -> None:
        self.epoch = next(self._epochs)

    def _flush(self) -> None:
        # On every (re)subscription: messages sent while we were not listening are lost.
        self._bump()
        self.l1.clear()
        self.local_tags.clear()
        with self._applied:
            self._applied.notify_all()

    def _disconnected(self) -> None:
        # L1 keeps serving during an outage (see docs/cache.md); waiters on ``listening`` are told.
        with self._applied:
            self._applied.notify_all()

    def _on_message(self, data: bytes) -> None:
        try:
            origin, published, kind, rest = data.decode().split("|", 3)
        except (UnicodeDecodeError, ValueError):
            return
        if origin == self.origin:
            return
        self._bump()
        if kind == "k":
            self.l1.delete(rest)
        elif kind == "t":
            tag, _, stamp = rest.rpartition("|")
            self.local_tags.observe(tag, int(stamp))
        elif kind == "c":
            self.l1.clear()
        self.metrics.invalidation_delay.sketch.add(max(0.0, time.time() - float(published)))
        with self._applied:
            self.invalidations_applied += 1
            self._applied.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds, re-checking after each applied invalidation (tests, tools).

        Returns:
            Whether it held before ``timeout`` seconds passed.
        """
        with self._applied:
            return self._applied.wait_for(predicate, timeout)

    def _message(self, kind: str, body: str) -> str:
        # Wall-clock time: the delay is measured across processes, which share no monotonic clock.
        return f"{self.origin}|{time.time():.6f}|{kind}|{body}"

    def _fill(self, key: str, value: Any, ttl: float) -> None:
        ttl = ttl if self.l1_ttl is None else min(ttl, self.l1_ttl)
        self._l1_put(key, value, ttl)

    def _promote(self, key: str, value: Any, epoch: int) -> None:
        if epoch != self.epoch:
            return
        self._l1_put(key, value, self.promote_ttl)
        if epoch != self.epoch:  # an invalidation slipped in between the check and the put
            self.l1.delete(key)

    # -- sync face --------------------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        """L1, else L2 (copied into L1 unless an invalidation raced the read)."""
        value = self._l1_get(key)
        if value is not MISS:
            return value
        return self.get_l2(key)

    def get_l2(self, key: str) -> Any:
        """L2 only (the caller found nothing in L1), copied into L1 unless an invalidation raced it."""
        epoch = self.epoch
        value = self.l2.get(key)
        if value is MISS:
            return MISS
        if type(value) is Envelope and value.tags and not self.tags.valid_remote(value.tags):
            return MISS
        self._promote(key, value, epoch)
        return value

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """L1 for each key, one L2 round trip for the rest."""
        out = [self._l1_get(k) for k in keys]
        missing = [i for i, v in enumerate(out) if v is MISS]
        if not missing:
            return out
        epoch = self.epoch
        found = self.l2.get_many([keys[i] for i in missing])
        for i, value in zip(missing, found, strict=True):
            if value is MISS:
                continue
            if type(value) is Envelope and value.tags and not self.tags.valid_remote(value.tags):
                continue
            out[i] = value
            self._promote(keys[i], value, epoch)
        return out

    def set(self, key: str, value: Any, ttl: float) -> None:
        """L2, then L1, then tell the other processes."""
        self._bump()
        self.l2.set(key, value, ttl)
        self._fill(key, value, ttl)
        self.l2.publish(self.channel, self._message("k", key))

    def set_many(self, items: Sequence[tuple[str, Any, float]]) -> None:
        """One L2 pipeline, L1 copies, one message per key."""
        self._bump()
        self.l2.set_many(items)
        for key, value, ttl in items:
            self._fill(key, value, ttl)
            self.l2.publish(self.channel, self._message("k", key))

    def delete(self, key: str) -> bool:
        """Remove from both tiers and from every other process's L1."""
        self._bump()
        self.l1.delete(key)
        existed = self.l2.delete(key)
        self.l2.publish(self.channel, self._message("k", key))
        return existed

    def bump_tag(self, tag: str) -> int:
        """Invalidate ``tag`` in Redis and tell the other processes its new stamp."""
        self._bump()
        stamp = self.tags.bump(tag)
        self.l2.publish(self.channel, self._message("t", f"{tag}|{stamp}"))
        return stamp

    def clear(self) -> None:
        """Empty both tiers everywhere."""
        self._bump()
        self.l1.clear()
        self.l2.clear()
        self.l2.publish(self.channel, self._message("c", ""))

    def close(self) -> None:
        """Stop the listener and close the Redis connections."""
        if self._listener is not None:
            self._listener.stop()
        self.l2.close()

    # -- async face -------------------------------------------------------------------------------------

    async def aget(self, key: str) -> Any:
        """Async :meth:`get`."""
        value = self._l1_get(key)
        if value is not MISS:
            return value
        return await self.aget_l2(key)

    async def aget_l2(self, key: str) -> Any:
        """Async :meth:`get_l2`."""
        epoch = self.epoch
        value = await self.l2.aget(key)
        if value is MISS:
            return MISS
        if type(value) is Envelope and value.tags and not await self.tags.avalid_remote(value.tags):
            return MISS
        self._promote(key, value, epoch)
        return value

    async def aget_many(self, keys: Sequence[str]) -> list[Any]:
        """Async :meth:`get_many`."""
        out = [self._l1_get(k) for k in keys]
        missing = [i for i, v in enumerate(out) if v is MISS]
        if not missing:
            return out
        epoch = self.epoch
        found = await self.l2.aget_many([keys[i] for i in missing])
        for i, value in zip(missing, found, strict=True):
            if value is MISS:
                continue
            if type(value) is Envelope and value.tags and not await self.tags.avalid_remote(value.tags):
                continue
            out[i] = value
            self._promote(keys[i], value, epoch)
        return out

    async def aset(self, key: str, value: Any, ttl: float) -> None:
        """Async :meth:`set`."""
        self._bump()
        await self.l2.aset(key, value, ttl)
        self._fill(key, value, ttl)
        await self.l2.apublish(self.channel, self._message("k", key))

    async def aset_many(self, items: Sequence[tuple[str, Any, float]]) -> None:
        """Async :meth:`set_many`."""
        self._bump()
        await self.l2.aset_many(items)
        for key, value, ttl in items:
            self._fill(key, value, ttl)
            await self.l2.apublish(self.channel, self._message("k", key))

    async def adelete(self, key: str) -> bool:
        """Async :meth:`delete`."""
        self._bump()
        self.l1.delete(key)
        existed = await self.l2.adelete(key)
        await self.l2.apublish(self.channel, self._message("k", key))
        return existed

    async def abump_tag(self, tag: str) -> int:
        """Async :meth:`bump_tag`."""
        self._bump()
        stamp = await self.tags.abump(tag)
        await self.l2.apublish(self.channel, self._message("t", f"{tag}|{stamp}"))
        return stamp

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        self._bump()
        self.l1.clear()
        await self.l2.aclear()
        await self.l2.apublish(self.channel, self._message("c", ""))

    async def aclose(self) -> None:
        """Stop the listener and close the async connections."""
        if self._listener is not None:
            self._listener.stop()
        await self.l2.aclose()
        self.l2.close()
