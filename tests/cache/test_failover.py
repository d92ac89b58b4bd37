"""The Redis backend through a real failover, on Redis Cluster and on Sentinel, sync and async.

Each test kills the master that serves a key and checks what a caller sees: while no replica has taken
over, reads miss, ``get_or_load`` answers with the loader's value, nothing raises and every failed command
is counted as ``buttress_cache_errors_total{kind="backend"}``; once a replica is promoted, the *same*
cache object writes and reads again, on the new master, and tag invalidation works there.

**The outage phase is held open by the servers, not by timing.** Before the kill the replica is told not
to take over (``cluster-replica-no-failover yes`` on a cluster node; a Sentinel ``down-after-milliseconds``
of an hour), so the assertions about the outage cannot race a fast failover. Then the hold is released and
the failover is the servers' own: the cluster's election after ``cluster-node-timeout``, the Sentinel's
promotion after ``down-after-milliseconds``. Both are set low (500 ms) to keep the module fast. Waiting
for caching to resume polls the cache itself against a 30 s deadline; no duration is asserted.

While a cluster replica is held back, the cluster marks its dead master FAIL and then refuses every key
(``CLUSTERDOWN``), on healthy masters too: the tests wait for that state and check that it is absorbed and
counted as an outage like a refused connection, not as a corrupt entry.

One cluster and one Sentinel group serve the whole module; a test's teardown restarts the master it
killed as a replica of the new one, so the next test finds a healthy deployment again.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import servers
from buttress.cache import AsyncCache, Cache
from buttress.telemetry import Registry
from servers import RedisCluster, RedisSentinelGroup, RedisServer, key_slot, parse_info, wait_until

NODE_TIMEOUT_MS = 500  # cluster-node-timeout: a silent master is marked FAIL after about this long
DOWN_AFTER_MS = 500  # sentinel down-after-milliseconds
HOLD_MS = 3_600_000  # a down-after-milliseconds no test reaches: the Sentinel waits while we look
DEADLINE = 30.0  # seconds a failover may take before a test fails, saying what it waited for
NS = "ev"
KEY = "event:PyCon-25"


def _errors(registry: Registry, kind: str = "backend") -> float:
    return registry.value("buttress_cache_errors", {"namespace": NS, "kind": kind})


def eventually(check: Callable[[], bool], what: str) -> int:
    """Call ``check`` until it is true (a short pause between calls); fail after ``DEADLINE`` seconds.

    Unlike ``servers.wait_until`` an exception from ``check`` is not retried: it is a cache call, and
    an exception reaching the caller is exactly what these tests must catch. Returns the number of calls.
    """
    deadline = time.monotonic() + DEADLINE
    for calls in itertools.count(1):
        if check():
            return calls
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {DEADLINE:.0f} s waiting for {what}", pytrace=False)
        time.sleep(0.02)
    raise AssertionError("unreachable")


async def aeventually(check: Callable[[], Awaitable[bool]], what: str) -> int:
    """:func:`eventually` for a coroutine check."""
    deadline = time.monotonic() + DEADLINE
    for calls in itertools.count(1):
        if await check():
            return calls
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {DEADLINE:.0f} s waiting for {what}", pytrace=False)
        await asyncio.sleep(0.02)
    raise AssertionError("unreachable")


class Timeline:
    """When the master died, when the failover was allowed, when caching resumed; printed for the record."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.killed = self.released = self.resumed = 0.0

    def kill(self, server: RedisServer) -> None:
        server.kill()
        self.killed = time.monotonic()

    def release(self) -> None:
        self.released = time.monotonic()

    def resume(self) -> None:
        self.resumed = time.monotonic()

    def report(self, registry: Registry, attempts: int | None = None) -> None:
        tries = f", {attempts} write+read attempts" if attempts is not None else ""
        print(
            f"{self.label}: caching resumed {self.resumed - self.released:.2f} s after the failover was "
            f"allowed ({self.resumed - self.killed:.2f} s after the kill){tries}, "
            f"{_errors(registry):.0f} backend errors counted"
        )


def wait_replicated(master: RedisServer, replica: RedisServer) -> None:
    """Wait until ``replica`` has applied everything ``master`` had written when this was called."""
    offset = int(master.info("replication")["master_repl_offset"])
    wait_until(
        lambda: int(replica.info("replication").get("slave_repl_offset", -1)) >= offset,
        timeout=DEADLINE,
        what=f"{replica.name} to replicate {master.name} up to offset {offset}",
    )


def _marks() -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"after-failover-{next(counter)}"


def cache_again(cache: Cache, what: str) -> tuple[str, int]:
    """Poll until a set and a get through the same ``cache`` work again: the value written last, attempts."""
    mark = _marks()
    written: list[str] = []

    def caching_again() -> bool:
        written.append(mark())
        cache.set(KEY, written[-1])
        return cache.get(KEY) == written[-1]

    attempts = eventually(caching_again, what)
    return written[-1], attempts


async def acache_again(cache: AsyncCache, what: str) -> tuple[str, int]:
    """Async :func:`cache_again`."""
    mark = _marks()
    written: list[str] = []

    async def caching_again() -> bool:
        written.append(mark())
        await cache.set(KEY, written[-1])
        return bool(await cache.get(KEY) == written[-1])

    attempts = await aeventually(caching_again, what)
    return written[-1], attempts


# --------------------------------------------------------------------------------------------------------
# Redis Cluster
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_cluster() -> Iterator[RedisCluster]:
    with servers.running(RedisCluster, replicas=1, node_timeout_ms=NODE_TIMEOUT_MS) as cluster:
        yield cluster


@pytest.fixture
def cluster(module_cluster: RedisCluster) -> Iterator[RedisCluster]:
    """The module's cluster; afterwards every hold is released and a killed master rejoins as a replica."""
    yield module_cluster
    for node in module_cluster.nodes:
        if node.alive():
            node.command("CONFIG", "SET", "cluster-replica-no-failover", "no")
    dead = [node for node in module_cluster.nodes if not node.alive()]
    module_cluster.wait_healthy(timeout=DEADLINE)  # with a master dead, this waits for its failover
    for node in dead:
        node.restart()  # nodes.conf survives: it learns it was replaced and follows the new master
        wait_until(
            lambda node=node: node.info("replication").get("role") == "slave",
            timeout=DEADLINE,
            what=f"restarted {node.name} to rejoin as a replica",
        )
    module_cluster.wait_healthy(timeout=DEADLINE)


class ClusterFailover:
    """The master serving one Redis key, its replica, and a tag whose stamp lives on the same master."""

    def __init__(self, cluster: RedisCluster, cache: Cache | AsyncCache, key: str) -> None:
        backend = cache.core.remote
        self.cluster = cluster
        self.rkey = backend.key(key)
        self.master = cluster.node_for_key(self.rkey)
        self.replica = next(
            node
            for node in cluster.replicas
            if int(node.info("replication")["master_port"]) == self.master.port
        )
        slots = self._slots_of(self.master)
        self.tag = next(f"tag{i}" for i in itertools.count() if key_slot(backend.tag_key(f"tag{i}")) in slots)
        self.tag_rkey = backend.tag_key(self.tag)
        # A key served by another master: it is only refused once the whole cluster is down.
        self.elsewhere = next(
            f"other{i}" for i in itertools.count() if key_slot(backend.key(f"other{i}")) not in slots
        )

    def _slots_of(self, node: RedisServer) -> set[int]:
        ranges = node.command("CLUSTER", "SLOTS")
        return {
            s
            for start, end, master, *_ in ranges
            if int(master[1]) == node.port
            for s in range(start, end + 1)
        }

    def wait_replicated(self) -> None:
        """The replica has what the master holds (replication is asynchronous: a kill could lose it)."""
        wait_replicated(self.master, self.replica)

    def hold_and_kill(self, timeline: Timeline) -> None:
        """Forbid the replica to take over, then SIGKILL the master: its slots stay unserved."""
        self.replica.command("CONFIG", "SET", "cluster-replica-no-failover", "yes")
        timeline.kill(self.master)

    def wait_cluster_down(self) -> None:
        """Wait until the cluster marks the master FAIL: every node then answers CLUSTERDOWN."""
        live = [node for node in self.cluster.nodes if node.alive()]
        wait_until(
            lambda: all(parse_info(n.command("CLUSTER", "INFO"))["cluster_state"] == "fail" for n in live),
            timeout=DEADLINE,
            what="every live node to report cluster_state:fail",
        )

    def release(self, timeline: Timeline) -> None:
        """Let the replica run its election (the master is marked FAIL by then)."""
        assert self.replica.info("replication")["role"] == "slave", "the hold did not hold"
        self.replica.command("CONFIG", "SET", "cluster-replica-no-failover", "no")
        timeline.release()

    def check_new_owner(self) -> None:
        """The promoted replica serves the key's slot now and holds what was written after the failover."""
        assert self.replica.info("replication")["role"] == "master"
        assert key_slot(self.rkey) in self._slots_of(self.replica)  # as the replica itself sees it
        assert self.replica.command("GET", self.rkey) is not None


@pytest.mark.cluster
def test_sync_cache_rides_out_a_cluster_failover(cluster: RedisCluster, registry: Registry) -> None:
    cache = Cache(NS, backend=cluster.url, tiered=False, down_for=0.0, registry=registry, version="c-sync")
    try:
        # One immediate retry, not redis-py's ten: against a hung master each is a full socket_timeout.
        assert cache.core.remote.client.retry.get_retries() == 1
        failover = ClusterFailover(cluster, cache, KEY)
        cache.set(KEY, "before")
        cache.set(failover.elsewhere, "healthy master")
        cache.set("listing", "tagged", tags=[failover.tag])
        assert cache.get(KEY) == "before"
        assert cache.get("listing") == "tagged"
        failover.wait_replicated()
        timeline = Timeline("cluster, sync Cache")

        failover.hold_and_kill(timeline)
        loads: list[int] = []

        def load() -> str:
            loads.append(1)
            return "loaded"

        assert cache.get(KEY) is None
        assert cache.get_or_load(KEY, load) == "loaded"
        assert loads == [1]
        assert cache.get_many([KEY]) == {}
        cache.set(KEY, "during")  # dropped and counted
        # get, get_or_load's read and write, get_many, set: each command failed once, none raised.
        assert _errors(registry) == 5
        # Once the cluster marks the master FAIL, keys on healthy masters are refused too (CLUSTERDOWN):
        # an outage like any other, not a corrupt entry.
        failover.wait_cluster_down()
        assert cache.get(failover.elsewhere) is None
        assert cache.get_many([failover.elsewhere]) == {}
        assert _errors(registry) == 7
        assert _errors(registry, "corrupt") == 0

        failover.release(timeline)
        last, attempts = cache_again(cache, "the same Cache to write and read through the promoted replica")
        timeline.resume()
        assert cache.get(KEY) == last
        assert cache.get(failover.elsewhere) == "healthy master"
        failover.check_new_owner()
        assert _errors(registry, "corrupt") == 0

        # Tags after the failover: the stamp's INCR goes to the promoted replica.
        assert cache.get("listing") == "tagged"
        cache.invalidate_tag(failover.tag)
        assert cache.get("listing") is None
        assert int(failover.replica.command("GET", failover.tag_rkey)) >= 1
        cache.set("listing", "tagged again", tags=[failover.tag])
        assert cache.get("listing") == "tagged again"
        timeline.report(registry, attempts)
    finally:
        cache.close()


@pytest.mark.cluster
async def test_async_cache_rides_out_a_cluster_failover(cluster: RedisCluster, registry: Registry) -> None:
    cache = AsyncCache(
        NS, backend=cluster.url, tiered=False, down_for=0.0, registry=registry, version="c-async"
    )
    try:
        assert cache.core.remote.async_client.retry.get_retries() == 1
        failover = ClusterFailover(cluster, cache, KEY)
        await cache.set(KEY, "before")
        await cache.set(failover.elsewhere, "healthy master")
        await cache.set("listing", "tagged", tags=[failover.tag])
        assert await cache.get(KEY) == "before"
        failover.wait_replicated()
        timeline = Timeline("cluster, AsyncCache")

        failover.hold_and_kill(timeline)
        loads: list[int] = []

        async def load() -> str:
            loads.append(1)
            return "loaded"

        assert await cache.get(KEY) is None
        assert await cache.get_or_load(KEY, load) == "loaded"
        assert loads == [1]
        assert await cache.get_many([KEY]) == {}
        await cache.set(KEY, "during")
        assert _errors(registry) == 5
        failover.wait_cluster_down()
        assert await cache.get(failover.elsewhere) is None
        assert await cache.get_many([failover.elsewhere]) == {}
        assert _errors(registry) == 7
        assert _errors(registry, "corrupt") == 0

        failover.release(timeline)
        _, attempts = await acache_again(cache, "the same AsyncCache to write and read again")
        timeline.resume()
        assert await cache.get(failover.elsewhere) == "healthy master"
        failover.check_new_owner()
        assert _errors(registry, "corrupt") == 0

        assert await cache.get("listing") == "tagged"
        await cache.invalidate_tag(failover.tag)
        assert await cache.get("listing") is None
        assert int(failover.replica.command("GET", failover.tag_rkey)) >= 1
        timeline.report(registry, attempts)
    finally:
        await cache.aclose()


# --------------------------------------------------------------------------------------------------------
# Sentinel
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_sentinel() -> Iterator[RedisSentinelGroup]:
    with servers.running(RedisSentinelGroup, down_after_ms=DOWN_AFTER_MS) as group:
        yield group


def _down_after(group: RedisSentinelGroup, ms: int) -> None:
    assert group.sentinel is not None
    group.sentinel.command("SENTINEL", "SET", group.master_name, "down-after-milliseconds", str(ms))


def wait_sentinel_settled(group: RedisSentinelGroup) -> None:
    """Wait until the Sentinel names a live master, is connected to it, and does not think it is down."""
    assert group.sentinel is not None
    sentinel = group.sentinel

    def settled() -> bool:
        reply = sentinel.command("SENTINEL", "master", group.master_name)
        flags = dict(zip(reply[::2], reply[1::2], strict=True))["flags"]
        return bool(flags == "master" and group.current_master().alive())

    wait_until(settled, timeout=DEADLINE, what="the Sentinel to report a connected, healthy master")


@pytest.fixture
def sentinel(module_sentinel: RedisSentinelGroup) -> Iterator[RedisSentinelGroup]:
    """The module's group; afterwards the hold is released and a killed master rejoins as a replica."""
    group = module_sentinel
    yield group
    _down_after(group, DOWN_AFTER_MS)
    dead = [server for server in group.servers if not server.alive()]
    if dead:
        wait_sentinel_settled(group)  # the failover is over: nothing can promote the rejoining server
    for server in dead:
        group.rejoin(server)


class SentinelFailover:
    """Kill the master while the Sentinel is told to wait, then let it promote the replica.

    Right after a switch the Sentinel's link to the promoted master takes about a second to come up. With
    a ``down-after-milliseconds`` as short as this module's it would first flag the *new* master down,
    which redis-py then refuses, and try a second failover that finds no replica (after which it starts
    none for this master for twice ``failover-timeout``): an outage no 5-30 s setting produces. So the
    hold goes back on as soon as the Sentinel names the new master, and comes off once it is connected.
    """

    def __init__(self, group: RedisSentinelGroup) -> None:
        self.group = group
        self.old = group.master_addr()

    def wait_replicated(self) -> None:
        """The replica has what the master holds (replication is asynchronous: a kill could lose it)."""
        master = self.group.current_master()
        for server in self.group.servers:
            if server is not master:
                wait_replicated(master, server)

    def hold_and_kill(self, timeline: Timeline) -> None:
        """Tell the Sentinel to wait an hour before calling a master down, then SIGKILL the master."""
        _down_after(self.group, HOLD_MS)
        timeline.kill(self.group.current_master())

    def release(self, timeline: Timeline) -> None:
        """Let the Sentinel fail over; return once it names the promoted replica (and hold that one)."""
        assert self.group.master_addr() == self.old, "the hold did not hold"
        _down_after(self.group, DOWN_AFTER_MS)
        timeline.release()
        wait_until(
            lambda: self.group.master_addr() != self.old, timeout=DEADLINE, what="the Sentinel to switch"
        )
        _down_after(self.group, HOLD_MS)

    def wait_settled(self) -> None:
        """The Sentinel is connected to the new master; its usual ``down-after-milliseconds`` is back."""
        wait_sentinel_settled(self.group)
        _down_after(self.group, DOWN_AFTER_MS)

    def check_new_master(self, rkey: str) -> None:
        """The Sentinel names another master, and that server holds what was written after the failover."""
        assert self.group.master_addr() != self.old
        master = self.group.current_master()
        assert master.alive()
        assert master.command("GET", rkey) is not None


@pytest.mark.sentinel
def test_sync_cache_follows_the_sentinel_to_the_new_master(
    sentinel: RedisSentinelGroup, registry: Registry
) -> None:
    cache = Cache(NS, backend=sentinel.url, tiered=False, down_for=0.0, registry=registry, version="s-sync")
    try:
        cache.set(KEY, "before")
        cache.set("listing", "tagged", tags=["events"])
        assert cache.get(KEY) == "before"
        failover = SentinelFailover(sentinel)
        failover.wait_replicated()
        timeline = Timeline("sentinel, sync Cache")

        failover.hold_and_kill(timeline)
        assert cache.get(KEY) is None
        assert cache.get_or_load(KEY, lambda: "loaded") == "loaded"
        assert cache.get_many([KEY]) == {}
        cache.set(KEY, "during")
        assert _errors(registry) == 5
        assert _errors(registry, "corrupt") == 0

        failover.release(timeline)
        last, attempts = cache_again(cache, "the same Cache to reach the master the Sentinel promoted")
        timeline.resume()
        failover.wait_settled()
        failover.check_new_master(cache.core.remote.key(KEY))
        assert cache.get(KEY) == last
        cache.invalidate_tag("events")
        assert cache.get("listing") is None
        assert _errors(registry, "corrupt") == 0
        timeline.report(registry, attempts)
    finally:
        cache.close()


@pytest.mark.sentinel
async def test_async_cache_follows_the_sentinel_to_the_new_master(
    sentinel: RedisSentinelGroup, registry: Registry
) -> None:
    cache = AsyncCache(
        NS, backend=sentinel.url, tiered=False, down_for=0.0, registry=registry, version="s-async"
    )
    try:
        await cache.set(KEY, "before")
        assert await cache.get(KEY) == "before"
        failover = SentinelFailover(sentinel)
        timeline = Timeline("sentinel, AsyncCache")

        failover.hold_and_kill(timeline)

        async def load() -> str:
            return "loaded"

        assert await cache.get(KEY) is None
        assert await cache.get_or_load(KEY, load) == "loaded"
        assert await cache.get_many([KEY]) == {}
        await cache.set(KEY, "during")
        assert _errors(registry) == 5
        assert _errors(registry, "corrupt") == 0

        failover.release(timeline)
        last, attempts = await acache_again(cache, "the same AsyncCache to reach the promoted master")
        timeline.resume()
        failover.wait_settled()
        failover.check_new_master(cache.core.remote.key(KEY))
        assert await cache.get(KEY) == last
        timeline.report(registry, attempts)
    finally:
        await cache.aclose()


@pytest.mark.sentinel
def test_two_tier_listeners_resubscribe_after_a_sentinel_failover(
    sentinel: RedisSentinelGroup, registry: Registry
) -> None:
    opts: dict[str, Any] = {"backend": sentinel.url, "down_for": 0.0, "version": "s-tiered"}
    writer = Cache(NS, registry=registry, **opts)
    reader = Cache(NS, registry=Registry(), **opts)
    w_tier, r_tier = writer.core.tiered, reader.core.tiered
    w_store, r_store = writer.core.store, reader.core.store
    assert w_tier is not None
    assert r_tier is not None
    assert w_store is not None
    assert r_store is not None
    try:
        writer.set(KEY, "v1")
        # The reader drops its (absent) copy on the writer's message; read only after that, or the
        # message could evict the copy the read just made.
        assert r_tier.wait_for(lambda: r_tier.invalidations_applied >= 1, timeout=DEADLINE)
        assert reader.get(KEY) == "v1"
        assert KEY in r_store  # the reader holds an L1 copy
        failover = SentinelFailover(sentinel)
        failover.wait_replicated()  # or the promoted master might not know v1
        timeline = Timeline("sentinel, two-tier pair")

        failover.hold_and_kill(timeline)
        eventually(lambda: not w_tier.listening and not r_tier.listening, "both listeners to see the loss")
        assert reader.get(KEY) == "v1"  # L1 keeps serving while there is no master
        writer.set(KEY, "lost")  # L2 write and its message are dropped (counted); only the writer's L1 has it
        assert reader.get(KEY) == "v1"

        failover.release(timeline)
        # Back on the new master, each listener flushes its L1: the messages of the outage are gone.
        eventually(
            lambda: w_tier.listening and r_tier.listening and KEY not in w_store and KEY not in r_store,
            "both listeners to resubscribe on the new master and flush their L1",
        )
        timeline.resume()
        failover.wait_settled()
        assert writer.get(KEY) == "v1"  # the write made during the outage never reached Redis
        assert reader.get(KEY) == "v1"
        assert KEY in r_store

        # Coherence again: a write in one instance evicts the other's L1 copy, over the new master.
        writer.set(KEY, "v2")
        assert r_tier.wait_for(lambda: KEY not in r_store, timeout=DEADLINE), "reader's L1 copy not evicted"
        assert reader.get(KEY) == "v2"
        failover.check_new_master(writer.core.remote.key(KEY))
        assert _errors(registry) == 2  # the writer's SET and PUBLISH during the outage
        assert _errors(registry, "corrupt") == 0
        timeline.report(registry)
    finally:
        reader.close()
        writer.close()
