"""Prometheus rules and the Grafana dashboard: promtool validates them, and promtool's own rule unit tests
fire and resolve the generated alerts on the same outage the engine is tested with."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from buttress import config
from buttress.slo.recorder import HttpRecorder
from buttress.slo.rules import (
    EXPORTED_METRICS,
    check_expressions,
    grafana_dashboard,
    histogram_bounds,
    prometheus_rules,
    referenced_metrics,
    rules_yaml,
)
from buttress.slo.spec import from_config, load_file
from buttress.telemetry.prometheus import exposition
from buttress.telemetry.registry import Registry

DATA = Path(__file__).parent / "data"

TOML = """
[[slo]]
name = "api"
sli = "availability"
objective = 0.999
routes = ["GET /api/v1/events*", "POST /api/v1/registrations"]

[[slo]]
name = "public-pages-latency"
sli = "latency"
threshold = "100ms"
objective = 0.99
window = "month"
routes = ["GET /api/v1/events*", "GET /api/v1/speakers*"]
labels = { team = "platform" }
"""


def all_specs():
    return [
        *from_config(config.loads(TOML).section("slo")),
        *load_file(DATA / "sloth-events.yaml"),
        *load_file(DATA / "openslo-events.yaml"),
    ]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("BUTTRESS_REQUIRE_SERVICES", "") not in ("", "0", "false", "no"):
            pytest.fail("promtool is required (apt-get install prometheus) with BUTTRESS_REQUIRE_SERVICES=1")
        pytest.skip("promtool not installed (Debian package prometheus)")
    return path


def exported_names(specs) -> set[str]:
    """Metric names the real collector exposes for recorded traffic, read from its exposition."""
    registry = Registry()
    recorder = HttpRecorder(registry)
    recorder.record("/api/v1/events/{event_id}", "GET", 200, 0.05)
    text = exposition(registry, bounds=histogram_bounds(specs)).decode()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def test_rules_pass_promtool_check(tmp_path):
    specs = all_specs()
    path = tmp_path / "slo-rules.yml"
    path.write_text(rules_yaml(specs))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_expression_reads_exported_or_recorded_series():
    specs = all_specs()
    groups = prometheus_rules(specs)["groups"]
    rules = [r for g in groups for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    exported = exported_names(specs)
    assert exported >= EXPORTED_METRICS  # the names the rules assume are what the collector writes
    exprs = [r["expr"] for r in rules]
    assert check_expressions(exprs, exported | recorded) == []
    dashboard = grafana_dashboard(specs)
    targets = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert targets
    assert check_expressions(targets, exported | recorded) == []
    # The latency threshold is an exported bucket edge, so the rules' le matcher selects a real series.
    registry = Registry()
    HttpRecorder(registry).record("/api/v1/speakers/{id}", "GET", 200, 0.05)
    assert 'le="0.1"' in exposition(registry, bounds=histogram_bounds(specs)).decode()
    assert 'le="0.25"' in exposition(registry, bounds=histogram_bounds(specs)).decode()


def test_expression_checker_finds_unknown_metrics():
    assert referenced_metrics('sum by (le) (rate(foo_bucket{route=~"a.*"}[5m])) / on() bar') == {
        "foo_bucket",
        "bar",
    }
    assert check_expressions(["rate(nope_total[5m])"], {"x"}) == [
        "'nope_total' is neither exported by buttress nor recorded by the rules: rate(nope_total[5m])"
    ]
    assert check_expressions(["sum(rate(x[5m])"], {"x"})[0].startswith("unbalanced ()")


def test_rules_follow_sloths_layout():
    spec = load_file(DATA / "sloth-events.yaml")[0]
    groups = prometheus_rules([spec])["groups"]
    sid = "event-platform-requests-availability"
    assert [g["name"] for g in groups] == [
        f"sloth-slo-sli-recordings-{sid}",
        f"sloth-slo-meta-recordings-{sid}",
        f"sloth-slo-alerts-{sid}",
    ]
    assert [r["record"] for r in groups[0]["rules"]] == [
        f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
    ]
    assert [r["record"] for r in groups[1]["rules"]] == [
        "slo:objective:ratio",
        "slo:error_budget:ratio",
        "slo:time_period:days",
        "slo:current_burn_rate:ratio",
        "slo:period_burn_rate:ratio",
        "slo:period_error_budget_remaining:ratio",
        "sloth_slo_info",
    ]
    page, ticket = groups[2]["rules"]
    assert page["labels"]["sloth_severity"] == "page"
    assert ticket["labels"]["sloth_severity"] == "ticket"
    # Sloth's page alert: (5m and 1h over 14.4x) or (30m and 6h over 6x); ticket: 2h/1d at 3x, 6h/3d at 1x.
    windows = re.findall(r"ratio_rate(\w+)\{[^}]*\} > \(([\d.]+) \* 0\.001\)", page["expr"])
    assert windows == [("5m", "14.4"), ("1h", "14.4"), ("30m", "6.0"), ("6h", "6.0")]
    windows = re.findall(r"ratio_rate(\w+)\{[^}]*\} > \(([\d.]+) \* 0\.001\)", ticket["expr"])
    assert windows == [("2h", "3.0"), ("1d", "3.0"), ("6h", "1.0"), ("3d", "1.0")]
    assert page["expr"].count(">= 10)") == 2  # the min-traffic guard on each condition


def test_dashboard_is_grafana_json():
    dashboard = grafana_dashboard(all_specs())
    text = json.dumps(dashboard)
    assert json.loads(text)["uid"] == "buttress-slo"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        assert {"type", "title", "gridPos"} <= set(p)


def test_dashboard_queries_pass_promtool(tmp_path):
    exprs = [t["expr"] for p in grafana_dashboard(all_specs())["panels"] for t in p.get("targets", [])]
    groups = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:q{i}", "expr": e.replace("$__rate_interval", "5m")}
                    for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dash.yml"
    path.write_text(json.dumps(groups))  # JSON is YAML
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_generated_alerts_fire_and_resolve_in_promtool(tmp_path):
    """A 10-minute total outage after a clean day, at 100 requests a second, through promtool's evaluator."""
    spec = from_config(config.loads(TOML).section("slo"))[0]
    rules = tmp_path / "rules.yml"
    rules.write_text(rules_yaml([spec]))
    labels = 'route="/api/v1/events/{event_id}",method="GET"'
    ok = [6000 * min(i, 1440) + 6000 * max(0, i - 1450) for i in range(1900)]
    bad = [6000 * min(max(i - 1440, 0), 10) for i in range(1900)]
    ids = {"sloth_id": "default-api", "sloth_service": "default", "sloth_slo": "api"}

    def alert(severity):
        return {
            "exp_labels": {**ids, "severity": severity, "sloth_severity": severity},
            "exp_annotations": {
                "title": f"({severity}) default api SLO error budget burn rate is too fast.",
                "summary": (
                    f"default api SLO error budget burn rate is over the expected {severity} threshold."
                ),
            },
        }

    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'buttress_http_requests_total{{{labels},status_class="2xx"}}',
                        "values": " ".join(map(str, ok)),
                    },
                    {
                        "series": f'buttress_http_requests_total{{{labels},status_class="5xx"}}',
                        "values": " ".join(map(str, bad)),
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "1430m", "alertname": "ApiErrorBudgetBurn", "exp_alerts": []},
                    {
                        "eval_time": "1448m",
                        "alertname": "ApiErrorBudgetBurn",
                        "exp_alerts": [alert("page"), alert("ticket")],
                    },
                    {
                        "eval_time": "1510m",
                        "alertname": "ApiErrorBudgetBurn",
                        "exp_alerts": [alert("ticket")],
                    },
                    {"eval_time": "1850m", "alertname": "ApiErrorBudgetBurn", "exp_alerts": []},
                ],
            }
        ],
    }
    path = tmp_path / "test.yml"
    path.write_text(json.dumps(test))
    result = subprocess.run(
        [promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_file_reads_back_as_the_rule_structure():
    import yaml

    specs = [
        *all_specs(),
        *from_config(
            config.loads(
                '[[slo]]\nname = "quiet"\nsli = "availability"\nobjective = 0.9\nmin_traffic = 0\n'
                'labels = { note = "say \\"hi\\": über", multi = "two\\nlines",'
                ' indented = "  a\\nb\\n\\n" }\n'
                'alerts = [{ severity = "ticket", long = "1h", short = "5m", burn_rate = 2 }]\n'
                '[[slo]]\nname = "silent"\nsli = "availability"\nobjective = 0.9\nalerts = []\n'
            ).section("slo")
        ),
    ]
    rules = prometheus_rules(specs)
    assert yaml.safe_load(rules_yaml(specs)) == rules
    groups = {g["name"]: g["rules"] for g in rules["groups"]}
    assert "sloth-slo-alerts-default-silent" not in groups  # no conditions, no alert group
    (quiet,) = groups["sloth-slo-alerts-default-quiet"]
    assert quiet["labels"]["severity"] == "ticket"
    assert "increase(" not in quiet["expr"]  # min_traffic = 0: no traffic guard
    (api_page, _) = groups["sloth-slo-alerts-default-api"]
    assert ">= 10)" in api_page["expr"]  # the default guard: 10 requests in the long window


def test_histogram_bounds_add_thresholds_to_the_given_bounds():
    specs = from_config(config.loads(TOML).section("slo"))
    assert histogram_bounds(specs, base=(0.05, 0.5)) == (0.05, 0.1, 0.5)
    assert 0.1 in histogram_bounds(specs)
