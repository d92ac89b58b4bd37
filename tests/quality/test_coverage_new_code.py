"""Coverage overall and on new code, on a real git repository with a branch and a real coverage run."""

from __future__ import annotations

import pytest

from buttress.quality import check
from buttress.quality.coverage import FileCoverage, sonar_coverage

CONFIG = """
[quality]
profile = "cov"
[quality.profiles.cov]
measures = ["coverage", "complexity"]
[quality.profiles.cov.overall]
duplication = "off"
security_high = "off"
vulnerabilities = "off"
[quality.profiles.cov.new_code]
duplication = "off"
security_high = "off"
[quality.profiles.cov.coverage]
command = ["pytest", "-q", "-p", "no:cacheprovider", "tests"]
"""

MAIN = """
def add(a, b):
    return a + b


def sign(x):
    if x > 0:
        return 1
    return -1
"""

TESTS = """
from pkg.calc import add, sign


def test_add():
    assert add(1, 2) == 3


def test_sign():
    assert sign(5) == 1
    assert sign(-5) == -1
"""

# 20 new non-blank lines: `doubled` is called by the tests (8 statements), `untested` only defined
# (its def line runs at import, its 11 body lines never do): new-code coverage = 9 / 20 = 45 %.
FEATURE = """

def doubled(x):
    a = x + 1
    b = a * 2
    c = b - 3
    d = c + 4
    e = d + 5
    f = e * 2
    return f


def untested(y):
    p = y + 1
    q = p * 2
    r = q - 3
    s = r + 4
    t = s * 5
    u = t - 6
    v = u + 7
    w = v * 8
    z = w - 9
    z2 = z + 1
    return z2
"""


@pytest.fixture
def project(repo):
    repo.write("buttress.toml", CONFIG)
    repo.write("pkg/__init__.py", "")
    repo.write("pkg/calc.py", MAIN)
    repo.write("tests/test_calc.py", TESTS)
    repo.write(".gitignore", ".coverage\n.buttress/\n__pycache__/\n")
    repo.commit("main")
    return repo


def conditions(result):
    return {r.condition.text: r for r in result.results}


def test_overall_coverage_from_a_real_run(project):
    result = check(project.root / "pkg", run_tests=True, root=project.root)
    cov = result.measurements["coverage"]
    # calc.py: 6 statements all covered, `if x > 0` has two outcomes, both taken; __init__ is empty.
    assert cov.overall["coverage"] == 100.0
    assert cov.overall["branch_coverage"] == 100.0
    assert conditions(result)["coverage >= 90%"].status == "passed"
    assert conditions(result)["coverage_drop <= 0"].status == "skipped"  # no --base


def test_new_code_coverage_on_a_branch_lists_uncovered_new_lines(project):
    check(project.root / "pkg", run_tests=True, root=project.root)  # records main's figures
    project.git("checkout", "-q", "-b", "feature")
    with (project.root / "pkg/calc.py").open("a", encoding="utf-8") as fh:
        fh.write(FEATURE)
    project.write(
        "tests/test_feature.py",
        "from pkg.calc import doubled\n\n\ndef test_tested():\n    assert doubled(1) == 20\n",
    )
    project.commit("feature")
    result = check(project.root / "pkg", run_tests=True, root=project.root, base="main")
    assert result.new_lines == 20
    cov = result.measurements["coverage"]
    assert cov.new["coverage"] == 45.0
    assert cov.new["line_coverage"] == 45.0
    new_cond = conditions(result)["coverage >= 90% on new code"]
    assert new_cond.status == "failed"
    [offender] = new_cond.offenders
    assert offender.path == "pkg/calc.py"
    assert offender.new
    assert offender.properties["missing"] == list(range(23, 34))
    # Overall coverage fell against main's recorded 100 %: the drop condition fails and names the file.
    drop = conditions(result)["coverage_drop <= 0"]
    assert drop.status == "failed"
    assert drop.value == pytest.approx(100.0 - cov.overall["coverage"], abs=0.01)
    assert [f.path for f in drop.offenders] == ["pkg/calc.py"]
    assert "23-33" in drop.offenders[0].message
    assert result.exit_code == 1


def test_small_changes_are_not_judged_on_new_code(project):
    project.git("checkout", "-q", "-b", "tiny")
    with (project.root / "pkg/calc.py").open("a", encoding="utf-8") as fh:
        fh.write("\n\ndef never(z):\n    return z * 2\n")
    project.commit("tiny")
    result = check(project.root / "pkg", run_tests=True, root=project.root, base="main", record=False)
    assert result.new_lines == 2
    new_cond = conditions(result)["coverage >= 90% on new code"]
    assert new_cond.status == "skipped"
    assert "only 2 new lines (< 20)" in new_cond.message
    # complexity on new code is still judged, whatever the size of the change
    assert conditions(result)["cyclomatic < 15 on new code"].status == "passed"


def test_missing_coverage_data_says_how_to_produce_it(project):
    result = check(project.root / "pkg", root=project.root, record=False)
    cond = conditions(result)["coverage >= 90%"]
    assert cond.status == "unmeasured"
    assert "coverage run --branch -m pytest" in cond.message
    assert "--run-tests" in cond.message
    assert result.exit_code == 2


def test_failing_tests_are_not_a_coverage_figure(project):
    project.write("tests/test_broken.py", "def test_broken():\n    assert False\n")
    result = check(project.root / "pkg", run_tests=True, root=project.root, record=False)
    cond = conditions(result)["coverage >= 90%"]
    assert cond.status == "unmeasured"
    assert "failed with exit code 1" in cond.message


def test_sonar_formula_counts_branch_outcomes_like_conditions():
    # 10 lines, 8 covered; 4 branch outcomes (two 2-way conditions), 3 taken: (8 + 3) / (10 + 4).
    f = FileCoverage(
        set(range(1, 11)), set(range(1, 9)), {(2, 3), (2, 5), (6, 7), (6, 8)}, {(2, 3), (2, 5), (6, 7)}
    )
    total, line, branch = sonar_coverage([f])
    assert total == pytest.approx(100 * 11 / 14)
    assert line == 80.0
    assert branch == 75.0
    assert sonar_coverage([FileCoverage()]) == (None, None, None)
