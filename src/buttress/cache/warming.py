"""Warming: fill namespaces at start-up from declared warmers, with a concurrency limit and a report.

::

    warmers = [
        Warmer("events", events, lambda: {f"event:{e.code}": e for e in db.upcoming_events()}),
        Warmer("speakers", speakers, load_top_speakers, required=True),
    ]
    report = warm(warmers, concurrency=4, on_progress=lambda p: log.info("warming %s", p))
    if report.failed: ...

A warmer returns ``{key: value}`` (or ``(key, value)`` pairs); its entries are written with one
``set_many`` (one per distinct tag set). Warmed entries take part in tag invalidation like any other:
give ``tags`` — the same for every entry, or a function of the key and value::

    Warmer("events", events, load_upcoming, tags=lambda key, event: [f"event:{event.code}"])
 A failing warmer is reported (:attr:`WarmReport.failed`) and does not stop the others or
start-up — unless it is ``required``, when :func:`warm` raises :class:`WarmingError` after every warmer
has finished.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from buttress.cache.api import AsyncCache, Cache
from buttress.errors import CacheError

__all__ = ["AsyncWarmer", "Progress", "WarmReport", "Warmer", "WarmingError", "awarm", "warm"]

Entries = Mapping[Any, Any] | Iterable[tuple[Any, Any]]
#: The tags of warmed entries: one list for all, or computed from each ``(key, value)``.
Tags = Sequence[str] | Callable[[Any, Any], Iterable[str]]


class WarmingError(CacheError):
    """A required warmer failed; ``report`` holds every warmer's outcome."""

    def __init__(self, report: WarmReport) -> None:
        self.report = report
        names = ", ".join(f"{name} ({err!r})" for name, err in report.failed.items())
        super().__init__(f"required cache warmer(s) failed: {names}")


@dataclass(frozen=True)
class Warmer:
    """One warmer: ``load()`` gives the entries to write into ``cache``.

    Args:
        name: shown in reports.
        cache: the namespace to fill.
        load: returns ``{key: value}`` or ``(key, value)`` pairs.
        required: a failure of this warmer fails :func:`warm`.
        ttl: seconds, overriding the namespace strategy.
        tags: the entries' tags, as ``Cache.set`` takes them, or a function ``(key, value) -> tags``.
    """

    name: str
    cache: Cache
    load: Callable[[], Entries]
    required: bool = False
    ttl: float | None = None
    tags: Tags = ()


@dataclass(frozen=True)
class AsyncWarmer:
    """:class:`Warmer` for :class:`~buttress.cache.AsyncCache` with a coroutine ``load``."""

    name: str
    cache: AsyncCache
    load: Callable[[], Awaitable[Entries]]
    required: bool = False
    ttl: float | None = None
    tags: Tags = ()


@dataclass(frozen=True)
class Progress:
    """Where warming is: warmers done (ok or failed) out of the total, and the one that just finished."""

    done: int
    total: int
    name: str
    ok: bool
    entries: int

    def __str__(self) -> str:
        state = f"{self.entries} entries" if self.ok else "FAILED"
        return f"{self.done}/{self.total} {self.name}: {state}"


@dataclass
class WarmReport:
    """What warming did: entries per warmer that succeeded, the error of each that failed, seconds taken."""

    loaded: dict[str, int] = field(default_factory=dict)
    failed: dict[str, BaseException] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every warmer succeeded."""
        return not self.failed

    @property
    def entries(self) -> int:
        """Entries written in total."""
        return sum(self.loaded.values())


def warm(
    warmers: Sequence[Warmer],
    *,
    concurrency: int = 4,
    on_progress: Callable[[Progress], None] | None = None,
    required: Iterable[str] = (),
) -> WarmReport:
    """Run ``warmers``, at most ``concurrency`` at a time, and report.

    Args:
        warmers: what to run.
        concurrency: how many run at once (threads).
        on_progress: called after each warmer finishes (from the finishing thread, serialised).
        required: names that are required in addition to those marked ``required``
            (``[cache].warmers_required`` in configuration).

    Raises:
        WarmingError: when a required warmer failed (after all have run).
    """
    if concurrency < 1:
        raise CacheError(f"concurrency must be at least 1, got {concurrency!r}")
    must = set(required) | {w.name for w in warmers if w.required}
    report = WarmReport()
    lock = threading.Lock()
    start = time.perf_counter()

    def run(w: Warmer) -> None:
        try:
            entries = list(_items(w.load()))
            for tags, group in _by_tags(entries, w.tags):
                w.cache.set_many(group, ttl=w.ttl, tags=tags)
        except Exception as exc:
            outcome: tuple[bool, int, BaseException | None] = (False, 0, exc)
        else:
            outcome = (True, len(entries), None)
        with lock:
            ok, count, error = outcome
            if ok:
                report.loaded[w.name] = count
            else:
                assert error is not None
                report.failed[w.name] = error
            if on_progress is not None:
                on_progress(
                    Progress(len(report.loaded) + len(report.failed), len(warmers), w.name, ok, count)
                )

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="buttress-warm") as pool:
        list(pool.map(run, warmers))
    report.seconds = time.perf_counter() - start
    if any(name in must for name in report.failed):
        raise WarmingError(report)
    return report


async def awarm(
    warmers: Sequence[AsyncWarmer],
    *,
    concurrency: int = 4,
    on_progress: Callable[[Progress], None] | None = None,
    required: Iterable[str] = (),
) -> WarmReport:
    """:func:`warm` for async warmers: at most ``concurrency`` loads in flight on this event loop."""
    if concurrency < 1:
        raise CacheError(f"concurrency must be at least 1, got {concurrency!r}")
    must = set(required) | {w.name for w in warmers if w.required}
    report = WarmReport()
    gate = asyncio.Semaphore(concurrency)
    start = time.perf_counter()

    async def run(w: AsyncWarmer) -> None:
        async with gate:
            try:
                entries = list(_items(await w.load()))
                for tags, group in _by_tags(entries, w.tags):
                    await w.cache.set_many(group, ttl=w.ttl, tags=tags)
            except Exception as exc:
                report.failed[w.name] = exc
                ok, count = False, 0
            else:
                report.loaded[w.name] = len(entries)
                ok, count = True, len(entries)
        if on_progress is not None:
            on_progress(Progress(len(report.loaded) + len(report.failed), len(warmers), w.name, ok, count))

    await asyncio.gather(*(run(w) for w in warmers))
    report.seconds = time.perf_counter() - start
    if any(name in must for name in report.failed):
        raise WarmingError(report)
    return report


def _items(entries: Entries) -> Iterable[tuple[Any, Any]]:
    return entries.items() if isinstance(entries, Mapping) else entries


Group = tuple[tuple[str, ...], list[tuple[Any, Any]]]


def _by_tags(entries: list[tuple[Any, Any]], tags: Tags) -> list[Group]:
    """``entries`` grouped by their tag set, in first-seen order (one ``set_many`` per group)."""
    if not callable(tags):
        return [(tuple(tags), entries)] if entries else []
    groups: dict[tuple[str, ...], list[tuple[Any, Any]]] = {}
    for key, value in entries:
        groups.setdefault(tuple(tags(key, value)), []).append((key, value))
    return list(groups.items())
