"""The SARIF report validates against the official SARIF 2.1.0 JSON schema (vendored, see data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from buttress.quality import check
from buttress.quality.report import sarif

from .test_reports import project

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


def validate(document: dict) -> None:
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_sarif_report_with_failures_and_problems_is_valid(repo):
    project(repo)
    document = json.loads(sarif.render(check(repo.root / "pkg", root=repo.root, record=False)))
    validate(document)
    run = document["runs"][0]
    rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {"complexity.cognitive", "duplication.block", "sources.unparsed"} <= rules
    levels = {(r["ruleId"], r["level"]) for r in run["results"]}
    assert ("complexity.cognitive", "error") in levels
    assert ("sources.unparsed", "warning") in levels
    for result in run["results"]:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert len(result["partialFingerprints"]["buttress/v1"]) == 32


def test_an_empty_passing_report_is_valid(repo):
    repo.write(
        "buttress.toml",
        '[quality.profiles.default]\nmeasures = ["complexity"]\n'
        '[quality.profiles.default.overall]\ncoverage = "off"\ncoverage_drop = "off"\n'
        'duplication = "off"\nsecurity_high = "off"\nvulnerabilities = "off"\n'
        '[quality.profiles.default.new_code]\ncoverage = "off"\nduplication = "off"\nsecurity_high = "off"\n',
    )
    repo.write("ok.py", "def f():\n    return 1\n")
    repo.commit("ok")
    result = check(repo.root, root=repo.root, record=False)
    assert result.exit_code == 0
    document = sarif.to_dict(result)
    validate(document)
    assert document["runs"][0]["results"] == []


def test_every_measure_in_one_run_renders_valid_reports(repo):
    from buttress.quality.report import html

    repo.write(
        "buttress.toml",
        """
[quality.profiles.default.security]
audit = false
confidence = "low"
[quality.profiles.default.coverage]
command = ["pytest", "-q", "-p", "no:cacheprovider", "tests"]
""",
    )
    repo.write("app/__init__.py", "")
    repo.write(
        "app/risky.py",
        """
import pickle
import subprocess


def run(cmd):
    return subprocess.call(cmd, shell=True)


def load(blob):
    try:
        return pickle.loads(blob)
    except Exception:
        pass
""",
    )
    repo.write(
        "tests/test_risky.py",
        "from app.risky import load\n\n\ndef test_load():\n    assert load(b'x') is None\n",
    )
    repo.commit("init")
    result = check(repo.root / "app", root=repo.root, run_tests=True, record=False)
    assert set(result.measurements) == {"complexity", "duplication", "coverage", "security", "sources"}
    document = sarif.to_dict(result)
    validate(document)
    levels = {r["ruleId"]: r["level"] for r in document["runs"][0]["results"]}
    assert levels["security.B602"] == "error"  # high severity: subprocess with shell=True
    assert levels["security.B301"] == "warning"  # medium: pickle.loads
    assert levels["security.B110"] == "note"  # low: try/except/pass
    assert levels["coverage.uncovered"] == "error"  # coverage < 90 % fails the gate
    page = html.render(result)
    assert "<h2>Security</h2>" in page
    assert "app/risky.py" in page
    assert "coverage %" in page
