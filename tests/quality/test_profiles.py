"""Profiles: built-ins, inheritance, and configuration errors that name the bad key."""

from __future__ import annotations

import pytest

from buttress.config import loads
from buttress.errors import ConfigError
from buttress.quality.profiles import resolve_profile


def conds(profile):
    return {(c.scope, c.metric): (c.op, c.threshold, c.severity) for c in profile.conditions}


def test_default_profile_is_the_seed_gate():
    c = conds(resolve_profile("default"))
    assert c[("overall", "coverage")] == (">=", 90.0, "error")
    assert c[("overall", "cyclomatic")] == ("<", 15.0, "error")
    assert c[("overall", "cognitive")] == ("<", 15.0, "error")
    assert c[("overall", "duplication")] == ("<", 3.0, "error")
    assert c[("overall", "security_high")] == ("==", 0.0, "error")
    assert c[("overall", "coverage_drop")] == ("<=", 0.0, "error")
    assert c[("new", "coverage")] == (">=", 90.0, "error")


def test_strict_extends_default_and_tightens_it():
    p = resolve_profile("strict")
    assert p.chain == ("default", "strict")
    c = conds(p)
    assert c[("overall", "cyclomatic")] == ("<", 10.0, "error")
    assert c[("overall", "security_medium")] == ("==", 0.0, "error")
    assert c[("overall", "vulnerabilities")] == ("==", 0.0, "error")  # inherited
    assert p.security.confidence == "low"
    assert p.security.audit is True  # inherited key by key


def test_user_profile_extends_overrides_and_switches_off():
    cfg = loads(
        """
        [quality]
        profile = "team"
        [quality.profiles.base]
        extends = "strict"
        exclude = ["gen/**"]
        [quality.profiles.team]
        extends = "base"
        [quality.profiles.team.overall]
        coverage = { must = ">= 80", severity = "warning" }
        coverage_drop = "off"
        [quality.profiles.team.duplication]
        min_lines = 12
    """.replace("\n        ", "\n")
    )
    section = cfg.section("quality")
    p = resolve_profile("team", section["profiles"])
    assert p.chain == ("default", "strict", "base", "team")
    assert p.exclude == ("gen/**",)
    c = conds(p)
    assert c[("overall", "coverage")] == (">=", 80.0, "warning")
    assert ("overall", "coverage_drop") not in c
    assert c[("overall", "cyclomatic")] == ("<", 10.0, "error")
    assert p.duplication.min_lines == 12
    assert p.duplication.min_tokens == 100


def test_a_profile_named_like_a_builtin_is_laid_over_it():
    cfg = loads('[quality.profiles.default.overall]\ncoverage = ">= 70"\n')
    c = conds(resolve_profile("default", cfg.section("quality")["profiles"]))
    assert c[("overall", "coverage")] == (">=", 70.0, "error")
    assert c[("overall", "cyclomatic")] == ("<", 15.0, "error")


def test_unknown_keys_and_metrics_are_errors_naming_them():
    with pytest.raises(ConfigError) as info:
        loads("""
[quality.profiles.x]
extend = "default"
[quality.profiles.x.overall]
coverag = ">= 3"
cyclomatic = "<< 3"
[quality.profiles.x.security]
confidence = "sure"
""")
    text = str(info.value)
    assert "quality.profiles.x.extend: unknown key" in text
    assert "quality.profiles.x.overall.coverag: unknown key" in text
    assert 'did you mean "coverage"' in text
    assert "quality.profiles.x.overall.cyclomatic.must" in text
    assert "quality.profiles.x.security.confidence" in text


def test_unknown_parent_cycles_and_unknown_profile_are_errors():
    with pytest.raises(ConfigError, match=r"quality.profiles.a.extends: extends unknown profile 'nope'"):
        loads('[quality.profiles.a]\nextends = "nope"\n')
    with pytest.raises(ConfigError, match="cycle"):
        loads('[quality.profiles.a]\nextends = "b"\n[quality.profiles.b]\nextends = "a"\n')
    with pytest.raises(ConfigError, match=r"quality.profile: unknown profile"):
        loads('[quality]\nprofile = "missing"\n')
    with pytest.raises(ConfigError, match="unknown profile"):
        resolve_profile("missing")


def test_a_condition_on_a_measure_the_profile_does_not_run_is_an_error():
    cfg = loads('[quality.profiles.lean]\nmeasures = ["complexity"]\n')
    with pytest.raises(ConfigError, match=r"judges the coverage measure, which this profile does not run"):
        resolve_profile("lean", cfg.section("quality")["profiles"])


def test_the_project_profile_in_pyproject_is_the_documented_one():
    from pathlib import Path

    root = Path(__file__).parents[2]
    text = (root / "docs" / "quality.md").read_text(encoding="utf-8")
    start = text.index('```toml\n[tool.buttress.quality]\nprofile = "project"')
    block = text[start + len("```toml\n") : text.index("```", start + 7)]
    documented = loads(block, pyproject=True).section("quality")
    section = loads((root / "pyproject.toml").read_text(encoding="utf-8"), pyproject=True).section("quality")
    assert documented == section
    project = resolve_profile("project", section["profiles"])
    ci = resolve_profile("project-ci", section["profiles"])
    assert project.chain == ("default", "project")
    assert ci.chain == ("default", "project", "project-ci")
    assert ci.security.audit is False
    assert project.security.audit is True
    c = conds(project)
    for scope in ("new", "overall"):
        assert c[(scope, "coverage")] == (">=", 90.0, "error")
        assert c[(scope, "cognitive")] == ("<", 15.0, "error")
        assert c[(scope, "cyclomatic")] == ("<", 15.0, "error")
