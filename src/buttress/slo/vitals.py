"""Frontend Web Vitals: a beacon endpoint, the script that feeds it, and P75 per page and device class.

The script ``static/vitals.min.js`` is built from Google's ``web-vitals`` package (``js/`` at the
repository root; ``js/build.sh`` rebuilds it) and shipped in the wheel — pages load it from your own
server, never a CDN::

    app.mount("/_buttress", vitals_app())
    # <script src="/_buttress/vitals.js" data-page="/events/{id}" defer></script>

It reports LCP, INP, CLS, FCP and TTFB when the page is hidden, as one JSON beacon::

    {"page": "/events/{id}", "device": "mobile",
     "metrics": [{"name": "LCP", "value": 2140.5, "id": "v5-1718…", "rating": "good"}, …]}

:class:`VitalsCollector` checks every beacon before counting anything: at most ``max_body`` bytes (413),
valid JSON (400), the schema above with sane values (422), at most ``rate`` beacons per second per client
with bursts of ``burst`` (a token bucket on the injected clock; 429). Metric ids already counted are ignored,
so a beacon sent twice (``sendBeacon`` retried, a page restored from the back/forward cache) counts once.

Values go into sketches per (metric, page, device class) — ``buttress_web_vitals_<metric>`` in the registry,
timings in seconds, CLS unitless — and :meth:`VitalsCollector.summary` reports the 75th percentile of each,
rated against the published thresholds (:data:`THRESHOLDS`) as Google's tools do.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeGuard

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.telemetry.registry import REGISTRY, Counter, Registry
from buttress.telemetry.sketch import Sketch

__all__ = ["THRESHOLDS", "BeaconRejected", "VitalSummary", "VitalsCollector", "rate", "script", "vitals_app"]

#: Good / poor boundaries, in the metric's unit (ms, or unitless for CLS): web.dev's published thresholds.
THRESHOLDS: Mapping[str, tuple[float, float]] = {
    "LCP": (2500.0, 4000.0),
    "INP": (200.0, 500.0),
    "CLS": (0.1, 0.25),
    "FCP": (1800.0, 3000.0),
    "TTFB": (800.0, 1800.0),
}
# Values beyond these are not measurements but bugs or forgeries: a 10-minute paint, a layout shift of 100.
_LIMITS = {"LCP": 600_000.0, "INP": 600_000.0, "CLS": 100.0, "FCP": 600_000.0, "TTFB": 600_000.0}
DEVICES = ("mobile", "tablet", "desktop")
_FIELDS = frozenset({"page", "device", "metrics"})
OTHER_PAGE = "<other>"


def rate(metric: str, value: float) -> str:
    """``"good"``, ``"needs-improvement"`` or ``"poor"`` for ``value`` of ``metric`` (web.dev's names)."""
    good, poor = THRESHOLDS[metric]
    if value <= good:
        return "good"
    return "needs-improvement" if value <= poor else "poor"


class BeaconRejected(Exception):
    """A beacon that was not counted; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class VitalSummary:
    """The 75th percentile of one metric on one page and device class, and its rating."""

    metric: str
    page: str
    device: str
    count: int
    p75: float
    rating: str


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class VitalsCollector:
    """Validates, rate-limits, deduplicates and aggregates Web Vitals beacons.

    Args:
        registry: where the ``buttress_web_vitals_*`` sketches and rating counters go.
        clock: the clock the rate limiter refills on.
        max_body: largest beacon accepted, in bytes.
        rate: beacons per second each client may send on average.
        burst: beacons a client may send at once.
        max_pages: distinct page labels kept; more are counted under ``<other>``.
        max_clients: clients whose token buckets are remembered (least recently seen forgotten first).
        dedup_size: metric ids remembered for deduplication.
    """

    def __init__(
        self,
        *,
        registry: Registry = REGISTRY,
        clock: Clock = SYSTEM_CLOCK,
        max_body: int = 8192,
        rate: float = 1.0,
        burst: int = 10,
        max_pages: int = 200,
        max_clients: int = 10_000,
        dedup_size: int = 100_000,
    ) -> None:
        if max_body < 256 or rate <= 0 or burst < 1:
            raise ValueError("max_body must be at least 256 bytes, rate positive and burst at least 1")
        self.registry = registry
        self.clock = clock
        self.max_body = max_body
        self.rate = rate
        self.burst = burst
        self.max_pages = max_pages
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._dedup_size = dedup_size
        self._pages: set[str] = set()
        self._series: dict[tuple[str, str, str], tuple[Sketch, dict[str, Counter]]] = {}
        self._lock = threading.Lock()

    # -- admission ---------------------------------------------------------------------------------------

    def admit(self, client: str) -> None:
        """Take one token from ``client``'s bucket.

        Raises:
            BeaconRejected: 429 when the client is over its rate.
        """
        now = self.clock.monotonic()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = _Bucket(float(self.burst), now)
                self._buckets[client] = bucket
                if len(self._buckets) > self.max_clients:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(client)
                bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
                bucket.stamp = now
            if bucket.tokens < 1.0:
                raise BeaconRejected(429, "too many beacons from this client; slow down")
            bucket.tokens -= 1.0

    def parse(self, body: bytes) -> tuple[str, str, list[tuple[str, float, str]]]:
        """Check a beacon and return (page, device, [(metric, value, id)]).

        Raises:
            BeaconRejected: 413 too large, 400 not JSON, 422 not the schema (the message lists why).
        """
        data = self._decode(body)
        problems = _envelope_problems(data)
        metrics = _parse_metrics(data.get("metrics"), problems)
        if problems:
            raise BeaconRejected(422, "; ".join(problems))
        return data["page"], data["device"], metrics

    def _decode(self, body: bytes) -> dict[str, Any]:
        if len(body) > self.max_body:
            raise BeaconRejected(413, f"beacon larger than {self.max_body} bytes")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BeaconRejected(400, "beacon is not valid JSON") from None
        if not isinstance(data, dict):
            raise BeaconRejected(422, "beacon must be a JSON object with page, device and metrics")
        return data

    # -- counting ----------------------------------------------------------------------------------------

    def record(self, page: str, device: str, metrics: list[tuple[str, float, str]]) -> tuple[int, int]:
        """Count the metrics not seen before; returns (accepted, duplicates)."""
        accepted = duplicates = 0
        with self._lock:
            if page not in self._pages:
                if len(self._pages) >= self.max_pages:
                    page = OTHER_PAGE
                else:
                    self._pages.add(page)
            for name, value, mid in metrics:
                key = f"{name}:{mid}"
                if key in self._seen:
                    duplicates += 1
                    continue
                self._seen[key] = None
                if len(self._seen) > self._dedup_size:
                    self._seen.popitem(last=False)
                sketch, ratings = self._instruments(name, page, device)
                sketch.add(value if name == "CLS" else value / 1000.0)
                ratings[rate(name, value)].value += 1
                accepted += 1
        return accepted, duplicates

    def _instruments(self, name: str, page: str, device: str) -> tuple[Sketch, dict[str, Counter]]:
        key = (name, page, device)
        found = self._series.get(key)
        if found is None:
            labels = {"page": page, "device": device}
            unit = "" if name == "CLS" else "seconds"
            family = f"buttress_web_vitals_{name.lower()}" + ("" if name == "CLS" else "_seconds")
            sketch = self.registry.latency(
                family, f"Web Vitals {name} per page and device class", labels, unit
            ).sketch
            ratings = {
                r: self.registry.counter(
                    "buttress_web_vitals_ratings",
                    "Web Vitals reports by rating",
                    {**labels, "metric": name, "rating": r},
                )
                for r in ("good", "needs-improvement", "poor")
            }
            found = self._series[key] = (sketch, ratings)
        return found

    def accept(self, body: bytes, client: str) -> tuple[int, int]:
        """Admit, parse and record one beacon from ``client``; see :meth:`admit` and :meth:`parse`."""
        self.admit(client)
        page, device, metrics = self.parse(body)
        return self.record(page, device, metrics)

    def summary(self) -> list[VitalSummary]:
        """P75 and rating per (metric, page, device class), in the metric's unit (ms, CLS unitless)."""
        out = []
        with self._lock:
            items = list(self._series.items())
        for (name, page, device), (sketch, _) in items:
            if not sketch.count:
                continue
            p75 = sketch.quantile(0.75) * (1.0 if name == "CLS" else 1000.0)
            out.append(VitalSummary(name, page, device, sketch.count, p75, rate(name, p75)))
        return sorted(out, key=lambda s: (s.page, s.device, s.metric))


def _envelope_problems(data: dict[str, Any]) -> list[str]:
    """What is wrong with a beacon's fields other than its metrics."""
    problems = []
    unknown = set(data) - _FIELDS
    if unknown:
        problems.append(f"unknown fields {sorted(unknown)}")
    page = data.get("page")
    if not (isinstance(page, str) and page.startswith("/") and len(page) <= 200):
        problems.append("page must be a path starting with '/' of at most 200 characters")
    if data.get("device") not in DEVICES:
        problems.append(f"device must be one of {', '.join(DEVICES)}")
    return problems


def _parse_metrics(metrics: Any, problems: list[str]) -> list[tuple[str, float, str]]:
    """The valid entries of a beacon's ``metrics``; what is wrong with the others goes to ``problems``."""
    if not isinstance(metrics, list) or not 1 <= len(metrics) <= 10:
        problems.append("metrics must be a list of 1 to 10 entries")
        return []
    out = []
    for i, entry in enumerate(metrics):
        try:
            out.append(_parse_metric(entry, f"metrics[{i}]"))
        except ValueError as exc:
            problems.append(str(exc))
    return out


def _parse_metric(entry: Any, where: str) -> tuple[str, float, str]:
    """``(name, value, id)`` of one metric entry.

    Raises:
        ValueError: the first thing wrong with it, named by its path (``metrics[2].value``).
    """
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object")
    name, value, mid = entry.get("name"), entry.get("value"), entry.get("id")
    if not isinstance(name, str) or name not in THRESHOLDS:
        raise ValueError(f"{where}.name must be one of {', '.join(THRESHOLDS)}")
    if not _within(value, _LIMITS[name]):
        raise ValueError(f"{where}.value must be a number from 0 to {_LIMITS[name]:g}")
    if not isinstance(mid, str) or not 1 <= len(mid) <= 128:
        raise ValueError(f"{where}.id must be a string of 1 to 128 characters")
    return name, float(value), mid


def _within(value: Any, limit: float) -> TypeGuard[int | float]:
    """A finite number from 0 to ``limit`` (``True`` is an int to Python, not a measurement)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 <= value <= limit


def script() -> bytes:
    """The shipped beacon script (``static/vitals.min.js``), built from the ``web-vitals`` package."""
    return resources.files("buttress.slo").joinpath("static/vitals.min.js").read_bytes()


def vitals_app(
    collector: VitalsCollector | None = None, *, trust_forwarded: bool = False, **options: Any
) -> Any:
    """A Starlette app with ``POST /vitals`` (beacons), ``GET /vitals.js`` (the script), ``GET /summary``.

    Args:
        collector: the collector to feed (default: one built from ``options``).
        trust_forwarded: identify clients by the first ``X-Forwarded-For`` address (behind a proxy you
            control); otherwise by the connection's address.
        **options: passed to :class:`VitalsCollector` when ``collector`` is not given.

    Raises:
        ImportError: Starlette is not installed (the ``web`` extra).
    """
    from buttress._extras import require

    require("starlette", "web")
    from buttress.slo._vitals_app import build_app

    return build_app(collector if collector is not None else VitalsCollector(**options), trust_forwarded)
