"""A minimal HTTP/1.1 keep-alive client for the traffic generator, several times cheaper than httpx.

A load generator that spends more CPU per request than the server measures itself, not the server: on a
two-core machine httpx tops out near 150 requests per second, below what the platform serves from cache.
This client does only what the generator needs — one persistent connection per concurrent client, a
request line, a few headers, a ``Content-Length`` body, and reading a ``Content-Length`` or chunked
response — and reconnects when the server closes a connection.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode, urlsplit

__all__ = ["Connection", "HttpError", "Response"]


class HttpError(Exception):
    """The connection failed or the answer was not HTTP."""


class Response:
    """A status code and a body."""

    __slots__ = ("body", "status_code")

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class Connection:
    """One keep-alive connection to ``base_url`` (``http://host:port``); not shared between tasks."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"expected a base URL such as http://127.0.0.1:8000, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self._host_header = f"{self.host}:{self.port}".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._reader = self._writer = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request and read its response (one retry on a connection the server had closed)."""
        target = f"{path}?{urlencode(params)}" if params else path
        data = _encode(method, target, self._host_header, json_body, headers or {})
        for attempt in (1, 2):
            fresh = self._writer is None
            try:
                return await asyncio.wait_for(self._exchange(data, connect=fresh), self.timeout)
            except _FAILURES as exc:
                await self.close()
                # A kept-alive connection may have been closed by the server while idle: try once more
                # on a new one. A new connection that fails is a real failure.
                if fresh or attempt == 2:
                    raise HttpError(f"{method} {target}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    async def _exchange(self, data: bytes, *, connect: bool) -> Response:
        # Connecting is part of the exchange: a refused or slow connection is an HttpError within the
        # timeout like any other failure, so a load run counts it instead of stopping on it.
        if connect:
            await self._connect()
        assert self._reader is not None
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()
        reader = self._reader
        status = await _read_status(reader)
        head = await _Head.read(reader)
        if head.chunked:
            body = await _read_chunked(reader)
        elif head.length is not None:
            body = await reader.readexactly(head.length)
        else:
            body = await reader.read()  # no length: the body ends where the server closes
            head.close = True
        if head.close:
            await self.close()
        return Response(status, body)


_FAILURES = (OSError, asyncio.IncompleteReadError, HttpError, TimeoutError)


def _encode(method: str, target: str, host: bytes, json_body: Any, headers: dict[str, str]) -> bytes:
    """The request's bytes: request line, headers, blank line, body."""
    body = b"" if json_body is None else json.dumps(json_body).encode()
    head = [f"{method} {target} HTTP/1.1".encode(), b"Host: " + host]
    if json_body is not None:
        head.append(b"Content-Type: application/json")
    if body or method in _BODY_METHODS:
        head.append(f"Content-Length: {len(body)}".encode())
    head.extend(f"{k}: {v}".encode() for k, v in headers.items())
    return b"\r\n".join(head) + b"\r\n\r\n" + body


#: Methods that always send ``Content-Length`` (0 without a body), as servers expect of them.
_BODY_METHODS = ("POST", "PUT", "PATCH")


async def _read_status(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise HttpError("connection closed by the server")
    try:
        return int(status_line.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise HttpError(f"not an HTTP status line: {status_line[:80]!r}") from None


class _Head:
    """What the response headers say about the body: its length, chunked or not, and ``close``."""

    __slots__ = ("chunked", "close", "length")

    def __init__(self) -> None:
        self.length: int | None = None
        self.chunked = False
        self.close = False

    @classmethod
    async def read(cls, reader: asyncio.StreamReader) -> _Head:
        """Read header lines up to the blank line that ends them."""
        head = cls()
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            head.take(name.strip().lower(), value.strip().lower())
        return head

    def take(self, name: bytes, value: bytes) -> None:
        """Note one header (``name`` and ``value`` lower-cased); others are ignored."""
        if name == b"content-length":
            self.length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            self.chunked = True
        elif name == b"connection" and b"close" in value:
            self.close = True


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readline()).split(b";")[0].strip(), 16):
        parts.append(await reader.readexactly(size))
        await reader.readline()  # the CRLF after each chunk
    await reader.readline()  # the CRLF after the last (empty) chunk; no trailers are sent to us
    return b"".join(parts)
