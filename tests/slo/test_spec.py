"""SLO specs: buttress.toml, OpenSLO v1 and Sloth prometheus/v1 imports, and precise errors."""

from pathlib import Path

import pytest

from buttress import config
from buttress.errors import ConfigError
from buttress.slo.routes import RouteSelector
from buttress.slo.spec import from_config, load_file, load_openslo, load_sloth, to_toml

DATA = Path(__file__).parent / "data"

GOOD = """
[[slo]]
name = "public-pages-latency"
sli = "latency"
threshold = "100ms"
objective = 0.99
window = "30d"
routes = ["GET /api/v1/events*", "GET /api/v1/speakers*"]

[[slo]]
name = "events-p95"
sli = "latency"
threshold = "200ms"
percentile = 95
routes = ["GET /api/v1/events/{event_id}"]

[[slo]]
name = "errors"
sli = "error_rate"
max_error_rate = 0.001
window = "month"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        from_config(config.loads(text).section("slo"))
    return [str(p) for p in info.value.problems]


def test_toml_specs_load():
    specs = from_config(config.loads(GOOD).section("slo"))
    latency, p95, errors = specs
    assert latency.sli == "latency"
    assert latency.threshold == 0.1
    assert latency.objective == 0.99
    assert latency.window == 30 * 86400
    assert latency.selects("/api/v1/events/{event_id}", "GET")
    assert not latency.selects("/api/v1/events/{event_id}", "POST")
    assert not latency.selects("/api/v1/sessions", "GET")
    assert p95.objective == 0.95
    assert errors.objective == pytest.approx(0.999)
    assert errors.window == "month"
    assert errors.selects("<unmatched>", "GET")  # default routes = ["*"]
    assert [(a.severity, a.long, a.short, a.burn_rate) for a in latency.alerts] == [
        ("page", 3600, 300, 14.4),
        ("page", 21600, 1800, 6.0),
        ("ticket", 86400, 7200, 3.0),
        ("ticket", 259200, 21600, 1.0),
    ]


def test_objective_of_one_or_more_is_rejected_with_reason():
    bad = problems('[[slo]]\nname = "a"\nsli = "availability"\nobjective = 1.0\n')
    assert bad == [
        "slo[0].objective: must be below 1: an objective of 100 % leaves no error budget "
        "(write e.g. 0.999) (got 1.0)"
    ]
    assert problems('[[slo]]\nname = "a"\nsli = "availability"\nobjective = 99.9\n') == [
        "slo[0].objective: must be a fraction below 1; write 0.999 for 99.9 % (got 99.9)"
    ]


def test_unknown_sli_kind_names_the_choices():
    bad = problems('[[slo]]\nname = "a"\nsli = "latancy"\nobjective = 0.9\n')
    assert bad == [
        "slo[0].sli: must be one of 'availability', 'latency', 'error_rate' (did you mean \"latency\"?) "
        "(got 'latancy')"
    ]


def test_empty_route_selectors_are_rejected():
    assert problems('[[slo]]\nname = "a"\nsli = "availability"\nobjective = 0.9\nroutes = []\n') == [
        "slo[0].routes: needs at least 1 item(s) (got [])"
    ]
    assert problems('[[slo]]\nname = "a"\nsli = "availability"\nobjective = 0.9\nroutes = ["  "]\n') == [
        "slo[0].routes[0]: a route selector cannot be empty; write \"*\" for every route (got '  ')"
    ]
    assert problems('[[slo]]\nname = "a"\nsli = "availability"\nobjective = 0.9\nroutes = ["FETCH /x"]\n')[
        0
    ].startswith("slo[0].routes[0]: unknown HTTP method 'FETCH'")


def test_window_shorter_than_alert_windows_is_rejected():
    bad = problems('[[slo]]\nname = "a"\nsli = "availability"\nobjective = 0.9\nwindow = "1d"\n')
    assert bad == [
        "slo[0].window: is shorter than the longest alert window (72 h); lengthen the window or shorten "
        "the alerts (got 86400.0)"
    ]
    ok = from_config(
        config.loads(
            '[[slo]]\nname = "a"\nsli = "availability"\nobjective = 0.9\nwindow = "1d"\n'
            'alerts = [{severity = "page", long = "1h", short = "5m", burn_rate = 14.4}]\n'
        ).section("slo")
    )
    assert ok[0].window == 86400


def test_cross_field_rules_all_reported_at_once():
    bad = problems(
        '[[slo]]\nname = "a"\nsli = "latency"\nobjective = 0.9\n'
        '[[slo]]\nname = "b"\nsli = "availability"\nthreshold = "1s"\n'
        'alerts = [{severity = "page", long = "5m", short = "1h", burn_rate = 2}]\n'
    )
    assert bad == [
        'slo[0].threshold: a latency SLO needs a threshold, e.g. threshold = "100ms"',
        "slo[1].alerts[0].short: must be shorter than long (300 s) (got 3600.0)",
    ]
    bad = problems('[[slo]]\nname = "b"\nsli = "availability"\nthreshold = "1s"\n')
    assert bad == [
        "slo[0].objective: is required (e.g. 0.999), or percentile / max_error_rate",
        "slo[0].threshold: only a latency SLO has a threshold, not availability (got 1.0)",
    ]


def test_duplicate_names_are_rejected():
    bad = problems('[[slo]]\nname = "a"\nsli = "availability"\nobjective = 0.9\n' * 2)
    assert bad == ["slo[1].name: duplicate SLO name (also slo[0].name) (got 'a')"]


def test_openslo_sample_imports():
    specs = {s.name: s for s in load_file(DATA / "openslo-events.yaml")}
    assert sorted(specs) == [
        "events-availability",
        "registration-latency-p95",
        "registration-latency-p99",
        "speakers-latency",
    ]
    avail = specs["events-availability"]
    assert (avail.sli, avail.objective, avail.window, avail.service) == (
        "availability",
        0.999,
        30 * 86400,
        "events-api",
    )
    assert avail.selects("/api/v1/events/{event_id}", "GET")
    assert not avail.selects("/api/v1/speakers", "GET")
    speakers = specs["speakers-latency"]
    assert (speakers.sli, speakers.threshold, speakers.window) == ("latency", 0.25, "month")
    assert speakers.selects("/api/v1/speakers/{id}", "GET")
    assert not speakers.selects("/api/v1/speakers/{id}", "PUT")
    p95, p99 = specs["registration-latency-p95"], specs["registration-latency-p99"]
    assert (p95.threshold, p95.objective, p99.threshold, p99.objective) == (0.3, 0.95, 0.8, 0.99)
    assert p95.window == 28 * 86400
    assert p95.selects("/api/v1/registrations/{registration_id}/confirm", "GET")


def test_sloth_sample_imports():
    specs = {s.name: s for s in load_file(DATA / "sloth-events.yaml")}
    avail = specs["requests-availability"]
    assert avail.objective == 0.999
    assert avail.service == "event-platform"
    assert [str(r) for r in avail.routes] == ["/api/v1/events*", "/api/v1/sessions*"]
    assert avail.labels == {"owner": "platform-team", "tier": "1", "category": "availability"}
    assert [a.severity for a in avail.alerts] == ["page", "page", "ticket", "ticket"]
    latency = specs["registrations-latency"]
    assert (latency.sli, latency.threshold, latency.objective) == ("latency", 0.25, 0.99)
    assert [str(r) for r in latency.routes] == ["POST /api/v1/registrations"]
    assert [a.severity for a in latency.alerts] == ["ticket", "ticket"]  # page_alert disabled
    legacy = specs["legacy-http-availability"]
    assert legacy.error_statuses == {"4xx", "5xx"}
    assert legacy.alerts == ()


@pytest.mark.parametrize("name", ["openslo-events.yaml", "sloth-events.yaml"])
def test_imports_round_trip_through_toml(name):
    specs = load_file(DATA / name)
    again = from_config(config.loads(to_toml(specs)).section("slo"))
    assert again == specs


def test_openslo_errors_are_precise():
    text = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: broken}
spec:
  indicator:
    metadata: {name: x}
    spec:
      rawMetric: {metricSource: {type: Prometheus, spec: {query: up}}}
  objectives: [{target: 0.9}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: perfect}
spec:
  indicator:
    metadata: {name: y}
    spec:
      ratioMetric:
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(x{route="/a"}[1m]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(y{route="/a"}[1m]))'}}}
  timeWindow: [{duration: 2h, isRolling: true}]
  objectives: [{target: 1.0}]
---
apiVersion: openslo/v1
kind: Dashboard
metadata: {name: nope}
"""
    with pytest.raises(ConfigError) as info:
        load_openslo(text, "x.yaml")
    assert [str(p) for p in info.value.problems] == [
        "SLO broken.spec.indicator.spec: unknown SLI kind: buttress imports ratioMetric and thresholdMetric "
        "indicators (got ['rawMetric'])",
        "document[2].kind: unknown OpenSLO kind; expected SLO, SLI, Service, AlertPolicy… (got 'Dashboard')",
    ]
    with pytest.raises(ConfigError) as info:
        load_openslo(text.split("---")[1], "x.yaml")
    assert [str(p) for p in info.value.problems] == [
        "SLO perfect.spec.objectives[0].objective: must be below 1: an objective of 100 % leaves no error "
        "budget (write e.g. 0.999) (got 1.0)",
    ]
    with pytest.raises(ConfigError) as info:
        load_openslo(text.split("---")[1].replace("target: 1.0", "target: 0.99"), "x.yaml")
    assert [str(p) for p in info.value.problems] == [
        "SLO perfect.spec.objectives[0].window: is shorter than the longest alert window (72 h); lengthen "
        "the window or shorten the alerts (got 7200.0)",
    ]


def test_sloth_errors_are_precise():
    text = """
version: prometheus/v1
service: s
slos:
  - name: raw
    objective: 99
    sli: {raw: {error_ratio_query: "x"}}
  - name: full
    objective: 100
    sli: {events: {error_query: 'a{route=""}', total_query: 'b'}}
"""
    with pytest.raises(ConfigError) as info:
        load_sloth(text, "s.yaml")
    assert [str(p) for p in info.value.problems] == [
        "slos[0].sli: unknown SLI kind: buttress imports Sloth events SLIs (got ['raw'])",
    ]
    with pytest.raises(ConfigError) as info:
        load_sloth(
            text.replace(
                'sli: {raw: {error_ratio_query: "x"}}', "sli: {events: {error_query: a, total_query: b}}"
            )
        )
    assert [str(p) for p in info.value.problems] == [
        "slos[1].objective: must be below 1: an objective of 100 % leaves no error budget (write e.g. 0.999) "
        "(got 1.0)",
        "slos[1].routes[0]: a route selector cannot be empty; write \"*\" for every route (got '')",
    ]


def test_unknown_format_file(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("foo: bar\n")
    with pytest.raises(ConfigError, match="not an OpenSLO v1"):
        load_file(path)


@pytest.mark.parametrize(
    ("selector", "route", "method", "expected"),
    [
        ("*", "<unmatched>", "GET", True),
        ("GET /api/*", "/api/v1/events/{id}", "GET", True),
        ("GET|POST /api/*", "/api/x", "POST", True),
        ("GET /api/*", "/api/x", "DELETE", False),
        ("/events/{id}", "/events/{id}", "PATCH", True),
        ("/events/{id}", "/events/42", "GET", False),
        ("/a?c", "/abc", "GET", True),
    ],
)
def test_route_selectors(selector, route, method, expected):
    assert RouteSelector.parse(selector).matches(route, method) is expected


def test_selector_promql_matchers():
    assert RouteSelector.parse("GET /api/*").promql_matchers() == ['method="GET"', 'route=~"/api/.*"']
    assert RouteSelector.parse("/events/{id}").promql_matchers() == ['route="/events/{id}"']
    assert RouteSelector.parse("*").promql_matchers() == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            'objective = "high"',
            ["slo[0].objective: expected a fraction such as 0.999 (for 99.9 %) (got 'high')"],
        ),
        ("objective = 0", ["slo[0].objective: must be above 0, e.g. 0.99 (got 0)"]),
        (
            'objective = 0.9\nwindow = "30s"',
            [
                "slo[0].window: must be at least one minute; SLO windows are usually "
                '"28d", "30d" or "month" (got \'30s\')'
            ],
        ),
        (
            'objective = 0.9\nwindow = "90s"',
            ["slo[0].window: must be a whole number of minutes (history is kept per minute) (got '90s')"],
        ),
        (
            "objective = 0.9\npercentile = 99",
            [
                "slo[0]: give only one of objective, percentile, max_error_rate (got objective, percentile)",
                "slo[0].percentile: only a latency SLO has a percentile (got 99.0)",
            ],
        ),
        (
            "max_error_rate = 0.01",
            ["slo[0].max_error_rate: only an error_rate SLO has max_error_rate (got 0.01)"],
        ),
    ],
)
def test_objective_and_window_problems(fields, expected):
    assert problems(f'[[slo]]\nname = "a"\nsli = "availability"\n{fields}\n') == expected


@pytest.mark.parametrize("month", ["month", "Calendar-Month", "calendar_month", "1mo"])
def test_calendar_month_spellings(month):
    (spec,) = from_config(
        config.loads(
            f'[[slo]]\nname = "a"\nsli = "availability"\nobjective = 0.9\nwindow = "{month}"\n'
        ).section("slo")
    )
    assert (spec.window, spec.window_label, spec.window_seconds) == ("month", "month", 31 * 86400)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (42, 'a route selector is a string such as "GET /api/v1/events*" or "*"'),
        ("GET /a /b", 'a route selector is "[METHOD[|METHOD]] PATTERN", e.g. "GET /api/v1/events*"'),
        ("GET| /a", "unknown HTTP method 'GET|' in route selector"),
        ("GET api/v1", "route pattern 'api/v1' must start with '/' or '*' (it matches route templates)"),
    ],
)
def test_bad_route_selectors_say_why(text, message):
    with pytest.raises(ValueError) as info:
        RouteSelector.parse(text)
    assert str(info.value).startswith(message)
