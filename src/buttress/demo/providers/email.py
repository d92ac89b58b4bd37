"""A local email provider: accepts messages over HTTP and remembers each one it delivered.

``POST /messages`` with ``{"to", "subject", "body", "idempotency_key"}`` answers 202 and records the
message; a second message with the same ``idempotency_key`` answers 200 ``{"duplicate": true}`` and is not
delivered again, as real providers (Postmark, SES with a message id) deduplicate. ``GET /messages`` lists
what was delivered and ``GET /stats`` counts deliveries and duplicates — what the tests read to prove a
dead-lettered confirmation is sent exactly once after recovery.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from buttress._extras import require
from buttress.demo.providers.chaos import Chaos, ChaosMiddleware

__all__ = ["EmailOutbox", "create_email_app"]


class EmailOutbox:
    """What the email provider delivered, keyed by idempotency key, and how often a key came again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.messages: list[dict[str, Any]] = []
        self.by_key: dict[str, int] = {}
        self.duplicates = 0

    def deliver(self, message: dict[str, Any]) -> tuple[int, bool]:
        """Record ``message``; returns its id and whether its idempotency key was seen before."""
        key = str(message.get("idempotency_key") or "")
        with self._lock:
            if key and key in self.by_key:
                self.duplicates += 1
                return self.by_key[key], True
            message_id = next(self._ids)
            self.messages.append({"id": message_id, **message})
            if key:
                self.by_key[key] = message_id
            return message_id, False

    def clear(self) -> None:
        """Forget every delivery (a test that shares the provider starts from an empty outbox)."""
        with self._lock:
            self.messages.clear()
            self.by_key.clear()
            self.duplicates = 0

    def stats(self) -> dict[str, int]:
        """Deliveries and duplicates so far."""
        with self._lock:
            return {"delivered": len(self.messages), "duplicates": self.duplicates}


def create_email_app(chaos: Chaos | None = None, outbox: EmailOutbox | None = None) -> Any:
    """The email provider as an ASGI app (Starlette), with chaos controls at ``/_chaos``."""
    require("starlette", "web")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    box = outbox if outbox is not None else EmailOutbox()

    async def send(request: Request) -> JSONResponse:
        try:
            data = await request.json()
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, 400)
        missing = [k for k in ("to", "subject", "body") if not isinstance(data, dict) or not data.get(k)]
        if missing:
            return JSONResponse({"error": f"missing field(s): {', '.join(missing)}"}, 422)
        message_id, duplicate = box.deliver(
            {k: data.get(k) for k in ("to", "subject", "body", "idempotency_key")}
        )
        if duplicate:
            return JSONResponse({"id": message_id, "duplicate": True}, 200)
        return JSONResponse({"id": message_id, "duplicate": False}, 202)

    async def listing(request: Request) -> JSONResponse:
        to = request.query_params.get("to")
        items = [m for m in list(box.messages) if to is None or m["to"] == to]
        return JSONResponse({"data": items[-500:], "total": len(items)})

    async def stats(_request: Request) -> JSONResponse:
        return JSONResponse(box.stats())

    app = Starlette(
        routes=[
            Route("/messages", send, methods=["POST"]),
            Route("/messages", listing, methods=["GET"]),
            Route("/stats", stats, methods=["GET"]),
        ]
    )
    app.state.outbox = box
    return ChaosMiddleware(app, chaos if chaos is not None else Chaos(), "email")
