"""Per-endpoint HTTP series, shared by the ASGI and WSGI middleware, the engine and the history store.

One :class:`HttpSeries` exists per (route template, method, status class). It holds:

* ``requests`` — the registry counter ``buttress_http_requests{route,method,status_class}``;
* ``latency_add`` — the bound ``add`` of the registry sketch ``buttress_http_request_duration_seconds``,
  cumulative since the process started (what ``/metrics`` exposes).

Series are created once, under a lock, and cached in a dict keyed by the tuple the middleware already has;
recording is then one counter increment and one sketch update. Route templates are bounded by
``max_routes`` (later ones fold into ``<other>``) so a framework that leaks concrete paths cannot explode
the label set.

**Per-minute data without a second sketch**: :meth:`HttpRecorder.collect` reads each cumulative sketch's
bucket counts and subtracts the counts it read last time. Buckets are fixed by the accuracy, so the
difference is exactly the interval's samples, bucket for bucket; nothing is swapped under the hot path,
so no sample recorded concurrently can be lost — it lands in this interval or the next. The interval's
exact ``min``/``max`` are not known from counts alone; the edges of its lowest and highest buckets stand
in, which keeps every quantile within the sketch's 1 %.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from buttress.slo.routes import METHODS
from buttress.telemetry.registry import REGISTRY, Counter, Registry
from buttress.telemetry.sketch import Sketch

__all__ = [
    "DURATION_METRIC",
    "OVERFLOW",
    "RECORDER",
    "REQUESTS_METRIC",
    "HttpRecorder",
    "HttpSeries",
    "SeriesSample",
    "status_class",
]

#: Latency distribution per endpoint (exported as a histogram).
DURATION_METRIC = "buttress_http_request_duration_seconds"
#: Requests per endpoint (exported as ``buttress_http_requests_total``).
REQUESTS_METRIC = "buttress_http_requests"
#: The route label of templates beyond ``max_routes``.
OVERFLOW = "<other>"

_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


def status_class(status: int) -> str:
    """``"2xx"`` … ``"5xx"``; a missing or impossible status (no response) counts as ``"5xx"``."""
    return _CLASSES.get(status // 100, "5xx")


class SeriesSample(NamedTuple):
    """One series' requests in one collection interval (usually a minute)."""

    route: str
    method: str
    status_class: str
    sketch: Sketch


class HttpSeries:
    """The instruments of one (route, method, status class); created by :meth:`HttpRecorder.series`."""

    __slots__ = (
        "_prev_count",
        "_prev_counts",
        "_prev_sum",
        "_prev_zero",
        "latency_add",
        "method",
        "requests",
        "route",
        "sketch",
        "status_class",
    )

    def __init__(self, route: str, method: str, status: str, requests: Counter, latency: Sketch) -> None:
        self.route = route
        self.method = method
        self.status_class = status
        self.requests = requests
        self.sketch = latency
        self.latency_add = latency.add
        self._prev_counts: dict[int, int] = {}
        self._prev_zero = 0
        self._prev_sum = 0.0
        self._prev_count = 0

    def record(self, seconds: float) -> None:
        """Count one request that took ``seconds`` (the middleware inlines this)."""
        self.requests.value += 1
        self.latency_add(seconds)

    def interval(self) -> Sketch | None:
        """The samples recorded since the last call, as a sketch; ``None`` when there were none."""
        now = self.sketch.to_dict()
        counts, offset, zero = now["counts"], now["offset"], now["zero_count"]
        total = zero + sum(counts)
        if total == self._prev_count:
            return None
        prev = self._prev_counts
        delta: dict[int, int] = {}
        for i, c in enumerate(counts):
            d = c - prev.get(offset + i, 0)
            if d > 0:  # a negative difference can only follow a bucket collapse; it is not new data
                delta[offset + i] = d
        self._prev_counts = {offset + i: c for i, c in enumerate(counts) if c}
        zero_delta = max(zero - self._prev_zero, 0)
        sum_delta = max(now["sum"] - self._prev_sum, 0.0)
        self._prev_zero, self._prev_sum, self._prev_count = zero, now["sum"], total
        if not delta and not zero_delta:
            return None
        gamma = (1 + now["relative_accuracy"]) / (1 - now["relative_accuracy"])
        low, high = (min(delta), max(delta)) if delta else (0, 0)
        lo = 0.0 if zero_delta else max(gamma**low, now["min"])
        hi = min(gamma ** (high + 1), now["max"]) if delta else now["min_value"]
        return Sketch.from_dict(
            {
                "version": now["version"],
                "relative_accuracy": now["relative_accuracy"],
                "min_value": now["min_value"],
                "max_buckets": now["max_buckets"],
                "offset": low,
                "counts": [delta.get(k, 0) for k in range(low, high + 1)] if delta else [],
                "zero_count": zero_delta,
                "sum": sum_delta,
                "min": lo,
                "max": max(hi, lo),
            }
        )


class HttpRecorder:
    """Owns the HTTP series of one application (or test).

    Args:
        registry: where the ``buttress_http_*`` families live (default: the process registry).
        max_routes: distinct route templates kept as labels; more fold into ``<other>``.

    The middleware looks series up in :attr:`cache` with ``(route, method, status // 100)`` and calls
    :meth:`series` only on a miss.
    """

    def __init__(self, registry: Registry = REGISTRY, *, max_routes: int = 1000) -> None:
        if max_routes < 1:
            raise ValueError(f"max_routes must be at least 1, got {max_routes!r}")
        self.registry = registry
        self.max_routes = max_routes
        self.cache: dict[tuple[str, str, int], HttpSeries] = {}
        self._all: list[HttpSeries] = []
        self._by_labels: dict[tuple[str, str, str], HttpSeries] = {}
        self._routes: set[str] = set()
        self._lock = threading.Lock()

    def series(self, route: str, method: str, status: int) -> HttpSeries:
        """The series for a request (created on first use); also fills :attr:`cache`."""
        key = (route, method, status // 100)
        found = self.cache.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self.cache.get(key)
            if found is not None:
                return found
            label_route = route
            if route not in self._routes:
                if len(self._routes) >= self.max_routes:
                    label_route = OVERFLOW
                else:
                    self._routes.add(route)
            label_method = method if method in METHODS else "OTHER"
            cls = status_class(status)
            # Only well-formed keys are cached: a client inventing methods, or an app leaking concrete paths
            # past max_routes, must not grow the cache; such requests take this slower path instead.
            cacheable = label_route == route and label_method == method
            labels_wanted = (label_route, label_method, cls)
            existing = self._by_labels.get(labels_wanted)
            if existing is not None:
                if cacheable:
                    self.cache[key] = existing
                return existing
            labels = {"route": label_route, "method": label_method, "status_class": cls}
            requests = self.registry.counter(REQUESTS_METRIC, "HTTP requests by route template", labels)
            latency = self.registry.latency(
                DURATION_METRIC, "HTTP request duration by route template", labels
            )
            created = HttpSeries(label_route, label_method, cls, requests, latency.sketch)
            self._all.append(created)
            self._by_labels[labels_wanted] = created
            if cacheable:
                self.cache[key] = created
            return created

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one request (for code that is not the middleware: tests, replays, other servers)."""
        self.series(route, method, status).record(seconds)

    def collect(self) -> list[SeriesSample]:
        """The requests recorded since the last call, per series (see the module docstring).

        Returns:
            One sample per series that saw requests, with that interval's sketch.
        """
        with self._lock:
            series = list(self._all)
        out = []
        for s in series:
            interval = s.interval()
            if interval is not None:
                out.append(SeriesSample(s.route, s.method, s.status_class, interval))
        return out

    def __len__(self) -> int:
        return len(self._all)


#: The process-wide recorder the middleware uses by default.
RECORDER = HttpRecorder()
