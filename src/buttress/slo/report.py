"""SLA reports for a calendar month, from the history store: JSON, Markdown, and self-contained HTML.

``buttress slo report --period 2026-11 --format html`` reads the month's per-minute (and downsampled
hourly) rows and writes:

* overall availability (share of requests that were not 5xx) and request count;
* per SLO: the SLI over the month, the objective, the share of the month's error budget consumed, and a
  compliance verdict (met when the month's SLI is at least the objective); latency SLOs also show the
  observed percentile their objective names (P99 for a 0.99 objective);
* per endpoint (route template and method): requests, error rate, P50/P95/P99 from the merged sketches;
* incidents: the alert intervals the engine recorded, clipped to the month;
* per day: P50/P95/P99 latency and each SLO's remaining budget — drawn in the HTML as inline SVG charts
  (no scripts, no CDN; the page works offline and in a mail attachment).

The verdict is for the report period, as an SLA is judged per month, whatever the SLO's rolling window.
"""

from __future__ import annotations

import calendar
import datetime as dt
import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from buttress.errors import MeasureError
from buttress.slo.engine import good_and_total
from buttress.slo.spec import SLOSpec, format_duration
from buttress.slo.store import AlertInterval, HistoryStore, StoredRow
from buttress.telemetry.sketch import Sketch

__all__ = ["EndpointStats", "Report", "SLOResult", "build_report", "parse_period"]

_DAY = 86400


def parse_period(text: str) -> tuple[float, float]:
    """``"2026-11"`` -> (start, end) epoch seconds of that UTC calendar month.

    Raises:
        ValueError: not ``YYYY-MM``.
    """
    try:
        year, month = (int(p) for p in text.split("-"))
        if not 1 <= month <= 12 or len(text) != 7:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"a period is a calendar month written YYYY-MM, e.g. 2026-11; got {text!r}"
        ) from None
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    days = calendar.monthrange(year, month)[1]
    return start.timestamp(), (start + dt.timedelta(days=days)).timestamp()


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """One endpoint over the period."""

    route: str
    method: str
    requests: int
    errors: int
    p50: float
    p95: float
    p99: float

    @property
    def error_rate(self) -> float:
        """5xx responses over all responses."""
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class SLOResult:
    """One SLO over the period."""

    name: str
    sli: str
    objective: float
    threshold: float | None
    good: float
    total: float
    sli_value: float
    budget_consumed: float
    compliant: bool
    observed_percentile: float | None
    incidents: int
    daily_budget_remaining: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Report:
    """An SLA report; render with :meth:`to_json`, :meth:`to_markdown` or :meth:`to_html`."""

    period: str
    start: float
    end: float
    requests: int
    errors: int
    slos: list[SLOResult]
    endpoints: list[EndpointStats]
    incidents: list[AlertInterval]
    daily: list[dict[str, Any]]

    @property
    def availability(self) -> float:
        """Share of requests that were not 5xx (1.0 with no traffic)."""
        return 1.0 - self.errors / self.requests if self.requests else 1.0

    @property
    def compliant(self) -> bool:
        """Whether every SLO met its objective."""
        return all(s.compliant for s in self.slos)

    # -- JSON --------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary (times as ISO 8601 UTC)."""
        return {
            "period": self.period,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "requests": self.requests,
            "availability": self.availability,
            "compliant": self.compliant,
            "slos": [asdict(s) for s in self.slos],
            "endpoints": [{**asdict(e), "error_rate": e.error_rate} for e in self.endpoints],
            "incidents": [
                {
                    "slo": i.slo,
                    "severity": i.severity,
                    "started": _iso(i.started),
                    "ended": None if i.ended is None else _iso(i.ended),
                    "duration_seconds": self._duration(i),
                    "summary": i.summary,
                }
                for i in self.incidents
            ],
            "daily": self.daily,
        }

    def _duration(self, i: AlertInterval) -> float:
        end = min(i.ended if i.ended is not None else self.end, self.end)
        return max(0.0, end - max(i.started, self.start))

    # -- Markdown ----------------------------------------------------------------------------------------

    def to_markdown(self) -> str:
        """A Markdown report with the same tables as the HTML one (no charts)."""
        out = [
            f"# SLA report {self.period}",
            "",
            f"{_iso(self.start)} to {_iso(self.end)} · {self.requests:,} requests · availability "
            f"**{_pct(self.availability)}** · verdict: **{'met' if self.compliant else 'NOT MET'}**",
            "",
            "## Objectives",
            "",
            "| SLO | SLI | objective | achieved | budget consumed | incidents | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in self.slos:
            out.append(
                f"| {s.name} | {_sli_text(s)} | {_pct(s.objective)} | {_pct(s.sli_value)}{_observed(s)} | "
                f"{s.budget_consumed:.1%} | {s.incidents} | {'met' if s.compliant else '**not met**'} |"
            )
        out += [
            "",
            "## Endpoints",
            "",
            "| endpoint | requests | error rate | P50 | P95 | P99 |",
            "|---|---|---|---|---|---|",
        ]
        for e in self.endpoints:
            out.append(
                f"| {e.method} {e.route} | {e.requests:,} | {e.error_rate:.3%} | {_ms(e.p50)} | "
                f"{_ms(e.p95)} | "
                f"{_ms(e.p99)} |"
            )
        out += ["", "## Incidents", ""]
        if not self.incidents:
            out.append("No alert fired during the period.")
        else:
            out += ["| SLO | severity | started | ended | duration |", "|---|---|---|---|---|"]
            for i in self.incidents:
                out.append(
                    f"| {i.slo} | {i.severity} | {_iso(i.started)} | {_ended(i)} | "
                    f"{_human(self._duration(i))} |"
                )
        return "\n".join(out) + "\n"

    # -- HTML --------------------------------------------------------------------------------------------

    def to_html(self) -> str:
        """One self-contained HTML page with inline SVG charts of daily latency and remaining budget."""
        return _PAGE.format(
            period=html.escape(self.period),
            start=_iso(self.start),
            end=_iso(self.end),
            requests=f"{self.requests:,}",
            availability=_pct(self.availability),
            verdict="met" if self.compliant else "not met",
            verdict_class="ok" if self.compliant else "bad",
            slo_rows="".join(map(_html_slo_row, self.slos)),
            endpoint_rows="".join(map(_html_endpoint_row, self.endpoints)),
            incident_rows=self._html_incident_rows(),
            latency_chart=self._latency_chart(),
            budget_chart=self._budget_chart(),
        )

    def _html_incident_rows(self) -> str:
        e = html.escape
        rows = [
            f"<tr><td>{e(i.slo)}</td><td>{e(i.severity)}</td><td>{_iso(i.started)}</td>"
            f"<td>{_ended(i)}</td><td>{_human(self._duration(i))}</td><td>{e(i.summary)}</td></tr>"
            for i in self.incidents
        ]
        return "".join(rows) or "<tr><td colspan='6'>No alert fired during the period.</td></tr>"

    def _latency_chart(self) -> str:
        series = [
            (name, color, [None if d[key] is None else d[key] * 1000 for d in self.daily])
            for name, key, color in _LATENCY_SERIES
        ]
        return line_chart("Latency per day (all endpoints)", self._day_labels(), series, unit="ms")

    def _budget_chart(self) -> str:
        series = [
            (s.name, _PALETTE[i % len(_PALETTE)], [v * 100 for _, v in s.daily_budget_remaining])
            for i, s in enumerate(self.slos)
        ]
        title = "Error budget remaining (end of day)"
        return line_chart(title, self._day_labels(), series, unit="%", zero_line=True)

    def _day_labels(self) -> list[str]:
        return [d["date"][8:] for d in self.daily]


_LATENCY_SERIES = (("P50", "p50", "#4c78a8"), ("P95", "p95", "#f58518"), ("P99", "p99", "#e45756"))
_PALETTE = ("#54a24b", "#b279a2", "#9d755d", "#4c78a8", "#eeca3b", "#e45756")


def _html_slo_row(s: SLOResult) -> str:
    e = html.escape
    verdict = ("ok", "met") if s.compliant else ("bad", "not met")
    return (
        f"<tr><td>{e(s.name)}</td><td>{e(_sli_text(s))}</td><td>{_pct(s.objective)}</td>"
        f"<td>{_pct(s.sli_value)}{e(_observed(s))}</td><td>{s.budget_consumed:.1%}</td><td>{s.incidents}</td>"
        f"<td class='{verdict[0]}'>{verdict[1]}</td></tr>"
    )


def _html_endpoint_row(p: EndpointStats) -> str:
    e = html.escape
    return (
        f"<tr><td>{e(p.method)} {e(p.route)}</td><td>{p.requests:,}</td><td>{p.error_rate:.3%}</td>"
        f"<td>{_ms(p.p50)}</td><td>{_ms(p.p95)}</td><td>{_ms(p.p99)}</td></tr>"
    )


def _ended(i: AlertInterval) -> str:
    return "still firing" if i.ended is None else _iso(i.ended)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SLA report {period}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1000px;
color:#222;padding:0 1em}}
h1{{margin-bottom:.2em}} .sub{{color:#666}} table{{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}}
th,td{{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e3e3}} th{{background:#f6f6f6}}
td.ok{{color:#1b7f3b;font-weight:600}} td.bad,.bad{{color:#b3261e;font-weight:600}} .ok{{color:#1b7f3b}}
.cards{{display:flex;gap:1em;margin:1em 0}}
.card{{flex:1;border:1px solid #e3e3e3;border-radius:6px;padding:.8em}}
.card b{{display:block;font-size:1.6em}} svg{{width:100%;height:auto;margin-bottom:1em}}
</style></head><body>
<h1>SLA report {period}</h1>
<div class="sub">{start} to {end}</div>
<div class="cards"><div class="card">Requests<b>{requests}</b></div>
<div class="card">Availability<b>{availability}</b></div>
<div class="card">Verdict<b class="{verdict_class}">{verdict}</b></div></div>
<h2>Objectives</h2>
<table><tr><th>SLO</th><th>SLI</th><th>objective</th><th>achieved</th><th>budget consumed</th>
<th>incidents</th><th>verdict</th></tr>
{slo_rows}</table>
{budget_chart}
<h2>Endpoints</h2>
<table><tr><th>endpoint</th><th>requests</th><th>error rate</th><th>P50</th><th>P95</th><th>P99</th></tr>
{endpoint_rows}</table>
{latency_chart}
<h2>Incidents</h2>
<table><tr><th>SLO</th><th>severity</th><th>started</th><th>ended</th><th>duration</th><th>summary</th></tr>
{incident_rows}</table>
<p class="sub">Generated by buttress from per-minute history. Verdicts are for this calendar month.</p>
</body></html>
"""


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    *,
    unit: str = "",
    width: int = 960,
    height: int = 300,
    zero_line: bool = False,
) -> str:
    """An inline SVG line chart: one x label per point, a y axis with round ticks, and a legend.

    ``None`` values break a line (a day without traffic).
    """
    lo, hi, ticks = _nice_ticks(*_value_range(series, zero_line))
    chart = _Chart(width, height, lo, hi, max(len(labels), 1))
    e = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{e(title)}">',
        f'<text x="{chart.left}" y="18" font-size="14" font-weight="600">{e(title)}</text>',
        *chart.grid(ticks, unit),
    ]
    if zero_line and lo < 0 < hi:
        parts.append(chart.rule(0.0, "#b3261e"))
    parts += chart.x_labels(labels)
    parts.append(chart.axes())
    for k, (name, color, values) in enumerate(series):
        parts += chart.series(k, name, color, values)
    parts.append("</svg>")
    return "\n".join(parts)


def _value_range(
    series: Sequence[tuple[str, str, Sequence[float | None]]], zero_line: bool
) -> tuple[float, float]:
    """The lowest and highest finite value (0 included for a zero line); a span of 1 when flat or empty."""
    values = [v for _, _, vs in series for v in vs if v is not None and math.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if zero_line:
        lo = min(lo, 0.0)
    if hi == lo:
        hi = lo + 1.0
    return lo, hi


class _Chart:
    """The geometry of one chart: its plot area, and the scales from point index and value to SVG units."""

    __slots__ = ("height", "hi", "lo", "n", "plot_h", "plot_w", "width")

    left, right, top, bottom = 60, 20, 34, 40  # margins for the y ticks, the title and the x labels

    def __init__(self, width: int, height: int, lo: float, hi: float, n: int) -> None:
        self.width, self.height = width, height
        self.plot_w = width - self.left - self.right
        self.plot_h = height - self.top - self.bottom
        self.lo, self.hi, self.n = lo, hi, n

    def x(self, i: int) -> float:
        """The centre of the ``i``-th of ``n`` slots."""
        return self.left + (self.plot_w * (i + 0.5) / self.n)

    def y(self, v: float) -> float:
        return self.top + self.plot_h * (1 - (v - self.lo) / (self.hi - self.lo))

    def rule(self, v: float, color: str) -> str:
        """A horizontal line across the plot at value ``v``."""
        y = f"{self.y(v):.1f}"
        return f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{y}" y2="{y}" stroke="{color}"/>'

    def grid(self, ticks: Sequence[float], unit: str) -> list[str]:
        """A light rule and a label per tick."""
        parts = []
        for t in ticks:
            parts.append(self.rule(t, "#eee"))
            parts.append(
                f'<text x="{self.left - 6}" y="{self.y(t) + 4:.1f}" font-size="11" text-anchor="end">'
                f"{_tick(t)}{html.escape(unit)}</text>"
            )
        return parts

    def x_labels(self, labels: Sequence[str]) -> list[str]:
        """At most about 16 labels, evenly spaced."""
        step = max(1, math.ceil(self.n / 16))
        y = self.height - self.bottom + 16
        return [
            f'<text x="{self.x(i):.1f}" y="{y}" font-size="11" text-anchor="middle">'
            f"{html.escape(label)}</text>"
            for i, label in enumerate(labels)
            if i % step == 0
        ]

    def axes(self) -> str:
        left, right, bottom = self.left, self.width - self.right, self.top + self.plot_h
        return (
            f'<line x1="{left}" x2="{left}" y1="{self.top}" y2="{bottom}" stroke="#999"/>'
            f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#999"/>'
        )

    def series(self, k: int, name: str, color: str, values: Sequence[float | None]) -> list[str]:
        """The ``k``-th series: a polyline per unbroken run (a dot for a lone point), and its legend entry."""
        parts = []
        for seg in self._segments(values):
            if len(seg) > 1:
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(seg)}"/>'
                )
            elif seg:
                cx, cy = seg[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        lx = self.left + 10 + k * 150
        parts.append(f'<rect x="{lx}" y="{self.height - 14}" width="12" height="4" fill="{color}"/>')
        parts.append(f'<text x="{lx + 16}" y="{self.height - 9}" font-size="11">{html.escape(name)}</text>')
        return parts

    def _segments(self, values: Sequence[float | None]) -> list[list[str]]:
        """``x,y`` points split wherever a value is missing or not finite."""
        segments: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if v is None or not math.isfinite(v):
                segments.append([])
            else:
                segments[-1].append(f"{self.x(i):.1f},{self.y(v):.1f}")
        return segments


def _nice_ticks(lo: float, hi: float, count: int = 5) -> tuple[float, float, list[float]]:
    span = hi - lo
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    end = math.ceil(hi / step) * step
    ticks = []
    t = start
    while t <= end + step / 2:
        ticks.append(round(t, 10))
        t += step
    return start, end, ticks


def _tick(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e6 else f"{v:.2e}"


# --------------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------------


class _Tally:
    """Requests, 5xx responses and the merged latency sketch of some rows (an endpoint, or a day)."""

    __slots__ = ("errors", "requests", "sketch")

    def __init__(self) -> None:
        self.sketch = Sketch()
        self.requests = 0
        self.errors = 0

    def add(self, row: StoredRow) -> None:
        self.sketch.merge(row.sketch)
        self.requests += row.count
        if row.status_class == "5xx":
            self.errors += row.count

    def quantiles(self) -> list[float | None]:
        """P50, P95 and P99, or three ``None`` without traffic."""
        if not self.sketch.count:
            return [None, None, None]
        return list(self.sketch.quantiles((0.5, 0.95, 0.99)))


class _PeriodTotals:
    """Everything a report needs from the period's rows, gathered in one pass over them."""

    __slots__ = ("_selection", "days", "endpoints", "rows", "slo_days", "specs", "start")

    def __init__(self, specs: Sequence[SLOSpec], start: float, days: int) -> None:
        self.specs = specs
        self.start = start
        self.rows = 0
        self.endpoints: dict[tuple[str, str], _Tally] = {}  # (route, method) -> tally
        self.days = [_Tally() for _ in range(days)]
        self.slo_days = {s.name: [[0.0, 0.0] for _ in range(days)] for s in specs}  # [good, total] per day
        self._selection: dict[tuple[str, str], list[SLOSpec]] = {}  # which SLOs count an endpoint

    def add(self, row: StoredRow) -> None:
        self.rows += 1
        day = int((row.start - self.start) // _DAY)
        key = (row.route, row.method)
        tally = self.endpoints.get(key)
        if tally is None:
            tally = self.endpoints[key] = _Tally()
        tally.add(row)
        self.days[day].add(row)
        chosen = self._selection.get(key)
        if chosen is None:
            chosen = self._selection[key] = [s for s in self.specs if s.selects(*key)]
        sample = row.sample()
        for spec in chosen:
            good, total = good_and_total(spec, sample, row.count)
            cell = self.slo_days[spec.name][day]
            cell[0] += good
            cell[1] += total

    def day_label(self, day: int) -> str:
        return _iso(self.start + day * _DAY)[:10]


def build_report(store: HistoryStore, specs: Sequence[SLOSpec], period: str) -> Report:
    """Compute the SLA report for ``period`` (``YYYY-MM``) from the history in ``store``.

    Raises:
        ValueError: the period is not ``YYYY-MM``.
        MeasureError: the store has no data in the period.
        HistoryCorruptError: the store is damaged.
    """
    start, end = parse_period(period)
    totals = _PeriodTotals(specs, start, int((end - start) // _DAY))
    for row in store.rows(start, end):
        totals.add(row)
    if not totals.rows:
        raise MeasureError(
            f"The SLO history {store.path} has no requests in {period}; record traffic with the SLO "
            "middleware and an SLOMonitor, or pick another --period."
        )
    incidents = store.alerts(start, end)
    return Report(
        period=period,
        start=start,
        end=end,
        requests=sum(d.requests for d in totals.days),
        errors=sum(d.errors for d in totals.days),
        slos=[_slo_result(spec, totals, incidents) for spec in specs],
        endpoints=_endpoint_stats(totals.endpoints),
        incidents=incidents,
        daily=[_daily_row(totals.day_label(d), tally) for d, tally in enumerate(totals.days)],
    )


def _slo_result(spec: SLOSpec, totals: _PeriodTotals, incidents: Sequence[AlertInterval]) -> SLOResult:
    cells = totals.slo_days[spec.name]
    good = sum(c[0] for c in cells)
    total = sum(c[1] for c in cells)
    sli = good / total if total else 1.0
    allowance = spec.error_budget * total  # the bad requests the month's traffic allows
    return SLOResult(
        name=spec.name,
        sli=spec.sli,
        objective=spec.objective,
        threshold=spec.threshold,
        good=good,
        total=total,
        sli_value=sli,
        budget_consumed=(total - good) / allowance if allowance else 0.0,
        compliant=sli >= spec.objective,
        observed_percentile=_observed_percentile(spec, totals.endpoints),
        incidents=sum(1 for i in incidents if i.slo == spec.name),
        daily_budget_remaining=_budget_remaining(cells, allowance, totals),
    )


def _budget_remaining(
    cells: list[list[float]], allowance: float, totals: _PeriodTotals
) -> list[tuple[str, float]]:
    """The share of the month's budget left at the end of each day."""
    remaining = []
    bad_so_far = 0.0
    for d, (good, total) in enumerate(cells):
        bad_so_far += total - good
        remaining.append((totals.day_label(d), 1.0 - bad_so_far / allowance if allowance else 1.0))
    return remaining


def _observed_percentile(spec: SLOSpec, endpoints: dict[tuple[str, str], _Tally]) -> float | None:
    """For a latency SLO, the percentile its objective names (P99 for 0.99) over its endpoints."""
    if spec.sli != "latency":
        return None
    merged = Sketch()
    for (route, method), tally in endpoints.items():
        if spec.selects(route, method):
            merged.merge(tally.sketch)
    return merged.quantile(spec.objective) if merged.count else None


def _endpoint_stats(endpoints: dict[tuple[str, str], _Tally]) -> list[EndpointStats]:
    """One row per endpoint, the busiest first."""
    stats = []
    for (route, method), tally in sorted(endpoints.items(), key=lambda kv: -kv[1].requests):
        p50, p95, p99 = tally.sketch.quantiles((0.5, 0.95, 0.99))
        stats.append(EndpointStats(route, method, tally.requests, tally.errors, p50, p95, p99))
    return stats


def _daily_row(date: str, tally: _Tally) -> dict[str, Any]:
    p50, p95, p99 = tally.quantiles()
    return {
        "date": date,
        "requests": tally.requests,
        "errors": tally.errors,
        "p50": p50,
        "p95": p95,
        "p99": p99,
    }


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pct(x: float) -> str:
    return f"{x * 100:.3f} %"


def _ms(seconds: float) -> str:
    return "–" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def _human(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)}s"
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else ""]
    return " ".join(p for p in parts if p)


def _sli_text(s: SLOResult) -> str:
    if s.sli == "latency" and s.threshold is not None:
        return f"latency ≤ {format_duration(s.threshold)}"
    return s.sli.replace("_", " ")


def _observed(s: SLOResult) -> str:
    if s.observed_percentile is None:
        return ""
    return f" (P{s.objective * 100:g} = {s.observed_percentile * 1000:.1f} ms)"


def report_json(report: Report) -> str:
    """:meth:`Report.to_json` as indented JSON text."""
    return json.dumps(report.to_json(), indent=2)
