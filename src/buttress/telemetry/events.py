"""A typed stream of the things that happen rarely and matter: state transitions and alerts.

Parts publish; consumers (the dashboard, the notifier, tests, users' own hooks) subscribe. Publishing is a
synchronous call to each subscriber, so a subscriber must be quick: the notifier only queues, the dashboard
only appends. A subscriber that raises is logged and kept; it never breaks the publisher.

Tests capture events with :func:`capture_events`::

    with capture_events() as seen:
        breaker.record_failure(...)
    assert [e.to_state for e in seen if isinstance(e, StateTransition)] == ["open"]
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

__all__ = [
    "EVENTS",
    "Alert",
    "Event",
    "EventStream",
    "StateTransition",
    "capture_events",
    "get_event_stream",
]

log = logging.getLogger("buttress.events")

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened in a part of buttress.

    Attributes:
        source: the part that published it, e.g. ``"circuitbreaker"``, ``"slo"``, ``"cache"``.
        name: the instance, e.g. the breaker's or the SLO's name.
        time: wall-clock seconds since the epoch, from the publisher's clock.
        attributes: extra, JSON-serialisable details.
    """

    source: str
    name: str
    time: float = field(default_factory=time.time)
    attributes: dict[str, Any] = field(default_factory=dict)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def kind(self) -> str:
        """The event's type name in snake case, used in JSON and for filtering."""
        return _kind_of(type(self))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary, with ``kind`` added."""
        data = asdict(self)
        data["kind"] = self.kind
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class StateTransition(Event):
    """A component changed state, e.g. a circuit breaker went from ``closed`` to ``open``."""

    from_state: str
    to_state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert(Event):
    """An alert that started firing or resolved.

    Attributes:
        severity: ``"page"`` or ``"ticket"`` (SLO burn-rate alerts), or a part's own level.
        status: ``"firing"`` or ``"resolved"``.
        summary: one sentence a person reads in a notification.
    """

    severity: str
    status: Literal["firing", "resolved"]
    summary: str
    labels: dict[str, str] = field(default_factory=dict)


def _kind_of(cls: type) -> str:
    out = []
    for i, ch in enumerate(cls.__name__):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


E = TypeVar("E", bound=Event)
Subscriber = Callable[[Event], None]


class EventStream:
    """Fan-out of :class:`Event` objects to subscribers, with a bounded buffer of recent events.

    Args:
        keep: how many recent events :meth:`recent` remembers (for dashboards that join late).
    """

    def __init__(self, keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[Subscriber, tuple[type[Event], ...]]] = []
        self._recent: collections.deque[Event] = collections.deque(maxlen=keep)

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber whose filter matches, and remember it."""
        self._recent.append(event)
        for callback, kinds in self._subscribers:
            if kinds and not isinstance(event, kinds):
                continue
            try:
                callback(event)
            except Exception:  # a broken consumer must never break the part that published
                log.exception("event subscriber %r failed on %s", callback, event.kind)

    def subscribe(self, callback: Subscriber, *kinds: type[Event]) -> Callable[[], None]:
        """Call ``callback(event)`` for each event (of ``kinds`` only, when given).

        Returns:
            A function that unsubscribes.
        """
        entry = (callback, tuple(kinds))
        with self._lock:
            # Copy-on-write so publish iterates without a lock.
            self._subscribers = [*self._subscribers, entry]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not entry]

        return unsubscribe

    def recent(self, limit: int | None = None) -> list[Event]:
        """The most recent events, oldest first."""
        items = list(self._recent)
        return items if limit is None else items[-limit:]

    async def listen(self, *kinds: type[Event], maxsize: int = 1000) -> AsyncIterator[Event]:
        """Iterate events asynchronously (for server-sent events); safe to publish from any thread.

        When the consumer falls ``maxsize`` events behind, the oldest unread events are dropped rather than
        letting memory grow; the dashboard re-reads state on the next tick anyway.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)

        def put(event: Event) -> None:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

        def deliver(event: Event) -> None:
            loop.call_soon_threadsafe(put, event)

        unsubscribe = self.subscribe(deliver, *kinds)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()


#: The process-wide default event stream.
EVENTS = EventStream()


def get_event_stream() -> EventStream:
    """The process-wide default :class:`EventStream`."""
    return EVENTS


@contextlib.contextmanager
def capture_events(stream: EventStream | None = None, *kinds: type[Event]) -> Iterator[list[Event]]:
    """Collect the events published on ``stream`` (default: the process-wide one) inside the block."""
    seen: list[Event] = []
    unsubscribe = (stream or EVENTS).subscribe(seen.append, *kinds)
    try:
        yield seen
    finally:
        unsubscribe()
