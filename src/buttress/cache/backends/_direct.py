"""Single Redis commands on redis-py connections, without redis-py's per-command machinery.

A cache get is one ``GET`` and one reply. Through ``redis.Redis.get`` that round trip also pays for the
client's pool lock, retry wrapper, response-callback lookup and (since redis-py 7) observability hooks;
the async client adds an ``asyncio.wait_for`` task around every socket write when a socket timeout is
set. Measured on loopback (``benchmarks/cache.py``), that machinery is about half of the time of a
redis-py ``GET``: the wire and the server are the other half.

:class:`DirectPool` and :class:`AsyncDirectPool` keep their own idle list of redis-py ``Connection``
objects built with the client's own connection class and settings (host, TLS, password, database,
protocol, hiredis parser) and use only the connections' public API — ``send_packed_command`` and
``read_response`` — so connecting, authentication, ``SELECT``/``HELLO`` and reply parsing stay
redis-py's. What they drop is what a cache does not want per command anyway:

* no retries with backoff: a command that fails on a *reused* connection (one a Redis restart broke
  while it sat idle) is sent once more on a fresh one; any other failure is raised at once and the
  backend turns it into a miss;
* no health-check ``PING`` before use: the one resend above covers a dead idle connection;
* the async read timeout is one ``asyncio.timeout`` around send and read (a timer handle, not a task),
  and the connection is discarded on any failure or cancellation, so a half-read reply is never seen
  by the next command.

Like redis-py's pool, a direct pool honours the client's ``max_connections`` (raising redis-py's
``ConnectionError("Too many connections")`` beyond it) and forgets its connections in a child process
after ``fork`` (they are the parent's sockets: never closed, never used, in the child).

Only standalone clients built by :func:`~buttress.cache.backends.redis.connect` get a direct pool;
Cluster, Sentinel and user-supplied clients keep using the client (routing and failover are theirs).
Pipelines, scripts, ``SCAN`` and pub/sub always go through the client.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from typing import Any

from buttress._extras import require

__all__ = ["AsyncDirectPool", "DirectPool", "direct_pools"]

_POOLS: weakref.WeakSet[DirectPool | AsyncDirectPool] = weakref.WeakSet()


def _forget_after_fork() -> None:
    for pool in list(_POOLS):
        pool._forget()


# Registered once, at import: a check of the process id on every command would cost a system call.
os.register_at_fork(after_in_child=_forget_after_fork)


def _max_connections(pool: Any) -> int:
    limit = getattr(pool, "max_connections", None)
    return int(limit) if limit else 2**31


def direct_pools(client: Any, async_client: Any) -> tuple[DirectPool | None, AsyncDirectPool | None]:
    """Direct pools beside a standalone ``client``/``async_client`` pair, or ``None`` where not eligible.

    Eligible: a plain ``redis.Redis`` (``redis.asyncio.Redis``) on a plain ``ConnectionPool`` that is not
    a single-connection client. Anything else (Sentinel's pool, a blocking pool with its own limits,
    subclasses with their own behaviour) keeps the client's path.
    """
    redis = require("redis", "redis")
    aredis = require("redis.asyncio", "redis")
    sync = None
    if (
        type(client) is redis.Redis
        and type(client.connection_pool) is redis.ConnectionPool
        and client.connection is None
    ):
        sync = DirectPool(client.connection_pool)
    asyn = None
    if (
        type(async_client) is aredis.Redis
        and type(async_client.connection_pool) is aredis.ConnectionPool
        and async_client.connection is None
    ):
        asyn = AsyncDirectPool(async_client.connection_pool)
    return sync, asyn


class DirectPool:
    """Thread-safe idle list of sync redis-py connections; :meth:`execute` runs one command.

    The socket timeout is the socket's own (``settimeout``), so it costs nothing per command.

    Args:
        pool: the client's ``redis.ConnectionPool``, whose connection class and settings are reused.
    """

    def __init__(self, pool: Any) -> None:
        errors = require("redis.exceptions", "redis")
        self._connection_error: type[BaseException] = errors.ConnectionError
        self._response_error: type[BaseException] = errors.ResponseError
        self._cls = pool.connection_class
        self._kwargs = dict(pool.connection_kwargs)
        # list.pop()/append() are atomic under the GIL: threads share the idle list without a lock. The
        # lock guards only the count of open connections, touched when one is made or dropped.
        self._idle: list[Any] = []
        self._max = _max_connections(pool)
        self._open = 0
        self._lock = threading.Lock()
        _POOLS.add(self)

    def _forget(self) -> None:
        self._idle, self._open, self._lock = [], 0, threading.Lock()

    def _new(self) -> Any:
        with self._lock:
            if self._open >= self._max:
                raise self._connection_error("Too many connections")
            self._open += 1
        return self._cls(**self._kwargs)

    def _drop(self, conn: Any) -> None:
        conn.disconnect()
        with self._lock:
            self._open -= 1

    def execute(self, *args: Any) -> Any:
        """Send one command and return redis-py's raw reply (bytes, int, list, ``None``).

        Raises:
            redis.exceptions.ResponseError: the server answered with an error (connection kept).
            redis.exceptions.ConnectionError, TimeoutError: the connection failed (discarded).
        """
        idle = self._idle
        try:
            conn = idle.pop()
            reused = True
        except IndexError:
            conn = self._new()
            reused = False
        packed = conn.pack_command(*args)
        try:
            conn.send_packed_command(packed, check_health=False)
            reply = conn.read_response()
        except self._response_error:
            idle.append(conn)
            raise
        except self._connection_error:
            self._drop(conn)
            if not reused:
                raise
            # The idle connection was broken while it waited (a restart, an idle timeout): once more
            # on a fresh one. Timeouts are not resent: the server may be slow, not gone.
            conn = self._new()
            try:
                conn.send_packed_command(packed, check_health=False)
                reply = conn.read_response()
            except BaseException:
                self._drop(conn)
                raise
        except BaseException:
            self._drop(conn)
            raise
        idle.append(conn)
        return reply

    def close(self) -> None:
        """Disconnect every idle connection."""
        idle, self._idle = self._idle, []
        for conn in idle:
            self._drop(conn)


class AsyncDirectPool:
    """Idle list of ``redis.asyncio`` connections for one event loop; :meth:`execute` runs one command.

    Connections belong to the loop that opened them. When the pool is used from another loop (a test
    suite with a loop per test, ``asyncio.run`` twice) the old loop's idle connections are dropped, not
    reused.

    Args:
        pool: the async client's ``redis.asyncio.ConnectionPool``, whose connection class and settings
            are reused; its socket timeout becomes this pool's per-command deadline.
    """

    def __init__(self, pool: Any) -> None:
        errors = require("redis.exceptions", "redis")
        self._connection_error: type[BaseException] = errors.ConnectionError
        self._response_error: type[BaseException] = errors.ResponseError
        self._timeout_error: type[BaseException] = errors.TimeoutError
        self._cls = pool.connection_class
        kwargs = dict(pool.connection_kwargs)
        # The connection's own defaults apply when the URL set none (redis-py 8: 5 s), so read them off
        # an unconnected one. The deadline then is ours (below): with a socket timeout, redis-py would
        # wrap every write in a task.
        probe = self._cls(**kwargs)
        timeout, connect_timeout = probe.socket_timeout, probe.socket_connect_timeout or probe.socket_timeout
        self.timeout: float | None = float(timeout) if timeout else None
        self._connect_timeout: float | None = float(connect_timeout) if connect_timeout else None
        kwargs["socket_timeout"] = None
        self._kwargs = kwargs
        self._idle: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._max = _max_connections(pool)
        self._open = 0  # one event loop: no lock needed
        _POOLS.add(self)

    def _forget(self) -> None:
        self._idle, self._open, self._loop = [], 0, None

    async def execute(self, *args: Any) -> Any:
        """Async :meth:`DirectPool.execute`."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._idle, self._open = loop, [], 0
        idle = self._idle
        if idle:
            conn = idle.pop()
            try:
                return await self._run(conn, args)
            except self._connection_error:
                pass  # a connection broken while idle: once more on a fresh one (see DirectPool)
        if self._open >= self._max:
            raise self._connection_error("Too many connections")
        self._open += 1
        conn = self._cls(**self._kwargs)
        await self._connect(conn)
        return await self._run(conn, args)

    async def _drop(self, conn: Any) -> None:
        self._open -= 1
        await conn.disconnect(nowait=True)

    async def _connect(self, conn: Any) -> None:
        try:
            if self._connect_timeout is None:
                await conn.connect()
            else:
                async with asyncio.timeout(self._connect_timeout):
                    await conn.connect()
        except TimeoutError:
            await self._drop(conn)
            raise self._timeout_error(
                f"Redis did not complete a connection within {self._connect_timeout} s"
            ) from None
        except BaseException:
            await self._drop(conn)
            raise

    async def _run(self, conn: Any, args: tuple[Any, ...]) -> Any:
        try:
            if self.timeout is None:
                await conn.send_packed_command(conn.pack_command(*args), check_health=False)
                reply = await conn.read_response()
            else:
                async with asyncio.timeout(self.timeout):
                    await conn.send_packed_command(conn.pack_command(*args), check_health=False)
                    reply = await conn.read_response()
        except self._response_error:
            self._idle.append(conn)
            raise
        except TimeoutError:
            await self._drop(conn)
            raise self._timeout_error(f"Redis did not answer within {self.timeout} s") from None
        except BaseException:
            # Cancelled or failed mid-reply: the stream position is unknown, so the connection goes.
            await self._drop(conn)
            raise
        self._idle.append(conn)
        return reply

    async def aclose(self) -> None:
        """Disconnect every idle connection (call from the loop that used them)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            self._open -= 1
            await conn.disconnect()
