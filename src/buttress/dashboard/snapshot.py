"""Telemetry snapshots: one process's registry and recent events as JSON, and many merged into one.

The dashboard reads a :func:`collect`-ed snapshot of its own process, or — when an application runs as
several worker processes — the merge of the snapshots every worker writes into a shared directory
(:class:`SnapshotWriter`, :class:`DirectorySource`), the way Prometheus' multiprocess mode shares
counters. Merging is exact: counters and gauges add up, latency sketches merge bucket by bucket
(:meth:`~buttress.telemetry.Sketch.merge`), and events are joined in time order. A gauge that reads state
the workers share — a dead-letter queue's depth, read from one store by every worker — must not add up:
:meth:`Merged.shared` counts each of its series once, at the largest worker's reading.

A snapshot::

    {"worker": "1", "pid": 4242, "time": 1764355200.5,
     "metrics": [{"name": "buttress_cache_requests", "kind": "counter",
                  "labels": {"namespace": "events", "result": "hit"}, "value": 1234},
                 {"name": "buttress_http_request_duration_seconds", "kind": "latency",
                  "labels": {...}, "sketch": "<base64 of Sketch.to_bytes()>"}],
     "events": [{"kind": "state_transition", "source": "circuitbreaker", ...}]}
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from buttress.telemetry import EVENTS, REGISTRY, EventStream, Registry, Sketch
from buttress.telemetry.registry import Counter, Gauge, Latency

__all__ = [
    "DirectorySource",
    "LocalSource",
    "Merged",
    "SnapshotSource",
    "SnapshotWriter",
    "collect",
    "merge",
]

_EVENT_KINDS = ("state_transition", "alert")


def collect(
    registry: Registry = REGISTRY, events: EventStream = EVENTS, *, worker: str = "0", keep_events: int = 200
) -> dict[str, Any]:
    """A JSON-ready snapshot of ``registry`` and the recent transitions and alerts of ``events``."""
    metrics: list[dict[str, Any]] = []
    for family in registry.families():
        for child in list(family.children):
            item: dict[str, Any] = {"name": family.name, "kind": family.kind, "labels": dict(child.labels)}
            if isinstance(child, Counter):
                item["value"] = float(child.value)
            elif isinstance(child, Gauge):
                try:
                    item["value"] = float(child.read())
                except Exception:  # a gauge whose function fails is left out, as at a scrape
                    continue
            elif isinstance(child, Latency):
                item["sketch"] = base64.b64encode(child.sketch.to_bytes()).decode("ascii")
            metrics.append(item)
    recent = [e.to_json() for e in events.recent() if e.kind in _EVENT_KINDS][-keep_events:]
    for e in recent:
        e["worker"] = worker
    return {"worker": worker, "pid": os.getpid(), "time": time.time(), "metrics": metrics, "events": recent}


@dataclass
class Merged:
    """Several snapshots merged: values and sketches per ``(name, labels)``, events in time order.

    Attributes:
        values: ``{(name, labels tuple): number}`` for counters and gauges, summed over the workers.
        peaks: ``{(name, labels tuple): number}`` for gauges, the largest worker's reading.
        sketches: ``{(name, labels tuple): Sketch}`` for latencies.
        events: transitions and alerts, oldest first.
        workers: the workers whose snapshots were merged.
        time: the newest snapshot's time.
    """

    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    peaks: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    sketches: dict[tuple[str, tuple[tuple[str, str], ...]], Sketch] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)
    time: float = 0.0

    def series(self, name: str) -> Iterable[tuple[dict[str, str], float]]:
        """``(labels, value)`` of every counter or gauge series named ``name``."""
        for (n, labels), value in self.values.items():
            if n == name:
                yield dict(labels), value

    def latencies(self, name: str) -> Iterable[tuple[dict[str, str], Sketch]]:
        """``(labels, sketch)`` of every latency series named ``name``."""
        for (n, labels), sketch in self.sketches.items():
            if n == name:
                yield dict(labels), sketch

    def value(self, name: str, /, **labels: str) -> float:
        """The sum of the series of ``name`` whose labels include ``labels`` (``name=`` may be a label)."""
        return sum(v for lab, v in self.series(name) if all(lab.get(k) == x for k, x in labels.items()))

    def shared_series(self, name: str) -> Iterable[tuple[dict[str, str], float]]:
        """``(labels, value)`` of every series of the gauge ``name``, each at its largest worker's reading.

        For gauges of shared state (every worker reads the same store), where adding up the workers'
        readings would count the same items once per worker.
        """
        for (n, labels), value in self.peaks.items():
            if n == name:
                yield dict(labels), value

    def shared(self, name: str, /, **labels: str) -> float:
        """The sum over the series of the shared gauge ``name`` matching ``labels``, each counted once."""
        return sum(
            v for lab, v in self.shared_series(name) if all(lab.get(k) == x for k, x in labels.items())
        )


def merge(snapshots: Iterable[dict[str, Any]]) -> Merged:
    """Merge snapshots (see the module docstring) into one :class:`Merged` view."""
    out = Merged()
    seen_events: set[tuple[str, int]] = set()
    for snap in snapshots:
        out.workers.append(str(snap.get("worker")))
        out.time = max(out.time, float(snap.get("time", 0.0)))
        for item in snap.get("metrics", ()):
            _add_metric(out, item)
        for event in snap.get("events", ()):
            # The same event can come twice: a worker's snapshot read before and after a rewrite.
            marker = (str(event.get("worker")), int(event.get("id", 0)))
            if marker not in seen_events:
                seen_events.add(marker)
                out.events.append(event)
    out.events.sort(key=lambda e: float(e.get("time", 0.0)))
    return out


def _add_metric(out: Merged, item: dict[str, Any]) -> None:
    """Add one series of one snapshot: sketches merge, values add up, gauges also keep their peak."""
    key = (item["name"], tuple(sorted(item["labels"].items())))
    if item["kind"] == "latency":
        sketch = Sketch.from_bytes(base64.b64decode(item["sketch"]))
        existing = out.sketches.get(key)
        if existing is None:
            out.sketches[key] = sketch
        else:
            existing.merge(sketch)
        return
    value = float(item["value"])
    out.values[key] = out.values.get(key, 0.0) + value
    if item["kind"] == "gauge":
        out.peaks[key] = max(out.peaks.get(key, value), value)


class SnapshotSource(Protocol):
    """Where the dashboard gets its numbers."""

    def read(self) -> Merged:
        """The current merged snapshot."""
        ...


class LocalSource:
    """This process's registry and event stream."""

    def __init__(self, registry: Registry = REGISTRY, events: EventStream = EVENTS) -> None:
        self.registry = registry
        self.events = events

    def read(self) -> Merged:
        """A snapshot of this process."""
        return merge([collect(self.registry, self.events)])


class DirectorySource:
    """The merge of the snapshot files ``*.json`` in ``path`` written by :class:`SnapshotWriter`.

    Args:
        path: the shared directory.
        max_age: files older than this many seconds are ignored, unless ``keep_stale`` (a worker that
            exited cleanly leaves its final snapshot, whose counts still belong to the totals).
    """

    def __init__(self, path: str | os.PathLike[str], *, max_age: float | None = None) -> None:
        self.path = Path(path)
        self.max_age = max_age

    def read(self) -> Merged:
        """Merge every readable snapshot file (a file being replaced is skipped this time)."""
        snaps = []
        now = time.time()
        for file in sorted(self.path.glob("*.json")):
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if self.max_age is not None and now - float(data.get("time", 0)) > self.max_age:
                continue
            snaps.append(data)
        return merge(snaps)


class SnapshotWriter:
    """Writes this process's snapshot to ``path/<worker>.json`` every ``interval`` seconds, atomically.

    Args:
        path: the shared directory (created if missing).
        worker: this process's name, unique among the workers.
        interval: seconds between writes.
        registry: the registry to snapshot.
        events: the event stream whose transitions and alerts to include.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        worker: str,
        *,
        interval: float = 1.0,
        registry: Registry = REGISTRY,
        events: EventStream = EVENTS,
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.worker = worker
        self.interval = interval
        self.registry = registry
        self.events = events
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def file(self) -> Path:
        """This worker's snapshot file."""
        return self.path / f"{self.worker}.json"

    def write(self) -> None:
        """Write one snapshot now (temporary file, then an atomic rename)."""
        data = json.dumps(collect(self.registry, self.events, worker=self.worker))
        fd, tmp = tempfile.mkstemp(prefix=f".{self.worker}.", suffix=".tmp", dir=self.path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(tmp, self.file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def start(self) -> SnapshotWriter:
        """Write every ``interval`` seconds from a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self.write()
                except Exception:  # a full disk must not kill the worker; the dashboard shows a gap
                    pass

        self._thread = threading.Thread(target=loop, name=f"buttress-snapshots-{self.worker}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and write a final snapshot."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.write()
