"""The gate: severities, verdict precedence, new-code scoping, and a measure plugged in from outside."""

from __future__ import annotations

import pytest

from buttress.config import loads
from buttress.errors import ConfigError, MeasureError
from buttress.quality import Context, Measurement, Metric, register_metric, resolve_profile, run_gate
from buttress.quality.gate import METRICS
from buttress.quality.model import Finding

CONFIG = """
[quality.profiles.mut]
measures = ["complexity", "mutation"]
[quality.profiles.mut.overall]
coverage = "off"
coverage_drop = "off"
duplication = "off"
security_high = "off"
vulnerabilities = "off"
mutation_score = ">= 80"
cognitive = { must = "< 1", severity = "warning" }
[quality.profiles.mut.new_code]
coverage = "off"
duplication = "off"
security_high = "off"
mutation_score = ">= 90"
"""


class MutationMeasure:
    """A stand-in for the mutation-testing measure a later issue adds: same protocol, fixed figures."""

    name: str = "mutation"
    metrics: tuple[str, ...] = ("mutation_score",)

    def __init__(self, overall: float | None, new: float | None = None, fail: bool = False) -> None:
        self.overall, self.new_figure, self.fail = overall, new, fail

    def compute(self, context: Context) -> Measurement:
        if self.fail:
            raise MeasureError("no mutants could be run: the test suite does not pass")
        out = Measurement(self.name)
        if self.overall is not None:
            out.overall["mutation_score"] = self.overall
            survivor = Finding("mutation.survivor", "a.py", 2, 2, "a mutant of `x + 1` survived", new=True)
            out.items["mutation_score"] = [(1.0, survivor)]
            out.new_items["mutation_score"] = [(1.0, survivor)]
        if self.new_figure is not None:
            out.new["mutation_score"] = self.new_figure
        return out


@pytest.fixture(autouse=True)
def mutation_metric():
    register_metric(Metric("mutation_score", "mutation", "%", "killed mutants / mutants"))
    yield
    METRICS.pop("mutation_score", None)


def profile():
    cfg = loads(CONFIG)
    return resolve_profile("mut", cfg.section("quality")["profiles"])


def context(repo, base=None):
    repo.write("a.py", "def f(x):\n    return x + 1 if x else 0\n")
    repo.commit("a")
    return Context(repo.root, repo.root, profile(), base=base)


def measures(*extra):
    from buttress.quality.complexity import ComplexityMeasure

    return [ComplexityMeasure(), *extra]


def statuses(result):
    return {r.condition.text: r.status for r in result.results}


def test_a_plugged_in_measure_is_judged_like_a_builtin(repo):
    result = run_gate(context(repo), measures(MutationMeasure(75.0)))
    assert statuses(result)["mutation_score >= 80%"] == "failed"
    [offender] = next(r for r in result.results if r.condition.metric == "mutation_score").offenders
    assert offender.rule == "mutation.survivor"
    assert result.exit_code == 1


def test_a_warning_condition_reports_without_failing(repo):
    result = run_gate(context(repo), measures(MutationMeasure(85.0)))
    assert statuses(result)["cognitive < 1"] == "warned"  # f has cognitive 1
    assert statuses(result)["mutation_score >= 80%"] == "passed"
    assert result.status == "passed"
    assert result.exit_code == 0
    assert result.ordered()[0].status == "warned"


def test_unmeasured_is_exit_2_unless_something_failed(repo):
    ctx = context(repo)
    assert run_gate(ctx, measures(MutationMeasure(None, fail=True))).exit_code == 2
    result = run_gate(ctx, measures(MutationMeasure(None, fail=True)))
    assert statuses(result)["mutation_score >= 80%"] == "unmeasured"
    assert "no mutants could be run" in next(r.message for r in result.results if r.status == "unmeasured")


def test_new_code_conditions_need_a_base_and_use_new_figures(repo):
    ctx = context(repo)
    assert (
        statuses(run_gate(ctx, measures(MutationMeasure(85.0, 70.0))))["mutation_score >= 90% on new code"]
        == "skipped"
    )
    repo.write("b.py", "y = 2\n")  # an untracked file is new code
    with_base = Context(repo.root, repo.root, profile(), base="main")
    result = run_gate(with_base, measures(MutationMeasure(85.0, 70.0)))
    assert statuses(result)["mutation_score >= 90% on new code"] == "failed"
    assert result.base_commit == repo.git("rev-parse", "HEAD").strip()


def test_profiles_reject_conditions_on_unregistered_metrics_and_measures():
    METRICS.pop("mutation_score")
    with pytest.raises(ConfigError) as info:
        loads(CONFIG)
    text = str(info.value)
    assert "quality.profiles.mut.overall.mutation_score: unknown key" in text
    assert "quality.profiles.mut.measures[1]: must be one of" in text


def test_progress_hears_each_measure_then_judging(repo):
    heard = []
    run_gate(
        context(repo),
        measures(MutationMeasure(85.0)),
        on_progress=lambda step, done, total: heard.append((step, done, total)),
    )
    assert heard == [("complexity", 0, 2), ("mutation", 1, 2), ("judging", 2, 2)]
