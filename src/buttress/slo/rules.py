"""Prometheus recording and alerting rules, and a Grafana dashboard, for the same SLOs the engine evaluates.

For many instances, Prometheus does the SLO math instead of each process. The rules follow Sloth's layout
and names exactly — ``slo:sli_error:ratio_rate<window>`` recordings per window, the ``slo:objective:ratio``
family of metadata recordings, and one page and one ticket alert per SLO built from multiwindow
multi-burn-rate conditions, with the ``sloth_id``/``sloth_service``/``sloth_slo`` labels — so dashboards and
alert routing written for Sloth work unchanged. Two differences, both deliberate:

* the error and total queries are generated from the SLO's route selectors over buttress's own series
  (``buttress_http_requests_total`` and the ``buttress_http_request_duration_seconds`` histogram);
* each alert condition also requires ``min_traffic`` requests in its long window, the same guard the
  embedded engine applies (Sloth has none).

A latency SLO reads the histogram bucket ``le="<threshold>"``, so the threshold must be one of the
collector's bounds: export with ``register(bounds=histogram_bounds(specs))``.

:func:`referenced_metrics` extracts the metric names of an expression so tests (and ``buttress slo rules
--check``) can verify every rule reads only series that are exported or recorded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from buttress.slo.recorder import DURATION_METRIC, REQUESTS_METRIC
from buttress.slo.spec import AlertWindow, SLOSpec, format_duration

__all__ = [
    "EXPORTED_METRICS",
    "RECORDED_METRICS",
    "check_expressions",
    "grafana_dashboard",
    "histogram_bounds",
    "prometheus_rules",
    "referenced_metrics",
    "rules_yaml",
]

REQUESTS_TOTAL = f"{REQUESTS_METRIC}_total"
#: The series the buttress collector exports for HTTP traffic, which the rules read.
EXPORTED_METRICS = frozenset(
    {REQUESTS_TOTAL, f"{DURATION_METRIC}_bucket", f"{DURATION_METRIC}_count", f"{DURATION_METRIC}_sum"}
)
#: The series the rules themselves record.
RECORDED_METRICS = frozenset(
    {
        "slo:sli_error:ratio_rate5m",
        "slo:objective:ratio",
        "slo:error_budget:ratio",
        "slo:time_period:days",
        "slo:current_burn_rate:ratio",
        "slo:period_burn_rate:ratio",
        "slo:period_error_budget_remaining:ratio",
        "sloth_slo_info",
    }
)

#: Windows with a recorded error ratio (Sloth's set), in seconds.
_WINDOWS = (300.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0, 259200.0)


def histogram_bounds(specs: Iterable[SLOSpec], base: Sequence[float] | None = None) -> tuple[float, ...]:
    """Histogram ``le`` bounds to export so every latency SLO's threshold is a bucket edge.

    Args:
        specs: the SLOs.
        base: the bounds to start from (default: the collector's ``DEFAULT_BOUNDS``).
    """
    if base is None:
        base = tuple(round(m * 10.0**e, 6) for e in range(-4, 2) for m in (1.0, 2.0, 5.0))
    return tuple(sorted({*base, *(s.threshold for s in specs if s.threshold is not None)}))


def _le(value: float) -> str:
    # The text prometheus_client writes for an ``le`` bound (Python's repr, as Go's for these values).
    return repr(float(value))


def _union(metric: str, spec: SLOSpec, extra: Sequence[str], window: str, fn: str = "rate") -> str:
    """``sum(fn(metric{sel1}[w]) or fn(metric{sel2}[w]))``: the union of the route selectors' series."""
    parts = []
    for selector in spec.routes:
        matchers = [*selector.promql_matchers(), *extra]
        parts.append(f"{fn}({metric}{{{','.join(matchers)}}}[{window}])")
    return "sum(" + " or ".join(dict.fromkeys(parts)) + ")"


def error_query(spec: SLOSpec, window: str) -> str:
    """PromQL for the rate of bad requests over ``window`` (a Prometheus duration such as ``5m``)."""
    if spec.sli == "latency":
        assert spec.threshold is not None
        total = _union(f"{DURATION_METRIC}_count", spec, [], window)
        fast = _union(f"{DURATION_METRIC}_bucket", spec, [f'le="{_le(spec.threshold)}"'], window)
        return f"({total} - {fast})"
    statuses = "|".join(sorted(spec.error_statuses))
    return _union(REQUESTS_TOTAL, spec, [f'status_class=~"{statuses}"'], window)


def total_query(spec: SLOSpec, window: str, fn: str = "rate") -> str:
    """PromQL for the rate (or ``increase``) of all requests the SLO counts over ``window``."""
    if spec.sli == "latency":
        return _union(f"{DURATION_METRIC}_count", spec, [], window, fn)
    return _union(REQUESTS_TOTAL, spec, [], window, fn)


def _ids(spec: SLOSpec) -> dict[str, str]:
    return {"sloth_id": f"{spec.service}-{spec.name}", "sloth_service": spec.service, "sloth_slo": spec.name}


def _selector(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _number(x: float) -> str:
    return repr(float(f"{x:.12g}"))


def _alert_name(spec: SLOSpec) -> str:
    words = re.split(r"[^A-Za-z0-9]+", spec.name)
    return "".join(w[:1].upper() + w[1:] for w in words if w) + "ErrorBudgetBurn"


def _period(spec: SLOSpec) -> float:
    """The SLO period in seconds as the rules see it (a calendar month counts as 30 days)."""
    return 30 * 86400.0 if spec.window == "month" else float(spec.window)


def prometheus_rules(specs: Iterable[SLOSpec]) -> dict[str, Any]:
    """The rule groups (as the structure of a Prometheus rules file) for ``specs``.

    Per SLO, three groups as Sloth writes them: ``sloth-slo-sli-recordings-<id>`` (the error ratio over each
    window and over the SLO period), ``sloth-slo-meta-recordings-<id>`` (objective, budget, burn rates,
    remaining budget, info) and ``sloth-slo-alerts-<id>`` (one page and one ticket alert).
    """
    groups: list[dict[str, Any]] = []
    for spec in specs:
        sid = _ids(spec)["sloth_id"]
        groups.append({"name": f"sloth-slo-sli-recordings-{sid}", "rules": _sli_recordings(spec)})
        groups.append({"name": f"sloth-slo-meta-recordings-{sid}", "rules": _meta_recordings(spec)})
        alerts = _alert_rules(spec)
        if alerts:
            groups.append({"name": f"sloth-slo-alerts-{sid}", "rules": alerts})
    return {"groups": groups}


def _sli_recordings(spec: SLOSpec) -> list[dict[str, Any]]:
    """The error ratio over each window the alerts read, then over the whole SLO period."""
    labels = {**_ids(spec), **dict(spec.labels)}
    sel = _selector(_ids(spec))
    windows = sorted({*_WINDOWS, *(a.long for a in spec.alerts), *(a.short for a in spec.alerts)})
    rules = []
    for w in map(format_duration, windows):
        rules.append(
            {
                "record": f"slo:sli_error:ratio_rate{w}",
                "expr": f"({error_query(spec, w)})\n/\n({total_query(spec, w)})\n",
                "labels": {**labels, "sloth_window": w},
            }
        )
    # The period's ratio averages the 5-minute ratios, as Sloth does, instead of a rate over 30 days.
    period = format_duration(_period(spec))
    rules.append(
        {
            "record": f"slo:sli_error:ratio_rate{period}",
            "expr": (
                f"sum_over_time(slo:sli_error:ratio_rate5m{sel}[{period}])\n"
                f"/ ignoring (sloth_window)\n"
                f"count_over_time(slo:sli_error:ratio_rate5m{sel}[{period}])\n"
            ),
            "labels": {**labels, "sloth_window": period},
        }
    )
    return rules


def _meta_recordings(spec: SLOSpec) -> list[dict[str, Any]]:
    """Objective, budget, period, burn rates, remaining budget and the info series of one SLO."""
    sel = _selector(_ids(spec))
    period = format_duration(_period(spec))
    common = {**_ids(spec), **dict(spec.labels)}
    per_budget = f"/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{sel}\n"
    exprs = {
        "slo:objective:ratio": f"vector({_number(spec.objective)})",
        "slo:error_budget:ratio": f"vector(1-{_number(spec.objective)})",
        "slo:time_period:days": f"vector({_number(_period(spec) / 86400.0)})",
        "slo:current_burn_rate:ratio": f"slo:sli_error:ratio_rate5m{sel}\n{per_budget}",
        "slo:period_burn_rate:ratio": f"slo:sli_error:ratio_rate{period}{sel}\n{per_budget}",
        "slo:period_error_budget_remaining:ratio": f"1 - slo:period_burn_rate:ratio{sel}",
    }
    rules: list[dict[str, Any]] = [{"record": r, "expr": e, "labels": common} for r, e in exprs.items()]
    info = {
        "sloth_mode": "buttress",
        "sloth_spec": "buttress/v1",
        "sloth_objective": _number(spec.objective * 100),
        "buttress_sli": spec.sli,
        "buttress_window": spec.window_label,
    }
    rules.append({"record": "sloth_slo_info", "expr": "vector(1)", "labels": {**common, **info}})
    return rules


def _alert_rules(spec: SLOSpec) -> list[dict[str, Any]]:
    """One alert per severity that has conditions: any of its multiwindow conditions fires it."""
    rules = []
    for severity in ("page", "ticket"):
        terms = [_alert_term(spec, a) for a in spec.alerts if a.severity == severity]
        if not terms:
            continue
        rules.append(
            {
                "alert": _alert_name(spec),
                "expr": "\n or \n".join(terms) + "\n",
                "labels": {**dict(spec.labels), "sloth_severity": severity, "severity": severity},
                "annotations": {
                    "title": (
                        f"({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error "
                        "budget burn rate is too fast."
                    ),
                    "summary": (
                        "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate "
                        f"is over the expected {severity} threshold."
                    ),
                },
            }
        )
    return rules


def _alert_term(spec: SLOSpec, a: AlertWindow) -> str:
    """Both windows over ``burn_rate`` times the budget, and (unlike Sloth) enough traffic in the long one."""
    sel = _selector(_ids(spec))
    factor = f"({_number(a.burn_rate)} * {_number(spec.error_budget)})"
    short, long = format_duration(a.short), format_duration(a.long)
    term = (
        f"max(slo:sli_error:ratio_rate{short}{sel} > {factor}) without (sloth_window)\n"
        f"and\n"
        f"max(slo:sli_error:ratio_rate{long}{sel} > {factor}) without (sloth_window)"
    )
    if spec.min_traffic:
        term += f"\nand on()\n({total_query(spec, long, 'increase')} >= {spec.min_traffic})"
    return "(\n" + term + "\n)"


# --------------------------------------------------------------------------------------------------------
# YAML without a YAML library: the structure is known, and JSON strings are valid YAML scalars
# --------------------------------------------------------------------------------------------------------


def _yaml(value: Any, indent: int) -> list[str]:
    if isinstance(value, Mapping):
        return [line for k, v in value.items() for line in _yaml_entry(k, v, indent)]
    if isinstance(value, list):
        return [line for item in value for line in _yaml_item(item, indent)]
    return []


def _yaml_entry(key: str, value: Any, indent: int) -> list[str]:
    """``key: value`` — a nested block, a literal block for multi-line text, or one line."""
    pad = " " * indent
    if isinstance(value, Mapping | list) and value:
        return [f"{pad}{key}:", *_yaml(value, indent + 2)]
    if isinstance(value, str) and _fits_literal_block(value):
        body = [f"{pad}  {line}" if line else "" for line in value.rstrip("\n").split("\n")]
        return [f"{pad}{key}: |", *body]
    return [f"{pad}{key}: {_scalar(value)}"]


def _fits_literal_block(text: str) -> bool:
    """Whether ``key: |`` reads back as exactly ``text``, as it does for the generated expressions.

    A literal block keeps exactly one final newline and takes its indentation from its first line;
    other text is written as a quoted scalar, escapes and all.
    """
    return text.endswith("\n") and not text.endswith("\n\n") and not text[:1].isspace()


def _yaml_item(item: Any, indent: int) -> list[str]:
    """A list item: its block indented under ``- ``, the dash taking the place of the first line's indent."""
    sub = _yaml(item, indent + 2)
    if not sub:
        return []
    return [f"{' ' * indent}- {sub[0][indent + 2 :]}", *sub[1:]]


def _scalar(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def rules_yaml(specs: Iterable[SLOSpec]) -> str:
    """:func:`prometheus_rules` as a rules file for Prometheus' ``rule_files``."""
    head = "# Generated by `buttress slo rules`: Sloth-compatible SLO recording and alerting rules.\n"
    return head + "\n".join(_yaml(prometheus_rules(specs), 0)) + "\n"


# --------------------------------------------------------------------------------------------------------
# Grafana
# --------------------------------------------------------------------------------------------------------


def grafana_dashboard(
    specs: Sequence[SLOSpec], *, title: str = "buttress SLOs", uid: str = "buttress-slo"
) -> dict[str, Any]:
    """A Grafana dashboard (JSON model) for ``specs``.

    Per SLO: remaining budget, SLI, burn rate and the latency percentiles of its routes; per route:
    request rate, error ratio and P99.

    The queries read the recorded ``slo:*`` series and the exported histogram; the data source is a
    dashboard variable so the JSON imports into any Grafana with a Prometheus data source.
    """
    ds = {"type": "prometheus", "uid": "${datasource}"}
    panels: list[dict[str, Any]] = []
    y = 0

    def panel(
        kind: str, name: str, targets: list[tuple[str, str]], x: int, w: int, unit: str, **extra: Any
    ) -> None:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": kind,
                "title": name,
                "datasource": ds,
                "gridPos": {"x": x, "y": y, "w": w, "h": 8},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": ds}
                    for i, (expr, legend) in enumerate(targets)
                ],
                **extra,
            }
        )

    for spec in specs:
        sel = _selector(_ids(spec))
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": f"SLO {spec.name}",
                "collapsed": False,
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        y += 1
        panel(
            "stat",
            "Error budget remaining",
            [(f"slo:period_error_budget_remaining:ratio{sel}", "remaining")],
            0,
            6,
            "percentunit",
        )
        panel(
            "timeseries",
            "SLI (5m)",
            [(f"1 - slo:sli_error:ratio_rate5m{sel}", "SLI"), (f"slo:objective:ratio{sel}", "objective")],
            6,
            6,
            "percentunit",
        )
        panel(
            "timeseries",
            "Burn rate",
            [(f"slo:current_burn_rate:ratio{sel}", "5m"), (f"slo:period_burn_rate:ratio{sel}", "period")],
            12,
            6,
            "none",
        )
        routes = " or ".join(
            f"rate({DURATION_METRIC}_bucket{{{','.join(s.promql_matchers())}}}[$__rate_interval])"
            for s in spec.routes
        )
        panel(
            "timeseries",
            "Latency percentiles",
            [
                (f"histogram_quantile({q}, sum by (le) ({routes}))", f"p{int(q * 100)}")
                for q in (0.5, 0.95, 0.99)
            ],
            18,
            6,
            "s",
        )
        y += 8
    panels.append({"id": len(panels) + 1, "type": "row", "title": "Endpoints", "collapsed": False,
                   "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})  # fmt: skip
    y += 1
    panel(
        "timeseries",
        "Requests per second",
        [(f"sum by (route, method) (rate({REQUESTS_TOTAL}[$__rate_interval]))", "{{method}} {{route}}")],
        0,
        8,
        "reqps",
    )
    panel(
        "timeseries",
        "Error ratio (5xx)",
        [
            (
                "sum by (route, method) "
                f'(rate({REQUESTS_TOTAL}{{status_class="5xx"}}[$__rate_interval]))\n/\n'
                f"sum by (route, method) (rate({REQUESTS_TOTAL}[$__rate_interval]))",
                "{{method}} {{route}}",
            )
        ],
        8,
        8,
        "percentunit",
    )
    panel(
        "timeseries",
        "P99 latency by route",
        [
            (
                "histogram_quantile(0.99, sum by (le, route) "
                f"(rate({DURATION_METRIC}_bucket[$__rate_interval])))",
                "{{route}}",
            )
        ],
        16,
        8,
        "s",
    )
    return {
        "title": title,
        "uid": uid,
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "1m",
        "tags": ["buttress", "slo"],
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"}
            ]
        },
        "panels": panels,
    }


# --------------------------------------------------------------------------------------------------------
# Checking expressions without Prometheus
# --------------------------------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
     "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
     "inf", "nan", "Inf", "NaN"}
)  # fmt: skip


def referenced_metrics(expr: str) -> set[str]:
    """The metric names an expression reads (functions, keywords, labels and strings left out)."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub("{}", text)
    text = _RANGE.sub("[]", text)
    text = _GROUPING.sub(" ", text)
    return {m.group(1) for m in _IDENT.finditer(text) if not m.group(2) and m.group(1) not in _KEYWORDS}


def check_expressions(exprs: Iterable[str], known: Iterable[str]) -> list[str]:
    """Problems with ``exprs``: unbalanced brackets, or metric names that are neither exported nor recorded.

    Args:
        exprs: PromQL expressions.
        known: metric names that exist (exported by the collector, or recorded by the rules).

    Returns:
        One sentence per problem; empty when all is well.
    """
    names = set(known)
    problems = []
    for expr in exprs:
        stripped = _STRING.sub('""', expr)
        for a, b in ("()", "{}", "[]"):
            if stripped.count(a) != stripped.count(b):
                problems.append(f"unbalanced {a}{b} in: {expr.strip()[:120]}")
        for metric in sorted(referenced_metrics(expr) - names):
            problems.append(
                f"{metric!r} is neither exported by buttress nor recorded by the rules: {expr.strip()[:120]}"
            )
    return problems
