"""Worker processes for the multi-process cache tests (run as ``python _child.py <role> ...``).

Each role prints one line per step on stdout, flushed, so the parent can follow it without sleeping.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time


def reader(url: str, protocol: str) -> None:
    """Hold ``k`` in L1, then report when another process's write evicts it, and the delay measured."""
    from buttress.cache import Cache

    cache = Cache("ev", backend=url, redis_options={"protocol": int(protocol)})
    assert cache.core.tiered is not None
    assert cache.core.store is not None
    value = cache.get("k")
    store, tiered = cache.core.store, cache.core.tiered
    assert store.peek("k") is not None, "the value should be in L1 now"
    print(json.dumps({"step": "ready", "value": value}), flush=True)
    gone = tiered.wait_for(lambda: store.peek("k") is None, timeout=20)
    sketch = cache.core.metrics.invalidation_delay.sketch
    delay = sketch.max if sketch.count else None
    print(json.dumps({"step": "done", "invisible": gone, "now": cache.get("k"), "delay": delay}), flush=True)
    cache.close()


def lease_loader(url: str, db: str) -> None:
    """Miss one key at the same moment as three siblings; the loader appends a row to SQLite."""
    from buttress.cache import Cache

    cache = Cache("lease", backend=url, lease=10.0)
    print(json.dumps({"step": "ready"}), flush=True)
    sys.stdin.readline()  # the parent releases every process at once

    def loader() -> str:
        with sqlite3.connect(db, timeout=30) as conn:
            conn.execute("INSERT INTO loads (pid) VALUES (?)", (os.getpid(),))
        time.sleep(0.3)  # a slow source: the others must wait on the lease, not load too
        return "value"

    value = cache.get_or_load("hot", loader)
    print(json.dumps({"step": "done", "value": value}), flush=True)
    cache.close()


def behind_writer(journal: str, n: str) -> None:
    """Acknowledge ``n`` write-behind writes (never flushed: interval of an hour), then wait for SIGKILL."""
    from buttress.cache import Cache
    from buttress.cache.patterns.behind import SQLiteJournal, WriteBehind

    def never(batch: object) -> None:
        raise AssertionError("the writer must not flush before it is killed")

    cache = Cache("wb")
    behind = WriteBehind(cache, never, journal=SQLiteJournal(journal), interval=3600, batch_size=10**9)
    for i in range(int(n)):
        behind.write(f"row:{i}", {"i": i})
        print(json.dumps({"step": "ack", "i": i}), flush=True)
    print(json.dumps({"step": "acked"}), flush=True)
    sys.stdin.readline()  # blocks until SIGKILL


if __name__ == "__main__":
    {"reader": reader, "lease": lease_loader, "behind": behind_writer}[sys.argv[1]](*sys.argv[2:])
