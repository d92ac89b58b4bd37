"""The per-namespace instruments of a cache, created once when the namespace is built.

==================================================== ========================================================
``buttress_cache_requests_total{namespace,result}``  ``result`` = ``hit`` or ``miss`` (reads through the API)
``buttress_cache_loads_total{namespace,result}``     loader calls, ``ok`` or ``error``
``buttress_cache_load_duration_seconds{namespace}``  loader latency (every load)
``buttress_cache_get_duration_seconds{namespace}``   get latency: every remote get; one memory get in 1024
``buttress_cache_evictions_total{namespace}``        entries the memory store evicted for size
``buttress_cache_errors_total{namespace,kind}``      ``backend`` (Redis down/timeout), ``corrupt`` (unreadable
                                                     or foreign entry)
``buttress_cache_stampede_suppressed_total{namespace}`` loads avoided by single-flight or a lease
``buttress_cache_stale_served_total{namespace}``     expired values served because reloading failed
``buttress_cache_invalidation_delay_seconds{namespace}`` publish → applied in this process (wall clock)
``buttress_cache_hit_ratio{namespace}``              gauge, hits / (hits + misses) since start
``buttress_cache_entries{namespace}``                gauge, entries held in process
``buttress_cache_bytes{namespace}``                  gauge, estimated bytes held in process (store weight)
==================================================== ========================================================

Why one memory get in 1024 for the latency sketch: a sketch update plus two clock reads costs more than
the whole memory hit (≈ 150 ns), so recording every one would more than double it. The sample is taken
by timing a second lookup of the same key on a hit that brings the store's own hit count to a multiple
of 1024 (no second counter on the hot path), which measures the same code path.
"""

from __future__ import annotations

from collections.abc import Callable

from buttress.telemetry import REGISTRY, Registry

__all__ = ["CacheMetrics"]

SAMPLE_MASK = 1023


class CacheMetrics:
    """Counters, latencies and gauges of one namespace (attributes are the registry's own objects)."""

    __slots__ = (
        "corrupt",
        "errors",
        "evictions",
        "get_latency",
        "hits",
        "invalidation_delay",
        "load_errors",
        "load_latency",
        "loads",
        "misses",
        "namespace",
        "registry",
        "stale_served",
        "suppressed",
    )

    def __init__(self, namespace: str, registry: Registry | None = None) -> None:
        reg = registry if registry is not None else REGISTRY
        self.registry = reg
        self.namespace = namespace
        ns = {"namespace": namespace}
        help_req = "Cache reads by result (hit or miss)."
        self.hits = reg.counter("buttress_cache_requests", help_req, {**ns, "result": "hit"})
        self.misses = reg.counter("buttress_cache_requests", help_req, {**ns, "result": "miss"})
        help_loads = "Loader calls made by the cache, by result."
        self.loads = reg.counter("buttress_cache_loads", help_loads, {**ns, "result": "ok"})
        self.load_errors = reg.counter("buttress_cache_loads", help_loads, {**ns, "result": "error"})
        self.load_latency = reg.latency("buttress_cache_load_duration_seconds", "Loader latency.", ns)
        self.get_latency = reg.latency(
            "buttress_cache_get_duration_seconds", "Cache get latency (memory gets sampled 1 in 1024).", ns
        )
        self.evictions = reg.counter("buttress_cache_evictions", "Entries evicted for size.", ns)
        help_err = "Cache backend errors by kind; the caller never sees them."
        self.errors = reg.counter("buttress_cache_errors", help_err, {**ns, "kind": "backend"})
        self.corrupt = reg.counter("buttress_cache_errors", help_err, {**ns, "kind": "corrupt"})
        self.suppressed = reg.counter(
            "buttress_cache_stampede_suppressed", "Loads avoided by single-flight or a lease.", ns
        )
        self.stale_served = reg.counter(
            "buttress_cache_stale_served", "Expired values served because reloading failed.", ns
        )
        self.invalidation_delay = reg.latency(
            "buttress_cache_invalidation_delay_seconds",
            "Invalidation publish to applied in this process.",
            ns,
        )
        reg.gauge("buttress_cache_hit_ratio", "Hits over reads since start.", ns, fn=self.hit_ratio)

    def hit_ratio(self) -> float:
        """Hits over reads since start (0 before the first read)."""
        total = self.hits.value + self.misses.value
        return float(self.hits.value / total) if total else 0.0

    def size_gauges(self, entries: Callable[[], float], nbytes: Callable[[], float]) -> None:
        """Register the in-process entry count and byte estimate, read at collection time."""
        ns = {"namespace": self.namespace}
        self.registry.gauge("buttress_cache_entries", "Entries held in process.", ns, fn=entries)
        self.registry.gauge("buttress_cache_bytes", "Estimated bytes held in process.", ns, fn=nbytes)
