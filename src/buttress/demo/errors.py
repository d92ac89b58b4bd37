"""The platform's error format and the correlation id every response carries.

Every error is JSON of one shape, whatever raised it::

    {"error": {"status": 422, "code": "validation_failed", "message": "…",
               "correlation_id": "9f2c…", "fields": [{"field": "email", "message": "…"}]}}

and every response, error or not, carries ``X-Correlation-ID``: the caller's own when it sent one (so a
request can be followed across services), else a fresh one. Invalid request bodies are 422 with one entry
per field; invalid query parameters (``filter``, ``sort``, ``page``…) are 400 with the reason; unknown
codes are 404; unexpected exceptions are 500 with no internals in the body.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "CORRELATION_HEADER",
    "ApiError",
    "CorrelationIdMiddleware",
    "FieldError",
    "correlation_id",
    "error_body",
    "install_handlers",
]

log = logging.getLogger("buttress.demo")

#: The response (and accepted request) header holding the correlation id.
CORRELATION_HEADER = "X-Correlation-ID"
_HEADER_BYTES = CORRELATION_HEADER.lower().encode()
_VALID_ID = re.compile(r"[A-Za-z0-9._:\-]{1,100}")
_current: contextvars.ContextVar[str] = contextvars.ContextVar("buttress_demo_correlation_id", default="")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def correlation_id() -> str:
    """The correlation id of the request being handled (empty outside a request)."""
    return _current.get()


FieldError = dict[str, str]


class ApiError(Exception):
    """An error the API answers with on purpose: a status, a stable code, a sentence, field errors.

    Args:
        status: the HTTP status.
        code: a stable machine-readable code (``not_found``, ``invalid_filter``, ``registration_closed``…).
        message: a sentence for a person, saying what was wrong and how to fix it.
        fields: per-field problems, for 422.
        headers: extra response headers (``Retry-After`` on 503).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = headers or {}


def error_body(
    status: int, code: str, message: str, fields: list[FieldError] | None = None
) -> dict[str, Any]:
    """The JSON body of an error response, with the current correlation id."""
    body: dict[str, Any] = {
        "status": status,
        "code": code,
        "message": message,
        "correlation_id": correlation_id(),
    }
    if fields:
        body["fields"] = fields
    return {"error": body}


class CorrelationIdMiddleware:
    """Pure ASGI middleware: reads or makes the correlation id and adds it to the response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call: set the id for the request, add it to the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = ""
        for name, value in scope["headers"]:
            if name == _HEADER_BYTES:
                text = value.decode("latin-1")
                if _VALID_ID.fullmatch(text):
                    cid = text
                break
        if not cid:
            cid = uuid.uuid4().hex
        token = _current.set(cid)
        header = (_HEADER_BYTES, cid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send_with_id(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            # Handled here rather than by Starlette's outermost error middleware, which runs after this
            # one has returned and so could not put the correlation id on the 500 it sends.
            log.exception("unhandled error (correlation id %s)", cid)
            if not started:
                await _send_json(
                    send_with_id,
                    500,
                    error_body(
                        500, "internal_error", "The server failed; quote the correlation id when reporting."
                    ),
                )
        finally:
            _current.reset(token)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
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


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path", "header") else []
    return ".".join(parts) or (str(loc[0]) if loc else "body")


def _message(error: dict[str, Any]) -> str:
    text = str(error.get("msg", "is invalid"))
    # pydantic prefixes messages of custom validators; the caller only needs the sentence.
    return text.removeprefix("Value error, ")


def install_handlers(app: Any) -> None:
    """Register the handlers that turn every error into the platform's JSON format."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    async def api_error(_request: Any, exc: Exception) -> Any:
        assert isinstance(exc, ApiError)
        return JSONResponse(
            error_body(exc.status, exc.code, exc.message, exc.fields), exc.status, headers=exc.headers
        )

    async def validation_error(_request: Any, exc: Exception) -> Any:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        body_errors = [e for e in errors if e.get("loc", ("",))[0] == "body"]
        fields = [
            {"field": _field_name(e.get("loc", ())), "message": _message(e)} for e in (body_errors or errors)
        ]
        if body_errors:
            return JSONResponse(
                error_body(422, "validation_failed", "The request body is invalid; see fields.", fields), 422
            )
        # Query and path parameters: the request itself is malformed, not its content.
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(error_body(400, "invalid_parameter", message, fields), 400)

    async def http_error(_request: Any, exc: Exception) -> Any:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such resource; see /api/v1 for the routes."
        return JSONResponse(
            error_body(exc.status_code, code, detail), exc.status_code, headers=getattr(exc, "headers", None)
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)


def new_correlation_id() -> str:
    """A fresh correlation id (for calls the platform makes outside a request, e.g. replays)."""
    return uuid.uuid4().hex
