"""Run-time fault injection for the demo's provider services: latency, error rate, outage.

Every provider service wraps its routes in :class:`ChaosMiddleware`, whose :class:`Chaos` settings can be
read and changed while it runs, over HTTP::

    GET  /_chaos                          {"latency_ms": 0, "error_rate": 0.0, "down": false, ...}
    PUT  /_chaos  {"down": true}          every call fails with 503 until healed
    PUT  /_chaos  {"latency_ms": 800}     every call waits 800 ms first
    PUT  /_chaos  {"error_rate": 0.3}     30 % of calls fail with 503
    POST /_chaos/heal                     back to healthy

That is how the dashboard's break and heal buttons, the demo's scripted outage and the tests make a
provider misbehave: from outside, like a real provider's bad day, never by patching the client.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Chaos", "ChaosMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Chaos:
    """The faults a provider injects now, and what it has injected so far.

    Attributes:
        latency_ms: added to every call before it is served.
        error_rate: the probability (0 to 1) that a call fails with 503.
        down: every call fails with 503 (an outage).
        calls: calls seen (chaos endpoints excluded).
        failed: calls answered with an injected 503.
    """

    latency_ms: float = 0.0
    error_rate: float = 0.0
    down: bool = False
    calls: int = 0
    failed: int = 0
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``{"latency_ms", "error_rate", "down"}`` changes, checking each value.

        Raises:
            ValueError: naming the bad field and what it accepts.
        """
        allowed = {"latency_ms", "error_rate", "down"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown chaos setting(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        latency = changes.get("latency_ms", self.latency_ms)
        rate = changes.get("error_rate", self.error_rate)
        down = changes.get("down", self.down)
        if isinstance(latency, bool) or not isinstance(latency, int | float) or not 0 <= latency <= 60_000:
            raise ValueError("latency_ms must be a number of milliseconds from 0 to 60000")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError("error_rate must be a number from 0 to 1")
        if not isinstance(down, bool):
            raise ValueError("down must be true or false")
        with self._lock:
            self.latency_ms, self.error_rate, self.down = float(latency), float(rate), down

    def heal(self) -> None:
        """No latency, no errors, not down."""
        self.update({"latency_ms": 0, "error_rate": 0, "down": False})

    def snapshot(self) -> dict[str, Any]:
        """The settings and counters as JSON-ready data."""
        with self._lock:
            return {
                "latency_ms": self.latency_ms,
                "error_rate": self.error_rate,
                "down": self.down,
                "calls": self.calls,
                "failed": self.failed,
            }

    def decide(self) -> tuple[float, bool]:
        """For one call: the delay in seconds and whether it fails."""
        with self._lock:
            self.calls += 1
            fail = self.down or (self.error_rate > 0 and self._rng.random() < self.error_rate)
            if fail:
                self.failed += 1
            return self.latency_ms / 1000.0, fail


async def _json(send: Send, status: int, body: Any) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


class ChaosMiddleware:
    """ASGI middleware serving ``/_chaos`` and applying :class:`Chaos` to every other request."""

    def __init__(self, app: ASGIApp, chaos: Chaos, name: str) -> None:
        self.app = app
        self.chaos = chaos
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``/_chaos`` or apply the current faults, then the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_chaos"):
            await self._control(scope, receive, send, path)
            return
        delay, fail = self.chaos.decide()
        if delay:
            await asyncio.sleep(delay)
        if fail:
            await _json(send, 503, {"error": f"{self.name} is unavailable (injected fault)"})
            return
        await self.app(scope, receive, send)

    async def _control(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method = scope["method"]
        if path == "/_chaos/heal" and method == "POST":
            self.chaos.heal()
        elif path == "/_chaos/break" and method == "POST":
            self.chaos.update({"down": True})
        elif path == "/_chaos" and method in ("PUT", "POST", "PATCH"):
            try:
                changes = json.loads(await _body(receive) or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError('expected a JSON object such as {"down": true}')
                self.chaos.update(changes)
            except ValueError as exc:
                await _json(send, 422, {"error": str(exc)})
                return
        elif not (path == "/_chaos" and method == "GET"):
            await _json(
                send, 404, {"error": "chaos endpoints: GET/PUT /_chaos, POST /_chaos/break, /_chaos/heal"}
            )
            return
        await _json(send, 200, {"provider": self.name, **self.chaos.snapshot()})
