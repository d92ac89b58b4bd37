"""Collect the JSON files of the area benchmarks into the summary table of docs/benchmarks.md.

    python benchmarks/summary.py out/telemetry.json out/resilience.json ... > table.md

For each case: our figure, the best peer's (by the case's direction), and the ratio ours / best peer.
A ratio below 1 means buttress is better for lower-is-better cases; for ``higher_is_better`` cases the
ratio is best peer / ours, so below 1 is better there too and the column reads the same way.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


#: Contestants that are bounds rather than alternatives; never reported as the best peer.
REFERENCES = {"opt", "belady"}

_SUFFIX_UNITS = {"_pct": "%", "_bytes": "bytes", "_ms": "ms", "_us": "µs", "_s": "s", "_rps": "req/s"}


def _unit(case: str, default: str) -> str:
    # A case carries its own unit in its name when it differs from the file's (see _common.Case).
    for suffix, unit in _SUFFIX_UNITS.items():
        if case.endswith(suffix):
            return unit
    if "_bytes_" in case:
        return "bytes"
    if "_pct_" in case:
        return "%"
    return default


def rows(data: dict) -> list[str]:
    out = []
    unit = data.get("unit", "")
    for case in data["cases"]:
        higher = bool(case.get("higher_is_better"))
        given = case.get("peers", {}).items()
        # Bounds such as Belady's optimum are references, not peers a user could pick instead.
        peers = {
            k: v
            for k, v in given
            if isinstance(v, int | float) and not math.isnan(v) and k.lower() not in REFERENCES
        }
        ours = float(case["ours"])
        if peers:
            best_name, best = (max if higher else min)(peers.items(), key=lambda kv: kv[1])
            ratio = (best / ours if higher else ours / best) if ours and best else math.nan
            best_txt = f"{_fmt(best)} ({best_name})"
            ratio_txt = "—" if math.isnan(ratio) else f"{ratio:.2f}"
        else:
            best_txt, ratio_txt = "—", "—"
        direction = "higher" if higher else "lower"
        case_unit = _unit(case["case"], unit)
        cells = [data["area"], case["case"], f"{case_unit} ({direction})", _fmt(ours), best_txt, ratio_txt]
        out.append("| " + " | ".join(cells) + " |")
    return out


def main(paths: list[str]) -> None:
    print("| area | case | unit (better) | buttress | best peer | ratio (<1 is better) |")
    print("|---|---|---|---:|---|---:|")
    for path in paths:
        data = json.loads(Path(path).read_text())
        for line in rows(data):
            print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
