"""What the dashboard shows, computed from merged telemetry snapshots once per tick.

Telemetry is cumulative (counters since start, sketches of every request), but a live dashboard wants
the last few seconds. :class:`LiveView` keeps the snapshots of the last minute and shows the difference
between now and ``window`` seconds ago: request counts become rates, and latency percentiles come from
the **difference of two cumulative sketches**. That difference is exact because a sketch's buckets are
fixed by its accuracy alone (bucket ``k`` holds ``[γ^k, γ^(k+1))``, see
:meth:`~buttress.telemetry.Sketch.to_dict`): subtracting counts bucket by bucket gives the sketch of just
the requests in the window, with the same 1 % relative error.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from buttress.dashboard.snapshot import Merged, SnapshotSource
from buttress.telemetry import Sketch

__all__ = ["HTTP_DURATION", "LiveView", "endpoint_table", "window_quantiles"]

#: The SLO middleware's latency family (route, method, status_class labels).
HTTP_DURATION = "buttress_http_request_duration_seconds"
_QS = (0.5, 0.95, 0.99)
#: The dead-letter queues' depth and oldest-item age (``buttress.resilience.DeadLetterQueue``'s gauges,
#: labelled ``store`` and ``policy``; read from the store, so shared by every worker using it).
DLQ_DEPTH = "buttress_dlq_depth"
DLQ_OLDEST = "buttress_dlq_oldest_age_seconds"


def window_quantiles(now: Sketch, then: Sketch | None, qs: Sequence[float] = _QS) -> tuple[int, list[float]]:
    """The count and quantiles of the values added to ``now`` since it looked like ``then``.

    ``then`` must be an earlier state of the same cumulative series (``None``: everything in ``now``).
    Quantiles are NaN when nothing was added.
    """
    if then is None:
        if now.count == 0:
            return 0, [math.nan] * len(qs)
        return now.count, now.quantiles(qs)
    a = now.to_dict()
    zero, counts = _bucket_difference(a, then.to_dict())
    total = zero + sum(counts.values())
    if total <= 0:
        return 0, [math.nan] * len(qs)
    gamma = (1 + a["relative_accuracy"]) / (1 - a["relative_accuracy"])
    return total, [_quantile(q * (total - 1), zero, counts, gamma) for q in qs]


def _bucket_difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[int, dict[int, int]]:
    """Zero count and bucket counts of sketch dict ``a`` minus sketch dict ``b``, positive buckets only."""
    counts: dict[int, int] = {}
    for key, c in enumerate(a["counts"], start=a["offset"]):
        if c:
            counts[key] = c
    for key, c in enumerate(b["counts"], start=b["offset"]):
        if c:
            counts[key] = counts.get(key, 0) - c
    return a["zero_count"] - b["zero_count"], {k: c for k, c in sorted(counts.items()) if c > 0}


def _quantile(rank: float, zero: int, counts: dict[int, int], gamma: float) -> float:
    """The value at ``rank`` (0-based) among ``zero`` zeros and the ``counts`` of buckets in key order.

    A bucket's value is the midpoint that keeps the relative error within the sketch's accuracy.
    """
    seen = zero
    if rank < seen:
        return 0.0
    for k, c in counts.items():
        seen += c
        if seen > rank:
            return 2 * gamma ** (k + 1) / (gamma + 1)
    return 0.0


def _per_endpoint(merged: Merged) -> dict[tuple[str, str], tuple[Sketch, float]]:
    """(method, route) -> (sketch of every status class merged, 5xx count)."""
    out: dict[tuple[str, str], tuple[Sketch, float]] = {}
    for labels, sketch in merged.latencies(HTTP_DURATION):
        key = (labels.get("method", ""), labels.get("route", ""))
        errors = float(sketch.count) if labels.get("status_class") == "5xx" else 0.0
        found = out.get(key)
        if found is None:
            out[key] = (sketch.copy(), errors)
        else:
            found[0].merge(sketch)
            out[key] = (found[0], found[1] + errors)
    return out


def endpoint_table(merged: Merged) -> list[dict[str, Any]]:
    """Every endpoint's requests, 5xx errors and P50/P95/P99 (ms) over the whole run, busiest first."""
    rows: list[dict[str, Any]] = []
    for (method, route), (sketch, errors) in _per_endpoint(merged).items():
        if sketch.count == 0:
            continue
        p50, p95, p99 = sketch.quantiles(_QS)
        rows.append(
            {
                "method": method,
                "route": route,
                "requests": sketch.count,
                "errors": errors,
                "p50_ms": p50 * 1000,
                "p95_ms": p95 * 1000,
                "p99_ms": p99 * 1000,
            }
        )
    rows.sort(key=lambda r: -float(r["requests"]))
    return rows


def _finite(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


class LiveView:
    """Turns a :class:`~buttress.dashboard.snapshot.SnapshotSource` into the dashboard's live numbers.

    Args:
        source: where snapshots come from.
        window: seconds over which rates and percentiles are computed.
        slo: returns the SLO rows to show (compliance, budget, burn rates), when an SLO engine runs.
        controls: returns the control rows (e.g. the demo's providers with their chaos state).
        extras: returns more named numbers to show (the demo's registrations, emails…).
        clock: wall-clock seconds.
    """

    def __init__(
        self,
        source: SnapshotSource,
        *,
        window: float = 10.0,
        slo: Callable[[], list[dict[str, Any]]] | None = None,
        controls: Callable[[], list[dict[str, Any]]] | None = None,
        extras: Callable[[Merged], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.window = window
        self.slo = slo
        self.controls = controls
        self.extras = extras
        self.clock = clock
        self._history: collections.deque[tuple[float, Merged]] = collections.deque(maxlen=240)

    def _then(self, now: float) -> tuple[float, Merged] | None:
        """The oldest kept snapshot no older than ``window`` seconds (the base of differences)."""
        base = None
        for t, merged in self._history:
            if now - t <= self.window + 0.5:
                base = (t, merged)
                break
        return base

    def tick(self) -> dict[str, Any]:
        """Read the source now and compute everything the dashboard shows."""
        now = self.clock()
        merged = self.source.read()
        base = self._then(now)
        self._history.append((now, merged))
        then_t, then = base if base is not None else (now, None)
        span = max(now - then_t, 1e-9)
        return {
            "time": now,
            "window_s": span if then is not None else 0.0,
            "workers": merged.workers,
            "endpoints": self._endpoints(merged, then, span),
            "cache": self._cache(merged, then),
            "breakers": self._breakers(merged),
            "transitions": [
                {k: e.get(k) for k in ("time", "name", "from_state", "to_state", "worker")}
                for e in merged.events
                if e.get("kind") == "state_transition"
            ][-30:],
            "alerts": [
                {k: e.get(k) for k in ("time", "name", "severity", "status", "summary")}
                for e in merged.events
                if e.get("kind") == "alert"
            ][-20:],
            "dead_letters": self._dead_letters(merged),
            "slo": self.slo() if self.slo is not None else [],
            "controls": self.controls() if self.controls is not None else [],
            "extras": self.extras(merged) if self.extras is not None else {},
        }

    def _endpoints(self, merged: Merged, then: Merged | None, span: float) -> list[dict[str, Any]]:
        before = _per_endpoint(then) if then is not None else {}
        rows: list[dict[str, Any]] = []
        for key, (sketch, errors) in _per_endpoint(merged).items():
            old = before.get(key)
            count, (p50, p95, p99) = window_quantiles(sketch, old[0] if old else None)
            old_errors = old[1] if old else 0.0
            rows.append(
                {
                    "method": key[0],
                    "route": key[1],
                    "total": sketch.count,
                    "rps": count / span if then is not None else 0.0,
                    "errors_rps": (errors - old_errors) / span if then is not None else 0.0,
                    "p50_ms": _ms(p50),
                    "p95_ms": _ms(p95),
                    "p99_ms": _ms(p99),
                }
            )
        rows.sort(key=lambda r: (-float(r["total"]), str(r["route"])))
        return rows

    @staticmethod
    def _cache(merged: Merged, then: Merged | None) -> list[dict[str, Any]]:
        names = sorted({lab["namespace"] for lab, _ in merged.series("buttress_cache_requests")})
        rows: list[dict[str, Any]] = []
        for ns in names:
            hits = merged.value("buttress_cache_requests", namespace=ns, result="hit")
            misses = merged.value("buttress_cache_requests", namespace=ns, result="miss")
            row: dict[str, Any] = {
                "namespace": ns,
                "hits": hits,
                "misses": misses,
                "hit_rate": hits / (hits + misses) if hits + misses else None,
                "entries": merged.value("buttress_cache_entries", namespace=ns),
                "window_hit_rate": None,
            }
            if then is not None:
                dh = hits - then.value("buttress_cache_requests", namespace=ns, result="hit")
                dm = misses - then.value("buttress_cache_requests", namespace=ns, result="miss")
                row["window_hit_rate"] = dh / (dh + dm) if dh + dm > 0 else None
            rows.append(row)
        return rows

    @staticmethod
    def _breakers(merged: Merged) -> list[dict[str, Any]]:
        states: dict[str, dict[str, float]] = {}
        for labels, value in merged.series("buttress_circuitbreaker_state"):
            if value > 0:
                states.setdefault(labels.get("name", "?"), {})[labels.get("state", "?")] = value
        for labels, _ in merged.series("buttress_circuitbreaker_calls"):
            states.setdefault(labels.get("name", "?"), {})
        rows: list[dict[str, Any]] = []
        for name in sorted(states):
            by_state = states[name]
            # With several workers each has its own breaker; the worst state is the one to see.
            order = ("forced_open", "open", "half_open", "metrics_only", "closed", "disabled")
            worst = next((s for s in order if s in by_state), next(iter(by_state), "unknown"))
            calls = {
                lab.get("kind", "?"): v
                for lab, v in merged.series("buttress_circuitbreaker_calls")
                if lab.get("name") == name
            }
            rows.append({"name": name, "state": worst, "workers": by_state, "calls": calls})
        return rows

    @staticmethod
    def _dead_letters(merged: Merged) -> list[dict[str, Any]]:
        # Every worker reads the same store: a queue is shown once, not once per worker.
        rows: list[dict[str, Any]] = []
        for labels, depth in sorted(merged.shared_series(DLQ_DEPTH), key=lambda s: sorted(s[0].items())):
            policy, store = labels.get("policy", "?"), labels.get("store", "")
            rows.append(
                {
                    "name": policy,
                    "store": store,
                    "depth": depth,
                    "oldest_age_s": merged.shared(DLQ_OLDEST, policy=policy, store=store),
                    "dead_lettered": merged.value(
                        "buttress_dlq_items", policy=policy, store=store, kind="dead_lettered"
                    ),
                    "replayed": merged.value(
                        "buttress_dlq_items", policy=policy, store=store, kind="replayed"
                    ),
                }
            )
        return rows


def _ms(seconds: float) -> float | None:
    value = _finite(seconds)
    return None if value is None else value * 1000
