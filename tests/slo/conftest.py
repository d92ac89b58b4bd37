"""Fixtures for the SLO tests: real HTTP servers in threads on sockets bound before they start."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from buttress.slo.recorder import HttpRecorder
from buttress.telemetry.events import EventStream
from buttress.telemetry.registry import Registry


def _listening_socket() -> socket.socket:
    # Bound and listening before the server thread starts, so a client can connect at once: the
    # connection waits in the backlog until the server accepts it; no readiness polling needed.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextmanager
def serve_asgi(app: Any, **options: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread; yields its base URL. ``options`` go to ``uvicorn.Config``."""
    import uvicorn

    sock = _listening_socket()
    config = uvicorn.Config(app, lifespan="off", log_level="error", access_log=False, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def serve_wsgi(app: Callable[..., Any]) -> Iterator[str]:
    """Run a WSGI app under werkzeug's threaded server in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def recorder(registry: Registry) -> HttpRecorder:
    return HttpRecorder(registry)


@pytest.fixture
def events() -> EventStream:
    return EventStream()
