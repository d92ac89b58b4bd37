"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers, with fingerprints that follow the code.

Results are the offenders of every condition that does not hold (``error`` when it fails the gate,
``warning`` when it only warns), every security finding (high severity ``error``, medium ``warning``,
low ``note``), dependencies that could not be audited, and files that could not be parsed.

**Fingerprints.** Code scanning matches a result to the one of the previous run by
``partialFingerprints``; if they change, the alert is closed and a new one opened. Line numbers change
whenever unrelated lines are added above, so they are not part of it. Each result carries
``buttress/v1`` = SHA-256 of (rule id, file, the flagged region's content with whitespace collapsed,
the occurrence index of that same content in the file), truncated to 32 hex digits. For a function the
"content" is its qualified name and ``def`` line, so editing its body keeps its alert; for a duplicated
block it is the block's text; for a security finding, the flagged lines.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

from buttress.quality.gate import GateResult
from buttress.quality.model import Finding, Level

__all__ = ["fingerprint", "render", "results", "to_dict"]

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "buttress/v1"

_RULES: dict[str, tuple[str, str]] = {
    "complexity.cyclomatic": ("CyclomaticComplexity", "Function is too complex (cyclomatic, McCabe)"),
    "complexity.cognitive": ("CognitiveComplexity", "Function is too hard to understand (Sonar cognitive)"),
    "duplication.block": ("DuplicatedBlock", "Block of code duplicated elsewhere"),
    "coverage.uncovered": ("UncoveredCode", "Code that no test runs"),
    "coverage.new": ("UncoveredNewCode", "New code that no test runs"),
    "coverage.drop": ("CoverageDrop", "File whose coverage fell since the base commit"),
    "security.vulnerability": ("VulnerableDependency", "Dependency with a known vulnerability"),
    "security.unaudited": ("UnauditedDependency", "Dependency that could not be audited"),
    "sources.unparsed": ("UnparsedFile", "File that could not be read or parsed"),
}


def fingerprint(f: Finding, occurrence: int) -> str:
    """The stable fingerprint of ``f``, the ``occurrence``-th finding with its rule, file and content."""
    content = " ".join(f.content.split())
    digest = hashlib.sha256("\0".join((f.rule, f.path, content, str(occurrence))).encode()).hexdigest()
    return digest[:32]


def results(result: GateResult) -> list[Finding]:
    """Every finding the SARIF file reports, deduplicated, in file and line order."""
    chosen: dict[tuple[str, str, int, int, str], Finding] = {}
    for r in result.results:
        if r.status in ("failed", "warned"):
            for f in r.offenders:
                _add(chosen, f, "error" if r.status == "failed" else "warning")
    for f in result.findings():
        level = _level(f)
        if level is not None:
            _add(chosen, f, level)
    return sorted(chosen.values(), key=lambda f: (f.path, f.line, f.rule, f.message))


def _level(f: Finding) -> Level | None:
    """The level a finding outside any broken condition is reported at (``None``: not reported)."""
    if f.rule == "security.vulnerability":
        return "error"
    if f.rule in ("security.unaudited", "sources.unparsed"):
        return "warning"
    if f.rule.startswith("security.") and "severity" in f.properties:
        return _SEVERITY_LEVEL.get(str(f.properties["severity"]), "note")
    return None


def _add(chosen: dict[tuple[str, str, int, int, str], Finding], f: Finding, level: Level) -> None:
    """Keep one result per region and message, at the loudest level it was reported at."""
    key = (f.rule, f.path, f.line, f.end_line, f.message)
    old = chosen.get(key)
    if old is None or _rank(level) > _rank(old.level):
        chosen[key] = Finding(
            f.rule, f.path, f.line, f.end_line, f.message, level, f.content, f.new, f.properties
        )


_SEVERITY_LEVEL: dict[str, Level] = {"high": "error", "medium": "warning"}


def _rank(level: Level) -> int:
    return {"note": 0, "warning": 1, "error": 2}[level]


def _rule_meta(rule: str, f: Finding) -> tuple[str, str]:
    if rule in _RULES:
        return _RULES[rule]
    test = rule.split(".", 1)[-1]
    return f"Bandit{test}", f"bandit {test}: " + f.message.split(": ", 1)[-1][:120]


def to_dict(result: GateResult) -> dict[str, Any]:
    """The SARIF log as JSON-ready data."""
    found = results(result)
    rule_ids = sorted({f.rule for f in found})
    index = {rule: i for i, rule in enumerate(rule_ids)}
    examples = {f.rule: f for f in found}
    rules = []
    for rule in rule_ids:
        name, text = _rule_meta(rule, examples[rule])
        rules.append(
            {
                "id": rule,
                "name": name,
                "shortDescription": {"text": text},
                "defaultConfiguration": {"level": "warning"},
                "properties": {"tags": [rule.split(".", 1)[0], "quality"]},
            }
        )
    seen: Counter[tuple[str, str, str]] = Counter()
    sarif_results = []
    for f in found:
        key = (f.rule, f.path, " ".join(f.content.split()))
        occurrence = seen[key]
        seen[key] += 1
        sarif_results.append(
            {
                "ruleId": f.rule,
                "ruleIndex": index[f.rule],
                "level": f.level,
                "message": {"text": f.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": f.path, "uriBaseId": "SRCROOT"},
                            "region": {"startLine": max(1, f.line), "endLine": max(1, f.end_line, f.line)},
                        }
                    }
                ],
                "partialFingerprints": {FINGERPRINT_KEY: fingerprint(f, occurrence)},
                "properties": {"new": f.new, **{k: v for k, v in f.properties.items() if _jsonable(v)}},
            }
        )
    notifications = [
        {"level": "error", "message": {"text": f"{name}: {reason}"}}
        for name, m in result.measurements.items()
        for reason in m.unmeasured
    ]
    try:
        version = metadata.version("buttress")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "0"
    root_uri = Path(result.root).resolve().as_uri().rstrip("/") + "/"  # percent-encoded, as SARIF wants
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "buttress quality",
                        "version": version,
                        "informationUri": "https://github.com/buttress/buttress",
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"buttress-quality/{result.profile}/"},
                "originalUriBaseIds": {"SRCROOT": {"uri": root_uri}},
                "invocations": [
                    {
                        "executionSuccessful": result.status != "unmeasured",
                        "exitCode": result.exit_code,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": sarif_results,
                "properties": {
                    "profile": result.profile,
                    "status": result.status,
                    "conditions": [
                        {"condition": r.condition.text, "status": r.status, "value": r.value}
                        for r in result.ordered()
                    ],
                },
            }
        ],
    }


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def render(result: GateResult) -> str:
    """The SARIF document, indented."""
    return json.dumps(to_dict(result), indent=2) + "\n"
