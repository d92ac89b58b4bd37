"""Reports and the command line: exit codes, SARIF fingerprints, JUnit, JSON, HTML, unparsable files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from click.testing import CliRunner

from buttress.cli.main import cli
from buttress.quality import check
from buttress.quality.report import html, junit, sarif
from buttress.quality.report import json as json_report

from .test_duplication import BLOCK, RENAMED

CONFIG = """
[quality]
profile = "static"
[quality.profiles.static]
measures = ["complexity", "duplication"]
[quality.profiles.static.overall]
coverage = "off"
coverage_drop = "off"
security_high = "off"
vulnerabilities = "off"
cognitive = "< 5"
[quality.profiles.static.new_code]
coverage = "off"
security_high = "off"
"""

TANGLED = """
def tangled(a, b, c):
    if a:
        for x in b:
            if x and c:
                while c:
                    c -= 1
    return c
"""


def project(repo, *, tangled_first: bool = True):
    repo.write("buttress.toml", CONFIG)
    repo.write("pkg/a.py", BLOCK)
    repo.write("pkg/b.py", "q = 1\n" + RENAMED)
    repo.write("pkg/t.py", TANGLED)
    repo.write("pkg/broken.py", "def oops(:\n    pass\n")
    repo.commit("init")
    return repo


def test_gate_fails_and_reports_everything(repo):
    project(repo)
    result = check(repo.root / "pkg", root=repo.root, record=False)
    assert result.exit_code == 1
    by = {r.condition.text: r for r in result.results}
    assert by["cognitive < 5"].status == "failed"
    assert [f.properties["function"] for f in by["cognitive < 5"].offenders] == ["tangled"]
    assert by["duplication < 3%"].status == "failed"
    assert by["duplication < 3%"].offenders[0].path == "pkg/b.py"
    # the file that does not parse is reported by name and line, and left out of every figure
    assert [(p.path, p.line) for p in result.problems] == [("pkg/broken.py", 1)]
    assert result.measurements["duplication"].details["per_file"].keys() == {
        "pkg/a.py",
        "pkg/b.py",
        "pkg/t.py",
    }
    assert result.ordered()[0].status == "failed"


def test_fingerprints_survive_unrelated_lines_moving(repo):
    project(repo)
    before = sarif.to_dict(check(repo.root / "pkg", root=repo.root, record=False))
    # push every flagged region down: new lines above them, and a new unrelated function
    repo.write("pkg/t.py", "import os\n\n\ndef unrelated():\n    return os.sep\n\n" + TANGLED)
    repo.write("pkg/b.py", "q = 1\n# a comment\nr = 2\n" + RENAMED)
    after = sarif.to_dict(check(repo.root / "pkg", root=repo.root, record=False))

    def prints(doc):
        return {
            (r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]): (
                r["partialFingerprints"]["buttress/v1"],
                r["locations"][0]["physicalLocation"]["region"]["startLine"],
            )
            for r in doc["runs"][0]["results"]
        }

    b, a = prints(before), prints(after)
    assert b.keys() == a.keys()
    for key in b:
        assert b[key][0] == a[key][0], key  # same fingerprint
    assert b[("complexity.cognitive", "pkg/t.py")][1] != a[("complexity.cognitive", "pkg/t.py")][1]  # moved


def test_fingerprint_changes_when_the_flagged_code_changes_and_counts_occurrences():
    from buttress.quality.model import Finding

    f = Finding("duplication.block", "x.py", 3, 9, "m", content="a = 1\n  b = 2")
    g = Finding("duplication.block", "x.py", 30, 36, "m", content="a = 1 b = 2")
    assert sarif.fingerprint(f, 0) == sarif.fingerprint(g, 0)  # whitespace does not matter
    assert sarif.fingerprint(f, 0) != sarif.fingerprint(f, 1)
    assert sarif.fingerprint(f, 0) != sarif.fingerprint(
        Finding("duplication.block", "x.py", 3, 9, "m", content="a = 2 b = 2"), 0
    )


def test_junit_has_one_testcase_per_condition(repo):
    project(repo)
    result = check(repo.root / "pkg", root=repo.root, record=False)
    root = ET.fromstring(junit.render(result))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(result.results)
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert set(failed) == {"cognitive < 5", "duplication < 3%"}
    assert suite.get("failures") == "2"
    assert sum(c.find("skipped") is not None for c in cases) == int(suite.get("skipped"))


def test_json_and_html_reports(repo):
    project(repo)
    result = check(repo.root / "pkg", root=repo.root, record=False)
    doc = json.loads(json_report.render(result))
    assert doc["status"] == "failed"
    assert doc["exit_code"] == 1
    assert doc["conditions"][0]["status"] == "failed"
    assert doc["problems"][0]["path"] == "pkg/broken.py"
    page = html.render(result)
    assert page.startswith("<!doctype html>")
    assert "<script" not in page
    assert "http" not in page.split("<body>")[1]
    assert "class='pair'" in page  # duplicated blocks side by side
    assert "tangled" in page
    assert "pkg/broken.py" in page


def test_cli_exit_codes_and_formats(repo, monkeypatch):
    project(repo)
    monkeypatch.chdir(repo.root)
    runner = CliRunner()
    failed = runner.invoke(cli, ["quality", "check", "pkg", "--no-record"])
    assert failed.exit_code == 1, failed.output
    assert "FAILED" in failed.output
    out = repo.root / "report.sarif"
    done = runner.invoke(
        cli, ["quality", "check", "pkg", "--format", "sarif", "--output", str(out), "--no-record"]
    )
    assert done.exit_code == 1
    assert json.loads(out.read_text())["version"] == "2.1.0"
    repo.write(
        "buttress.toml",
        CONFIG.replace('cognitive = "< 5"', 'cognitive = "< 50"').replace(
            "[quality.profiles.static.new_code]", 'duplication = "< 90"\n[quality.profiles.static.new_code]'
        ),
    )
    passed = runner.invoke(cli, ["quality", "check", "pkg", "--format", "json", "--no-record"])
    assert passed.exit_code == 0, passed.output
    assert json.loads(passed.output)["status"] == "passed"
    bad = runner.invoke(cli, ["quality", "check", "pkg", "--profile", "nope", "--no-record"])
    assert bad.exit_code == 2
    assert "unknown profile" in bad.output


def test_small_changes_are_not_judged_for_duplication_on_new_code(repo):
    project(repo)
    repo.git("checkout", "-q", "-b", "small")
    repo.write("pkg/t.py", TANGLED + "\n\nextra = 1\n")
    result = check(repo.root / "pkg", root=repo.root, base="main", record=False)
    by = {r.condition.text: r for r in result.results}
    assert by["duplication < 3% on new code"].status == "skipped"
    assert "only 1 new lines (< 20)" in by["duplication < 3% on new code"].message
    assert by["cognitive < 15 on new code"].status == "passed"  # t.py's function is untouched


def test_cli_terminal_report_to_a_file_and_trends_png(repo, monkeypatch, tmp_path):
    project(repo)
    monkeypatch.chdir(repo.root)
    runner = CliRunner()
    out = tmp_path / "gate.txt"
    done = runner.invoke(cli, ["quality", "check", "pkg", "--output", str(out)])
    assert done.exit_code == 1
    assert "FAILED (exit code 1)" in out.read_text()
    png = tmp_path / "t.png"
    trends = runner.invoke(cli, ["quality", "trends", "--png", str(png)])
    assert trends.exit_code == 0, trends.output
    assert "metric trends over 1 gate runs" in trends.output
    assert png.read_bytes().startswith(b"\x89PNG")
