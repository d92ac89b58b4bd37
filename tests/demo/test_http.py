"""The traffic generator's HTTP/1.1 client against scripted servers on real sockets.

Each test runs a small asyncio server that answers with exactly the bytes under test (a chunked body, a
body ended by closing, a server that drops an idle connection…) and records what the client sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from buttress.demo.http import Connection, HttpError
from buttress.demo.serve import bind

Answer = Callable[[bytes, int], bytes | None]


class Scripted:
    """A server answering each request with ``answer(request bytes, connection number)``.

    ``None`` closes the connection without answering; ``close_after`` closes it after every answer.
    """

    def __init__(self, answer: Answer, close_after: bool) -> None:
        self.answer = answer
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                reply = self.answer(request, number)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Awaitable[Scripted]]]:
    started: list[Scripted] = []

    async def start(answer: Answer, *, close_after: bool = False) -> Scripted:
        s = Scripted(answer, close_after)
        s.server = await asyncio.start_server(s._handle, "127.0.0.1", 0)
        started.append(s)
        return s

    yield start
    for s in started:
        assert s.server is not None
        s.server.close()
        await s.server.wait_closed()


def _ok(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


async def test_requests_reuse_one_keep_alive_connection(scripted):
    server = await scripted(lambda req, n: _ok(b'{"n": %d}' % len(req), "Server: scripted"))
    client = Connection(server.url)
    try:
        first = await client.request("GET", "/a", params={"q": "x y"}, headers={"X-Correlation-ID": "c1"})
        second = await client.request("POST", "/b", json_body={"name": "Ada"})
        third = await client.request("PATCH", "/c")
    finally:
        await client.close()
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 200)
    assert first.json()["n"] == len(server.requests[0])
    assert server.connections == 1
    get, post, patch = server.requests
    assert get.startswith(b"GET /a?q=x+y HTTP/1.1\r\n")
    assert b"\r\nX-Correlation-ID: c1\r\n" in get
    assert b"Content-Length" not in get  # a GET without a body says nothing of one
    assert b"\r\nContent-Type: application/json\r\n" in post
    assert post.endswith(b"\r\n\r\n" + json.dumps({"name": "Ada"}).encode())
    assert b"\r\nContent-Length: 0\r\n" in patch  # a PATCH always tells its length


async def test_a_chunked_body_is_joined(scripted):
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    server = await scripted(lambda req, n: chunked)
    client = Connection(server.url)
    try:
        assert (await client.request("GET", "/")).body == b"hello world"
        assert (await client.request("GET", "/")).body == b"hello world"
    finally:
        await client.close()
    assert server.connections == 1  # the connection stays usable after the last chunk


async def test_a_body_without_length_ends_at_close_and_the_next_request_reconnects(scripted):
    server = await scripted(lambda req, n: b"HTTP/1.0 200 OK\r\n\r\nuntil close", close_after=True)
    client = Connection(server.url)
    try:
        assert (await client.request("GET", "/")).body == b"until close"
        assert (await client.request("GET", "/")).body == b"until close"
    finally:
        await client.close()
    assert server.connections == 2


async def test_connection_close_is_honoured(scripted):
    # The server would keep the connection: only the client's reading of the header makes it reconnect.
    server = await scripted(lambda req, n: _ok(b"bye", "Connection: close"))
    client = Connection(server.url)
    try:
        for _ in range(2):
            assert (await client.request("GET", "/")).body == b"bye"
    finally:
        await client.close()
    assert server.connections == 2


async def test_an_idle_connection_the_server_dropped_is_retried_once_on_a_new_one(scripted):
    # The first connection answers once, then closes when the second request arrives: a keep-alive
    # connection the server gave up on. The client must send that request again on a new connection.
    def answer(req: bytes, n: int) -> bytes | None:
        if n > 1:
            return _ok(b"again")
        if len(server.requests) == 1:
            return _ok(b"first")
        return None

    server = await scripted(answer)
    client = Connection(server.url)
    try:
        assert (await client.request("GET", "/")).body == b"first"
        assert (await client.request("GET", "/")).body == b"again"
    finally:
        await client.close()
    assert server.connections == 2


async def test_a_fresh_connection_that_fails_is_an_http_error(scripted):
    closed = await scripted(lambda req, n: None)
    client = Connection(closed.url)
    with pytest.raises(HttpError, match="GET /x: HttpError: connection closed by the server"):
        await client.request("GET", "/x")
    garbage = await scripted(lambda req, n: b"SSH-2.0-OpenSSH\r\n\r\n")
    client = Connection(garbage.url)
    with pytest.raises(HttpError, match="not an HTTP status line"):
        await client.request("GET", "/")


async def test_a_server_that_never_answers_times_out_as_an_http_error(scripted):
    silent = await scripted(lambda req, n: b"")  # reads the request, never answers
    client = Connection(silent.url, timeout=0.05)
    with pytest.raises(HttpError, match="TimeoutError"):
        await client.request("GET", "/slow")


@pytest.mark.parametrize("url", ["https://example.org", "ftp://h", "http://", "127.0.0.1:8000"])
def test_only_plain_http_base_urls_are_accepted(url):
    with pytest.raises(ValueError, match=r"expected a base URL such as http://127\.0\.0\.1:8000"):
        Connection(url)


async def test_close_is_idempotent():
    client = Connection("http://127.0.0.1:9")
    await client.close()
    await client.close()


async def test_a_refused_connection_is_an_http_error():
    with bind() as sock:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # Nothing listens there any more: the failure is reported like any other, not as a bare OSError.
    with pytest.raises(HttpError, match="GET /: ConnectionRefusedError"):
        await Connection(url).request("GET", "/")
