"""Prometheus exposition: every registry kind, scrape-time reads, bounds, registration, missing extra."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from buttress.telemetry.prometheus import (
    DEFAULT_BOUNDS,
    ButtressCollector,
    exposition,
    make_collector,
    register,
)
from buttress.telemetry.registry import REGISTRY, Registry

HTTP = "buttress_http_request_duration_seconds"
ROUTE = {"route": "GET /api/v1/events", "method": "GET", "status_class": "2xx"}


def scrape(registry: Registry, **kwargs: object) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse the exposition into {(sample name, labels): value}."""
    text = exposition(registry, **kwargs).decode()  # type: ignore[arg-type]
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(**kv: str) -> frozenset[tuple[str, str]]:
    return frozenset(kv.items())


def test_counter_is_exposed_with_total_suffix() -> None:
    registry = Registry()
    calls = registry.counter("buttress_circuitbreaker_calls", "Calls", {"name": "email", "kind": "success"})
    calls.value += 3
    text = exposition(registry).decode()
    assert "# TYPE buttress_circuitbreaker_calls_total counter" in text
    assert 'buttress_circuitbreaker_calls_total{kind="success",name="email"} 3.0' in text


def test_gauges_are_read_at_scrape_time() -> None:
    registry = Registry()
    level = [1.0]
    registry.gauge("buttress_circuitbreaker_state", "State", {"name": "email"}, fn=lambda: level[0])
    plain = registry.gauge("buttress_cache_entries", "Entries", {"namespace": "events"})
    plain.set(42)
    collector = make_collector(registry)
    prom = CollectorRegistry()
    prom.register(collector)
    assert prom.get_sample_value("buttress_circuitbreaker_state", {"name": "email"}) == 1.0
    level[0] = 2.0
    plain.set(7)
    assert prom.get_sample_value("buttress_circuitbreaker_state", {"name": "email"}) == 2.0
    assert prom.get_sample_value("buttress_cache_entries", {"namespace": "events"}) == 7.0


def test_a_failing_gauge_function_drops_only_its_series() -> None:
    registry = Registry()

    def broken() -> float:
        raise RuntimeError("backend gone")

    registry.gauge("buttress_pool_size", "Pool", {"pool": "a"}, fn=broken)
    registry.gauge("buttress_pool_size", "Pool", {"pool": "b"}, fn=lambda: 5)
    samples = scrape(registry)
    assert samples[("buttress_pool_size", labels(pool="b"))] == 5.0
    assert ("buttress_pool_size", labels(pool="a")) not in samples


def test_latency_histogram_matches_the_sketch() -> None:
    registry = Registry()
    latency = registry.latency(HTTP, "Request duration", ROUTE)
    data = np.random.default_rng(4).lognormal(math.log(0.05), 1.0, 20_000)
    for v in data.tolist():
        latency.sketch.add(v)
    samples = scrape(registry)
    base = frozenset(ROUTE.items())
    previous = 0.0
    for bound in DEFAULT_BOUNDS:
        count = samples[(HTTP + "_bucket", base | {("le", repr(bound))})]
        assert count >= previous
        previous = count
        # Never counts a sample above the bound; misses at most those within two buckets below it.
        assert count <= np.sum(data <= bound)
        assert count >= np.sum(data < bound / (1.01 / 0.99) ** 2)
    assert samples[(HTTP + "_bucket", base | {("le", "+Inf")})] == 20_000
    assert samples[(HTTP + "_count", base)] == 20_000
    assert samples[(HTTP + "_sum", base)] == pytest.approx(float(data.sum()), rel=1e-9)


def test_latency_quantile_gauges_are_within_one_percent() -> None:
    registry = Registry()
    latency = registry.latency(HTTP, "Request duration", ROUTE)
    data = np.random.default_rng(8).lognormal(math.log(0.05), 1.0, 20_000)
    for v in data.tolist():
        latency.sketch.add(v)
    samples = scrape(registry)
    base = frozenset(ROUTE.items())
    for q in ("0.5", "0.95", "0.99", "0.999"):
        value = samples[(HTTP + "_quantile", base | {("quantile", q)})]
        lo = np.quantile(data, float(q), method="lower")
        hi = np.quantile(data, float(q), method="higher")
        assert lo * 0.99 <= value <= hi * 1.01


def test_empty_latency_has_zero_counts_and_nan_quantiles() -> None:
    registry = Registry()
    registry.latency("buttress_job_duration_seconds", "Jobs")
    samples = scrape(registry)
    assert samples[("buttress_job_duration_seconds_count", labels())] == 0.0
    assert samples[("buttress_job_duration_seconds_bucket", labels(le="+Inf"))] == 0.0
    assert math.isnan(samples[("buttress_job_duration_seconds_quantile", labels(quantile="0.99"))])


def test_custom_bounds_and_quantiles() -> None:
    registry = Registry()
    latency = registry.latency("buttress_db_query_duration_seconds", "Queries")
    for v in (0.001, 0.01, 0.5):
        latency.sketch.add(v)
    samples = scrape(registry, bounds=[1.0, 0.1], quantiles=[0.9])
    name = "buttress_db_query_duration_seconds"
    buckets = {dict(lbl)["le"]: v for (n, lbl), v in samples.items() if n == name + "_bucket"}
    assert buckets == {"0.1": 2.0, "1.0": 3.0, "+Inf": 3.0}
    quantiles = [dict(lbl)["quantile"] for (n, lbl), _ in samples.items() if n == name + "_quantile"]
    assert quantiles == ["0.9"]
    assert not any(n.endswith("_quantile") for n, _ in scrape(registry, quantiles=[]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bounds": []}, "bounds"),
        ({"bounds": [0.0, 1.0]}, "bounds"),
        ({"bounds": [math.inf]}, "bounds"),
        ({"bounds": [math.nan]}, "bounds"),
        ({"quantiles": [1.5]}, "quantiles"),
    ],
)
def test_bad_bounds_or_quantiles_raise(kwargs: dict[str, list[float]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ButtressCollector(Registry(), **kwargs)


def test_series_with_different_label_sets_and_late_series_appear() -> None:
    registry = Registry()
    collector = make_collector(registry)
    prom = CollectorRegistry()
    prom.register(collector)
    registry.counter(
        "buttress_cache_requests", "Requests", {"namespace": "events", "result": "hit"}
    ).value += 1
    registry.counter("buttress_cache_requests", "Requests").value += 2
    assert (
        prom.get_sample_value("buttress_cache_requests_total", {"namespace": "events", "result": "hit"}) == 1
    )
    assert prom.get_sample_value("buttress_cache_requests_total", {}) == 2


def test_register_uses_the_given_or_default_prometheus_registry() -> None:
    registry = Registry()
    registry.counter("buttress_test_register_calls", "Calls").value += 1
    prom = CollectorRegistry()
    register(registry, prom)
    assert b"buttress_test_register_calls_total 1.0" in generate_latest(prom)

    import prometheus_client

    collector = register(registry)
    try:
        assert prometheus_client.REGISTRY.get_sample_value("buttress_test_register_calls_total") == 1.0
    finally:
        prometheus_client.REGISTRY.unregister(collector)


def test_default_buttress_registry_is_used_when_none_is_given() -> None:
    # Read-only on purpose: the process-wide registry is shared with every other test.
    assert make_collector().registry is REGISTRY
    assert isinstance(exposition(), bytes)


def test_missing_prometheus_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"pip install 'buttress\[prometheus\]'"):
        make_collector(Registry())
    with pytest.raises(ImportError, match="prometheus_client"):
        exposition(Registry())
