"""A process that dead-letters and replays items until killed: ``python dlq_worker.py STORE EFFECTS SEED``.

It prints ``ACK <id>`` (flushed) only after a put returned, i.e. after the store acknowledged the item, and
``READY`` once it runs. Every third put it replays up to two items with a handler that appends the item's
idempotency key to the EFFECTS file and fsyncs it before the replay acknowledges the item. The parent kills
it with SIGKILL at random points and checks that every acknowledged item is still stored or was replayed.
Store errors (a Redis restart) are reported as ``ERR`` and the loop goes on.
"""

from __future__ import annotations

import os
import random
import sys

from buttress.errors import StoreError
from buttress.resilience.dlq import DeadLetterQueue, current_letter, open_store
from buttress.telemetry import Registry


def main(store_address: str, effects_path: str, seed: int) -> None:
    rng = random.Random(seed)
    queue = DeadLetterQueue(open_store(store_address), policy="durable", registry=Registry())
    effects = os.open(effects_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def handler(payload: object) -> None:
        letter = current_letter()
        assert letter is not None
        os.write(effects, f"{letter.idempotency_key}\n".encode())
        os.fsync(effects)

    print("READY", flush=True)
    n = 0
    while True:
        n += 1
        try:
            letter = queue.put({"n": n, "pid": os.getpid(), "blob": "x" * rng.randint(0, 2000)})
        except StoreError as exc:
            print(f"ERR {exc}", flush=True)
            continue
        print(f"ACK {letter.id}", flush=True)
        if n % 3 == 0:
            try:
                queue.replay(handler, limit=rng.randint(1, 2), lease=0.0)
            except StoreError as exc:
                print(f"ERR {exc}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
