"""The metrics registry every part of buttress counts into.

Parts create their instruments once, when they are built, and keep them as plain attributes; the hot path
is then a single attribute increment (``counter.value += 1``) or one sketch update
(``latency.sketch.add(seconds)``) — never a lock and a dictionary lookup per call. Readers (the Prometheus
collector, the SLO engine, the dashboard) walk :meth:`Registry.families` when they need to: at scrape time,
at an evaluation tick, at a dashboard tick.

``value += 1`` on an attribute is not atomic across threads in CPython, so under heavy multi-threaded
contention a counter can, rarely, miss an increment. That is the trade Prometheus client libraries in other
languages avoid with atomics we do not have; we accept it for counters (their values are rates read over
minutes) and never rely on counters for correctness decisions (breakers keep their own window state).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from buttress.telemetry.sketch import Sketch

__all__ = [
    "REGISTRY",
    "Counter",
    "Gauge",
    "Latency",
    "MetricFamily",
    "Registry",
    "get_registry",
]

Kind = Literal["counter", "gauge", "latency"]


class Counter:
    """A monotonically increasing count. Increment with ``counter.value += n`` on hot paths."""

    __slots__ = ("labels", "name", "value")

    def __init__(self, name: str, labels: dict[str, str]) -> None:
        self.name = name
        self.labels = labels
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (which must not be negative)."""
        if amount < 0:
            raise ValueError(f"counter {self.name} can only go up; inc() got {amount!r}")
        self.value += amount

    def __repr__(self) -> str:
        return f"Counter({self.name!r}, {self.labels!r}, value={self.value!r})"


class Gauge:
    """A value that goes up and down, set directly or read from ``fn`` when collected."""

    __slots__ = ("fn", "labels", "name", "value")

    def __init__(self, name: str, labels: dict[str, str], fn: Callable[[], float] | None = None) -> None:
        self.name = name
        self.labels = labels
        self.value: float = 0
        self.fn = fn

    def set(self, value: float) -> None:
        """Set the gauge to ``value``."""
        self.value = value

    def read(self) -> float:
        """The current value: ``fn()`` when a function was given, else the last value set."""
        return self.fn() if self.fn is not None else self.value

    def __repr__(self) -> str:
        return f"Gauge({self.name!r}, {self.labels!r}, value={self.read()!r})"


class Latency:
    """A distribution of durations in seconds, kept in a mergeable :class:`~buttress.telemetry.Sketch`."""

    __slots__ = ("labels", "name", "sketch")

    def __init__(self, name: str, labels: dict[str, str], sketch: Sketch | None = None) -> None:
        self.name = name
        self.labels = labels
        self.sketch = sketch if sketch is not None else Sketch()

    def record(self, seconds: float) -> None:
        """Record one duration. Hot paths call ``latency.sketch.add`` directly, bound once."""
        self.sketch.add(seconds)

    def __repr__(self) -> str:
        return f"Latency({self.name!r}, {self.labels!r}, count={self.sketch.count})"


Child = Counter | Gauge | Latency


@dataclass
class MetricFamily:
    """All series of one metric name: its help text, kind, unit and one child per label set."""

    name: str
    help: str
    kind: Kind
    unit: str = ""
    children: list[Child] = field(default_factory=list)
    _index: dict[tuple[tuple[str, str], ...], Child] = field(default_factory=dict, repr=False)


class Registry:
    """Owns every metric family of a process (or of a test, when a test builds its own).

    ``counter``, ``gauge`` and ``latency`` are get-or-create: the same name and labels return the same
    object, so two breakers named alike share series, and a part rebuilt in a test keeps counting into
    the same place. Creating a series takes a lock; using one does not.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, MetricFamily] = {}

    def counter(self, name: str, help: str, labels: Mapping[str, str] | None = None) -> Counter:
        """Get or create the counter ``name`` with ``labels`` (name without the ``_total`` suffix)."""
        child = self._child(name, help, "counter", "", labels, None)
        assert isinstance(child, Counter)
        return child

    def gauge(
        self,
        name: str,
        help: str,
        labels: Mapping[str, str] | None = None,
        fn: Callable[[], float] | None = None,
    ) -> Gauge:
        """Get or create the gauge ``name``; ``fn``, when given, is read at collection time."""
        child = self._child(name, help, "gauge", "", labels, fn)
        assert isinstance(child, Gauge)
        if fn is not None:
            child.fn = fn
        return child

    def latency(
        self, name: str, help: str, labels: Mapping[str, str] | None = None, unit: str = "seconds"
    ) -> Latency:
        """Get or create the latency distribution ``name`` (exported as a histogram)."""
        child = self._child(name, help, "latency", unit, labels, None)
        assert isinstance(child, Latency)
        return child

    def families(self) -> list[MetricFamily]:
        """A snapshot list of every family, in creation order."""
        with self._lock:
            return list(self._families.values())

    def __iter__(self) -> Iterator[MetricFamily]:
        return iter(self.families())

    def get(self, name: str, labels: Mapping[str, str] | None = None) -> Child | None:
        """The series ``name`` with exactly ``labels``, or ``None`` (for tests and readers)."""
        family = self._families.get(name)
        if family is None:
            return None
        return family._index.get(_key(labels))

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The current value of a counter or gauge series, 0 when it does not exist."""
        child = self.get(name, labels)
        if child is None:
            return 0.0
        if isinstance(child, Gauge):
            return float(child.read())
        if isinstance(child, Counter):
            return float(child.value)
        return float(child.sketch.count)

    def clear(self) -> None:
        """Forget every family (tests)."""
        with self._lock:
            self._families.clear()

    def _child(
        self,
        name: str,
        help: str,
        kind: Kind,
        unit: str,
        labels: Mapping[str, str] | None,
        fn: Callable[[], float] | None,
    ) -> Child:
        key = _key(labels)
        family = self._families.get(name)
        if family is not None:
            child = family._index.get(key)
            if child is not None and family.kind == kind:
                return child
        with self._lock:
            family = self._families.get(name)
            if family is None:
                _check_name(name)
                family = MetricFamily(name=name, help=help, kind=kind, unit=unit)
                self._families[name] = family
            elif family.kind != kind:
                raise ValueError(
                    f"metric {name!r} is already registered as a {family.kind}; "
                    f"it cannot also be a {kind}. Pick another name."
                )
            child = family._index.get(key)
            if child is None:
                label_dict = dict(key)
                if kind == "counter":
                    child = Counter(name, label_dict)
                elif kind == "gauge":
                    child = Gauge(name, label_dict, fn)
                else:
                    child = Latency(name, label_dict)
                family._index[key] = child
                family.children.append(child)
            return child


def _key(labels: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    if not labels:
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _check_name(name: str) -> None:
    ok = name[:1].isalpha() or name[:1] == "_"
    if not ok or not all(c.isalnum() or c in "_:" for c in name):
        raise ValueError(f"metric name {name!r} is not a valid Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)")


#: The default process-wide registry.
REGISTRY = Registry()


def get_registry() -> Registry:
    """The process-wide default :class:`Registry`."""
    return REGISTRY
