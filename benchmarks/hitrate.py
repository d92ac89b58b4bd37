"""Cache hit rates: buttress' MemoryStore beside exact LRU, theine and Belady's optimum, in one run.

Every policy replays the same request sequence in cache-aside fashion (``get``; on a miss, ``put``)
and the figure is hits over requests, in percent (higher is better). The buttress contestant is the
real :class:`buttress.cache.backends.memory.MemoryStore` with its default adaptive W-TinyLFU policy —
the code users run, read buffer and all — not a model of it.

Contestants:

* ours: ``MemoryStore(capacity)`` (policy ``"tinylfu"``);
* lru: an exact LRU over an ``OrderedDict``, written here as the textbook baseline;
* theine: ``theine.Cache(capacity, nolock=True)`` (W-TinyLFU with a Rust core), when installed;
* opt: Belady's optimum with bypass (on a miss, keep whichever of the newcomer and the resident whose
  next use is farthest away goes), computed from next-use indices of the same sequence — the ceiling.

Workloads:

* ``zipf-<α>``: Zipf(α) popularity over 100 000 keys, α = 0.8, 0.9, 1.0, 1 M requests (``--quick``:
  150 000), caches of 0.1 %, 1 % and 10 % of the keys;
* ``shift``: Zipf 0.9 whose hot set is replaced by a fresh one halfway through (cache 1 %);
* ``scan``: Zipf 0.9 with a burst of 5 000 never-repeated keys after every 20 000 requests (cache 1 %);
* the traces in ``../shared/traces`` (or ``--traces DIR``): LIRS (gli, loop, multi2, sprite, ps,
  2_pools) and cache2k (orm-busy, web07), caches of 5 %, 20 % and 50 % of each trace's distinct keys.
  ``--quick`` replays the first 200 000 requests of the long traces.

Trace credits: the cache2k traces orm-busy and web07 are © headissue GmbH / Jens Wilke, licensed
CC BY 4.0; the LIRS traces were published by Song Jiang and Xiaodong Zhang (SIGMETRICS 2002); both
sets come from the simulator resources of the Caffeine project.

    python benchmarks/hitrate.py [--quick] [--json FILE] [--traces DIR] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import lzma
import math
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import Case, write_json
from buttress.cache.backends.memory import MISS, MemoryStore

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACES = ROOT.parent / "shared" / "traces"
ZIPF_KEYS = 100_000
LIRS = ("gli", "loop", "multi2", "sprite", "ps", "2_pools")
CACHE2K = ("orm-busy", "web07")
QUICK_TRACE_LIMIT = 200_000


@dataclass
class Workload:
    """One request sequence and the cache sizes to replay it at."""

    name: str
    keys: Callable[[], list[str]]
    sizes: list[tuple[str, int]]


# -- request sequences ---------------------------------------------------------------------------------


def zipf_ids(n_keys: int, alpha: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` draws of Zipf(alpha) ranks over ``n_keys``, mapped through a random permutation."""
    ranks = np.arange(1, n_keys + 1, dtype=np.float64)
    weights = ranks**-alpha
    draws = rng.choice(n_keys, size=count, p=weights / weights.sum())
    return rng.permutation(n_keys)[draws]


def as_keys(ids: np.ndarray, prefix: str = "k") -> list[str]:
    """String keys, interned through one dict so equal ids share one str object (as real keys would)."""
    table: dict[int, str] = {}
    out = []
    for i in ids.tolist():
        key = table.get(i)
        if key is None:
            key = table[i] = f"{prefix}{i}"
        out.append(key)
    return out


def zipf_keys(alpha: float, count: int, seed: int) -> list[str]:
    return as_keys(zipf_ids(ZIPF_KEYS, alpha, count, np.random.default_rng(seed)))


def shift_keys(count: int, seed: int) -> list[str]:
    """Zipf 0.9 whose popularity order is re-drawn (a new permutation) halfway through."""
    rng = np.random.default_rng(seed)
    first = zipf_ids(ZIPF_KEYS, 0.9, count // 2, rng)
    second = zipf_ids(ZIPF_KEYS, 0.9, count - count // 2, rng)
    return as_keys(np.concatenate([first, second]))


def scan_keys(count: int, seed: int, every: int = 20_000, burst: int = 5_000) -> list[str]:
    """Zipf 0.9, with ``burst`` never-repeated keys (a scan) inserted after every ``every`` requests."""
    base = zipf_keys(0.9, count, seed)
    out: list[str] = []
    scanned = 0
    for start in range(0, len(base), every):
        out.extend(base[start : start + every])
        out.extend(f"scan{scanned + j}" for j in range(burst))
        scanned += burst
    return out


def read_trace(path: Path, limit: int | None) -> list[str]:
    """A trace as string keys: LIRS text (one int a line, ``*`` and blanks skipped) or cache2k binary
    (big-endian signed 32-bit ints)."""
    if path.suffix == ".gz":
        ids: list[int] = []
        with gzip.open(path, "rt") as handle:
            for line in handle:
                line = line.strip()
                if line and line != "*":
                    ids.append(int(line))
                    if limit is not None and len(ids) >= limit:
                        break
        array = np.array(ids, dtype=np.int64)
    else:
        with lzma.open(path) as handle:
            data = handle.read(None if limit is None else 4 * limit)
        array = np.frombuffer(data[: len(data) // 4 * 4], dtype=">i4").astype(np.int64)
    return as_keys(array)


def workloads(quick: bool, traces: Path) -> Iterator[Workload]:
    count = 150_000 if quick else 1_000_000
    zipf_sizes = [("0.1%", ZIPF_KEYS // 1000), ("1%", ZIPF_KEYS // 100), ("10%", ZIPF_KEYS // 10)]
    for i, alpha in enumerate((0.8, 0.9, 1.0)):
        yield Workload(f"zipf-{alpha}", lambda a=alpha, s=i: zipf_keys(a, count, 1000 + s), zipf_sizes)
    yield Workload("shift", lambda: shift_keys(count, 2000), [("1%", ZIPF_KEYS // 100)])
    yield Workload("scan", lambda: scan_keys(count, 3000), [("1%", ZIPF_KEYS // 100)])
    limit = QUICK_TRACE_LIMIT if quick else None
    for name in (*LIRS, *CACHE2K):
        matches = sorted(traces.glob(f"{name}.trace.*"))
        if not matches:
            print(f"trace {name} not found under {traces}; skipped", file=sys.stderr)
            continue
        yield Workload(name, lambda p=matches[0]: read_trace(p, limit), [])


def trace_sizes(keys: Sequence[str]) -> list[tuple[str, int]]:
    distinct = len(set(keys))
    return [(f"{int(f * 100)}%", max(1, round(distinct * f))) for f in (0.05, 0.2, 0.5)]


# -- contestants ---------------------------------------------------------------------------------------


def run_ours(keys: Sequence[str], capacity: int) -> float:
    store = MemoryStore(capacity)
    get, put = store.get, store.put
    hits = 0
    for key in keys:
        if get(key) is MISS:
            put(key, key)
        else:
            hits += 1
    return hits / len(keys)


def run_lru(keys: Sequence[str], capacity: int) -> float:
    order: OrderedDict[str, bool] = OrderedDict()
    move, pop = order.move_to_end, order.popitem
    hits = 0
    for key in keys:
        if key in order:
            move(key)
            hits += 1
        else:
            order[key] = True
            if len(order) > capacity:
                pop(last=False)
    return hits / len(keys)


def run_theine(keys: Sequence[str], capacity: int) -> float:
    from theine import Cache

    cache = Cache(capacity, nolock=True)
    get, put = cache.get, cache.set
    hits = 0
    for key in keys:
        if get(key)[1]:
            hits += 1
        else:
            put(key, key)
    cache.close()
    return hits / len(keys)


def next_uses(keys: Sequence[str]) -> tuple[np.ndarray, list[int]]:
    """Integer ids for ``keys`` and, per request, the index of the same key's next request (or n)."""
    table: dict[str, int] = {}
    ids = np.fromiter((table.setdefault(k, len(table)) for k in keys), dtype=np.int64, count=len(keys))
    n = len(ids)
    order = np.argsort(ids, kind="stable")
    following = np.full(n, n, dtype=np.int64)
    same = ids[order[1:]] == ids[order[:-1]]
    following[order[:-1][same]] = order[1:][same]
    return ids, following.tolist()


def run_opt(keys: Sequence[str], capacity: int, prepared: tuple[np.ndarray, list[int]]) -> float:
    """Belady with bypass: a max-heap of next-use times with lazy deletion of stale entries."""
    ids_array, following = prepared
    ids = ids_array.tolist()
    n = len(ids)
    cached: dict[int, int] = {}  # id -> its next use
    heap: list[tuple[int, int]] = []  # (-next use, id); stale when it no longer matches `cached`
    push, pop, heapify = heapq.heappush, heapq.heappop, heapq.heapify
    hits = 0
    for i in range(n):
        key = ids[i]
        nxt = following[i]
        if key in cached:
            hits += 1
            cached[key] = nxt
            push(heap, (-nxt, key))
        elif len(cached) < capacity:
            if nxt < n:
                cached[key] = nxt
                push(heap, (-nxt, key))
        else:
            while True:
                far, victim = heap[0]
                if cached.get(victim) == -far:
                    break
                pop(heap)
            if nxt < -far:
                del cached[victim]
                pop(heap)
                cached[key] = nxt
                push(heap, (-nxt, key))
        if len(heap) > 4 * capacity + 1024:
            heap = [(-v, k) for k, v in cached.items()]
            heapify(heap)
    return hits / n


def theine_available() -> bool:
    try:
        import theine  # noqa: F401
    except ImportError:
        return False
    return True


def print_hitrates(cases: Sequence[Case]) -> None:
    """The table: each contestant's hit rate, ours minus LRU and theine, and ours as a share of OPT."""
    from rich.console import Console
    from rich.table import Table

    peers = list(dict.fromkeys(p for c in cases for p in c.peers))
    table = Table(title="buttress cache hit rate, % of requests (higher is better)")
    for column in ("case", "ours", *peers, "ours − lru", "ours − theine", "ours / opt"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for c in cases:
        lru, theine, opt = (c.peers.get(p, math.nan) for p in ("lru", "theine", "opt"))
        table.add_row(
            c.case,
            f"{c.ours:.2f}",
            *(f"{c.peers[p]:.2f}" if p in c.peers else "—" for p in peers),
            f"{c.ours - lru:+.2f}",
            "—" if math.isnan(theine) else f"{c.ours - theine:+.2f}",
            f"{c.ours / opt:.1%}" if opt else "—",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)


# -- driver --------------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Cache hit rates beside LRU, theine and OPT")
    parser.add_argument("--quick", action="store_true", help="shorter sequences; finishes within 60 s")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON here")
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="folder of the trace files")
    parser.add_argument("--only", metavar="SUBSTRING", help="run only workloads whose name contains this")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    from buttress.cli._console import progress

    contestants: dict[str, Callable[..., float]] = {"lru": run_lru}
    if theine_available():
        contestants["theine"] = run_theine
    else:
        print("theine is not installed; its column is left out", file=sys.stderr)
    cases: list[Case] = []
    started = time.perf_counter()
    chosen = [w for w in workloads(args.quick, args.traces) if not args.only or args.only in w.name]
    with progress() as bar:
        task = bar.add_task("hit-rate workloads", total=len(chosen))
        for workload in chosen:
            bar.update(task, description=f"{workload.name}: reading")
            keys = workload.keys()
            sizes = workload.sizes or trace_sizes(keys)
            prepared = next_uses(keys)
            for label, capacity in sizes:
                bar.update(task, description=f"{workload.name} @ {label}")
                ours = run_ours(keys, capacity)
                peers = {name: run(keys, capacity) * 100 for name, run in contestants.items()}
                peers["opt"] = run_opt(keys, capacity, prepared) * 100
                cases.append(Case(f"{workload.name}@{label}", ours * 100, peers, higher_is_better=True))
            bar.advance(task)
    print_hitrates(cases)
    if args.json is not None:
        write_json(args.json, "cache-hitrate", "%", cases)
    print(f"{len(cases)} cases in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
