"""The direct command path (``backends/_direct.py``) against a real Redis: what redis-py's machinery did
for us per command — resending on a connection a restart broke, keeping a connection after an error
reply, dropping one after a timeout or a cancellation, one pool per event loop — still happens.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from buttress.cache import AsyncCache, Cache
from buttress.cache.backends._direct import AsyncDirectPool, DirectPool, direct_pools
from buttress.telemetry import Registry

pytestmark = pytest.mark.redis


def _errors(registry: Registry, kind: str) -> float:
    return registry.value("buttress_cache_errors", {"namespace": "d", "kind": kind})


def test_only_plain_standalone_clients_get_a_direct_pool(redis_server) -> None:
    sync, asyn = direct_pools(redis.Redis.from_url(redis_server.url), aredis.Redis.from_url(redis_server.url))
    assert isinstance(sync, DirectPool)
    assert isinstance(asyn, AsyncDirectPool)
    single = redis.Redis.from_url(redis_server.url, single_connection_client=True)
    blocking = aredis.Redis(connection_pool=aredis.BlockingConnectionPool.from_url(redis_server.url))
    assert direct_pools(single, blocking) == (None, None)
    assert direct_pools(None, None) == (None, None)
    single.close()
    assert sync is not None
    sync.close()


def test_a_cache_built_from_a_url_uses_it_and_a_passed_client_does_not(redis_server) -> None:
    ours = Cache("d", backend=redis_server.url, tiered=False, registry=Registry())
    theirs = Cache(
        "d",
        backend=redis_server.url,
        tiered=False,
        registry=Registry(),
        redis_options={
            "client": redis.Redis.from_url(redis_server.url),
            "async_client": aredis.Redis.from_url(redis_server.url),
        },
    )
    try:
        assert ours.core.remote._direct is not None
        assert theirs.core.remote._direct is None
        ours.set("k", {"v": 1})
        assert theirs.get("k") == {"v": 1}  # same frames either way
    finally:
        ours.close()
        theirs.close()


def test_sync_resends_once_on_a_connection_a_restart_broke(redis_server) -> None:
    registry = Registry()
    cache = Cache("d", backend=redis_server.url, tiered=False, registry=registry, down_for=0.0)
    try:
        cache.set("k", 1)
        assert cache.get("k") == 1  # the idle list now holds a connected connection
        redis_server.restart()  # the server keeps nothing on disk: the key is gone, the connection broken
        cache.set("k", 2)
        assert cache.get("k") == 2
        assert _errors(registry, "backend") == 0  # the resend hid the broken connection
    finally:
        cache.close()


async def test_async_resends_once_on_a_connection_a_restart_broke(redis_server) -> None:
    registry = Registry()
    cache = AsyncCache("d", backend=redis_server.url, tiered=False, registry=registry, down_for=0.0)
    try:
        await cache.set("k", 1)
        assert await cache.get("k") == 1
        redis_server.restart()
        await cache.set("k", 2)
        assert await cache.get("k") == 2
        assert _errors(registry, "backend") == 0
    finally:
        await cache.aclose()


def test_sync_error_reply_keeps_the_connection(redis_server) -> None:
    pool = DirectPool(redis.Redis.from_url(redis_server.url).connection_pool)
    pool.execute("LPUSH", "list", "x")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        pool.execute("GET", "list")
    assert len(pool._idle) == 1
    assert pool.execute("SET", "k", "v") == b"OK"
    assert pool.execute("GET", "k") == b"v"
    pool.close()
    assert pool._idle == []


async def test_async_error_reply_keeps_the_connection(redis_server) -> None:
    pool = AsyncDirectPool(aredis.Redis.from_url(redis_server.url).connection_pool)
    await pool.execute("LPUSH", "list", "x")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        await pool.execute("GET", "list")
    assert len(pool._idle) == 1
    assert await pool.execute("MGET", "nothing", "list") == [None, None]
    await pool.aclose()
    assert pool._idle == []


def test_a_wrong_type_entry_is_a_counted_miss_on_the_direct_path(redis_server) -> None:
    registry = Registry()
    cache = Cache("d", backend=redis_server.url, tiered=False, registry=registry)
    try:
        cache.core.remote._execute("LPUSH", cache.core.remote.key("k"), "x")
        assert cache.get("k", "default") == "default"
        assert _errors(registry, "corrupt") == 1
    finally:
        cache.close()


def test_sync_failure_on_a_new_connection_is_raised_not_resent(redis_server) -> None:
    pool = DirectPool(redis.Redis.from_url(redis_server.url, socket_connect_timeout=1).connection_pool)
    redis_server.stop()
    with pytest.raises(redis.exceptions.ConnectionError):
        pool.execute("GET", "k")
    assert pool._idle == []
    redis_server.restart()
    assert pool.execute("GET", "k") is None
    pool.close()


async def test_async_timeout_drops_the_connection_and_names_the_deadline(redis_server) -> None:
    pool = AsyncDirectPool(aredis.Redis.from_url(redis_server.url, socket_timeout=0.05).connection_pool)
    assert await pool.execute("SET", "k", "v") == b"OK"
    redis_server.pause()  # accepts bytes, answers nothing
    try:
        with pytest.raises(redis.exceptions.TimeoutError, match=r"did not answer within 0\.05 s"):
            await pool.execute("GET", "k")
        assert pool._idle == []  # the reply may still come: that connection is never reused
    finally:
        redis_server.resume()
    assert await pool.execute("GET", "k") == b"v"
    await pool.aclose()


async def test_async_cancelled_command_drops_its_connection(redis_server) -> None:
    pool = AsyncDirectPool(aredis.Redis.from_url(redis_server.url).connection_pool)
    await pool.execute("SET", "k", "v")
    redis_server.pause()
    try:
        task = asyncio.ensure_future(pool.execute("GET", "k"))
        while not task.done() and pool._idle:
            await asyncio.sleep(0)  # let the command take the idle connection and send
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool._idle == []
    finally:
        redis_server.resume()
    assert await pool.execute("GET", "k") == b"v"
    await pool.aclose()


def test_async_pool_follows_the_running_loop(redis_server) -> None:
    pool = AsyncDirectPool(aredis.Redis.from_url(redis_server.url).connection_pool)
    first: list[Any] = []

    async def use() -> Any:
        reply = await pool.execute("INCR", "n")
        first.extend(pool._idle)
        # Closed, but left in the idle list: were it reused by the next loop, it would reconnect and
        # be the same object. (An application calls aclose() before its loop ends.)
        await pool._idle[0].disconnect()
        return reply

    assert asyncio.run(use()) == 1
    assert asyncio.run(use()) == 2  # a new loop: the first loop's connection is not reused
    assert first[0] is not first[1]
    asyncio.run(pool.aclose())


async def test_async_connect_timeout_is_a_redis_timeout(redis_server) -> None:
    pool = AsyncDirectPool(
        aredis.Redis.from_url(
            redis_server.url, socket_timeout=0.05, socket_connect_timeout=0.05
        ).connection_pool
    )
    redis_server.pause()  # the kernel accepts the connection; the handshake is never answered
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            await pool.execute("GET", "k")
    finally:
        redis_server.resume()


async def test_async_deadline_is_the_connection_default_unless_set(redis_server) -> None:
    default = aredis.Redis.from_url(redis_server.url)
    assert (
        AsyncDirectPool(default.connection_pool).timeout
        == default.connection_pool.make_connection().socket_timeout
    )
    pool = AsyncDirectPool(aredis.Redis.from_url(redis_server.url, socket_timeout=0).connection_pool)
    assert pool.timeout is None  # 0 or None: unbounded, as in redis-py
    await default.aclose()
    assert await pool.execute("SET", "k", "v") == b"OK"
    assert await pool.execute("GET", "k") == b"v"
    await pool.aclose()


def test_sync_max_connections_is_honoured(redis_server) -> None:
    pool = DirectPool(redis.Redis.from_url(redis_server.url, max_connections=1).connection_pool)
    assert pool.execute("SET", "k", "v") == b"OK"
    conn = pool._idle.pop()  # as if another thread held the only connection
    with pytest.raises(redis.exceptions.ConnectionError, match="Too many connections"):
        pool.execute("GET", "k")
    pool._idle.append(conn)  # given back: usable again
    assert pool.execute("GET", "k") == b"v"
    pool.close()
    assert pool._open == 0


async def test_async_max_connections_is_honoured(redis_server) -> None:
    pool = AsyncDirectPool(aredis.Redis.from_url(redis_server.url, max_connections=1).connection_pool)
    await pool.execute("SET", "k", "v")
    redis_server.pause()
    try:
        held = asyncio.ensure_future(pool.execute("GET", "k"))  # takes the only connection, waits
        while pool._idle:
            await asyncio.sleep(0)
        with pytest.raises(redis.exceptions.ConnectionError, match="Too many connections"):
            await pool.execute("GET", "k")
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held
    finally:
        redis_server.resume()
    assert pool._open == 0  # the cancelled command's connection was dropped and counted out
    assert await pool.execute("GET", "k") == b"v"
    await pool.aclose()
    assert pool._open == 0


def test_a_forked_child_never_uses_the_parents_connections(redis_server, tmp_path) -> None:
    pool = DirectPool(redis.Redis.from_url(redis_server.url).connection_pool)
    pool.execute("SET", "k", "parent")
    parent_conn = pool._idle[0]
    out = tmp_path / "child.txt"
    pid = os.fork()
    if pid == 0:  # the child: its own connection, the parent's left alone
        code = 1
        try:
            forgotten = pool._idle == [] and pool._open == 0
            pool.execute("SET", "k", "child")
            out.write_text(f"{forgotten} {pool._idle[0] is not parent_conn}")
            pool.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out.read_text() == "True True"
    assert pool._idle == [parent_conn]
    assert pool.execute("GET", "k") == b"child"  # the parent's connection still works
    pool.close()


def test_direct_path_keeps_the_urls_settings_password_database_and_resp3(redis_server) -> None:
    admin = redis.Redis(port=redis_server.port)
    admin.config_set("requirepass", "s3cret")
    admin.close()
    url = f"redis://:s3cret@127.0.0.1:{redis_server.port}/3?protocol=3"
    cache = Cache("d", backend=url, tiered=False, registry=Registry())
    raw = redis.Redis(port=redis_server.port, password="s3cret", db=3)
    db0 = redis.Redis(port=redis_server.port, password="s3cret", db=0)
    try:
        assert cache.core.remote._direct is not None
        cache.set("k", {"v": 1})
        assert cache.get("k") == {"v": 1}
        assert raw.exists(cache.core.remote.key("k")) == 1  # written to database 3, authenticated
        assert db0.dbsize() == 0
    finally:
        raw.close()
        db0.close()
        cache.close()


async def test_direct_path_over_a_unix_socket(tmp_path) -> None:
    from tests.servers import RedisServer, running

    sock = tmp_path / "redis.sock"
    with running(RedisServer, config={"unixsocket": str(sock), "unixsocketperm": 700}, name="unix"):
        cache = AsyncCache("d", backend=f"unix://{sock}?db=0", tiered=False, registry=Registry())
        try:
            assert cache.core.remote._adirect is not None
            await cache.set("k", [1, 2])
            assert await cache.get("k") == [1, 2]
            assert await cache.get_many(["k", "absent"]) == {"k": [1, 2]}
        finally:
            await cache.aclose()
