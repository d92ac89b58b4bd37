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
