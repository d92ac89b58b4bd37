"""Serving ASGI apps for the demo and its tests: a port bound up front, a clear error when startup fails."""

from __future__ import annotations

import httpx
import pytest

from buttress.demo.serve import BackgroundServer, bind, free_port


async def _app(scope, receive, send):
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_thread_server_whose_startup_fails_says_so():
    server = BackgroundServer(_app, lifespan="on")
    with pytest.raises(RuntimeError, match=f"server for {server.url} failed to start"):
        server.start_thread()
    server.sock.close()


async def test_a_task_server_serves_then_stops():
    server = await BackgroundServer(_app).start_task()
    async with httpx.AsyncClient() as client:
        assert (await client.get(server.url)).text == "ok"
    await server.stop_task()
    assert server.sock.fileno() == -1  # closed


def test_bound_sockets_can_share_a_port_when_asked():
    with bind(reuse_port=True) as first:
        port = first.getsockname()[1]
        with bind(port=port, reuse_port=True) as second:
            assert second.getsockname()[1] == port
        with pytest.raises(OSError):
            bind(port=port)  # without SO_REUSEPORT the port is taken
    assert 0 < free_port() < 65536
