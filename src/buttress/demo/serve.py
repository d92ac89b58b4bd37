"""Running ASGI apps on uvicorn: as a task in the caller's event loop, or in a thread of their own.

The demo runs its provider services and (in one-process mode) the platform itself as tasks of the runner's
loop; tests run apps in background threads. Either way the port is bound before ``start`` returns, so the
caller can use the URL at once.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from buttress._extras import require

__all__ = ["BackgroundServer", "bind", "free_port"]


def bind(host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free one), to hand to uvicorn."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # uvicorn writes a response's head and body separately. asyncio turns Nagle's algorithm off only
        # on connections accepted from a socket whose proto is IPPROTO_TCP, which this one (proto 0) and
        # the AF_UNIX wrapper uvicorn puts around an inherited --fd are not; with Nagle on, every body
        # waited for the client's delayed ACK, 40 ms per response. Accepted connections inherit it.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()  # a port in use must not leak the socket
        raise
    sock.set_inheritable(True)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (prefer :func:`bind`, which keeps it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _config(app: Any, *, lifespan: str) -> Any:
    uvicorn = require("uvicorn", "web")
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan=lifespan,
        loop="asyncio",
        http="h11",
        timeout_graceful_shutdown=3,
    )


class BackgroundServer:
    """An ASGI app served by uvicorn on a socket bound now, in a task or a thread.

    Args:
        app: the ASGI application.
        host: interface to bind.
        port: port to bind; 0 picks a free one.
        lifespan: ``"on"`` to run the app's startup and shutdown, ``"off"`` for plain apps.

    Attributes:
        url: ``http://host:port``.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, lifespan: str = "off") -> None:
        self.sock = bind(host, port)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://{host}:{self.port}"
        uvicorn = require("uvicorn", "web")
        self.server = uvicorn.Server(_config(app, lifespan=lifespan))
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    async def serve(self) -> None:
        """Serve until :meth:`stop` (run this as a task, or await it)."""
        await self.server.serve(sockets=[self.sock])

    async def start_task(self) -> BackgroundServer:
        """Serve in a task of the running loop; returns once uvicorn has started."""
        self._task = asyncio.create_task(self.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises why it stopped
                raise RuntimeError(f"server for {self.url} stopped during startup")
            await asyncio.sleep(0.01)
        return self

    async def stop_task(self) -> None:
        """Stop a server started with :meth:`start_task` and wait for it."""
        self.server.should_exit = True
        if self._task is not None:
            await self._task
        self.sock.close()

    def start_thread(self, timeout: float = 20.0) -> BackgroundServer:
        """Serve in a daemon thread with its own event loop; returns once uvicorn has started."""

        def run() -> None:
            try:
                asyncio.run(self.serve())
            except BaseException as exc:  # surfaced by start_thread
                self._error = exc
            finally:
                self._ready.set()

        self._thread = threading.Thread(target=run, name=f"uvicorn {self.url}", daemon=True)
        self._thread.start()
        deadline = timeout
        step = 0.01
        while not self.server.started and deadline > 0:
            if self._ready.wait(step):
                raise RuntimeError(f"server for {self.url} failed to start: {self._error!r}")
            deadline -= step
        if not self.server.started:
            raise RuntimeError(f"server for {self.url} did not start within {timeout} s")
        return self

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop a server started with :meth:`start_thread` and join its thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.sock.close()
