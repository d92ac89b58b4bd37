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
        body = b"" if json_body is None else json.dumps(json_body).encode()
        head = [f"{method} {target} HTTP/1.1".encode(), b"Host: " + self._host_header]
        if json_body is not None:
            head.append(b"Content-Type: application/json")
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body)}".encode())
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}".encode())
        data = b"\r\n".join(head) + b"\r\n\r\n" + body
        for attempt in (1, 2):
            fresh = self._writer is None
            if fresh:
                await self._connect()
            try:
                return await asyncio.wait_for(self._exchange(data), self.timeout)
            except (OSError, asyncio.IncompleteReadError, HttpError, TimeoutError) as exc:
                await self.close()
                if fresh or attempt == 2:
                    raise HttpError(f"{method} {target}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    async def _exchange(self, data: bytes) -> Response:
        assert self._reader is not None
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()
        reader = self._reader
        status_line = await reader.readline()
        if not status_line:
            raise HttpError("connection closed by the server")
        try:
            status = int(status_line.split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise HttpError(f"not an HTTP status line: {status_line[:80]!r}") from None
        length: int | None = None
        chunked = close = False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value.strip())
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif key == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readline()
                    break
                parts.append(await reader.readexactly(size))
                await reader.readline()
            body = b"".join(parts)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body = await reader.read()
            close = True
        if close:
            await self.close()
        return Response(status, body)
