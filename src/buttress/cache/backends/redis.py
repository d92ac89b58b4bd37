"""The Redis backend: redis-py (with hiredis when installed), sync and async, pooled and pipelined.

URLs::

    redis://[:password@]host:6379/0[?protocol=3]     standalone (rediss:// for TLS, unix:///path.sock)
    redis+cluster://host:7000[,host2:7001]            Redis Cluster, seeded with one or more nodes
    redis+sentinel://host:26379[,host2:26379]/mymaster[/0]   the master that Sentinel names

``protocol=3`` selects RESP3; everything here works the same on RESP2 and RESP3.

Outages never reach the caller: a failed read is a miss and a failed write is dropped, both counted in
``buttress_cache_errors_total{kind="backend"}``. After a connection error, a timeout or a cluster's
``CLUSTERDOWN`` (a master is down and no replica has taken over yet) the backend skips Redis for
``down_for`` seconds (so callers do not each wait out a connect timeout), then tries again; redis-py's
pool reconnects by itself. An entry that is not a buttress frame for this namespace's
serialiser — corrupt, foreign, or of the wrong Redis type — is a miss counted as ``kind="corrupt"``.

Keys are ``<prefix><key>``; keys that are too long or hold unusual characters are hashed
(:func:`~buttress.cache.keys.safe_key`). In a cluster every key hashes to its own slot: the namespace is
spread over all masters, ``get_many`` becomes one pipeline per node.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from buttress._extras import require
from buttress.cache.backends._direct import AsyncDirectPool, DirectPool, direct_pools
from buttress.cache.backends.memory import MISS
from buttress.cache.keys import MAX_KEY_BYTES, safe_key
from buttress.cache.metrics import CacheMetrics
from buttress.cache.serialize import CorruptEntry, Serializer, decode, encode
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError

__all__ = ["RedisBackend", "connect"]

# Deletes the lease only if it still holds our token, so a slow holder never frees another's lease.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def _split_hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for part in netloc.rpartition("@")[2].split(","):
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
        hosts.append((host or "127.0.0.1", int(port) if port else default_port))
    return hosts


def _with_retry(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Options with one immediate retry unless the caller chose a policy.

    redis-py retries three times with backoff by default; for a cache, a slow failure is worse than a
    miss. One retry at once still hides the first use of a pooled connection that a Redis restart broke.
    """
    if "retry" in options:
        return options, options
    backoff = require("redis.backoff", "redis")
    sync_retry = require("redis.retry", "redis").Retry(backoff.NoBackoff(), 1)
    async_retry = require("redis.asyncio.retry", "redis").Retry(backoff.NoBackoff(), 1)
    return {**options, "retry": sync_retry}, {**options, "retry": async_retry}


def connect(url: str, **options: Any) -> tuple[Any, Any]:
    """A ``(sync client, async client)`` pair for ``url`` (see the module docstring), with ``options``.

    Raises:
        ConfigError: for a URL scheme buttress does not know.
        ImportError: naming the ``redis`` extra when redis-py is missing.
    """
    redis = require("redis", "redis")
    aredis = require("redis.asyncio", "redis")
    parts = urlsplit(url)
    scheme = parts.scheme
    query = dict(parse_qsl(parts.query))
    if "protocol" in query:
        options.setdefault("protocol", int(query.pop("protocol")))
    if scheme in ("redis", "rediss", "unix"):
        sync_opts, async_opts = _with_retry(options)
        return redis.Redis.from_url(url, **sync_opts), aredis.Redis.from_url(url, **async_opts)
    if scheme == "redis+cluster":
        cluster = require("redis.cluster", "redis")
        acluster = require("redis.asyncio.cluster", "redis")
        seeds = _split_hosts(parts.netloc, 6379)
        userinfo = parts.netloc.rpartition("@")[0]
        if userinfo:
            user, _, password = userinfo.partition(":")
            options.setdefault("password", password or None)
            options.setdefault("username", user or None)
        # The cluster clients' own default is ten retries, each a full socket_timeout against a hung
        # master (and a 0.25 s sleep on CLUSTERDOWN): one retry re-routes after a failover all the same.
        sync_opts, async_opts = _with_retry(options)
        sync = cluster.RedisCluster(startup_nodes=[cluster.ClusterNode(h, p) for h, p in seeds], **sync_opts)
        asyn = acluster.RedisCluster(
            startup_nodes=[acluster.ClusterNode(h, p) for h, p in seeds], **async_opts
        )
        return sync, asyn
    if scheme == "redis+sentinel":
        sentinel = require("redis.sentinel", "redis")
        asentinel = require("redis.asyncio.sentinel", "redis")
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ConfigError(
                f"{url!r}: a redis+sentinel URL names the master: redis+sentinel://host:26379/mymaster"
            )
        service = path[0]
        if len(path) > 1:
            options.setdefault("db", int(path[1]))
        seeds = _split_hosts(parts.netloc, 26379)
        timeout = options.get("socket_timeout")
        sync_opts, async_opts = _with_retry(options)
        sync = sentinel.Sentinel(seeds, socket_timeout=timeout).master_for(service, **sync_opts)
        asyn = asentinel.Sentinel(seeds, socket_timeout=timeout).master_for(service, **async_opts)
        return sync, asyn
    raise ConfigError(
        f"unknown Redis URL scheme {scheme!r} in {url!r}; use redis://, rediss://, unix://, "
        "redis+cluster:// or redis+sentinel://"
    )


def _sentinel_clients(client: Any) -> list[Any]:
    """The clients a Sentinel-managed master client holds to the Sentinels (closing it leaves them open)."""
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    return list(manager.sentinels) if manager is not None else []


class RedisBackend:
    """One namespace's view of a Redis deployment: prefixed keys, framed values, outages absorbed.

    Args:
        url: where Redis is (see the module docstring); ignored when ``client`` is given.
        prefix: the namespace key prefix (from :func:`~buttress.cache.keys.namespace_prefix`).
        serializer: how values become bytes.
        metrics: where errors are counted.
        socket_timeout: seconds a command may take before it counts as an outage.
        down_for: seconds to skip Redis after a connection error or timeout.
        clock: the clock ``down_for`` is measured on.
        client: an existing ``redis.Redis`` (or cluster / sentinel-master) client to use.
        async_client: an existing ``redis.asyncio`` client to use.
        options: more keyword arguments for the redis-py clients (``protocol=3``, ``max_connections``…).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str,
        serializer: Serializer,
        metrics: CacheMetrics,
        socket_timeout: float = 1.0,
        down_for: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
        client: Any = None,
        async_client: Any = None,
        **options: Any,
    ) -> None:
        self.redis_errors = require("redis.exceptions", "redis")
        self.url = url
        self.prefix = prefix
        self.serializer = serializer
        self.metrics = metrics
        self.down_for = down_for
        self._now = clock.monotonic
        self._down_until = 0.0
        options.setdefault("socket_timeout", socket_timeout)
        options.setdefault("socket_connect_timeout", socket_timeout)
        options.setdefault("health_check_interval", 30)
        direct: DirectPool | None = None
        adirect: AsyncDirectPool | None = None
        if client is None or async_client is None:
            sync, asyn = connect(url, **options)
            direct, adirect = direct_pools(
                sync if client is None else None, asyn if async_client is None else None
            )
            client = client if client is not None else sync
            async_client = async_client if async_client is not None else asyn
        self.client = client
        self.async_client = async_client
        self._direct = direct
        self._adirect = adirect
        # One command, one reply: on our own standalone clients without redis-py's per-command machinery
        # (see _direct.py); on Cluster, Sentinel or a client the caller passed, through the client.
        self._execute: Callable[..., Any] = direct.execute if direct is not None else client.execute_command
        self._aexecute: Callable[..., Awaitable[Any]] = (
            adirect.execute if adirect is not None else async_client.execute_command
        )
        self.is_cluster = type(client).__name__ == "RedisCluster"
        errors = self.redis_errors
        # An outage: the server is unreachable or slow, or a cluster has no master for a slot
        # (CLUSTERDOWN while a replica takes over). Anything else from Redis is a bad entry.
        self._outage: tuple[type[BaseException], ...] = (
            errors.ConnectionError,
            errors.TimeoutError,
            errors.ClusterDownError,
            OSError,
        )
        self._redis_error: type[BaseException] = errors.RedisError

    # -- keys and failure bookkeeping --------------------------------------------------------------

    def key(self, key: str) -> str:
        """The Redis key for the namespace key ``key``."""
        full = self.prefix + key if type(key) is str else None
        if (
            full is not None
            and len(full) <= MAX_KEY_BYTES
            and full.isascii()
            and full.isprintable()
            and (" " not in full)
        ):
            return full
        return safe_key(self.prefix, key)

    @property
    def available(self) -> bool:
        """False while the backend is skipping Redis after an outage."""
        return not (self._down_until and self._now() < self._down_until)

    def _failed(self, exc: BaseException) -> None:
        self.metrics.errors.value += 1
        if isinstance(exc, self._outage):
            self._down_until = self._now() + self.down_for

    def _skip(self) -> bool:
        if self._down_until:
            if self._now() < self._down_until:
                return True
            self._down_until = 0.0
        return False

    def _decode(self, data: Any) -> Any:
        if data is None:
            return MISS
        try:
            return decode(self.serializer, data)
        except CorruptEntry:
            self.metrics.corrupt.value += 1
            return MISS

    # -- sync ------------------------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        """The value under ``key`` or ``MISS`` (also on an outage or a corrupt entry)."""
        if self._down_until and self._skip():
            return MISS
        k = self.key(key)
        try:
            data = self._execute("GET", k)
        except self._redis_error as exc:
            return self._read_failed(exc)
        except OSError as exc:
            return self._read_failed(exc)
        return self._decode(data) if data is not None else MISS

    def _decode_batch(self, datas: Sequence[Any]) -> list[Any]:
        """Values or ``MISS`` from a batch reply.

        A cluster pipeline returns a node's error (CLUSTERDOWN) among the results instead of raising it;
        it is counted once per batch.
        """
        failed = next((d for d in datas if isinstance(d, Exception)), None)
        if failed is not None:
            self._read_failed(failed)
        return [MISS if isinstance(d, Exception) else self._decode(d) for d in datas]

    def _read_failed(self, exc: BaseException) -> Any:
        if isinstance(exc, self._outage):
            self._failed(exc)
        else:  # WRONGTYPE and friends: someone else's data under our key
            self.metrics.corrupt.value += 1
        return MISS

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """Values or ``MISS`` for ``keys``: one ``MGET`` (one pipeline per node in a cluster)."""
        if not keys:
            return []
        if self._down_until and self._skip():
            return [MISS] * len(keys)
        rkeys = [self.key(k) for k in keys]
        try:
            if self.is_cluster:
                pipe = self.client.pipeline(transaction=False)
                for k in rkeys:
                    pipe.get(k)
                datas = pipe.execute(raise_on_error=False)
            else:
                datas = self._execute("MGET", *rkeys)
        except (self._redis_error, OSError) as exc:
            self._read_failed(exc)
            return [MISS] * len(keys)
        return self._decode_batch(datas)

    def set(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (dropped, counted, on an outage)."""
        data = encode(self.serializer, value)
        if self._down_until and self._skip():
            return
        try:
            self._execute("SET", self.key(key), data, "PX", max(1, int(ttl * 1000)))
        except (self._redis_error, OSError) as exc:
            self._failed(exc)

    def set_many(self, items: Sequence[tuple[str, Any, float]]) -> None:
        """Store ``(key, value, ttl)`` triples in one pipeline."""
        frames = [(self.key(k), encode(self.serializer, v), max(1, int(t * 1000))) for k, v, t in items]
        if not frames or (self._down_until and self._skip()):
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for k, data, px in frames:
                pipe.set(k, data, px=px)
            pipe.execute()
        except (self._redis_error, OSError) as exc:
            self._failed(exc)

    def delete(self, key: str) -> bool:
        """Remove ``key``; false when it was absent or Redis is unreachable."""
        if self._down_until and self._skip():
            return False
        try:
            return bool(self._execute("DEL", self.key(key)))
        except (self._redis_error, OSError) as exc:
            self._failed(exc)
            return False

    def _entry_keys(self, keys: Sequence[Any]) -> list[Any]:
        # Tag stamps survive a clear: they only ever grow, and every process's local mirror of them
        # (tiered L1s) assumes so. Deleting one would restart it at 1, below the stamps processes hold.
        tags = self.tag_prefix.encode()
        return [k for k in keys if not (k.encode() if isinstance(k, str) else k).startswith(tags)]

    def clear(self) -> None:
        """Unlink every entry under the namespace prefix (``SCAN``, batches of 500); tag stamps stay."""
        try:
            batch = []
            for k in self.client.scan_iter(match=self.prefix + "*", count=500):
                if not self._entry_keys([k]):
                    continue
                batch.append(k)
                if len(batch) >= 500:
                    self._unlink(batch)
                    batch = []
            if batch:
                self._unlink(batch)
        except (self._redis_error, OSError) as exc:
            self._failed(exc)

    def _unlink(self, keys: list[Any]) -> None:
        if self.is_cluster:
            pipe = self.client.pipeline(transaction=False)
            for k in keys:
                pipe.unlink(k)
            pipe.execute()
        else:
            self.client.unlink(*keys)

    # -- leases, tags, pub/sub (sync) ------------------------------------------------------------------

    def acquire_lease(self, key: str, ttl: float) -> str | None:
        """A token if this caller now holds ``key``'s load lease (``SET NX PX``), else ``None``.

        When Redis is unreachable the lease is granted locally (a token is returned): a cache outage must
        not stop loads, only make them less coordinated.
        """
        token = secrets.token_hex(8)
        if self._down_until and self._skip():
            return token
        try:
            ok = self._execute("SET", self.key(key) + ":lease", token, "NX", "PX", max(1, int(ttl * 1000)))
        except (self._redis_error, OSError) as exc:
            self._failed(exc)
            return token
        return token if ok else None

    def release_lease(self, key: str, token: str) -> None:
        """Give the lease back if it is still ours."""
        try:
            self.client.eval(_RELEASE, 1, self.key(key) + ":lease", token)
        except (self._redis_error, OSError) as exc:
            self._failed(exc)

    @property
    def tag_prefix(self) -> str:
        """What every tag-stamp key of the namespace starts with."""
        return self.prefix + "__tag__:"

    def tag_key(self, tag: str) -> str:
        """The Redis key holding ``tag``'s version stamp."""
        return safe_key(self.tag_prefix, tag)

    def tag_stamps(self, tags: Sequence[str]) -> list[int] | None:
        """Current stamps of ``tags`` (0 when never bumped), or ``None`` when Redis is unreachable."""
        if self._down_until and self._skip():
            return None
        try:
            values = self._execute("MGET", *[self.tag_key(t) for t in tags])
        except (self._redis_error, OSError) as exc:
            self._failed(exc)
            return None
        return [int(v) if v is not None else 0 for v in values]

    def bump_tag(self, tag: str) -> int | None:
        """Increment ``tag``'s stamp; the new stamp, or ``None`` when Redis is unreachable."""
        try:
            return int(self._execute("INCR", self.tag_key(tag)))
        except (self._redis_error, OSError) as exc:
            self._failed(exc)
            return None

    def publish(self, channel: str, message: str) -> bool:
        """Publish ``message`` on ``channel``; false when Redis is unreachable."""
        try:
            self.client.publish(channel, message)
        except (self._redis_error, OSError) as exc:
            self._failed(exc)
            return False
        return True

    def close(self) -> None:
        """Close the sync client's connections."""
        try:
            if self._direct is not None:
                self._direct.close()
            self.client.close()
            for sentinel in _sentinel_clients(self.client):
                sentinel.close()
        except Exception:  # closing a client whose server is gone must not fail shutdown
            pass

    # -- async -----------------------------------------------------------------------------------------

    async def aget(self, key: str) -> Any:
        """Async :meth:`get`."""
        if self._down_until and self._skip():
            return MISS
        k = self.key(key)
        try:
            data = await self._aexecute("GET", k)
        except self._redis_error as exc:
            return self._read_failed(exc)
        except OSError as exc:
            return self._read_failed(exc)
        return self._decode(data) if data is not None else MISS

    async def aget_many(self, keys: Sequence[str]) -> list[Any]:
        """Async :meth:`get_many`."""
        if not keys:
            return []
        if self._down_until and self._skip():
            return [MISS] * len(keys)
        rkeys = [self.key(k) for k in keys]
        try:
            if self.is_cluster:
                pipe = self.async_client.pipeline(transaction=False)
                for k in rkeys:
                    pipe.get(k)
                datas = await pipe.execute(raise_on_error=False)
            else:
                datas = await self._aexecute("MGET", *rkeys)
        except (self._redis_error, OSError) as exc:
            self._read_failed(exc)
            return [MISS] * len(keys)
        return self._decode_batch(datas)

    async def aset(self, key: str, value: Any, ttl: float) -> None:
        """Async :meth:`set`."""
        data = encode(self.serializer, value)
        if self._down_until and self._skip():
            return
        try:
            await self._aexecute("SET", self.key(key), data, "PX", max(1, int(ttl * 1000)))
        except (self._redis_error, OSError) as exc:
            self._failed(exc)

    async def aset_many(self, items: Sequence[tuple[str, Any, float]]) -> None:
        """Async :meth:`set_many`."""
        frames = [(self.key(k), encode(self.serializer, v), max(1, int(t * 1000))) for k, v, t in items]
        if not frames or (self._down_until and self._skip()):
            return
        try:
            pipe = self.async_client.pipeline(transaction=False)
            for k, data, px in frames:
                pipe.set(k, data, px=px)
            await pipe.execute()
        except (self._redis_error, OSError) as exc:
            self._failed(exc)

    async def adelete(self, key: str) -> bool:
        """Async :meth:`delete`."""
        if self._down_until and self._skip():
            return False
        try:
            return bool(await self._aexecute("DEL", self.key(key)))
        except (self._redis_error, OSError) as exc:
            self._failed(exc)
            return False

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        try:
            batch = []
            async for k in self.async_client.scan_iter(match=self.prefix + "*", count=500):
                batch.append(k)
            batch = self._entry_keys(batch)
            for i in range(0, len(batch), 500):
                chunk = batch[i : i + 500]
                if self.is_cluster:
                    pipe = self.async_client.pipeline(transaction=False)
                    for k in chunk:
                        pipe.unlink(k)
                    await pipe.execute()
                else:
                    await self.async_client.unlink(*chunk)
        except (self._redis_error, OSError) as exc:
            self._failed(exc)

    async def aacquire_lease(self, key: str, ttl: float) -> str | None:
        """Async :meth:`acquire_lease`."""
        token = secrets.token_hex(8)
        if self._down_until and self._skip():
            return token
        try:
            ok = await self._aexecute(
                "SET", self.key(key) + ":lease", token, "NX", "PX", max(1, int(ttl * 1000))
            )
        except (self._redis_error, OSError) as exc:
            self._failed(exc)
            return token
        return token if ok else None

    async def arelease_lease(self, key: str, token: str) -> None:
        """Async :meth:`release_lease`."""
        try:
            await self.async_client.eval(_RELEASE, 1, self.key(key) + ":lease", token)
        except (self._redis_error, OSError) as exc:
            self._failed(exc)

    async def atag_stamps(self, tags: Sequence[str]) -> list[int] | None:
        """Async :meth:`tag_stamps`."""
        if self._down_until and self._skip():
            return None
        try:
            values = await self._aexecute("MGET", *[self.tag_key(t) for t in tags])
        except (self._redis_error, OSError) as exc:
            self._failed(exc)
            return None
        return [int(v) if v is not None else 0 for v in values]

    async def abump_tag(self, tag: str) -> int | None:
        """Async :meth:`bump_tag`."""
        try:
            return int(await self._aexecute("INCR", self.tag_key(tag)))
        except (self._redis_error, OSError) as exc:
            self._failed(exc)
            return None

    async def apublish(self, channel: str, message: str) -> bool:
        """Async :meth:`publish`."""
        try:
            await self.async_client.publish(channel, message)
        except (self._redis_error, OSError) as exc:
            self._failed(exc)
            return False
        return True

    async def aclose(self) -> None:
        """Close the async client's connections (in the loop that used them)."""
        try:
            if self._adirect is not None:
                await self._adirect.aclose()
            await self.async_client.aclose()
            for sentinel in _sentinel_clients(self.async_client):
                await sentinel.aclose()
        except Exception:  # see close()
            pass
