"""The ``[quality]`` configuration section: which profile to use, where history goes, and profiles.

::

    [quality]
    profile = "project"                       # what `buttress quality check` uses by default
    history = ".buttress/quality.db"

    [quality.profiles.project]
    extends = "default"                       # every profile extends one; "default" if unsaid
    exclude = ["src/*/demo/static/**"]
    [quality.profiles.project.overall]
    cognitive = "< 15"                        # metric = "op threshold"
    coverage = { must = ">= 85", severity = "warning" }
    [quality.profiles.project.new_code]
    coverage = ">= 90"
    [quality.profiles.project.duplication]
    exclude = ["**/migrations/**"]
    definition = "sonar"                      # or "jscpd" (with normalize = []): jscpd 5.3.3's figures

A key a profile leaves out is inherited from its parent; ``metric = "off"`` removes an inherited
condition. Unknown keys, unknown metrics and unknown parents are configuration errors naming them.
"""

from __future__ import annotations

import re
from typing import Any

from buttress.config import (
    Boolean,
    Choice,
    Custom,
    Duration,
    Field,
    Integer,
    ListOf,
    MapOf,
    String,
    Table,
)

__all__ = ["MEASURES", "PROFILE", "SCHEMA", "parse_requirement"]

#: The built-in measures (``measures = [...]``); a plugged-in measure adds its name by registering metrics.
MEASURES = ("complexity", "duplication", "coverage", "security")

_REQUIREMENT = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*%?\s*$")


def parse_requirement(value: Any) -> tuple[str, float] | None:
    """``">= 90"`` → ``(">=", 90.0)``; ``"off"`` → ``None`` (drop an inherited condition).

    Raises:
        ValueError: naming the accepted forms.
    """
    if value == "off":
        return None
    if isinstance(value, str):
        m = _REQUIREMENT.match(value)
        if m is not None:
            return m.group(1), float(m.group(2))
    raise ValueError('expected "op threshold" such as ">= 90" or "< 15" (op: < <= > >= == !=), or "off"')


def _condition_table() -> Table:
    return Table(
        shorthand="must",
        fields={
            "must": Custom(check=parse_requirement, required=True, doc='"op threshold" or "off"'),
            "severity": Choice(choices=("error", "warning"), default="error"),
        },
    )


class _Conditions(Field):
    """``metric = "op threshold"`` entries, checked against the metric registry *when parsed*.

    Reading the registry at parse time (not at import) lets a measure plugged in later — mutation
    testing, test-first checks — register its metrics and have profiles accept conditions on them,
    while a misspelt metric is still reported with a suggestion.
    """

    def parse(self, value: Any, path: str, problems: Any) -> Any:
        """Each key must be a registered metric; each value a condition."""
        from buttress.quality.gate import METRICS

        return Table(fields={name: _condition_table() for name in METRICS}).parse(value, path, problems)


class _Measures(Field):
    """The measures a profile runs: any measure that has registered a metric (checked when parsed)."""

    def parse(self, value: Any, path: str, problems: Any) -> Any:
        """A list of known measure names."""
        from buttress.quality.gate import METRICS

        names = sorted({m.measure for m in METRICS.values()} - {"sources"})
        return ListOf(item=Choice(choices=names)).parse(value, path, problems)


def _globs(doc: str) -> ListOf:
    return ListOf(item=String(), doc=doc)


#: One profile. Absent keys are ``None`` here and inherited when the profile is resolved.
PROFILE = Table(
    fields={
        "extends": String(doc='parent profile (default: "default")'),
        "description": String(allow_empty=True),
        "include": _globs("files to measure, relative to the project root"),
        "exclude": _globs("files to leave out of every measure"),
        "measures": _Measures(doc="measures to run"),
        "workers": Integer(minimum=0, maximum=64, doc="processes for parsing (0: by size)"),
        "overall": _Conditions(doc="conditions on all measured code"),
        "new_code": _Conditions(doc="conditions on the lines changed against --base"),
        "duplication": Table(
            fields={
                "definition": Choice(
                    choices=("sonar", "jscpd"),
                    doc="what a clone and the density are: SonarQube's (\"sonar\") or jscpd 5.3.3's",
                ),
                "min_tokens": Integer(minimum=10, maximum=10_000),
                "min_lines": Integer(minimum=1, maximum=10_000),
                "normalize": ListOf(item=Choice(choices=("names", "literals"))),
                "exclude": _globs("generated or data files left out of duplication"),
            }
        ),
        "coverage": Table(
            fields={
                "data_file": String(doc="coverage.py data file, relative to the project root"),
                "command": ListOf(item=String(), min_items=1, doc="test command run under coverage"),
                "min_new_lines": Integer(minimum=0, doc="new-code coverage and duplication need this many"),
                "timeout": Duration(positive=True, doc="limit for the test command"),
            }
        ),
        "security": Table(
            fields={
                "bandit": Boolean(),
                "confidence": Choice(
                    choices=("low", "medium", "high"), doc="least bandit confidence counted"
                ),
                "skip": ListOf(item=String(pattern=r"B\d{3}"), doc="bandit tests to skip"),
                "audit": Boolean(doc="audit dependencies with pip-audit"),
                "requirements": ListOf(item=String(), doc="requirement files (empty: this environment)"),
                "service": Choice(choices=("pypi", "osv")),
                "index_url": String(pattern=r"\S+"),
                "ignore": ListOf(item=String(), doc="vulnerability ids to accept"),
                "timeout": Duration(positive=True),
            }
        ),
    }
)


def _check_profiles(section: dict[str, Any], path: str, problems: Any) -> None:
    from buttress.quality.profiles import BUILTIN_RAW, chain_problems

    profiles = section.get("profiles") or {}
    known = set(BUILTIN_RAW) | set(profiles)
    for name, raw in profiles.items():
        for where, message in chain_problems(name, profiles):
            problems.add(f"{path}.profiles.{name}{where}", message)
        del raw
    chosen = section.get("profile")
    if chosen is not None and chosen not in known:
        problems.add(f"{path}.profile", f"unknown profile; known: {', '.join(sorted(known))}", chosen)


#: ``[quality]``.
SCHEMA: Field = Table(
    fields={
        "profile": String(default="default", doc="profile used when --profile is not given"),
        "history": String(default=".buttress/quality.db", doc="SQLite file for runs and test timings"),
        "profiles": MapOf(value=PROFILE, default=dict),
    },
    check=_check_profiles,
)
