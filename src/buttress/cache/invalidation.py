"""Invalidation: by key, by tag in O(1), and by domain events carried on a bus.

**Tags.** Each tag has a version stamp. An entry written with tags stores the stamps its tags had at
that moment; a read compares them with the current stamps and treats any difference as a miss.
Invalidating a tag is one increment — O(1) whatever the number of entries — and entries of an
invalidated tag are never scanned or deleted: they are skipped on read and expire by TTL. In process the
stamps are a dictionary (:class:`LocalTags`); in Redis they are counters under the namespace prefix
(:class:`RedisTags`), read with one ``MGET`` when a tagged entry comes from Redis, and mirrored in
process for L1 copies, which the tiered backend keeps current from the invalidation channel.

**Events.** A bus (:class:`InvalidationBus`: :class:`LocalBus` in process, :class:`RedisBus` over Redis
pub/sub, or any adapter with ``publish``/``subscribe``) carries domain events such as
``event.updated {"code": "PyCon-25"}``. :class:`EventInvalidator` maps each event name to key templates
and ``tag:`` targets, as configured with ``invalidate_on`` in ``[cache.namespaces.<name>]``::

    invalidate_on = { "event.updated" = ["event:{code}", "tag:events-list"] }
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from buttress.cache.keys import CacheKeyError

if TYPE_CHECKING:
    from buttress.cache.api import Cache
    from buttress.cache.backends.redis import RedisBackend

__all__ = [
    "EventInvalidator",
    "InvalidationBus",
    "LocalBus",
    "LocalTags",
    "RedisBus",
    "RedisTags",
    "Tags",
]

Pairs = tuple[tuple[str, int], ...]


class Tags(Protocol):
    """Version stamps of tags: what a write records and what a read checks."""

    def stamps(self, tags: Sequence[str]) -> Pairs:
        """``(tag, stamp)`` pairs for an entry written now."""
        ...

    def valid(self, pairs: Pairs) -> bool:
        """True when none of the entry's tags was invalidated since it was written."""
        ...

    async def avalid(self, pairs: Pairs) -> bool:
        """:meth:`valid` for the async face (may do I/O)."""
        ...

    def bump(self, tag: str) -> int:
        """Invalidate ``tag``: increment and return its stamp."""
        ...

    async def abump(self, tag: str) -> int:
        """Async :meth:`bump`."""
        ...


class LocalTags:
    """Tag stamps in a dictionary, for in-process namespaces and the L1 of a tiered one."""

    __slots__ = ("_stamps",)

    def __init__(self) -> None:
        self._stamps: dict[str, int] = {}

    def stamps(self, tags: Sequence[str]) -> Pairs:
        """Current stamps (0 for a tag never invalidated)."""
        get = self._stamps.get
        return tuple((t, get(t, 0)) for t in tags)

    def valid(self, pairs: Pairs) -> bool:
        """Every stamp still current."""
        get = self._stamps.get
        return all(get(tag, 0) == stamp for tag, stamp in pairs)

    async def avalid(self, pairs: Pairs) -> bool:
        """Same as :meth:`valid` (no I/O)."""
        return self.valid(pairs)

    def bump(self, tag: str) -> int:
        """Increment ``tag``'s stamp."""
        stamp = self._stamps.get(tag, 0) + 1
        self._stamps[tag] = stamp
        return stamp

    async def abump(self, tag: str) -> int:
        """Same as :meth:`bump`."""
        return self.bump(tag)

    def observe(self, tag: str, stamp: int) -> None:
        """Another process moved ``tag`` to ``stamp`` (never moves a stamp backwards)."""
        if stamp > self._stamps.get(tag, 0):
            self._stamps[tag] = stamp

    def clear(self) -> None:
        """Forget every stamp (after a reconnect, when bumps may have been missed)."""
        self._stamps.clear()


class RedisTags:
    """Tag stamps kept in Redis, so every process agrees; mirrored in ``local`` for L1 checks.

    Args:
        backend: the namespace's Redis backend.
        local: the in-process mirror, kept current from the invalidation channel by the tiered backend.
        remote_reads: check every read against Redis (for namespaces without an L1 and its channel).
    """

    __slots__ = ("backend", "local", "remote_reads")

    def __init__(self, backend: RedisBackend, local: LocalTags, *, remote_reads: bool) -> None:
        self.backend = backend
        self.local = local
        self.remote_reads = remote_reads

    def stamps(self, tags: Sequence[str]) -> Pairs:
        """Current stamps from Redis (the local mirror when Redis is unreachable)."""
        current = self.backend.tag_stamps(tags)
        if current is None:
            return self.local.stamps(tags)
        for tag, stamp in zip(tags, current, strict=True):
            self.local.observe(tag, stamp)
        return tuple(zip(tags, current, strict=True))

    def valid(self, pairs: Pairs) -> bool:
        """Checked against Redis when ``remote_reads``, else against the mirror."""
        if not self.remote_reads:
            return self.local.valid(pairs)
        return self.valid_remote(pairs)

    def valid_remote(self, pairs: Pairs) -> bool:
        """Checked against Redis; unreachable Redis makes the entry invalid (it cannot be vouched for)."""
        current = self.backend.tag_stamps([t for t, _ in pairs])
        if current is None:
            return False
        ok = True
        for (tag, stamp), now in zip(pairs, current, strict=True):
            self.local.observe(tag, now)
            ok = ok and now == stamp
        return ok

    async def avalid(self, pairs: Pairs) -> bool:
        """Async :meth:`valid`."""
        if not self.remote_reads:
            return self.local.valid(pairs)
        return await self.avalid_remote(pairs)

    async def avalid_remote(self, pairs: Pairs) -> bool:
        """Async :meth:`valid_remote`."""
        current = await self.backend.atag_stamps([t for t, _ in pairs])
        if current is None:
            return False
        ok = True
        for (tag, stamp), now in zip(pairs, current, strict=True):
            self.local.observe(tag, now)
            ok = ok and now == stamp
        return ok

    def bump(self, tag: str) -> int:
        """``INCR`` the tag in Redis (locally only when Redis is unreachable)."""
        stamp = self.backend.bump_tag(tag)
        if stamp is None:
            return self.local.bump(tag)
        self.local.observe(tag, stamp)
        return stamp

    async def abump(self, tag: str) -> int:
        """Async :meth:`bump`."""
        stamp = await self.backend.abump_tag(tag)
        if stamp is None:
            return self.local.bump(tag)
        self.local.observe(tag, stamp)
        return stamp


# --------------------------------------------------------------------------------------------------------
# Event buses
# --------------------------------------------------------------------------------------------------------

Handler = Callable[[str, Mapping[str, Any]], None]


class InvalidationBus(Protocol):
    """Carries domain events between the code that changes data and the caches that hold it.

    Adapters for other brokers (Kafka, NATS, RabbitMQ…) implement these two methods; ``subscribe``'s
    handler may be called from any thread.
    """

    def publish(self, event: str, payload: Mapping[str, Any]) -> None:
        """Send ``event`` with ``payload`` (JSON-compatible) to every subscriber, here and elsewhere."""
        ...

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call ``handler(event, payload)`` for each event; returns a function that unsubscribes."""
        ...


class LocalBus:
    """An in-process bus: ``publish`` calls every handler before it returns."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._lock = threading.Lock()

    def publish(self, event: str, payload: Mapping[str, Any]) -> None:
        """Deliver to each handler in subscription order."""
        for handler in list(self._handlers):
            handler(event, payload)

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Add ``handler``; call the result to remove it."""
        with self._lock:
            self._handlers.append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers:
                    self._handlers.remove(handler)

        return unsubscribe


class RedisBus:
    """Domain events over Redis pub/sub on one channel, delivered by a listener thread per process.

    Delivery is at most once (pub/sub keeps nothing for a disconnected subscriber); the tiered cache
    flushes its L1 when its own channel reconnects for that reason. Handlers run on the listener thread.

    Args:
        url: the Redis URL (see :mod:`buttress.cache.backends.redis`).
        channel: the pub/sub channel.
        client: an existing sync redis-py client instead of ``url``.
    """

    def __init__(
        self, url: str = "redis://127.0.0.1:6379/0", *, channel: str = "buttress:events", client: Any = None
    ):
        from buttress.cache.backends.redis import connect

        self.channel = channel
        self._client = client if client is not None else connect(url, socket_timeout=5.0)[0]
        self._handlers: list[Handler] = []
        self._lock = threading.Lock()
        self._listener: _Listener | None = None

    def publish(self, event: str, payload: Mapping[str, Any]) -> None:
        """``PUBLISH`` the event as JSON ``{"event": …, "payload": …}``."""
        self._client.publish(self.channel, json.dumps({"event": event, "payload": dict(payload)}))

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Add ``handler``; the listener thread starts with the first subscriber."""
        with self._lock:
            self._handlers.append(handler)
            if self._listener is None:
                self._listener = _Listener(self._client, self.channel, self._deliver, name="buttress-bus")
                self._listener.start()
                self._listener.ready.wait(10)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers:
                    self._handlers.remove(handler)

        return unsubscribe

    def _deliver(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            event, payload = message["event"], message["payload"]
        except (ValueError, KeyError, TypeError):
            return  # not ours
        for handler in list(self._handlers):
            handler(event, payload)

    def close(self) -> None:
        """Stop the listener thread and close the connection."""
        if self._listener is not None:
            self._listener.stop()
        try:
            self._client.close()
            from buttress.cache.backends.redis import _sentinel_clients

            for sentinel in _sentinel_clients(self._client):  # a Sentinel URL's own connections
                sentinel.close()
        except Exception:  # closing after the server is gone must not fail shutdown
            pass


class _Listener(threading.Thread):
    """Subscribes to one channel and hands each message to ``deliver``; resubscribes after errors.

    A server that dies closes the connection, but one that hangs (paused, partitioned, a Sentinel master
    replaced while frozen) keeps it open and silent: a subscriber would wait forever and miss every
    invalidation published on the new master. So after ``heartbeat`` seconds without a word from the
    server the listener sends ``PING``; with no answer within another ``heartbeat``, it drops the
    connection and subscribes again (through Sentinel, to whichever master it names now).
    """

    def __init__(
        self,
        client: Any,
        channel: str,
        deliver: Callable[[bytes], None],
        *,
        name: str,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        retry_after: float = 0.05,
        heartbeat: float = 1.0,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.client = client
        self.channel = channel
        self.deliver = deliver
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.retry_after = retry_after
        self.heartbeat = heartbeat
        self.ready = threading.Event()
        self.connected = False
        self._stop_event = threading.Event()
        self._pubsub: Any = None
        self._backoff = retry_after

    def run(self) -> None:
        self._backoff = self.retry_after
        while not self._stop_event.is_set():
            try:
                self._pubsub = self.client.pubsub()
                self._subscribe(self._pubsub)
                self._listen(self._pubsub)
            except Exception:  # any failure of the connection: note it, back off, resubscribe
                self._lost()
            finally:
                self._close_pubsub()
        self.connected = False  # stopped: ``listening`` must not report a subscription that is gone

    def _subscribe(self, pubsub: Any) -> None:
        # Subscribe confirmations are wanted: the subscription is live only once one arrives.
        pubsub.subscribe(self.channel)
        while not self._stop_event.is_set():
            confirm = pubsub.get_message(timeout=1.0)
            if confirm is not None and confirm.get("type") == "subscribe":
                break
        self.connected = True
        self._backoff = self.retry_after
        if self.on_connect is not None:
            self.on_connect()
        self.ready.set()

    def _listen(self, pubsub: Any) -> None:
        heard = time.monotonic()
        pinged: float | None = None
        while not self._stop_event.is_set():
            heartbeat = self.heartbeat  # read each turn: a test may shorten it on a running listener
            message = pubsub.get_message(timeout=min(0.5, heartbeat / 2))
            now = time.monotonic()
            if message is not None:
                heard, pinged = now, None
                if message.get("type") == "message":
                    self.deliver(message["data"])
            elif pinged is not None and now - pinged > heartbeat:
                raise ConnectionError(f"no answer to PING within {heartbeat} s: resubscribing")
            elif pinged is None and now - heard > heartbeat:
                pubsub.ping()
                pinged = now

    def _lost(self) -> None:
        if self.connected and self.on_disconnect is not None:
            self.on_disconnect()
        self.connected = False
        self._stop_event.wait(self._backoff)
        self._backoff = min(self._backoff * 2, 1.0)

    def _close_pubsub(self) -> None:
        try:
            if self._pubsub is not None:
                self._pubsub.close()
        except Exception:  # the connection may already be gone
            pass
        self._pubsub = None

    def stop(self) -> None:
        """Ask the thread to finish and wait for it (at most a few seconds)."""
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(5)


class EventInvalidator:
    """Invalidates cache keys and tags when domain events arrive on a bus.

    Args:
        bus: where events arrive.
        rules: ``{cache: {event name: [key template or "tag:<template>", …]}}``; templates are
            :meth:`str.format` strings filled from the event's payload.

    Raises:
        CacheKeyError: when an event's payload lacks a field a template needs (raised to the publisher on
            a :class:`LocalBus`; logged-and-counted nowhere else, so test your mapping).
    """

    def __init__(self, bus: InvalidationBus, rules: Mapping[Cache, Mapping[str, Sequence[str]]]) -> None:
        self._rules: dict[str, list[tuple[Cache, bool, str]]] = {}
        for cache, mapping in rules.items():
            for event, targets in mapping.items():
                for target in targets:
                    is_tag = target.startswith("tag:")
                    self._rules.setdefault(event, []).append(
                        (cache, is_tag, target[4:] if is_tag else target)
                    )
        self._unsubscribe = bus.subscribe(self.handle)

    def handle(self, event: str, payload: Mapping[str, Any]) -> None:
        """Apply the rules for ``event``."""
        for cache, is_tag, template in self._rules.get(event, ()):
            try:
                target = template.format_map(payload)
            except (KeyError, IndexError) as exc:
                raise CacheKeyError(
                    f"event {event!r} maps to {template!r}, but its payload has no field {exc}; "
                    f"payload fields: {', '.join(payload) or 'none'}"
                ) from None
            if is_tag:
                cache.invalidate_tag(target)
            else:
                cache.delete(target)

    def close(self) -> None:
        """Stop listening."""
        self._unsubscribe()
