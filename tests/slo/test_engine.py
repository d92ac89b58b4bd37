"""Burn rates, budgets and multiwindow multi-burn-rate alerts on a virtual clock (SRE workbook shapes)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.clock import VirtualClock
from buttress.slo.engine import MinuteRing, SLOEngine
from buttress.slo.recorder import HttpRecorder
from buttress.slo.routes import RouteSelector
from buttress.slo.schema import DEFAULT_ALERTS
from buttress.slo.spec import AlertWindow, SLOSpec
from buttress.telemetry.events import Alert, EventStream, capture_events
from buttress.telemetry.notifier import Notifier
from buttress.telemetry.registry import Registry

NOV_1 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()
W0 = int(NOV_1 // 60)
ALERTS = tuple(AlertWindow(a["severity"], a["long"], a["short"], a["burn_rate"]) for a in DEFAULT_ALERTS)


def spec(
    name="api", objective=0.999, *, sli="availability", threshold=None, window=30 * 86400.0, min_traffic=10
):
    return SLOSpec(
        name=name,
        sli=sli,
        objective=objective,
        window=window,
        routes=(RouteSelector.parse("*"),),
        threshold=threshold,
        min_traffic=min_traffic,
        alerts=ALERTS,
    )


def simulate(engine, clock, minutes, errors_at, per_minute=100, name="api"):
    """Record each minute, then move the clock to the next minute and evaluate, like the monitor does."""
    for m in range(minutes):
        bad = errors_at(m)
        engine.record(name, W0 + m, per_minute - bad, per_minute)
        clock.advance(60)
        engine.evaluate()


def transitions(seen):
    return [(e.severity, e.status, int(e.time // 60) - 1 - W0) for e in seen if isinstance(e, Alert)]


@pytest.fixture
def clock():
    return VirtualClock(wall_start=NOV_1)


def test_total_outage_pages_within_a_minute_and_resolves(clock):
    events = EventStream()
    engine = SLOEngine([spec()], clock=clock, events=events, registry=Registry())
    outage = range(4320, 4330)  # three clean days, then ten minutes of 100 % errors
    with capture_events(events) as seen:
        simulate(engine, clock, 4320 + 400, lambda m: 100 if m in outage else 0)
    # Minute numbers are the last complete minute at the evaluation that changed state.
    assert transitions(seen) == [
        ("page", "firing", 4320),  # 1 h at 16.7x and 5 m at 200x > 14.4x: the first outage minute pages
        ("ticket", "firing", 4324),  # 1 d at 3.5x > 3x once five minutes are bad
        ("page", "resolved", 4329 + 30),  # 6 h/30 m holds until the 30 m window is clean
        ("ticket", "resolved", 4329 + 360),  # 3 d/6 h holds until the 6 h window is clean
    ]
    assert all(e.source == "slo" and e.name == "api" and e.labels["slo"] == "api" for e in seen)
    status = engine.status("api")
    assert status.total == 100 * (4320 + 400)
    assert status.budget_consumed == pytest.approx(1000 / (0.001 * status.total))


def test_slow_burn_opens_a_ticket_at_the_right_time_and_never_pages(clock):
    events = EventStream()
    engine = SLOEngine([spec(objective=0.99)], clock=clock, events=events, registry=Registry())
    start, length = 4320, 2400  # 2 % errors against a 1 % budget: burn rate 2 for 40 hours
    with capture_events(events) as seen:
        simulate(engine, clock, start + length + 200, lambda m: 2 if start <= m < start + length else 0)
    assert transitions(seen) == [
        # 3 d window: 2 * k / 432000 > 1 % only after k = 2161 bad minutes (36 h); 6 h window long since.
        ("ticket", "firing", start + 2160),
        # 6 h window: 2 * (360 - j) / 36000 <= 1 % once j = 180 clean minutes.
        ("ticket", "resolved", start + length - 1 + 180),
    ]
    status = engine.status("api", W0 + start + length - 1)
    assert status.burn_rates["1h"] == pytest.approx(2.0)
    assert status.burn_rates["3d"] == pytest.approx(2.0 * length / 4320)


def test_burn_rates_match_a_naive_model(clock):
    engine = SLOEngine([spec(objective=0.995)], clock=clock, events=EventStream(), registry=Registry())
    import random

    rnd = random.Random(7)
    totals = [rnd.randint(0, 50) for _ in range(5000)]
    bads = [rnd.randint(0, t) if rnd.random() < 0.1 else 0 for t in totals]
    for m, (t, b) in enumerate(zip(totals, bads, strict=True)):
        engine.record("api", W0 + m, t - b, t)
    for end in range(0, 5000, 61):
        status = engine.status("api", W0 + end)
        for label, minutes in (
            ("5m", 5),
            ("30m", 30),
            ("1h", 60),
            ("2h", 120),
            ("6h", 360),
            ("1d", 1440),
            ("3d", 4320),
        ):
            lo = max(0, end - minutes + 1)
            t, b = sum(totals[lo : end + 1]), sum(bads[lo : end + 1])
            expected = b / t / 0.005 if t else 0.0
            assert status.burn_rates[label] == pytest.approx(expected), (end, label)
        lo = max(0, end - 43200 + 1)
        t, b = sum(totals[lo : end + 1]), sum(bads[lo : end + 1])
        assert status.total == t
        assert status.good == t - b


def test_min_traffic_guard_keeps_a_quiet_service_from_paging(clock):
    events = EventStream()
    quiet = spec("quiet", min_traffic=10)
    eager = spec("eager", min_traffic=0)
    engine = SLOEngine([quiet, eager], clock=clock, events=events, registry=Registry())
    with capture_events(events) as seen:
        for m in range(60):  # one failing request every ten minutes: 6 in the hour, all errors
            for s in ("quiet", "eager"):
                engine.record(s, W0 + m, 0, 1 if m % 10 == 0 else 0)
            clock.advance(60)
            engine.evaluate()
    assert {e.name for e in seen if isinstance(e, Alert)} == {"eager"}


def test_calendar_month_budget_resets_on_the_first(clock):
    engine = SLOEngine([spec(window="month")], clock=clock, events=EventStream(), registry=Registry())
    oct_31 = W0 - 1440
    for m in range(1440):  # October 31st: 1 % errors
        engine.record("api", oct_31 + m, 99, 100)
    for m in range(60):  # November 1st, first hour: clean
        engine.record("api", W0 + m, 100, 100)
    october = engine.status("api", W0 - 1)
    november = engine.status("api", W0 + 59)
    assert october.total == 144000
    assert october.budget_consumed == pytest.approx(10.0)
    assert november.total == 6000
    assert november.budget_remaining == 1.0
    assert not november.breached
    assert october.breached


def test_latency_sli_counts_requests_under_the_threshold(clock, registry):
    recorder = HttpRecorder(registry)
    latency = spec("fast", objective=0.9, sli="latency", threshold=0.1)
    engine = SLOEngine([latency], clock=clock, events=EventStream(), registry=Registry())
    for i in range(100):
        recorder.record("/a", "GET", 200, 0.02 if i < 95 else 0.5)
    recorder.record("/a", "GET", 500, 0.01)
    engine.ingest(W0, recorder.collect())
    status = engine.status("fast", W0)
    assert (status.good, status.total) == (96, 101)


def test_alerts_reach_a_webhook_through_the_notifier(clock):
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    events = EventStream()
    notifier = Notifier([f"http://127.0.0.1:{server.server_port}/hook"], registry=Registry(), clock=clock)
    try:
        engine = SLOEngine([spec()], clock=clock, events=events, registry=Registry(), notifier=notifier)
        simulate(engine, clock, 100, lambda m: 100 if 50 <= m < 55 else 0)
        notifier.close()  # delivers everything queued before returning
    finally:
        server.shutdown()
        server.server_close()
    assert [(r["kind"], r["severity"], r["status"], r["labels"]["slo"]) for r in received] == [
        ("alert", "page", "firing", "api"),
        ("alert", "ticket", "firing", "api"),
        ("alert", "page", "resolved", "api"),
    ]
    assert "burning its error budget" in received[0]["summary"]


def test_gauges_follow_evaluation(clock):
    registry = Registry()
    engine = SLOEngine([spec()], clock=clock, events=EventStream(), registry=registry)
    engine.record("api", W0, 90, 100)
    clock.advance(60)
    engine.evaluate()
    assert registry.value("buttress_slo_burn_rate", {"slo": "api", "window": "5m"}) == pytest.approx(100.0)
    assert registry.value("buttress_slo_error_budget_remaining", {"slo": "api"}) == pytest.approx(-99.0)
    assert registry.value("buttress_slo_objective", {"slo": "api"}) == 0.999


def test_engine_rejects_bad_input(clock):
    with pytest.raises(ValueError, match="unique"):
        SLOEngine([spec(), spec()], clock=clock, registry=Registry())
    engine = SLOEngine([spec()], clock=clock, registry=Registry(), events=EventStream())
    with pytest.raises(ValueError, match="good <= total"):
        engine.record("api", W0, 5, 4)
    with pytest.raises(KeyError):
        engine.record("nope", W0, 1, 1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-30, 200), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=80),
    st.integers(0, 260),
    st.integers(1, 99),
)
def test_ring_matches_naive_sums(adds, end, width):
    ring = MinuteRing(100)
    naive: dict[int, list[int]] = {}
    for minute, good, extra in adds:
        before_last = ring.last
        ring.add(minute, good, good + extra)
        last = ring.last
        assert last is not None
        if before_last is not None and minute < last - 100 + 1 + 1 and minute < before_last:
            continue  # too old for the ring: dropped, and counted as such
        slot = naive.setdefault(minute, [0, 0])
        slot[0] += good
        slot[1] += good + extra
    last = ring.last
    assert last is not None
    end = min(end + min(naive), last + 50)
    if end - width < last - 100:
        return  # a window reaching before what the ring keeps is not asked for
    good = sum(v[0] for m, v in naive.items() if end - width < m <= end)
    total = sum(v[1] for m, v in naive.items() if end - width < m <= end)
    assert ring.window(end, width) == (good, total)
