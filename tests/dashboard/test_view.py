"""Dashboard numbers: windowed percentiles from cumulative sketches, merged snapshots, live view."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.dashboard.snapshot import DirectorySource, LocalSource, SnapshotWriter, collect, merge
from buttress.dashboard.view import HTTP_DURATION, LiveView, endpoint_table, window_quantiles
from buttress.telemetry import EventStream, Registry, Sketch, StateTransition


def _naive(values, q):
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(st.floats(min_value=1e-5, max_value=10.0), max_size=200),
    after=st.lists(st.floats(min_value=1e-5, max_value=10.0), min_size=1, max_size=200),
    q=st.sampled_from([0.5, 0.95, 0.99]),
)
def test_window_quantiles_are_the_quantiles_of_the_window_within_one_percent(before, after, q):
    cumulative = Sketch()
    for v in before:
        cumulative.add(v)
    then = cumulative.copy()
    for v in after:
        cumulative.add(v)
    count, (got,) = window_quantiles(cumulative, then, (q,))
    assert count == len(after)
    want = _naive(after, q)
    assert abs(got - want) <= 0.0101 * want


def test_an_empty_window_has_no_quantiles():
    s = Sketch()
    s.add(0.1)
    count, qs = window_quantiles(s, s.copy())
    assert count == 0
    assert all(math.isnan(x) for x in qs)
    assert window_quantiles(Sketch(), None)[0] == 0


def _registry_with_traffic(n, seed):
    registry = Registry()
    rng = random.Random(seed)
    for _ in range(n):
        registry.latency(
            "buttress_http_request_duration_seconds",
            "",
            {"route": "/api/v1/events/{code}", "method": "GET", "status_class": "2xx"},
        ).sketch.add(rng.uniform(0.001, 0.05))
    registry.counter("buttress_cache_requests", "", {"namespace": "events", "result": "hit"}).value += n
    registry.counter("buttress_cache_requests", "", {"namespace": "events", "result": "miss"}).value += 1
    return registry


def test_merging_worker_snapshots_is_exact(tmp_path):
    registries = [_registry_with_traffic(n, seed) for n, seed in ((300, 1), (500, 2))]
    for i, registry in enumerate(registries):
        SnapshotWriter(tmp_path, f"worker-{i}", registry=registry, events=EventStream()).write()
    merged = DirectorySource(tmp_path).read()
    assert sorted(merged.workers) == ["worker-0", "worker-1"]
    assert merged.value("buttress_cache_requests", namespace="events", result="hit") == 800
    together = Sketch()
    for registry in registries:
        together.merge(
            registry.get(
                "buttress_http_request_duration_seconds",
                {"route": "/api/v1/events/{code}", "method": "GET", "status_class": "2xx"},
            ).sketch
        )
    (row,) = endpoint_table(merged)
    assert row["requests"] == 800
    assert row["p95_ms"] == pytest.approx(together.quantile(0.95) * 1000)


def test_snapshots_carry_breaker_transitions(tmp_path):
    events = EventStream()
    events.publish(
        StateTransition(source="circuitbreaker", name="email", from_state="closed", to_state="open")
    )
    snap = collect(Registry(), events, worker="w")
    merged = merge([snap, snap])  # the same event seen twice counts once
    assert [(e["name"], e["to_state"]) for e in merged.events] == [("email", "open")]


def test_live_view_turns_counts_into_rates_over_the_window():
    registry = _registry_with_traffic(100, 3)
    now = [1000.0]
    view = LiveView(LocalSource(registry, EventStream()), window=10.0, clock=lambda: now[0])
    first = view.tick()
    assert first["endpoints"][0]["rps"] == 0.0  # no window yet
    latency = registry.get(
        "buttress_http_request_duration_seconds",
        {"route": "/api/v1/events/{code}", "method": "GET", "status_class": "2xx"},
    )
    for _ in range(50):
        latency.sketch.add(0.2)
    registry.counter("buttress_cache_requests", "", {"namespace": "events", "result": "miss"}).value += 50
    now[0] += 5.0
    second = view.tick()
    row = second["endpoints"][0]
    assert row["rps"] == pytest.approx(10.0)
    assert row["p50_ms"] == pytest.approx(200, rel=0.011)  # only the window's requests, all 200 ms
    assert second["cache"][0]["window_hit_rate"] == 0.0
    assert second["cache"][0]["hit_rate"] == pytest.approx(100 / 151)


def test_a_dead_letter_queue_shared_by_workers_is_shown_once_at_its_depth(tmp_path):
    from buttress.resilience import DeadLetterQueue

    # Two workers, each with its own registry, dead-letter into one store (as the demo's workers do).
    store = f"sqlite:{tmp_path}/dlq.db"
    registries = [Registry(), Registry()]
    queues = [DeadLetterQueue(store, policy="email", registry=r) for r in registries]
    try:
        queues[0].put({"to": "a@example.org"}, error=ConnectionError("down"))
        queues[1].put({"to": "b@example.org"}, error=ConnectionError("down"))
        queues[1].put({"to": "c@example.org"}, error=ConnectionError("down"))
        snapshots = tmp_path / "telemetry"
        for i, registry in enumerate(registries):
            SnapshotWriter(snapshots, f"worker-{i}", registry=registry, events=EventStream()).write()
        merged = DirectorySource(snapshots).read()
        # Added up, each worker's reading of the one store would count every item twice.
        assert merged.value("buttress_dlq_depth", policy="email") == 6
        assert merged.shared("buttress_dlq_depth", policy="email") == 3
        (row,) = LiveView(DirectorySource(snapshots)).tick()["dead_letters"]
        assert (row["name"], row["depth"], row["dead_lettered"], row["replayed"]) == ("email", 3, 3, 0)
        assert row["store"] == queues[0].store.url
        assert row["oldest_age_s"] >= 0
    finally:
        for q in queues:
            q.store.close()


def test_breaker_states_come_from_the_breakers_own_gauges():
    from buttress.resilience import CircuitBreaker

    registry = Registry()
    breaker = CircuitBreaker("email", registry=registry, events=EventStream())
    view = LiveView(LocalSource(registry, EventStream()))
    assert view.tick()["breakers"][0]["state"] == "closed"
    breaker.force_open()
    (row,) = view.tick()["breakers"]
    assert (row["name"], row["state"]) == ("email", "forced_open")


def test_a_gauge_whose_function_fails_is_left_out_of_the_snapshot():
    registry = Registry()
    registry.gauge("buttress_demo_ok", "", {}, fn=lambda: 3)
    registry.gauge("buttress_demo_broken", "", {}, fn=lambda: 1 / 0)
    names = {m["name"] for m in collect(registry, EventStream())["metrics"]}
    assert "buttress_demo_ok" in names
    assert "buttress_demo_broken" not in names  # as a Prometheus scrape leaves it out


def test_a_directory_source_skips_unreadable_and_stale_snapshots(tmp_path):
    live, old = Registry(), Registry()
    live.counter("buttress_cache_requests", "", {"namespace": "events", "result": "hit"}).value = 2
    old.counter("buttress_cache_requests", "", {"namespace": "events", "result": "hit"}).value = 40
    SnapshotWriter(tmp_path, "live", registry=live, events=EventStream()).write()
    SnapshotWriter(tmp_path, "old", registry=old, events=EventStream()).write()
    stale = json.loads((tmp_path / "old.json").read_text())
    stale["time"] -= 3600
    (tmp_path / "old.json").write_text(json.dumps(stale))
    (tmp_path / "torn.json").write_text('{"worker": "torn", "metr')  # a file caught mid-write
    assert DirectorySource(tmp_path).read().workers == ["live", "old"]
    fresh = DirectorySource(tmp_path, max_age=60).read()
    assert fresh.workers == ["live"]
    assert fresh.value("buttress_cache_requests", result="hit") == 2


def test_a_failed_snapshot_write_leaves_no_temporary_file(tmp_path):
    writer = SnapshotWriter(tmp_path, "w", registry=Registry(), events=EventStream())
    writer.file.mkdir()  # the target cannot be replaced
    with pytest.raises(IsADirectoryError):
        writer.write()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json"]


def test_a_snapshot_writer_writes_its_final_snapshot_when_stopped(tmp_path):
    registry = Registry()
    writer = SnapshotWriter(tmp_path, "w", interval=3600, registry=registry, events=EventStream()).start()
    registry.counter("buttress_demo_confirmation_emails", "", {"outcome": "sent"}).value = 7
    writer.stop()
    merged = DirectorySource(tmp_path).read()
    assert merged.value("buttress_demo_confirmation_emails", outcome="sent") == 7


def test_endpoints_merge_status_classes_and_windows_skip_older_snapshots():
    registry = Registry()
    labels = {"route": "/api/v1/events", "method": "GET"}
    ok = registry.latency(HTTP_DURATION, "", {**labels, "status_class": "2xx"})
    failed = registry.latency(HTTP_DURATION, "", {**labels, "status_class": "5xx"})
    registry.latency(HTTP_DURATION, "", {"route": "/idle", "method": "GET", "status_class": "2xx"})
    now = [0.0]
    view = LiveView(LocalSource(registry, EventStream()), window=10.0, clock=lambda: now[0])
    for t, values in ((0.0, [0.01] * 4), (5.0, [0.02] * 4), (12.0, [0.0] * 10)):
        now[0] = t
        for v in values:
            ok.sketch.add(v)
        failed.sketch.add(0.5)
        state = view.tick()
    # At 12 s the snapshot at 0 s is older than the window: the base is the one at 5 s.
    assert state["window_s"] == pytest.approx(7.0)
    (row,) = [r for r in state["endpoints"] if r["route"] == "/api/v1/events"]
    assert row["total"] == 18 + 3  # both status classes, one endpoint
    assert row["rps"] == pytest.approx(11 / 7)
    assert row["errors_rps"] == pytest.approx(1 / 7)
    assert row["p50_ms"] == 0.0  # most of the window's requests took no measurable time
    assert [r["route"] for r in endpoint_table(view.source.read())] == ["/api/v1/events"]  # idle left out
