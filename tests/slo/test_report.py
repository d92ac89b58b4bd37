"""A sample service's month of traffic recorded on the virtual clock, then `buttress slo` on that history."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from buttress import config
from buttress.cli.main import cli
from buttress.clock import VirtualClock
from buttress.slo.monitor import SLOMonitor
from buttress.slo.recorder import HttpRecorder
from buttress.slo.report import build_report, parse_period
from buttress.slo.spec import from_config
from buttress.slo.store import HistoryStore
from buttress.telemetry.events import EventStream
from buttress.telemetry.registry import Registry

NOV_1 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()
OUTAGE = dt.datetime(2026, 11, 10, 10, 0, tzinfo=dt.UTC).timestamp()

TOML = """
[[slo]]
name = "events-availability"
sli = "availability"
objective = 0.999
routes = ["GET /api/v1/events*"]

[[slo]]
name = "speakers-latency"
sli = "latency"
threshold = "250ms"
percentile = 95
window = "month"
routes = ["GET /api/v1/speakers*"]

[[slo]]
name = "registrations"
sli = "error_rate"
max_error_rate = 0.01
routes = ["POST /api/v1/registrations"]
"""


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """Records November 2026 for an event platform: steady traffic, and a 30-minute outage of the events
    pages on the 10th. Quiet stretches are recorded every 15 minutes, the outage's surroundings every
    minute."""
    folder = tmp_path_factory.mktemp("history")
    (folder / "buttress.toml").write_text(TOML)
    specs = from_config(config.loads(TOML).section("slo"))
    clock = VirtualClock(wall_start=NOV_1)
    recorder = HttpRecorder(Registry())
    store = HistoryStore(folder / "slo.db")
    monitor = SLOMonitor(specs, recorder, store=store, clock=clock, events=EventStream(), registry=Registry())
    rnd = random.Random(2026)
    end = NOV_1 + 30 * 86400
    while clock.time() < end:
        now = clock.time()
        near = OUTAGE - 3600 <= now < OUTAGE + 8 * 3600
        down = OUTAGE <= now < OUTAGE + 1800
        for _ in range(20):
            recorder.record(
                "/api/v1/events/{event_id}", "GET", 500 if down else 200, rnd.lognormvariate(-3.5, 0.4)
            )
            recorder.record("/api/v1/speakers/{speaker_id}", "GET", 200, rnd.lognormvariate(-3, 0.5))
        recorder.record(
            "/api/v1/registrations", "POST", 503 if rnd.random() < 0.002 else 201, rnd.lognormvariate(-2, 0.3)
        )
        if rnd.random() < 0.1:
            recorder.record("<unmatched>", "GET", 404, 0.001)
        clock.advance(60 if near else 900)
        monitor.tick()
    store.close()
    return folder


def run(*args, cwd: Path):
    return CliRunner().invoke(
        cli, ["slo", *args, "--store", str(cwd / "slo.db"), "--config", str(cwd / "buttress.toml")]
    )


def test_report_json_from_recorded_history(history):
    result = run("report", "--period", "2026-11", "--format", "json", cwd=history)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["period"] == "2026-11"
    assert data["start"] == "2026-11-01T00:00:00Z"
    slos = {s["name"]: s for s in data["slos"]}
    events = slos["events-availability"]
    assert not events["compliant"]
    assert events["budget_consumed"] > 1
    assert events["total"] - events["good"] == 30 * 20
    speakers = slos["speakers-latency"]
    assert speakers["compliant"]
    assert speakers["objective"] == 0.95
    assert 0.05 < speakers["observed_percentile"] < 0.25
    assert slos["registrations"]["compliant"]
    assert data["compliant"] is False
    endpoints = {(e["method"], e["route"]): e for e in data["endpoints"]}
    assert set(endpoints) >= {
        ("GET", "/api/v1/events/{event_id}"),
        ("GET", "/api/v1/speakers/{speaker_id}"),
        ("POST", "/api/v1/registrations"),
        ("GET", "<unmatched>"),
    }
    ev = endpoints[("GET", "/api/v1/events/{event_id}")]
    assert ev["errors"] == 600
    assert ev["p50"] < ev["p95"] < ev["p99"]
    assert data["requests"] == sum(e["requests"] for e in data["endpoints"])
    incidents = [i for i in data["incidents"] if i["slo"] == "events-availability"]
    page = [i for i in incidents if i["severity"] == "page"]
    assert len(page) == 1
    assert page[0]["started"].startswith("2026-11-10T10:0")  # paged within minutes of the outage
    assert page[0]["ended"] is not None
    assert page[0]["ended"] > "2026-11-10T10:30"
    days = data["daily"]
    assert [d["date"] for d in days][:2] == ["2026-11-01", "2026-11-02"]
    assert len(days) == 30
    assert days[9]["errors"] >= 600


def test_report_markdown_and_html(history, tmp_path):
    out = tmp_path / "report.md"
    result = run("report", "--period", "2026-11", "--format", "md", "--out", str(out), cwd=history)
    assert result.exit_code == 0, result.output
    md = out.read_text()
    assert md.startswith("# SLA report 2026-11")
    assert "| events-availability | availability | 99.900 % |" in md
    assert "**not met**" in md
    assert "| GET /api/v1/events/{event_id} |" in md
    html_file = tmp_path / "report.html"
    result = run("report", "--period", "2026-11", "--out", str(html_file), cwd=history)
    assert result.exit_code == 0, result.output
    page = html_file.read_text()
    assert page.count("<svg") == 2
    assert "Latency per day" in page
    assert "Error budget remaining" in page
    assert len(re.findall(r"<polyline", page)) >= 6
    # Self-contained: no scripts, no external resources of any kind.
    assert "<script" not in page
    assert "src=" not in page
    assert "href=" not in page
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)


def test_report_without_data_for_the_period(history):
    result = run("report", "--period", "2025-01", cwd=history)
    assert result.exit_code == 2
    assert "no requests in 2025-01" in result.output


def test_report_bad_period(history):
    result = run("report", "--period", "November", cwd=history)
    assert result.exit_code == 2
    assert "YYYY-MM" in result.output
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_period("2026-13")


def test_build_report_api(history):
    specs = from_config(config.loads(TOML).section("slo"))
    report = build_report(HistoryStore(history / "slo.db"), specs, "2026-11")
    assert 0.98 < report.availability < 1.0
    assert [s.name for s in report.slos] == ["events-availability", "speakers-latency", "registrations"]


def test_rules_command_writes_rules_and_dashboard(history, tmp_path):
    rules, dash = tmp_path / "rules.yml", tmp_path / "dash.json"
    result = CliRunner().invoke(
        cli,
        [
            "slo",
            "rules",
            "--config",
            str(history / "buttress.toml"),
            "--out",
            str(rules),
            "--dashboard",
            str(dash),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "slo:sli_error:ratio_rate5m" in rules.read_text()
    assert json.loads(dash.read_text())["panels"]


def test_check_command_on_history(history, tmp_path):
    # The recorded month is in the virtual past; check evaluates at the real now, where nothing is firing.
    result = run("check", "--json", cwd=history)
    assert result.exit_code == 0, result.output
    assert [s["name"] for s in json.loads(result.output)] == [
        "events-availability",
        "speakers-latency",
        "registrations",
    ]


def test_check_command_fails_on_a_breached_slo(tmp_path):
    import time

    (tmp_path / "buttress.toml").write_text(TOML)
    store = HistoryStore(tmp_path / "slo.db")
    recorder = HttpRecorder(Registry())
    for _ in range(50):
        recorder.record("/api/v1/events/{event_id}", "GET", 500, 0.01)
    store.write(time.time() - 120, recorder.collect())  # two minutes ago, in real time: check reads now
    store.close()
    result = run("check", "--json", cwd=tmp_path)
    assert result.exit_code == 1, result.output
    statuses = {s["name"]: s for s in json.loads(result.output)}
    assert statuses["events-availability"]["breached"]
    assert statuses["events-availability"]["firing"] == [
        "page",
        "ticket",
    ]
    assert not statuses["speakers-latency"]["breached"]
    result = run("check", cwd=tmp_path)
    assert result.exit_code == 1
    assert "SLOs" in result.output


def test_import_command(tmp_path):
    data = Path(__file__).parent / "data"
    result = CliRunner().invoke(cli, ["slo", "import", str(data / "sloth-events.yaml")])
    assert result.exit_code == 0, result.output
    assert config.loads(result.output).section("slo")[0]["name"] == "requests-availability"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: prometheus/v1\nservice: s\nslos:\n  - name: x\n    objective: 100\n"
        "    sli: {events: {error_query: a, total_query: b}}\n"
    )
    result = CliRunner().invoke(cli, ["slo", "import", str(bad)])
    assert result.exit_code == 1
    assert "slos[0].objective: must be below 1" in result.output


def test_corrupt_store_exits_2(tmp_path):
    (tmp_path / "buttress.toml").write_text(TOML)
    (tmp_path / "slo.db").write_bytes(b"garbage" * 1000)
    result = run("report", "--period", "2026-11", cwd=tmp_path)
    assert result.exit_code == 2
    assert "unreadable" in result.output


def _minute(store: HistoryStore, at: float, status_class: str, latencies: list[float]) -> None:
    from buttress.slo.recorder import SeriesSample
    from buttress.telemetry.sketch import Sketch

    sketch = Sketch()
    for v in latencies:
        sketch.add(v)
    store.write(at, [SeriesSample("/a", "GET", status_class, sketch)])


SPARSE = """
[[slo]]
name = "a-availability"
sli = "availability"
objective = 0.9

[[slo]]
name = "a-latency"
sli = "latency"
threshold = "100ms"
objective = 0.5
"""


def test_sparse_month_report(tmp_path):
    """Two days with traffic in February: days without data stay empty, lone days are dots, no incidents."""
    feb = dt.datetime(2027, 2, 1, tzinfo=dt.UTC).timestamp()
    store = HistoryStore(tmp_path / "slo.db")
    _minute(store, feb + 2 * 86400, "2xx", [0.05] * 10)
    _minute(store, feb + 9 * 86400 + 60, "5xx", [0.05])
    specs = from_config(config.loads(SPARSE).section("slo"))
    report = build_report(store, specs, "2027-02")
    assert len(report.daily) == 28
    assert [d["requests"] for d in report.daily if d["requests"]] == [10, 1]
    assert report.daily[0] == {
        "date": "2027-02-01",
        "requests": 0,
        "errors": 0,
        "p50": None,
        "p95": None,
        "p99": None,
    }
    assert report.daily[2]["p50"] == pytest.approx(0.05, rel=0.01)
    availability, latency = report.slos
    assert (availability.good, availability.total, availability.compliant) == (10, 11, True)
    assert availability.budget_consumed == pytest.approx(1 / 1.1)
    assert [v for _, v in availability.daily_budget_remaining][:3] == [1.0, 1.0, 1.0]
    assert availability.daily_budget_remaining[9][1] == pytest.approx(1 - 1 / 1.1)
    assert latency.observed_percentile == pytest.approx(0.05, rel=0.01)
    assert availability.observed_percentile is None
    md = report.to_markdown()
    assert "No alert fired during the period." in md
    assert "| a-latency | latency ≤ 100ms | 50.000 % | 100.000 % (P50 = 50.0 ms) |" in md
    page = report.to_html()
    assert "No alert fired during the period." in page
    latency_chart = page[page.index("Latency per day") :]
    # Every request took 50 ms, so P50 = P95 = P99: one flat value, drawn as a dot on each of the two days.
    assert latency_chart.count("<circle") == 6
    assert "<polyline" not in latency_chart.split("</svg>")[0]


def test_incidents_are_clipped_to_the_period(tmp_path):
    mar = dt.datetime(2027, 3, 1, tzinfo=dt.UTC).timestamp()
    store = HistoryStore(tmp_path / "slo.db")
    _minute(store, mar, "2xx", [0.01])
    store.record_alert("a-availability", "ticket", "firing", mar - 3600, "from February")
    store.record_alert("a-availability", "ticket", "resolved", mar + 7200 + 300, "")
    store.record_alert("a-availability", "page", "firing", mar + 86400, "short")
    store.record_alert("a-availability", "page", "resolved", mar + 86400 + 45, "")
    store.record_alert("a-latency", "page", "firing", mar + 30 * 86400, "still going")
    report = build_report(store, from_config(config.loads(SPARSE).section("slo")), "2027-03")
    durations = [i["duration_seconds"] for i in report.to_json()["incidents"]]
    assert durations == [7500.0, 45.0, 86400.0]  # from the period's start; to its end while firing
    md = report.to_markdown()
    assert "| a-availability | ticket | 2027-02-28T23:00:00Z | 2027-03-01T02:05:00Z | 2h 5m |" in md
    assert "| 45s |" in md
    assert "| a-latency | page | 2027-03-31T00:00:00Z | still firing | 1d |" in md
    assert [s.incidents for s in report.slos] == [2, 1]
    assert "still firing" in report.to_html()
