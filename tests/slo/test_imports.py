"""OpenSLO and Sloth imports beyond the sample files: each translation rule, every problem reported once."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from buttress import config
from buttress.errors import ConfigError
from buttress.slo.routes import RouteSelector
from buttress.slo.spec import (
    AlertWindow,
    SLOSpec,
    format_duration,
    from_config,
    load_file,
    load_openslo,
    load_sloth,
    to_toml,
)


def query(q: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": q}}}


def openslo(name: str = "s", **spec: Any) -> dict[str, Any]:
    """One OpenSLO SLO document; ``spec`` is its spec (annotations go in metadata)."""
    metadata: dict[str, Any] = {"name": name}
    if "annotations" in spec:
        metadata["annotations"] = spec.pop("annotations")
    return {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": metadata, "spec": spec}


def ratio(good: str | None = None, total: str | None = None, bad: str | None = None) -> dict[str, Any]:
    metric = {k: query(v) for k, v in (("good", good), ("total", total), ("bad", bad)) if v is not None}
    return {"spec": {"ratioMetric": {"counter": True, **metric}}}


def load(*docs: Any) -> list[SLOSpec]:
    return load_openslo(yaml.safe_dump_all(docs), "x.yaml")


def problems_of(*docs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(*docs)
    assert info.value.source == "x.yaml"
    return [str(p) for p in info.value.problems]


def sloth_problems(doc: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_sloth(yaml.safe_dump(doc), "s.yaml")
    return [str(p) for p in info.value.problems]


# -- OpenSLO ---------------------------------------------------------------------------------------------


def test_threshold_metric_objectives_become_latency_slos_in_seconds():
    indicator = {"spec": {"thresholdMetric": query('histogram_milliseconds{route="/checkout"}')}}
    specs = load(
        openslo(
            "checkout",
            indicator=indicator,
            objectives=[
                {"displayName": "P 95", "op": "lte", "value": 300, "target": 0.95},
                {"op": "lt", "value": 800, "targetPercent": 99.5},
            ],
        )
    )
    assert [(s.name, s.sli, s.threshold, s.objective) for s in specs] == [
        ("checkout-p-95", "latency", 0.3, 0.95),
        ("checkout-1", "latency", 0.8, 0.995),
    ]
    assert [str(r) for r in specs[0].routes] == ["/checkout"]
    seconds = {"spec": {"thresholdMetric": query("latency_seconds")}}
    (one,) = load(openslo("api", indicator=seconds, objectives=[{"op": "lt", "value": 0.25, "target": 0.9}]))
    assert (one.name, one.threshold, [str(r) for r in one.routes]) == ("api", 0.25, ["*"])


def test_threshold_objectives_are_each_checked():
    indicator = {"spec": {"thresholdMetric": query("latency_seconds")}}
    objectives = [{"op": "gt", "value": 1, "target": 0.9}, {"op": "lt", "value": "fast", "target": 0.9}]
    assert problems_of(openslo("api", indicator=indicator, objectives=objectives)) == [
        "SLO api.spec.objectives[0].op: a latency objective needs op lt or lte (got 'gt')",
        "SLO api.spec.objectives[1].value: needs the latency threshold as a number (got 'fast')",
    ]


def test_document_level_problems_all_reported():
    good_ratio = ratio(good='x{route="/a"}', total='y{route="/a"}')
    problems = problems_of(
        ["not", "a", "mapping"],
        {"apiVersion": "openslo/v2", "kind": "SLO"},
        {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "nospec"}},
        openslo("dangling", indicatorRef="missing-sli", objectives=[{"target": 0.9}]),
        openslo("noindicator", objectives=[{"target": 0.9}]),
        openslo("noobjectives", indicator=good_ratio, objectives=[]),
        openslo("badobjective", indicator=good_ratio, objectives=["0.99"]),
        {"apiVersion": "openslo/v1", "kind": "AlertPolicy", "metadata": {"name": "skipped"}},
    )
    assert problems == [
        "document[0]: expected a mapping with apiVersion, kind, metadata and spec "
        "(got ['not', 'a', 'mapping'])",
        "document[1].apiVersion: must be \"openslo/v1\" (got 'openslo/v2')",
        "SLO nospec.spec: is required (got None)",
        "SLO dangling.spec.indicatorRef: names no SLI document in this file (got 'missing-sli')",
        "SLO noindicator.spec.indicator: is required (an inline indicator or an indicatorRef)",
        "SLO noobjectives.spec.objectives: needs at least one objective with a target (got [])",
        "SLO badobjective.spec.objectives[0]: expected a mapping with target (got '0.99')",
    ]


def test_indicator_problems_are_reported_once_and_objectives_still_checked():
    problems = problems_of(
        openslo(
            "half",
            indicator=ratio(good='x{route="/a"}'),
            objectives=[{"name": "a", "target": 0.9}, {"name": "b", "target": 0.99}, "bad"],
        )
    )
    assert problems == [
        "SLO half.spec.indicator.spec.ratioMetric: needs total and good or bad queries",
        "SLO half.spec.objectives[2]: expected a mapping with target (got 'bad')",
    ]
    problems = problems_of(
        openslo(
            "neg",
            indicator={"spec": {"thresholdMetric": query('latency_seconds{route!="/health"}')}},
            objectives=[{"op": "gt", "value": 1, "target": 0.9}, {"op": "lt", "value": 1, "target": 0.9}],
        )
    )
    assert problems == [
        "SLO neg.spec.indicator: negative route matchers (!=, !~) cannot be imported; "
        "add the annotation buttress.dev/routes",
        "SLO neg.spec.objectives[0].op: a latency objective needs op lt or lte (got 'gt')",
    ]


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ([{"duration": "4w", "isRolling": True}], 28 * 86400),
        ([{"duration": "2160h", "isRolling": True}], 90 * 86400),
        ([{"duration": "1M", "isRolling": False, "calendar": {"timeZone": "UTC"}}], "month"),
        ([{"duration": "1Q", "isRolling": True}], 90 * 86400),
    ],
)
def test_openslo_time_windows(window, expected):
    (spec,) = load(
        openslo(
            "w",
            indicator=ratio(good='x{route="/a"}', total="y"),
            timeWindow=window,
            objectives=[{"target": 0.9}],
        )
    )
    assert spec.window == expected


@pytest.mark.parametrize(
    ("window", "problem"),
    [
        (
            "30d",
            "SLO w.spec.timeWindow: expected one time window, e.g. [{duration: 30d, isRolling: true}] "
            "(got '30d')",
        ),
        (
            [{"duration": "30 days"}],
            "SLO w.spec.timeWindow[0].duration: expected an OpenSLO duration such as 28d, 4w or 1M "
            "(got '30 days')",
        ),
        (
            [{"duration": "1Q", "calendar": {"timeZone": "UTC"}}],
            "SLO w.spec.timeWindow[0]: only a one-month calendar window is supported; use a rolling window "
            "(got {'calendar': {'timeZone': 'UTC'}, 'duration': '1Q'})",
        ),
    ],
)
def test_openslo_time_window_problems(window, problem):
    doc = openslo(
        "w", indicator=ratio(good='x{route="/a"}', total="y"), timeWindow=window, objectives=[{"target": 0.9}]
    )
    assert problems_of(doc) == [problem]


@pytest.mark.parametrize(
    ("good", "bad", "annotations", "routes", "statuses"),
    [
        # handler is read like route; methods from an alternation; "\\." is a dot, "." any one character
        (
            'x{handler=~"/api/v1\\\\.json|/a.c",method=~"GET|HEAD"}',
            None,
            None,
            ["GET|HEAD /a?c", "GET|HEAD /api/v1.json"],
            {"5xx"},
        ),
        # groups expand into alternatives; ".+" is a glob star
        ('x{route=~"/(events|talks)/.+"}', None, None, ["/events/*", "/talks/*"], {"5xx"}),
        # status codes in the bad query pick the classes
        (None, 'x{route="/pay",code=~"5..|429"}', None, ["/pay"], {"4xx", "5xx"}),
        (None, 'x{route="/pay",status_class="4xx"}', None, ["/pay"], {"4xx"}),
        # the annotation overrides whatever the queries say
        (
            'x{route!="/health"}',
            None,
            {"buttress.dev/routes": "GET /api/*, POST /x"},
            ["GET /api/*", "POST /x"],
            {"5xx"},
        ),
    ],
)
def test_route_and_status_matchers(good, bad, annotations, routes, statuses):
    extra = {"annotations": annotations} if annotations else {}
    indicator = ratio(good=good, bad=bad, total="sum(rate(total[1m]))")
    (spec,) = load(openslo("m", indicator=indicator, objectives=[{"target": 0.9}], **extra))
    assert [str(r) for r in spec.routes] == routes
    assert spec.error_statuses == statuses
    assert spec.sli == "availability"


@pytest.mark.parametrize(
    "regex",
    [
        "/a[0-9]+",  # a character class is no glob
        "^/a$",
        "(a|b)(c|d)(e|f)(g|h)(i|j)(k|l)(m|n)",  # 128 alternatives: more than selectors are for
    ],
)
def test_route_regexes_that_are_not_globs_ask_for_the_annotation(regex):
    doc = openslo(
        "r", indicator=ratio(good=f'x{{route=~"{regex}"}}', total="y"), objectives=[{"target": 0.9}]
    )
    assert problems_of(doc) == [
        f"SLO r.spec.indicator: cannot turn the route regex {regex!r} into route selectors; "
        "add the annotation buttress.dev/routes"
    ]


def test_a_bucket_bound_that_is_no_number_is_not_a_threshold():
    (spec,) = load(
        openslo("b", indicator=ratio(good='x{route="/a",le="fast"}', total="y"), objectives=[{"target": 0.9}])
    )
    assert (spec.sli, spec.threshold) == ("availability", None)


def test_invalid_yaml_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_openslo("a: [1, 2\n", "x.yaml")
    assert info.value.source == "x.yaml"


def test_duplicate_imported_names():
    doc = openslo("same", indicator=ratio(good='x{route="/a"}', total="y"), objectives=[{"target": 0.9}])
    assert problems_of(doc, doc) == [
        "SLO same.spec.objectives[0].name: duplicate SLO name (also SLO same.spec.objectives[0].name) "
        "(got 'same')"
    ]


# -- Sloth -----------------------------------------------------------------------------------------------


def test_sloth_problems_all_reported():
    events = {"events": {"error_query": 'e{route="/a"}', "total_query": 't{route="/a"}'}}
    doc = {
        "version": "prometheus/v1",
        "service": "svc",
        "slos": [
            "not-a-mapping",
            {"name": "pct", "objective": "99.9", "sli": events},
            {"name": "noquery", "objective": 99, "sli": {"events": {"error_query": "e"}}},
            {
                "name": "neg",
                "objective": 99,
                "sli": {"events": {"error_query": 'e{route!="/x"}', "total_query": "t"}},
            },
        ],
    }
    assert sloth_problems(doc) == [
        "slos[0]: expected a mapping (got 'not-a-mapping')",
        "slos[1].objective: expected a percentage such as 99.9 (got '99.9')",
        "slos[2].sli.events: needs error_query and total_query",
        "slos[3].sli.events: negative route matchers (!=, !~) cannot be imported; "
        "add the annotation buttress.dev/routes",
    ]


def test_sloth_document_problems():
    assert sloth_problems({"version": "prometheus/v2", "slos": []}) == [
        "document[0].version: must be \"prometheus/v1\" (a Sloth spec) (got 'prometheus/v2')"
    ]
    assert sloth_problems({"version": "prometheus/v1", "service": "s", "slos": []}) == [
        "document[0].slos: needs at least one SLO (got [])"
    ]


def test_sloth_annotation_and_labels():
    doc = {
        "version": "prometheus/v1",
        "service": "svc",
        "labels": {"team": "a", "tier": 1},
        "slos": [
            {
                "name": "annotated",
                "objective": 99.5,
                "description": "checkout works",
                "labels": {"team": "b"},
                "annotations": {"buttress.dev/routes": "POST /checkout"},
                "sli": {"events": {"error_query": 'e{code=~"5.."}', "total_query": "t"}},
                "alerting": {"ticket_alert": {"disable": True}},
            }
        ],
    }
    (spec,) = load_sloth(yaml.safe_dump(doc))
    assert (spec.name, spec.service, spec.description, spec.objective) == (
        "annotated",
        "svc",
        "checkout works",
        0.995,
    )
    assert [str(r) for r in spec.routes] == ["POST /checkout"]
    assert spec.labels == {"team": "b", "tier": "1"}
    assert [a.severity for a in spec.alerts] == ["page", "page"]


# -- files and TOML --------------------------------------------------------------------------------------


def test_load_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(tmp_path / "missing.yaml")
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump(openslo("x", indicator=ratio(good="g", total="t"), objectives=[{"target": 0.9}]))
    )
    with pytest.raises(ConfigError) as info:
        load_file(path, "sloth")  # told the wrong format: it says what Sloth expected
    assert [str(p) for p in info.value.problems] == [
        'document[0].version: must be "prometheus/v1" (a Sloth spec) (got None)'
    ]
    with pytest.raises(ValueError, match="kind must be 'openslo' or 'sloth', got 'prom'"):
        load_file(path, "prom")


def test_every_non_default_field_round_trips_through_toml():
    spec = SLOSpec(
        name="checkout-latency",
        sli="latency",
        objective=0.995,
        window=28 * 86400.0,
        routes=(RouteSelector.parse("POST /checkout"), RouteSelector.parse("GET /cart/*")),
        threshold=0.25,
        error_statuses=frozenset({"4xx", "5xx"}),
        min_traffic=50,
        alerts=(AlertWindow("page", 3600.0, 300.0, 14.4), AlertWindow("ticket", 21600.0, 1800.0, 2.5)),
        service="shop",
        description='say "hi"\\now',
        labels={"team": "payments", "cost.centre": "42"},
    )
    text = to_toml([spec])
    assert 'labels = { team = "payments", "cost.centre" = "42" }' in text
    assert 'alerts = [{ severity = "page", long = "1h", short = "5m", burn_rate = 14.4 }' in text
    assert from_config(config.loads(text).section("slo")) == [spec]
    assert to_toml([]) == "\n"


def test_from_config_reads_the_process_configuration():
    previous = config.use(config.loads('[[slo]]\nname = "a"\nsli = "availability"\nobjective = 0.9\n'))
    try:
        assert [s.name for s in from_config()] == ["a"]
    finally:
        config.use(previous)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (90.0, "90s"), (5400.0, "90m"), (86400.0 * 14, "2w"), (86400.0 * 3, "3d")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
