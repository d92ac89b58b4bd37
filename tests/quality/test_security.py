"""Security: bandit findings by severity, and pip-audit failures reported as "could not measure"."""

from __future__ import annotations

import pytest

from buttress.quality import check

CONFIG = """
[quality]
profile = "sec"
[quality.profiles.sec]
measures = ["security"]
[quality.profiles.sec.overall]
coverage = "off"
coverage_drop = "off"
cyclomatic = "off"
cognitive = "off"
duplication = "off"
[quality.profiles.sec.new_code]
coverage = "off"
cyclomatic = "off"
cognitive = "off"
duplication = "off"
[quality.profiles.sec.security]
audit = false
"""

RISKY = """
import subprocess


def run(cmd):
    return subprocess.call(cmd, shell=True)
"""


def test_bandit_high_severity_finding_fails_the_gate(repo):
    repo.write("buttress.toml", CONFIG)
    repo.write("app/__init__.py", "")
    repo.write("app/risky.py", RISKY)
    repo.commit("init")
    result = check(repo.root / "app", root=repo.root, record=False)
    sec = result.measurements["security"]
    assert sec.overall["security_high"] == 1.0
    cond = {r.condition.text: r for r in result.results}["security_high == 0"]
    assert cond.status == "failed"
    [finding] = cond.offenders
    assert finding.rule == "security.B602"
    assert finding.path == "app/risky.py"
    assert finding.line == 6
    assert {r.condition.text: r for r in result.results}["vulnerabilities == 0"].status == "skipped"
    assert result.exit_code == 1


@pytest.mark.slow
def test_pip_audit_that_cannot_reach_its_index_is_unmeasured_not_a_pass(repo, monkeypatch):
    # An injected fault: the package index is a closed port on this machine (and pip is told not to
    # retry it, which only saves time: one refused connection is as offline as five).
    monkeypatch.setenv("PIP_RETRIES", "0")
    repo.write("requirements.txt", "click==8.1.7\n")
    repo.write(
        "buttress.toml",
        CONFIG.replace(
            "audit = false",
            'audit = true\nrequirements = ["requirements.txt"]\n'
            'index_url = "http://127.0.0.1:9/"\ntimeout = "20s"',
        ),
    )
    repo.write("app/ok.py", "x = 1\n")
    repo.commit("init")
    result = check(repo.root / "app", root=repo.root, record=False)
    cond = {r.condition.text: r for r in result.results}["vulnerabilities == 0"]
    assert cond.status == "unmeasured"
    assert "could not audit" in cond.message
    assert result.exit_code == 2


def test_a_dependency_pip_audit_skips_is_a_finding_and_unmeasured(repo):
    # No such project exists on the index, so pip-audit skips it (and would still print "No known
    # vulnerabilities found"); here that is a finding and the figure is not measured.
    repo.write("requirements.txt", "buttress-quality-no-such-package-4b1d==0.0.1\n")
    repo.write(
        "buttress.toml", CONFIG.replace("audit = false", 'audit = true\nrequirements = ["requirements.txt"]')
    )
    repo.write("app/ok.py", "x = 1\n")
    repo.commit("init")
    result = check(repo.root / "app", root=repo.root, record=False)
    cond = {r.condition.text: r for r in result.results}["vulnerabilities == 0"]
    assert cond.status == "unmeasured"
    assert result.exit_code == 2
    sec = result.measurements["security"]
    assert "vulnerabilities" not in sec.overall
    unaudited = [f for f in sec.findings if f.rule == "security.unaudited"]
    assert unaudited == [] or unaudited[0].path == "requirements.txt"
    assert unaudited or "could not audit" in cond.message


def test_pip_audit_json_is_read_into_vulnerabilities_and_unaudited_dependencies():
    # The document pip-audit writes with -f json (fields as in pip-audit 2.x).
    from buttress.quality.security import AuditResult, _collect

    document = {
        "dependencies": [
            {
                "name": "jinja2",
                "version": "2.10",
                "vulns": [
                    {
                        "id": "PYSEC-2019-217",
                        "fix_versions": ["2.10.1"],
                        "aliases": ["CVE-2019-10906"],
                        "description": "sandbox escape",
                    },
                    {
                        "id": "GHSA-accepted-0000",
                        "fix_versions": [],
                        "aliases": [],
                        "description": "accepted",
                    },
                ],
            },
            {"name": "click", "version": "8.1.7", "vulns": []},
            {"name": "private-lib", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        ],
        "fixes": [],
    }
    result = AuditResult()
    _collect(result, document, "requirements.txt", ("GHSA-accepted-0000",))
    assert result.audited == 2
    assert result.vulnerabilities == [
        ("jinja2", "2.10", "PYSEC-2019-217", ["2.10.1"], "sandbox escape", "requirements.txt")
    ]
    assert result.unaudited == [
        ("private-lib", "Dependency not found on PyPI and could not be audited", "requirements.txt")
    ]


def test_vulnerabilities_become_findings_located_in_the_requirements_file(repo):
    from buttress.quality import Context, resolve_profile
    from buttress.quality.gate import Measurement
    from buttress.quality.security import AuditResult, SecurityMeasure

    repo.write("requirements.txt", "click==8.1.7\nJinja2==2.10\n")
    repo.write("app/ok.py", "x = 1\n")
    repo.commit("init")
    result = AuditResult()
    result.audited = 2
    result.vulnerabilities.append(
        ("jinja2", "2.10", "PYSEC-2019-217", ["2.10.1"], "sandbox escape", "requirements.txt")
    )
    out = Measurement("security")
    SecurityMeasure().record_audit(
        out, Context(repo.root, repo.root / "app", resolve_profile("default")), result
    )
    assert out.overall["vulnerabilities"] == 1.0
    [(_, finding)] = out.items["vulnerabilities"]
    assert (finding.path, finding.line) == ("requirements.txt", 2)
    assert finding.message.startswith("jinja2 2.10: PYSEC-2019-217; fixed in 2.10.1")
    assert out.unmeasured == []


def test_missing_requirements_file_and_switched_off_checks(repo):
    repo.write(
        "buttress.toml",
        CONFIG.replace("audit = false", 'audit = true\nrequirements = ["nope.txt"]\nbandit = false'),
    )
    repo.write("app/ok.py", "x = 1\n")
    repo.commit("init")
    result = check(repo.root / "app", root=repo.root, record=False)
    by = {r.condition.text: r for r in result.results}
    assert by["vulnerabilities == 0"].status == "unmeasured"
    assert "security.requirements names nope.txt, which does not exist" in by["vulnerabilities == 0"].message
    assert by["security_high == 0"].status == "skipped"
    assert "bandit is switched off" in by["security_high == 0"].message
