"""Shared helpers for ``benchmarks/<area>.py``: arguments, interleaved timing, deep sizes, table, JSON.

Every area script follows the same shape::

    from _common import Case, empty_loop_timer, interleave, loop_timer, parse_args, report

    args = parse_args("Cache benchmarks")
    batches = [keys]
    timers = {"ours": loop_timer(cache.get, batches), "cachetools": loop_timer(ttl.get, batches)}
    ns = interleave(timers, rounds=5 if args.quick else 30, ops=len(keys), baseline=empty_loop_timer(batches))
    report("cache", [Case("memory_get_hit", ns["ours"], {"cachetools": ns["cachetools"]})], args)

Timing rules, so numbers from different scripts compare:

* ours and the peers run in the same process, round by round, in a rotated order, on the same batch;
  a slow moment on a shared machine then hurts every contestant of that round, not just one;
* each round times a whole batch with ``time.perf_counter_ns`` with the garbage collector off;
* a contestant's figure is its fastest round per operation, minus the fastest round of an empty loop
  over the same batch (the loop's own cost, subtracted identically for everyone; the call itself is
  part of what is measured);
* the JSON file is ``{"area", "unit", "cases": [{"case", "ours", "peers", "higher_is_better"?}]}``;
  lower is better unless a case sets ``higher_is_better``.

Run a script as ``python benchmarks/<area>.py [--quick] [--json FILE]`` from the bench venv.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import sys
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: A timer runs round ``n``'s batch of operations and returns the elapsed nanoseconds.
Timer = Callable[[int], int]


@dataclass
class Case:
    """One row of results: our figure and each peer's, in the same unit.

    Args:
        case: a snake_case name; put the unit in it when it is not the file's unit (``_pct``, ``_bytes``).
        ours: buttress' figure.
        peers: each peer's figure, by package name; ``math.nan`` when a peer cannot do the case.
        higher_is_better: set for throughputs and the like.
    """

    case: str
    ours: float
    peers: dict[str, float] = field(default_factory=dict)
    higher_is_better: bool = False

    def best_peer(self) -> tuple[str, float] | None:
        """The best peer's name and figure, ignoring NaN; ``None`` when there is none."""
        valid = [(v, k) for k, v in self.peers.items() if not math.isnan(v)]
        if not valid:
            return None
        value, name = max(valid) if self.higher_is_better else min(valid)
        return name, value

    def to_json(self) -> dict[str, Any]:
        """The case in the shared JSON shape (``higher_is_better`` only when true)."""
        row: dict[str, Any] = {"case": self.case, "ours": _clean(self.ours), "peers": {}}
        row["peers"] = {k: _clean(v) for k, v in self.peers.items()}
        if self.higher_is_better:
            row["higher_is_better"] = True
        return row


def _clean(value: float) -> float | None:
    # JSON has no NaN; a peer that cannot run a case is written as null.
    return None if math.isnan(value) else round(float(value), 3)


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The common command line: ``--quick`` (finish within 60 s) and ``--json FILE``.

    Args:
        description: one line for ``--help``.
        argv: arguments to parse instead of ``sys.argv[1:]`` (tests).

    Returns:
        A namespace with ``quick: bool`` and ``json: Path | None``.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer rounds; finishes within 60 s")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON here")
    return parser.parse_args(argv)


def loop_timer(fn: Callable[[Any], object], batches: Sequence[Sequence[Any]]) -> Timer:
    """A timer that calls ``fn(item)`` for each item of round ``n``'s batch (``batches[n % len]``).

    Bind methods before passing them (``sketch.add``, not ``lambda v: sketch.add(v)``), so the figure is
    the call a user's hot path makes.

    Args:
        fn: the operation, taking one argument.
        batches: the per-round inputs, all of the same length; give contestants that need another
            input type (integers, say) their own converted batches, so conversion is not timed.

    Returns:
        The timer.
    """

    def run(round_no: int) -> int:
        batch = batches[round_no % len(batches)]
        start = time.perf_counter_ns()
        for item in batch:
            fn(item)
        return time.perf_counter_ns() - start

    return run


def empty_loop_timer(batches: Sequence[Sequence[Any]]) -> Timer:
    """The loop of :func:`loop_timer` with nothing in it: the overhead :func:`interleave` subtracts."""

    def run(round_no: int) -> int:
        batch = batches[round_no % len(batches)]
        start = time.perf_counter_ns()
        for _item in batch:
            pass
        return time.perf_counter_ns() - start

    return run


def interleave(timers: Mapping[str, Timer], rounds: int, ops: int, baseline: Timer) -> dict[str, float]:
    """Run every contestant once per round, rotating who goes first, and return ns per operation.

    Args:
        timers: contestant name to timer.
        rounds: how many rounds; round ``n`` hands ``n`` to every timer.
        ops: operations per round (the batch length).
        baseline: the loop overhead to subtract, usually :func:`empty_loop_timer` on the same batches.

    Returns:
        Contestant name to its fastest round in nanoseconds per operation, minus the baseline's
        fastest round.
    """
    names = list(timers)
    best = dict.fromkeys(names, math.inf)
    overhead = math.inf
    enabled = gc.isenabled()
    gc.disable()  # a collection landing in one contestant's round would be charged to it alone
    try:
        for round_no in range(rounds):
            shift = round_no % len(names)
            for name in [*names[shift:], *names[:shift]]:
                best[name] = min(best[name], timers[name](round_no) / ops)
            overhead = min(overhead, baseline(round_no) / ops)
    finally:
        if enabled:
            gc.enable()
    return {name: value - overhead for name, value in best.items()}


_SHARED = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def deep_sizeof(obj: object) -> int:
    """Bytes reachable from ``obj``: every object once, ctypes buffers included.

    Classes, modules and functions are shared by every instance and are not counted; everything else
    reachable is (locks, constants, per-instance dicts), so the figure is an upper bound per series.

    Args:
        obj: the root object (one series of a metric, say).

    Returns:
        The total ``sys.getsizeof`` of the reachable objects plus ctypes buffer sizes.
    """
    seen: set[int] = set()
    stack = [obj]
    total = 0
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, _SHARED) or item is None:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, ctypes.Array | ctypes.Structure):
            total += ctypes.sizeof(item)  # getsizeof leaves out the C buffer
        stack.extend(gc.get_referents(item))
    return total


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"


def print_table(area: str, unit: str, cases: Sequence[Case]) -> None:
    """Print the cases with ``rich``: ours, each peer, and ours over the best peer.

    Args:
        area: the benchmark area, for the title.
        unit: the unit of cases whose name does not carry one.
        cases: the rows.
    """
    from rich.console import Console
    from rich.table import Table

    peers = list(dict.fromkeys(p for c in cases for p in c.peers))
    table = Table(title=f"buttress {area} benchmarks (unit: {unit} unless the case says otherwise)")
    table.add_column("case")
    table.add_column("ours", justify="right", style="bold")
    for peer in peers:
        table.add_column(peer, justify="right")
    table.add_column("ours / best peer", justify="right")
    for c in cases:
        best = c.best_peer()
        if best is None:
            ratio = "—"
        elif best[1] == 0:
            ratio = "—" if c.ours else "1.00×"
        else:
            ratio = f"{c.ours / best[1]:.2f}× ({best[0]})"
        table.add_row(c.case, _fmt(c.ours), *(_fmt(c.peers.get(p, math.nan)) for p in peers), ratio)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped into a file or CI log: do not squeeze the table to 80
    console.print(table)


def write_json(path: Path, area: str, unit: str, cases: Sequence[Case]) -> None:
    """Write the results in the shared JSON shape.

    Args:
        path: the file to write (parent directories are created).
        area: the benchmark area (``"telemetry"``).
        unit: the unit of cases whose name does not carry one (``"ns"``).
        cases: the rows.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"area": area, "unit": unit, "cases": [c.to_json() for c in cases]}
    path.write_text(json.dumps(payload, indent=2) + "\n")


def report(area: str, cases: Sequence[Case], args: argparse.Namespace, unit: str = "ns") -> None:
    """Print the table and, when ``--json`` was given, write the file.

    Args:
        area: the benchmark area.
        cases: the rows.
        args: the namespace from :func:`parse_args`.
        unit: the unit of cases whose name does not carry one.
    """
    print_table(area, unit, cases)
    if args.json is not None:
        write_json(args.json, area, unit, cases)
