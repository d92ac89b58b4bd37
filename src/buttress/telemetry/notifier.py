"""Sends alert events as JSON to webhooks, with a timeout per attempt and retries with backoff.

The notifier subscribes to the event stream and only queues there (publishers must stay quick); a daemon
thread does the HTTP work with :mod:`urllib.request`, so the core needs no HTTP library. Delivery is
at-least-once within the attempts allowed; a webhook that still fails is logged and counted in
``buttress_notifier_failures_total``, and the alert stays visible on the event stream and dashboard.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.telemetry.events import EVENTS, Alert, Event, EventStream
from buttress.telemetry.registry import REGISTRY, Registry

__all__ = ["DeliveryResult", "Notifier"]

log = logging.getLogger("buttress.notifier")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What happened to one event at one webhook."""

    url: str
    ok: bool
    attempts: int
    status: int | None
    error: str | None


class Notifier:
    """POSTs :class:`~buttress.telemetry.events.Alert` events (or any events you choose) to webhooks.

    Args:
        urls: the webhook URLs.
        timeout: seconds allowed per HTTP attempt.
        attempts: tries per event and URL (1 means no retry).
        backoff: delay before the first retry; it doubles for each further retry.
        clock: the clock retries sleep on (a ``VirtualClock`` in tests).
        registry: where delivery counters go.
        headers: extra HTTP headers, e.g. an authorisation token.

    Use :meth:`send` to deliver now, or :meth:`attach` to deliver every alert published on an event
    stream from a background thread.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
        registry: Registry = REGISTRY,
        headers: dict[str, str] | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        self.urls = list(urls)
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.clock = clock
        self.headers = {"Content-Type": "application/json", "User-Agent": "buttress-notifier"} | (
            headers or {}
        )
        self._sent = registry.counter("buttress_notifier_deliveries", "Webhook deliveries that succeeded")
        self._failed = registry.counter("buttress_notifier_failures", "Webhook deliveries that gave up")
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Any = None

    @classmethod
    def from_config(cls, section: dict[str, Any], **kwargs: Any) -> Notifier:
        """Build from the checked ``[telemetry]`` section."""
        return cls(
            section["webhooks"],
            timeout=section["webhook_timeout"],
            attempts=section["webhook_attempts"],
            backoff=section["webhook_backoff"],
            **kwargs,
        )

    def send(self, event: Event) -> list[DeliveryResult]:
        """Deliver ``event`` to every URL now, retrying each as configured."""
        body = json.dumps(event.to_json(), default=str).encode()
        return [self._deliver(url, body) for url in self.urls]

    def _deliver(self, url: str, body: bytes) -> DeliveryResult:
        delay = self.backoff
        status: int | None = None
        error: str | None = None
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(url, data=body, headers=self.headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    status = response.status
                self._sent.value += 1
                return DeliveryResult(url, True, attempt, status, None)
            except urllib.error.HTTPError as exc:
                status, error = exc.code, f"HTTP {exc.code}"
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    break  # the receiver rejected the payload; retrying will not change its mind
            except (urllib.error.URLError, OSError) as exc:
                status, error = None, str(getattr(exc, "reason", exc))
            if attempt < self.attempts:
                self.clock.sleep(delay)
                delay *= 2
        self._failed.value += 1
        log.warning("webhook %s failed after %d attempt(s): %s", url, attempt, error)
        return DeliveryResult(url, False, attempt, status, error)

    def attach(self, stream: EventStream = EVENTS, *kinds: type[Event]) -> None:
        """Deliver every event of ``kinds`` (default: alerts) published on ``stream``, in the background."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="buttress-notifier", daemon=True)
        self._thread.start()
        self._unsubscribe = stream.subscribe(self._queue.put, *(kinds or (Alert,)))

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop listening, deliver what is queued, and stop the thread."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self.send(event)
            except Exception:  # keep the thread alive whatever one event does
                log.exception("notifier failed on %s", event.kind)
