"""The quality gate: measures produce figures, conditions judge them, the result decides the exit code.

A **measure** is anything with a ``name``, the ``metrics`` it produces, and ``compute(context)``
returning a :class:`Measurement`: its figures over the whole code (``overall``) and over the lines
changed against ``--base`` (``new``), plus the items behind them (functions, clones, findings). The four
built-in measures are complexity, duplication, coverage and security (:mod:`.measures`); mutation
testing and test-first checks plug in the same way — write a class with those three members, register
its metrics with :func:`register_metric`, and add it to :data:`buttress.quality.measures.BUILTIN` (or
pass it to :func:`run_gate`)::

    class MutationMeasure:
        name = "mutation"
        metrics = ("mutation_score",)

        def compute(self, context: Context) -> Measurement:
            ...
            return Measurement("mutation", overall={"mutation_score": 83.0}, new={"mutation_score": 91.0})

A **condition** is ``metric op threshold`` on ``overall`` or ``new`` code, with a severity: an
``error`` condition that does not hold fails the gate, a ``warning`` one is only reported.

The gate's verdict and exit code:

=====  ============  ==================================================================
0      passed        every error condition holds (or is skipped, see below)
1      failed        at least one error condition does not hold
2      unmeasured    no condition failed, but at least one could not be measured
=====  ============  ==================================================================

A condition on new code is *skipped* (not failed) when there is no ``--base``, and, as SonarQube does,
coverage and duplication conditions on new code are skipped when fewer than 20 lines changed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from buttress.errors import MeasureError
from buttress.quality.model import FileProblem, Finding

if TYPE_CHECKING:
    from buttress.quality.analysis import FileAnalysis
    from buttress.quality.history import History
    from buttress.quality.profiles import Profile

__all__ = [
    "METRICS",
    "OPERATORS",
    "Condition",
    "ConditionResult",
    "Context",
    "GateResult",
    "Measure",
    "Measurement",
    "Metric",
    "register_metric",
    "run_gate",
]

Scope = Literal["overall", "new"]
Status = Literal["passed", "failed", "warned", "skipped", "unmeasured"]

#: The comparison operators a condition may use.
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True, slots=True)
class Metric:
    """A figure a measure produces and a condition can judge.

    Attributes:
        name: what conditions call it (``coverage``, ``cognitive``…).
        measure: the measure that produces it.
        unit: ``"%"``, ``"points"`` or ``""`` (a count or a score).
        description: one line for help texts and reports.
        kind: ``"max"`` when the figure is the worst item's (per-function complexity: the offenders
            are the items that break the condition), ``"count"`` when it counts items (all are
            offenders), ``"ratio"`` when it is a percentage (the items are the files or blocks behind it).
    """

    name: str
    measure: str
    unit: str
    description: str
    kind: Literal["max", "count", "ratio"] = "ratio"


#: Every metric a condition may name, by name; measures add theirs with :func:`register_metric`.
METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Make ``metric`` known to profiles and reports (a plugged-in measure calls this at import)."""
    METRICS[metric.name] = metric
    return metric


for _m in (
    Metric("coverage", "coverage", "%", "line and branch coverage, Sonar's (CT + CF + LC) / (2B + EL)"),
    Metric("line_coverage", "coverage", "%", "covered executable lines / executable lines"),
    Metric("branch_coverage", "coverage", "%", "branch outcomes taken / branch outcomes possible"),
    Metric(
        "coverage_drop", "coverage", "points", "overall coverage lost since the base commit's recorded run"
    ),
    Metric("cyclomatic", "complexity", "", "McCabe complexity of the most complex function", "max"),
    Metric("cognitive", "complexity", "", "Sonar cognitive complexity of the most complex function", "max"),
    Metric("duplication", "duplication", "%", "duplicated lines / physical lines × 100"),
    Metric("duplicated_lines", "duplication", "", "lines inside a duplicated block", "count"),
    Metric("duplicated_blocks", "duplication", "", "duplicated blocks (clones)", "count"),
    Metric("security_high", "security", "", "bandit findings of high severity", "count"),
    Metric("security_medium", "security", "", "bandit findings of medium severity", "count"),
    Metric("security_low", "security", "", "bandit findings of low severity", "count"),
    Metric("vulnerabilities", "security", "", "known vulnerabilities in dependencies (pip-audit)", "count"),
    Metric("unparsed_files", "sources", "", "files that could not be read or parsed", "count"),
):
    register_metric(_m)


@dataclass(frozen=True, slots=True)
class Condition:
    """``metric op threshold`` on ``scope`` (overall or new code), failing the gate or only warning.

    Attributes:
        metric: a name from :data:`METRICS`.
        op: one of :data:`OPERATORS`.
        threshold: the figure compared against.
        scope: ``"overall"`` or ``"new"`` (the lines changed against ``--base``).
        severity: ``"error"`` fails the gate; ``"warning"`` is reported only.
    """

    metric: str
    op: str
    threshold: float
    scope: Scope = "overall"
    severity: Literal["error", "warning"] = "error"

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the condition."""
        return OPERATORS[self.op](value, self.threshold)

    @property
    def text(self) -> str:
        """``coverage >= 90`` (with ``on new code`` for new-code conditions)."""
        unit = METRICS[self.metric].unit if self.metric in METRICS else ""
        base = f"{self.metric} {self.op} {_fmt(self.threshold)}{'%' if unit == '%' else ''}"
        return base + (" on new code" if self.scope == "new" else "")

    def __str__(self) -> str:
        return self.text


def _fmt(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


@dataclass(slots=True)
class Measurement:
    """What one measure found.

    Attributes:
        measure: the measure's name.
        overall: figure per metric over all measured code.
        new: figure per metric over new code (absent when there is no ``--base``).
        items: per metric, ``(value, finding)`` for each item behind the overall figure (functions,
            clones, files with uncovered lines, findings).
        new_items: the same for the new-code figure.
        findings: everything worth pointing at in a report (beyond ``items``).
        unmeasured: reasons a figure could not be taken; a condition on this measure's metrics is then
            *unmeasured* (exit code 2) unless another condition fails.
        skipped: per metric, why its overall figure is not judged (e.g. no recorded base run).
        skipped_new: per metric, why its new-code figure is not judged (a small change).
        notes: things a reader should know (which data file, what was excluded).
        details: anything else a report can show (per-file tables, clone pairs).
    """

    measure: str
    overall: dict[str, float] = field(default_factory=dict)
    new: dict[str, float] = field(default_factory=dict)
    items: dict[str, list[tuple[float, Finding]]] = field(default_factory=dict)
    new_items: dict[str, list[tuple[float, Finding]]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    skipped_new: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Measure(Protocol):
    """What the gate needs from a measure: a name, its metrics, and a way to compute them."""

    name: str
    metrics: tuple[str, ...]

    def compute(self, context: Context) -> Measurement:
        """Measure ``context``'s files; raise :class:`~buttress.errors.MeasureError` if impossible."""
        ...


class Context:
    """Everything measures share for one run: the files, the profile, new code, and one analysis pass.

    Args:
        root: project root (reports show paths relative to it; git runs here).
        target: the folder or file to measure.
        profile: the resolved profile.
        base: the git ref new code is compared against, or ``None``.
        run_tests: run the test suite under coverage instead of reading existing data.
        history: where runs are recorded (needed for the coverage-drop condition).
    """

    def __init__(
        self,
        root: Path,
        target: Path,
        profile: Profile,
        *,
        base: str | None = None,
        run_tests: bool = False,
        history: History | None = None,
    ) -> None:
        from buttress.quality.sources import discover

        self.root = root
        self.target = target
        self.profile = profile
        self.base = base
        self.run_tests = run_tests
        self.history = history
        self.files: list[Path] = discover(target, root, profile.include, profile.exclude)
        self.problems: list[FileProblem] = []
        self._analyses: list[FileAnalysis] | None = None
        self._new_lines: dict[str, set[int]] | None = None
        self._base_commit: str | None = None
        self._new_resolved = False
        self._rels: frozenset[str] | None = None
        self._lines: dict[str, list[str]] = {}

    @property
    def target_key(self) -> str:
        """The target relative to the root (``"."`` for the root): runs are recorded under it."""
        from buttress.quality.sources import relative

        rel = relative(self.target, self.root)
        return "." if rel in ("", ".") else rel

    @property
    def new_lines(self) -> dict[str, set[int]] | None:
        """Changed line numbers per file against ``base`` (``None`` without a base)."""
        if not self._new_resolved:
            self._resolve_new()
        return self._new_lines

    @property
    def base_commit(self) -> str | None:
        """The commit new code is measured from (the merge base of ``base`` and ``HEAD``)."""
        if not self._new_resolved:
            self._resolve_new()
        return self._base_commit

    def _resolve_new(self) -> None:
        self._new_resolved = True
        if self.base is None:
            return
        from buttress.quality.gitdiff import changed_lines, merge_base

        self._base_commit = merge_base(self.root, self.base)
        self._new_lines = changed_lines(self.root, self._base_commit)

    def new_line_count(self) -> int:
        """Changed non-blank lines in measured files (what the small-change rule counts)."""
        lines = self.new_lines
        if lines is None:
            return 0
        total = 0
        for rel, numbers in lines.items():
            if rel not in self.rels:
                continue
            text = self.lines(rel)
            total += sum(1 for n in numbers if 0 < n <= len(text) and text[n - 1].strip())
        return total

    @property
    def rels(self) -> frozenset[str]:
        """The measured files' paths relative to the root."""
        if self._rels is None:
            from buttress.quality.sources import relative

            self._rels = frozenset(relative(f, self.root) for f in self.files)
        return self._rels

    def lines(self, rel: str) -> list[str]:
        """The physical lines of file ``rel`` (read once; empty when unreadable)."""
        cached = self._lines.get(rel)
        if cached is None:
            try:
                text = (self.root / rel).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            cached = self._lines[rel] = text.replace("\r\n", "\n").split("\n")
        return cached

    def touches_new(self, rel: str, first: int, last: int) -> bool:
        """Whether lines ``first``..``last`` of ``rel`` include a changed line."""
        lines = self.new_lines
        if not lines or rel not in lines:
            return False
        changed = lines[rel]
        return any(n in changed for n in range(first, last + 1))

    def analyses(self) -> list[FileAnalysis]:
        """Each file read, parsed and tokenized once (shared by complexity and duplication)."""
        if self._analyses is None:
            from buttress.quality.analysis import AnalysisOptions, analyse_files
            from buttress.quality.sources import matches, relative

            p = self.profile
            options = AnalysisOptions(
                complexity="complexity" in p.measures,
                # Sonar's token windows only: the jscpd definition tokenizes files its own way.
                duplication="duplication" in p.measures and p.duplication.definition == "sonar",
                min_tokens=p.duplication.min_tokens,
                names="names" in p.duplication.normalize,
                literals="literals" in p.duplication.normalize,
                workers=p.workers,
            )
            skip = frozenset(
                rel
                for rel in (relative(f, self.root) for f in self.files)
                if matches(rel, p.duplication.exclude)
            )
            self._analyses = analyse_files(self.files, self.root, options, skip)
            self.problems = [a.problem for a in self._analyses if a.problem is not None]
        return self._analyses

    def measured(self) -> list[FileAnalysis]:
        """The analyses of files that could be measured (problems left out)."""
        return [a for a in self.analyses() if a.problem is None]


@dataclass(slots=True)
class ConditionResult:
    """How one condition fared.

    Attributes:
        condition: the condition.
        status: ``passed``, ``failed`` (an error condition broken), ``warned`` (a warning condition
            broken), ``skipped`` (not applicable: no base, small change) or ``unmeasured``.
        value: the figure judged, when there is one.
        message: a sentence for reports.
        offenders: the items that break it (worst first).
    """

    condition: Condition
    status: Status
    value: float | None
    message: str
    offenders: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class GateResult:
    """The whole run: each condition's result, each measure's figures, and files left out."""

    profile: str
    results: list[ConditionResult]
    measurements: dict[str, Measurement]
    problems: list[FileProblem]
    files: int
    root: str
    base: str | None = None
    base_commit: str | None = None
    commit: str | None = None
    new_lines: int | None = None

    @property
    def status(self) -> Literal["passed", "failed", "unmeasured"]:
        """``failed`` if an error condition broke, else ``unmeasured`` if one could not be taken."""
        statuses = {r.status for r in self.results}
        if "failed" in statuses:
            return "failed"
        if "unmeasured" in statuses:
            return "unmeasured"
        return "passed"

    @property
    def exit_code(self) -> int:
        """0 passed, 1 failed, 2 unmeasured."""
        return {"passed": 0, "failed": 1, "unmeasured": 2}[self.status]

    def ordered(self) -> list[ConditionResult]:
        """Results with failures first, then unmeasured, warnings, passes and skips."""
        rank = {"failed": 0, "unmeasured": 1, "warned": 2, "passed": 3, "skipped": 4}
        return sorted(self.results, key=lambda r: rank[r.status])

    def findings(self) -> list[Finding]:
        """Every finding of every measure, plus files that could not be measured."""
        out: list[Finding] = []
        for m in self.measurements.values():
            out.extend(m.findings)
        out.extend(
            Finding(
                "sources.unparsed", p.path, max(p.line, 1), max(p.line, 1), p.message, "warning", p.message
            )
            for p in self.problems
        )
        return out


#: ``on_progress(step, done, total)``: told before each measure starts, and once more when all are done.
Progress = Callable[[str, int, int], None]


def _sources(context: Context) -> Measurement:
    """The files that do not parse, overall and on new code (every file is parsed, whatever ran)."""
    context.analyses()
    sources = Measurement("sources", overall={"unparsed_files": float(len(context.problems))})
    sources.items["unparsed_files"] = [
        (1.0, Finding("sources.unparsed", p.path, max(p.line, 1), max(p.line, 1), p.message, "warning"))
        for p in context.problems
    ]
    if context.new_lines is not None:
        new_lines = context.new_lines
        sources.new_items["unparsed_files"] = [
            (v, f) for v, f in sources.items["unparsed_files"] if f.path in new_lines
        ]
        sources.new["unparsed_files"] = float(len(sources.new_items["unparsed_files"]))
    return sources


def run_gate(
    context: Context, measures: Sequence[Measure], on_progress: Progress | None = None
) -> GateResult:
    """Compute every measure the profile asks for, then judge every condition.

    A measure that raises :class:`~buttress.errors.MeasureError` is recorded as unmeasured with the
    error's message; any other exception propagates (it is a bug, not a measurement problem).
    ``on_progress`` hears the name of each measure as it starts (``"judging"`` at the end), with how
    many are done out of how many, for a progress bar: a gate that runs the tests takes minutes.
    """
    profile = context.profile
    measurements: dict[str, Measurement] = {}
    chosen = [m for m in measures if m.name in profile.measures]
    for done, measure in enumerate(chosen):
        if on_progress is not None:
            on_progress(measure.name, done, len(chosen))
        try:
            measurements[measure.name] = measure.compute(context)
        except MeasureError as exc:
            measurements[measure.name] = Measurement(measure.name, unmeasured=[str(exc)])
    measurements["sources"] = _sources(context)
    if on_progress is not None:
        on_progress("judging", len(chosen), len(chosen))
    results = [_judge(c, measurements, context) for c in profile.conditions]
    from buttress.quality.gitdiff import head_commit

    return GateResult(
        profile=profile.name,
        results=results,
        measurements=measurements,
        problems=list(context.problems),
        files=len(context.files),
        root=str(context.root),
        base=context.base,
        base_commit=context.base_commit,
        commit=head_commit(context.root),
        new_lines=context.new_line_count() if context.base is not None else None,
    )


def _judge(cond: Condition, measurements: dict[str, Measurement], context: Context) -> ConditionResult:
    metric = METRICS[cond.metric]
    m = measurements.get(metric.measure)
    if m is None:
        return ConditionResult(cond, "unmeasured", None, f"the {metric.measure} measure did not run")
    skipped = _skip_reason(cond, m, context)
    if skipped is not None:
        return ConditionResult(cond, "skipped", None, skipped)
    value = (m.overall if cond.scope == "overall" else m.new).get(cond.metric)
    if value is None:
        reason = "; ".join(m.unmeasured) or f"{cond.metric} was not measured"
        return ConditionResult(cond, "unmeasured", None, reason)
    unit = _unit(metric)
    if cond.holds(value):
        return ConditionResult(cond, "passed", value, f"{cond.metric} is {_fmt(value)}{unit}")
    items = (m.items if cond.scope == "overall" else m.new_items).get(cond.metric, [])
    offenders = _offenders(cond, metric, items)
    message = f"{cond.metric} is {_fmt(value)}{unit}, needs {cond.op} {_fmt(cond.threshold)}{unit}"
    if offenders:
        message += f" ({len(offenders)} item{'s' if len(offenders) != 1 else ''})"
    return ConditionResult(
        cond, "failed" if cond.severity == "error" else "warned", value, message, offenders
    )


def _skip_reason(cond: Condition, m: Measurement, context: Context) -> str | None:
    """Why ``cond`` does not apply to this run, or ``None`` when it does."""
    if cond.scope == "overall":
        return m.skipped.get(cond.metric)
    if context.base is None:
        return "no --base given, so there is no new code to judge"
    return m.skipped_new.get(cond.metric)


def _offenders(cond: Condition, metric: Metric, items: list[tuple[float, Finding]]) -> list[Finding]:
    """The items behind a broken condition: for a worst-item figure, only those that break it, worst first."""
    if metric.kind != "max":
        return [f for _, f in items]
    offenders = [f for v, f in items if not cond.holds(v)]
    offenders.sort(key=lambda f: -float(f.properties.get(cond.metric, 0)))
    return offenders


def _unit(metric: Metric) -> str:
    return "%" if metric.unit == "%" else (" points" if metric.unit == "points" else "")
