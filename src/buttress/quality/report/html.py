"""A self-contained HTML report: conditions, files, worst functions, duplicated blocks side by side.

One file, inline CSS, no script and nothing fetched, so it can be attached to a CI run or mailed.
"""

from __future__ import annotations

from html import escape
from typing import Any

from buttress.quality.gate import GateResult

__all__ = ["render"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.failed{color:#b00;font-weight:bold}.unmeasured{color:#808}.warned{color:#a60}.passed{color:#080}.skipped{color:#888}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em;margin:.5em 0 1.5em}
pre{background:#f8f8f8;border:1px solid #e4e4e4;padding:.5em;overflow:auto;font-size:12px;margin:0}
.verdict{font-size:1.3em}small{color:#666}
"""


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    out = ["<table><tr>", *(f"<th>{escape(h)}</th>" for h in headers), "</tr>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            cls = ' class="n"' if i in numeric else ""
            out.append(f"<td{cls}>{cell}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return escape(str(value))


def render(result: GateResult, *, worst: int = 25, max_clones: int = 50) -> str:
    """The whole report as one HTML document."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>buttress quality gate</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Quality gate</h1>",
        f"<p class='verdict {result.status}'>{escape(result.status.upper())} "
        f"(exit code {result.exit_code})</p>",
        f"<p><small>profile {escape(result.profile)} · {result.files} files · commit "
        f"{escape((result.commit or 'none')[:12])}"
        + (f" · new code since {escape(result.base)} ({result.new_lines} lines)" if result.base else "")
        + "</small></p>",
        "<h2>Conditions</h2>",
        _table(
            ["status", "condition", "value", "detail"],
            [
                [
                    f"<span class='{r.status}'>{r.status}</span>",
                    escape(r.condition.text),
                    _fmt(r.value),
                    escape(r.message),
                ]
                for r in result.ordered()
            ],
            {2},
        ),
    ]
    parts.append(_files_section(result))
    parts.append(_functions_section(result, worst))
    parts.append(_clones_section(result, max_clones))
    security = [f for f in result.findings() if f.rule.startswith("security.")]
    if security:
        parts.append("<h2>Security</h2>")
        parts.append(
            _table(
                ["file", "line", "finding"],
                [[escape(f.path), f.line, escape(f.message)] for f in security],
                {1},
            )
        )
    if result.problems:
        parts.append("<h2>Files left out</h2>")
        parts.append(
            _table(
                ["file", "line", "problem"],
                [[escape(p.path), p.line, escape(p.message)] for p in result.problems],
                {1},
            )
        )
    notes = [
        f"{escape(n)}: {escape(x)}" for n, m in result.measurements.items() for x in m.notes + m.unmeasured
    ]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _files_section(result: GateResult) -> str:
    cx = result.measurements.get("complexity")
    dup = result.measurements.get("duplication")
    cov = result.measurements.get("coverage")
    files: dict[str, dict[str, Any]] = {}
    if cx is not None:
        for row in cx.details.get("functions", []):
            entry = files.setdefault(row["path"], {})
            entry["functions"] = entry.get("functions", 0) + 1
            entry["cyclomatic"] = max(entry.get("cyclomatic", 0), row["cyclomatic"])
            entry["cognitive"] = max(entry.get("cognitive", 0), row["cognitive"])
    if dup is not None:
        for rel, d in dup.details.get("per_file", {}).items():
            entry = files.setdefault(rel, {})
            entry["lines"] = d["lines"]
            entry["duplicated"] = d["duplicated"]
    if cov is not None:
        for rel, c in cov.details.get("per_file", {}).items():
            files.setdefault(rel, {})["coverage"] = c["coverage"]
    if not files:
        return ""
    rows = []
    for rel in sorted(files):
        e = files[rel]
        density = 100.0 * e["duplicated"] / e["lines"] if e.get("lines") else None
        rows.append(
            [
                escape(rel),
                _fmt(e.get("lines")),
                _fmt(e.get("functions")),
                _fmt(e.get("cyclomatic")),
                _fmt(e.get("cognitive")),
                _fmt(density),
                _fmt(e.get("coverage")),
            ]
        )
    return "<h2>Files</h2>" + _table(
        ["file", "lines", "functions", "max cyclomatic", "max cognitive", "duplication %", "coverage %"],
        rows,
        {1, 2, 3, 4, 5, 6},
    )


def _functions_section(result: GateResult, worst: int) -> str:
    cx = result.measurements.get("complexity")
    if cx is None or not cx.details.get("functions"):
        return ""
    rows = [
        [
            escape(r["function"]),
            f"{escape(r['path'])}:{r['line']}",
            r["cyclomatic"],
            r["cognitive"],
            "yes" if r["new"] else "",
        ]
        for r in cx.details["functions"][:worst]
    ]
    return f"<h2>Worst {len(rows)} functions</h2>" + _table(
        ["function", "where", "cyclomatic", "cognitive", "new code"], rows, {2, 3}
    )


def _clones_section(result: GateResult, limit: int) -> str:
    dup = result.measurements.get("duplication")
    if dup is None or not dup.details.get("clones"):
        return ""
    clones = sorted(dup.details["clones"], key=lambda c: -int(c["tokens"]))[:limit]
    out = [f"<h2>Duplicated blocks ({len(dup.details['clones'])})</h2>"]
    for c in clones:
        out.append(
            f"<p>{escape(c['path'])}:{c['line']}–{c['end_line']} duplicates "
            f"{escape(c['original_path'])}:{c['original_line']}–{c['original_end_line']} "
            f"<small>({c['tokens']} tokens)</small></p>"
            f"<div class='pair'><pre>{escape(c['text'])}</pre><pre>{escape(c['original_text'])}</pre></div>"
        )
    return "".join(out)
