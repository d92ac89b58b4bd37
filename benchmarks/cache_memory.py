"""The in-process store's raw costs: MemoryStore.get on a hit, and put, beside cachetools and theine.

This measures the engine alone (``buttress.cache.backends.memory.MemoryStore``), not the cache API on
top of it (``benchmarks/cache.py`` does that). Contestants, each holding the same 10 000 string keys in
a cache of 20 000, run the same batches in interleaved rounds (see ``_common.py``):

* ours: ``MemoryStore(20_000)`` (adaptive W-TinyLFU), ``store.get(key)`` / ``store.put(key, value)``;
* cachetools: ``TTLCache(20_000, ttl)`` and ``LRUCache(20_000)``, ``cache.get(key)`` /
  ``cache[key] = value`` (both are plain Python classes over a dict, without locking);
* theine: ``theine.Cache(20_000)`` (W-TinyLFU with a Rust core, thread-safe by default), ``get(key)`` /
  ``set(key, value, ttl)``.

Cases: a get that hits an entry without TTL and with one (ours checks the deadline against one
``monotonic()`` call; TTLCache always does its timer bookkeeping), a put that replaces a key, and a
put of a new key into a full cache (which evicts). ns per operation, lower is better.

    python benchmarks/cache_memory.py [--quick] [--json FILE]
"""

from __future__ import annotations

import math
import random
from datetime import timedelta

from _common import Case, empty_loop_timer, interleave, loop_timer, parse_args, report
from buttress.cache.backends.memory import MemoryStore

CAPACITY = 20_000
KEYS = 10_000
BATCH = 20_000


def main() -> int:
    args = parse_args("MemoryStore get/put cost beside cachetools and theine")
    rounds = 5 if args.quick else 25
    rng = random.Random(42)
    keys = [f"event:{i}" for i in range(KEYS)]
    batches = [[rng.choice(keys) for _ in range(BATCH)] for _ in range(4)]
    baseline = empty_loop_timer(batches)

    import cachetools

    try:
        from theine import Cache as Theine
    except ImportError:  # pragma: no cover - the bench venv has it
        Theine = None

    ours = MemoryStore(CAPACITY)
    ours_ttl = MemoryStore(CAPACITY)
    ttl_cache: cachetools.TTLCache[str, object] = cachetools.TTLCache(CAPACITY, ttl=3600)
    lru_cache: cachetools.LRUCache[str, object] = cachetools.LRUCache(CAPACITY)
    for key in keys:
        ours.put(key, key)
        ours_ttl.put(key, key, ttl=3600)
        ttl_cache[key] = key
        lru_cache[key] = key
    timers = {
        "ours": loop_timer(ours.get, batches),
        "ours_ttl": loop_timer(ours_ttl.get, batches),
        "cachetools_ttl": loop_timer(ttl_cache.get, batches),
        "cachetools_lru": loop_timer(lru_cache.get, batches),
    }
    theine = theine_ttl = None
    if Theine is not None:
        theine, theine_ttl = Theine(CAPACITY), Theine(CAPACITY)
        hour = timedelta(hours=1)
        for key in keys:
            theine.set(key, key)
            theine_ttl.set(key, key, hour)
        timers["theine"] = loop_timer(theine.get, batches)
        timers["theine_ttl"] = loop_timer(theine_ttl.get, batches)
    hit = interleave(timers, rounds=rounds, ops=BATCH, baseline=baseline)
    nan = math.nan
    cases = [
        Case(
            "memory_get_hit",
            hit["ours"],
            {
                "cachetools_ttl": hit["cachetools_ttl"],
                "cachetools_lru": hit["cachetools_lru"],
                "theine": hit.get("theine", nan),
            },
        ),
        Case(
            "memory_get_hit_with_ttl",
            hit["ours_ttl"],
            {"cachetools_ttl": hit["cachetools_ttl"], "theine": hit.get("theine_ttl", nan)},
        ),
    ]

    # Writes: replacing a present key, then inserting new keys into a full cache. Each contestant is
    # called through a lambda (ours and theine need the value argument), so the baseline is an empty
    # lambda over the same batch.
    put_timers = {
        "ours": loop_timer(lambda k: ours.put(k, k), batches),
        "cachetools_ttl": loop_timer(lambda k: ttl_cache.__setitem__(k, k), batches),
        "cachetools_lru": loop_timer(lambda k: lru_cache.__setitem__(k, k), batches),
    }
    if theine is not None:
        put_timers["theine"] = loop_timer(lambda k: theine.set(k, k), batches)
    lambda_baseline = loop_timer(lambda k: None, batches)
    replace = interleave(put_timers, rounds=max(rounds // 2, 3), ops=BATCH, baseline=lambda_baseline)
    cases.append(
        Case(
            "memory_put_replace",
            replace["ours"],
            {
                "cachetools_ttl": replace["cachetools_ttl"],
                "cachetools_lru": replace["cachetools_lru"],
                "theine": replace.get("theine", nan),
            },
        )
    )
    fresh = [[f"new:{r}:{i}" for i in range(BATCH)] for r in range(max(rounds // 2, 3) + 1)]
    new_timers = {
        "ours": loop_timer(lambda k: ours.put(k, k), fresh),
        "cachetools_lru": loop_timer(lambda k: lru_cache.__setitem__(k, k), fresh),
    }
    if theine is not None:
        new_timers["theine"] = loop_timer(lambda k: theine.set(k, k), fresh)
    inserted = interleave(
        new_timers, rounds=len(fresh) - 1, ops=BATCH, baseline=loop_timer(lambda k: None, fresh)
    )
    cases.append(
        Case(
            "memory_put_new_evicting",
            inserted["ours"],
            {"cachetools_lru": inserted["cachetools_lru"], "theine": inserted.get("theine", nan)},
        )
    )
    report("cache-memory", cases, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
