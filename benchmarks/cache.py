"""Cache benchmarks: buttress beside cachetools, theine, cashews, aiocache and raw redis-py, in one run.

Cases (ns per operation, lower is better):

* ``memory_get_hit_sync`` — ``Cache.get`` on a present key vs cachetools ``TTLCache.get`` and theine;
* ``memory_get_hit_async`` — ``AsyncCache.get`` vs cashews (``mem://``) and aiocache ``SimpleMemoryCache``;
* ``redis_get_hit_sync`` / ``redis_get_hit_async`` — a Redis-only namespace vs raw redis-py ``GET``
  (bytes; the ratio is what the budget is about), redis-py ``GET`` + ``pickle.loads`` (the value, as
  ours returns it), cashews and aiocache on the same Redis;
* ``tiered_l1_hit_sync`` / ``tiered_l1_hit_async`` — a two-tier namespace's L1 hit;
* ``invalidation_visible_p95`` — a write in this process until the other process's L1 copy is gone,
  p95, measured in the other process from the publish timestamp (wall clock).

A private ``redis-server`` is started on a free port for the Redis cases (no persistence).
Run: ``python benchmarks/cache.py [--quick] [--json FILE]`` in the bench venv.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import Case, empty_loop_timer, interleave, loop_timer, parse_args, report
from buttress.cache import AsyncCache, Cache
from buttress.telemetry import Registry

KEYS = [f"event:{i}" for i in range(200)]
VALUE = {"code": "py25", "title": "PyCon", "sessions": list(range(10))}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="buttress-bench-redis-")
        self.port = free_port()
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is needed for the Redis cases")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def async_timers(
    loop: asyncio.AbstractEventLoop,
    fns: dict[str, Callable[[Any], Awaitable[object]]],
    batches: Sequence[Sequence[Any]],
) -> tuple[dict[str, Callable[[int], int]], Callable[[int], int]]:
    def make(fn: Callable[[Any], Awaitable[object]]) -> Callable[[int], int]:
        async def body(batch: Sequence[Any]) -> int:
            start = time.perf_counter_ns()
            for item in batch:
                await fn(item)
            return time.perf_counter_ns() - start

        return lambda n: loop.run_until_complete(body(batches[n % len(batches)]))

    async def nothing(item: Any) -> None:
        return None

    return {name: make(fn) for name, fn in fns.items()}, make(nothing)


def memory_sync(rounds: int) -> Case:
    import cachetools
    import theine

    ours = Cache("bench", registry=Registry(), max_entries=10_000)
    ttl = cachetools.TTLCache(maxsize=10_000, ttl=300)
    th = theine.Cache(10_000)
    import datetime

    for k in KEYS:
        ours.set(k, VALUE)
        ttl[k] = VALUE
        th.set(k, VALUE, datetime.timedelta(seconds=300))
    batches = [KEYS]
    timers = {
        "ours": loop_timer(ours.get, batches),
        "cachetools": loop_timer(ttl.get, batches),
        "theine": loop_timer(th.get, batches),
    }
    ns = interleave(timers, rounds, len(KEYS), empty_loop_timer(batches))
    return Case("memory_get_hit_sync", ns["ours"], {"cachetools": ns["cachetools"], "theine": ns["theine"]})


def memory_async(rounds: int, loop: asyncio.AbstractEventLoop) -> Case:
    from aiocache import SimpleMemoryCache
    from cashews import Cache as CashewsCache

    ours = AsyncCache("bench-a", registry=Registry(), max_entries=10_000)
    cashews = CashewsCache()
    cashews.setup("mem://?size=10000")
    aio = SimpleMemoryCache()

    async def fill() -> None:
        for k in KEYS:
            await ours.set(k, VALUE)
            await cashews.set(k, VALUE, expire=300)
            await aio.set(k, VALUE, ttl=300)

    loop.run_until_complete(fill())
    timers, base = async_timers(loop, {"ours": ours.get, "cashews": cashews.get, "aiocache": aio.get}, [KEYS])
    ns = interleave(timers, rounds, len(KEYS), base)
    return Case("memory_get_hit_async", ns["ours"], {"cashews": ns["cashews"], "aiocache": ns["aiocache"]})


def redis_cases(rounds: int, loop: asyncio.AbstractEventLoop, url: str) -> list[Case]:
    import redis
    import redis.asyncio as aredis
    from aiocache import RedisCache
    from cashews import Cache as CashewsCache

    keys = KEYS[:100]
    ours = Cache("bench-r", backend=url, tiered=False, registry=Registry())
    raw = redis.Redis.from_url(url)
    for k in keys:
        ours.set(k, VALUE)
    frame = raw.get(ours.core.remote.key(keys[0]))  # raw redis-py fetches the same bytes ours does
    for k in keys:
        raw.set("raw:" + k, frame)
    raw_keys = ["raw:" + k for k in keys]
    # Raw redis-py returns the stored bytes; ours returns the value, unpickled. "redis-py+pickle" is what
    # an application using redis-py as its cache would run: GET, then pickle.loads of the same payload.
    payload_at = 4  # the frame header ahead of the pickle (serialize.py)

    def raw_unpickle(key: str) -> object:
        data = raw.get(key)
        return pickle.loads(data[payload_at:]) if data is not None else None

    timers = {
        "ours": loop_timer(ours.get, [keys]),
        "redis-py": loop_timer(raw.get, [raw_keys]),
        "redis-py+pickle": loop_timer(raw_unpickle, [raw_keys]),
    }
    ns = interleave(timers, rounds, len(keys), empty_loop_timer([keys]))
    cases = [
        Case(
            "redis_get_hit_sync",
            ns["ours"],
            {"redis-py": ns["redis-py"], "redis-py+pickle": ns["redis-py+pickle"]},
        )
    ]

    aours = AsyncCache("bench-r", backend=url, tiered=False, registry=Registry())
    araw = aredis.Redis.from_url(url)
    cashews = CashewsCache()
    cashews.setup(url)
    host, port = url.split("//")[1].split("/")[0].split(":")
    aio = RedisCache(endpoint=host, port=int(port))

    async def fill() -> None:
        for k in keys:
            await cashews.set("c:" + k, VALUE, expire=300)
            await aio.set("a:" + k, VALUE, ttl=300)
        for k in keys:  # warm the connection pools
            await aours.get(k)
            await araw.get("raw:" + k)

    loop.run_until_complete(fill())

    async def araw_unpickle(key: str) -> object:
        data = await araw.get(key)
        return pickle.loads(data[payload_at:]) if data is not None else None

    c_keys = ["c:" + k for k in keys]
    a_keys = ["a:" + k for k in keys]
    fns = {
        "ours": lambda i: aours.get(keys[i]),
        "redis-py": lambda i: araw.get(raw_keys[i]),
        "redis-py+pickle": lambda i: araw_unpickle(raw_keys[i]),
        "cashews": lambda i: cashews.get(c_keys[i]),
        "aiocache": lambda i: aio.get(a_keys[i]),
    }
    idx = list(range(len(keys)))
    timers, base = async_timers(loop, fns, [idx])
    ns = interleave(timers, rounds, len(keys), base)
    cases.append(
        Case(
            "redis_get_hit_async",
            ns["ours"],
            {
                "redis-py": ns["redis-py"],
                "redis-py+pickle": ns["redis-py+pickle"],
                "cashews": ns["cashews"],
                "aiocache": ns["aiocache"],
            },
        )
    )

    async def close() -> None:
        await aours.aclose()
        await araw.aclose()
        await aio.close()
        await cashews.close()

    loop.run_until_complete(close())
    for task in asyncio.all_tasks(loop):  # cashews' memory backend leaves a sweeper task behind
        task.cancel()
    ours.close()
    raw.close()
    return cases


def tiered_cases(rounds: int, loop: asyncio.AbstractEventLoop, url: str) -> list[Case]:
    ours = Cache("bench-t", backend=url, registry=Registry())
    for k in KEYS:
        ours.set(k, VALUE)
    ns = interleave({"ours": loop_timer(ours.get, [KEYS])}, rounds, len(KEYS), empty_loop_timer([KEYS]))
    cases = [Case("tiered_l1_hit_sync", ns["ours"], {})]
    aours = ours.as_async()
    timers, base = async_timers(loop, {"ours": aours.get}, [KEYS])
    ns = interleave(timers, rounds, len(KEYS), base)
    cases.append(Case("tiered_l1_hit_async", ns["ours"], {}))
    ours.close()
    return cases


CHILD = """
import json, sys
from buttress.cache import Cache
cache = Cache("bench-inv", backend=sys.argv[1])
tiered, store = cache.core.tiered, cache.core.store
n = int(sys.argv[2])
cache.get("k")
print("ready", flush=True)
for i in range(n):
    tiered.wait_for(lambda: store.peek("k") is None, timeout=10)
    print("gone", flush=True)
    sys.stdin.readline()
    cache.get("k")
    print("ready", flush=True)
sketch = cache.core.metrics.invalidation_delay.sketch
result = {"p95": sketch.quantile(0.95), "p50": sketch.quantile(0.5), "count": sketch.count}
print(json.dumps(result), flush=True)
"""


def invalidation_case(url: str, n: int) -> Case:
    writer = Cache("bench-inv", backend=url, registry=Registry())
    writer.set("k", 0)
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        for i in range(n):
            writer.set("k", i + 1)
            assert child.stdout.readline().strip() == "gone"
            child.stdin.write("next\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "ready"
        result = json.loads(child.stdout.readline())
    writer.close()
    return Case("invalidation_visible_p95", result["p95"] * 1e9, {})


def main() -> None:
    args = parse_args("Cache benchmarks: buttress vs cachetools, theine, cashews, aiocache, redis-py")
    rounds = 7 if args.quick else 40
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    cases = [memory_sync(rounds * 3), memory_async(rounds * 3, loop)]
    server = RedisProcess()
    try:
        cases += redis_cases(rounds, loop, server.url)
        cases += tiered_cases(rounds * 3, loop, server.url)
        cases.append(invalidation_case(server.url, 50 if args.quick else 300))
    finally:
        server.close()
        loop.close()
    report("cache", cases, args)
    for case in cases:
        best = min((v for v in case.peers.values() if not math.isnan(v)), default=math.nan)
        if not math.isnan(best):
            print(f"  {case.case}: ours / best peer = {case.ours / best:.2f}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
