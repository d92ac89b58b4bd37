"""Trends from the quality history: metrics per run, slow and slower tests, flaky tests, suite time.

* **metric trends** — each gate figure over the recorded runs (first, latest, change);
* **slowest tests** — in the latest session;
* **slower tests** — tests whose latest duration is at least ``ratio`` (1.5) times their median over
  earlier sessions *and* at least ``floor`` (50 ms) slower, with at least 3 earlier samples: both bounds,
  so neither a 1 ms test doubling nor a long test's noise is reported;
* **flaky tests** — tests that both passed and failed (or errored) in sessions with the same *code key*
  (commit + hash of uncommitted changes, see :func:`~.pytest_plugin.code_key`): the same code, two
  outcomes;
* **suite time** — each session's wall time and counts.

Shown as terminal tables (:func:`print_trends`), a PNG of charts (:func:`render_png`, needs the ``plot``
extra: matplotlib, drawn with the Agg backend), or one self-contained HTML page with inline SVG charts
(:func:`render_html`, no extra needed).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buttress.quality.history import History, RunRecord, SessionRecord, TestResult

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["Trends", "compute_trends", "print_trends", "render_html", "render_png"]

#: Figures shown in metric trends, in this order, when present.
TREND_METRICS = (
    "coverage",
    "cyclomatic",
    "cognitive",
    "duplication",
    "security_high",
    "vulnerabilities",
    "unparsed_files",
)


@dataclass(slots=True)
class SlowerTest:
    """A test whose latest duration regressed against its history."""

    nodeid: str
    latest: float
    median: float
    samples: int

    @property
    def ratio(self) -> float:
        """Latest over median."""
        return self.latest / self.median if self.median > 0 else float("inf")


@dataclass(slots=True)
class FlakyTest:
    """A test with different outcomes on the same code."""

    nodeid: str
    code: str
    outcomes: dict[str, int]


@dataclass(slots=True)
class Trends:
    """Everything ``buttress quality trends`` shows."""

    runs: list[RunRecord] = field(default_factory=list)
    sessions: list[SessionRecord] = field(default_factory=list)
    slowest: list[tuple[str, float]] = field(default_factory=list)
    slower: list[SlowerTest] = field(default_factory=list)
    flaky: list[FlakyTest] = field(default_factory=list)

    def series(self, metric: str) -> list[tuple[float, str, float]]:
        """``(time, short commit, value)`` of ``metric`` over the runs that recorded it."""
        return [(r.time, (r.commit or "-")[:8], r.overall[metric]) for r in self.runs if metric in r.overall]


def compute_trends(
    history: History,
    *,
    last: int = 30,
    target: str | None = None,
    top: int = 10,
    ratio: float = 1.5,
    floor: float = 0.05,
) -> Trends:
    """Read the history and compute every trend (see the module docstring for the rules)."""
    out = Trends(runs=history.runs(target, limit=last), sessions=history.sessions(limit=last))
    if not out.sessions:
        return out
    results = history.results(s.id for s in out.sessions)
    latest = results.get(out.sessions[-1].id, [])
    out.slowest = sorted(((r.nodeid, r.duration) for r in latest), key=lambda x: -x[1])[:top]
    out.slower = _slower(out.sessions, results, ratio, floor)[:top]
    out.flaky = _flaky(out.sessions, results)[:top]
    return out


def _slower(
    sessions: list[SessionRecord], results: dict[int, list[TestResult]], ratio: float, floor: float
) -> list[SlowerTest]:
    """Tests of the latest session slower than ``ratio`` × and ``floor`` s over their earlier median."""
    earlier: dict[str, list[float]] = defaultdict(list)
    for s in sessions[:-1]:
        for r in results.get(s.id, []):
            if r.outcome == "passed":
                earlier[r.nodeid].append(r.duration)
    slower = []
    for r in results.get(sessions[-1].id, []):
        past = earlier.get(r.nodeid, [])
        if r.outcome != "passed" or len(past) < 3:
            continue
        median = statistics.median(past)
        if r.duration >= ratio * median and r.duration - median >= floor:
            slower.append(SlowerTest(r.nodeid, r.duration, median, len(past)))
    return sorted(slower, key=lambda t: -t.ratio)


def _flaky(sessions: list[SessionRecord], results: dict[int, list[TestResult]]) -> list[FlakyTest]:
    """Tests that passed and failed (or errored) on the same code key."""
    by_code: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for s in sessions:
        for r in results.get(s.id, []):
            if r.outcome != "skipped":
                by_code[(s.code, r.nodeid)][r.outcome] += 1
    flaky = [
        FlakyTest(nodeid, code, dict(outcomes))
        for (code, nodeid), outcomes in by_code.items()
        if "passed" in outcomes and ({"failed", "error"} & set(outcomes))
    ]
    return sorted(flaky, key=lambda f: (-sum(f.outcomes.values()), f.nodeid))


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_trends(trends: Trends, console: Console) -> None:
    """Print every trend as rich tables."""
    if not trends.runs and not trends.sessions:
        console.print("No history yet: run `buttress quality check` and `pytest --buttress-history`.")
        return
    if trends.runs:
        console.print(_metrics_table(trends))
    if not trends.sessions:
        return
    suite = [
        [
            _when(s.time),
            (s.commit or "-")[:8],
            f"{s.duration:.2f}",
            str(s.passed),
            str(s.failed),
            str(s.skipped),
            str(s.errors),
        ]
        for s in trends.sessions[-10:]
    ]
    console.print(
        _table(
            f"test suite over {len(trends.sessions)} sessions",
            ["when", "commit", "seconds", "passed", "failed", "skipped", "errors"],
            suite,
        )
    )
    console.print(
        _table(
            "slowest tests (latest session)",
            ["test", "seconds"],
            [[n, f"{d:.3f}"] for n, d in trends.slowest],
        )
    )
    slower = [
        [t.nodeid, f"{t.latest:.3f}", f"{t.median:.3f}", f"{t.ratio:.1f}×", str(t.samples)]
        for t in trends.slower
    ]
    console.print(
        _table(
            "tests that got slower (latest vs median of earlier passing runs)",
            ["test", "latest s", "median s", "ratio", "samples"],
            slower,
        )
        if slower
        else "No test got slower."
    )
    flaky = [
        [f.nodeid, f.code[:20], ", ".join(f"{k} {v}" for k, v in sorted(f.outcomes.items()))]
        for f in trends.flaky
    ]
    console.print(
        _table("flaky tests (different outcomes on the same code)", ["test", "code", "outcomes"], flaky)
        if flaky
        else "No flaky test."
    )


def _metrics_table(trends: Trends) -> Table:
    rows = []
    for metric in TREND_METRICS:
        series = trends.series(metric)
        if series:
            first, latest = series[0][2], series[-1][2]
            recent = " ".join(f"{v:.4g}" for _, _, v in series[-8:])
            rows.append([metric, f"{first:.4g}", f"{latest:.4g}", f"{latest - first:+.2f}", recent])
    return _table(
        f"metric trends over {len(trends.runs)} gate runs",
        ["metric", "first", "latest", "change", f"last {min(8, len(trends.runs))}"],
        rows,
    )


def render_png(trends: Trends, path: Path) -> None:
    """Draw metric, suite-time and slower-test charts into one PNG (needs the ``plot`` extra).

    Raises:
        ImportError: matplotlib is missing, naming the extra.
    """
    from buttress._extras import require

    matplotlib = require("matplotlib", "plot")
    matplotlib.use("Agg")  # no display, and the same pixels everywhere
    pyplot = require("matplotlib.pyplot", "plot")
    fig, axes = pyplot.subplots(2, 2, figsize=(12, 8))
    _plot_runs(axes[0][0], trends, ("coverage", "duplication"), "{} %", "coverage and duplication per run")
    _plot_runs(
        axes[0][1], trends, ("cyclomatic", "cognitive"), "worst {}", "worst function complexity per run"
    )
    ax = axes[1][0]
    if trends.sessions:
        ax.plot(range(len(trends.sessions)), [s.duration for s in trends.sessions], marker="o")
        ax.set_xticks(
            range(len(trends.sessions)), [(s.commit or "-")[:7] for s in trends.sessions], rotation=45
        )
    ax.set_title("test suite wall time per session (s)")
    ax = axes[1][1]
    if trends.slower:
        ax.barh([t.nodeid.split("::")[-1][:30] for t in trends.slower], [t.ratio for t in trends.slower])
    else:
        ax.text(0.5, 0.5, "no test got slower", ha="center")
    ax.set_title("tests that got slower (× median)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    pyplot.close(fig)


def _plot_runs(ax: Any, trends: Trends, metrics: tuple[str, ...], label: str, title: str) -> None:
    """One line per metric over the recorded runs, labelled by commit."""
    for metric in metrics:
        series = trends.series(metric)
        if series:
            ax.plot(range(len(series)), [v for _, _, v in series], marker="o", label=label.format(metric))
            ax.set_xticks(range(len(series)), [c for _, c, _ in series], rotation=45)
    ax.set_title(title)
    if ax.lines:
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "no runs", ha="center")


def _svg_line(title: str, series: dict[str, list[float]], width: int = 520, height: int = 200) -> str:
    values = [v for vs in series.values() for v in vs]
    if not values:
        return f"<h3>{escape(title)}</h3><p>no data</p>"
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    parts = [f"<h3>{escape(title)}</h3><svg width='{width}' height='{height + 30}' role='img'>"]
    for i, (name, vs) in enumerate(series.items()):
        if not vs:
            continue
        step = (width - 60) / max(1, len(vs) - 1)
        pts = " ".join(
            f"{40 + j * step:.1f},{10 + (height - 20) * (1 - (v - lo) / span):.1f}" for j, v in enumerate(vs)
        )
        colour = colours[i % len(colours)]
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{pts}'/>")
        parts.append(
            f"<text x='{40 + i * 140}' y='{height + 25}' fill='{colour}'>{escape(name)} ({vs[-1]:g})</text>"
        )
    parts.append(f"<text x='0' y='14'>{hi:g}</text><text x='0' y='{height - 6}'>{lo:g}</text></svg>")
    return "".join(parts)


def render_html(trends: Trends) -> str:
    """One self-contained HTML page: inline SVG charts and the tables (no script, nothing fetched)."""
    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>buttress quality trends</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ddd;padding:.2em .5em}</style></head><body><h1>Quality trends</h1>",
    ]
    body.append(
        _svg_line(
            "coverage and duplication (%)",
            {m: [v for _, _, v in trends.series(m)] for m in ("coverage", "duplication")},
        )
    )
    body.append(
        _svg_line(
            "worst function complexity",
            {m: [v for _, _, v in trends.series(m)] for m in ("cyclomatic", "cognitive")},
        )
    )
    body.append(_svg_line("test suite wall time (s)", {"suite": [s.duration for s in trends.sessions]}))

    def table(title: str, head: list[str], rows: list[list[str]]) -> None:
        body.append(f"<h2>{escape(title)}</h2>")
        if not rows:
            body.append("<p>none</p>")
            return
        body.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")
        body.extend("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        body.append("</table>")

    table("slowest tests", ["test", "seconds"], [[n, f"{d:.3f}"] for n, d in trends.slowest])
    table(
        "tests that got slower",
        ["test", "latest", "median", "ratio"],
        [[t.nodeid, f"{t.latest:.3f}", f"{t.median:.3f}", f"{t.ratio:.1f}×"] for t in trends.slower],
    )
    table(
        "flaky tests",
        ["test", "code", "outcomes"],
        [
            [f.nodeid, f.code[:20], ", ".join(f"{k} {v}" for k, v in sorted(f.outcomes.items()))]
            for f in trends.flaky
        ],
    )
    body.append("</body></html>\n")
    return "".join(body)
