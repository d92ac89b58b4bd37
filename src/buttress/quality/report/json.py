"""The gate run as JSON: every condition, figure, finding and detail, for machines and dashboards.

The document's ``version`` is bumped when a field changes meaning; fields are only ever added.
"""

from __future__ import annotations

import json
import math
from typing import Any

from buttress.quality.gate import ConditionResult, GateResult, Measurement
from buttress.quality.model import Finding

__all__ = ["finding_dict", "render", "to_dict"]

VERSION = 1


def finding_dict(f: Finding) -> dict[str, Any]:
    """A finding as plain JSON data."""
    return {
        "rule": f.rule,
        "path": f.path,
        "line": f.line,
        "end_line": f.end_line,
        "message": f.message,
        "level": f.level,
        "new": f.new,
        "properties": f.properties,
    }


def _condition(r: ConditionResult) -> dict[str, Any]:
    c = r.condition
    return {
        "metric": c.metric,
        "op": c.op,
        "threshold": c.threshold,
        "scope": c.scope,
        "severity": c.severity,
        "text": c.text,
        "status": r.status,
        "value": r.value,
        "message": r.message,
        "offenders": [finding_dict(f) for f in r.offenders],
    }


def _measure(m: Measurement) -> dict[str, Any]:
    return {
        "overall": m.overall,
        "new": m.new,
        "unmeasured": m.unmeasured,
        "skipped": m.skipped,
        "skipped_new": m.skipped_new,
        "notes": m.notes,
        "details": m.details,
    }


def to_dict(result: GateResult) -> dict[str, Any]:
    """The whole run as JSON-ready data (conditions in report order: failures first)."""
    return {
        "version": VERSION,
        "tool": "buttress quality",
        "profile": result.profile,
        "status": result.status,
        "exit_code": result.exit_code,
        "root": result.root,
        "commit": result.commit,
        "base": result.base,
        "base_commit": result.base_commit,
        "new_lines": result.new_lines,
        "files": result.files,
        "conditions": [_condition(r) for r in result.ordered()],
        "measures": {name: _measure(m) for name, m in result.measurements.items()},
        "findings": [finding_dict(f) for f in result.findings()],
        "problems": [{"path": p.path, "line": p.line, "message": p.message} for p in result.problems],
    }


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in (sorted(value) if isinstance(value, set | frozenset) else value)]
    return value


def render(result: GateResult) -> str:
    """The JSON document, indented."""
    return json.dumps(_clean(to_dict(result)), indent=2, sort_keys=False) + "\n"
