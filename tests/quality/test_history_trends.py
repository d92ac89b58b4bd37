"""The pytest plugin records real sessions; trends find slower and flaky tests and plot them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from buttress.cli.main import cli
from buttress.errors import StoreError
from buttress.quality.history import History, TestResult
from buttress.quality.trends import compute_trends, render_html, render_png

SUITE = """
import os
from pathlib import Path


def test_steady():
    assert True


def test_flaky():
    # fails on the runs where the marker file says so: the same code, two outcomes
    assert Path(os.environ["FLAKY_MARK"]).read_text() != "fail"


def test_skipped():
    import pytest
    pytest.skip("not here")
"""


def run_pytest(repo, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:buttress_quality",
            "-p",
            "buttress.quality.pytest_plugin",
            *args,
        ],
        cwd=repo.root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def test_plugin_is_inert_unless_asked_and_records_when_asked(repo, tmp_path):
    repo.write("test_suite.py", SUITE)
    repo.commit("suite")
    mark = tmp_path / "mark"
    mark.write_text("pass")
    env = {"FLAKY_MARK": str(mark)}
    quiet = run_pytest(repo, env={**env, "BUTTRESS_TEST_HISTORY": ""})
    assert quiet.returncode == 0, quiet.stdout
    assert not (repo.root / ".buttress").exists()

    db = repo.root / "q.db"  # inside the project, so pytest's rootdir (and so node ids) stay the same
    assert run_pytest(repo, "--buttress-history-file", str(db), env=env).returncode == 0
    mark.write_text("fail")
    assert run_pytest(repo, env={**env, "BUTTRESS_TEST_HISTORY": str(db)}).returncode == 1
    mark.write_text("pass")
    assert run_pytest(repo, "--buttress-history-file", str(db), env=env).returncode == 0

    history = History(db)
    sessions = history.sessions()
    assert [(s.passed, s.failed, s.skipped) for s in sessions] == [(2, 0, 1), (1, 1, 1), (2, 0, 1)]
    assert len({s.code for s in sessions}) == 1, [s.code for s in sessions]  # same commit, clean tree
    results = history.results([sessions[1].id])[sessions[1].id]
    outcomes = {r.nodeid.split("::")[-1]: r.outcome for r in results}
    assert outcomes == {"test_steady": "passed", "test_flaky": "failed", "test_skipped": "skipped"}
    trends = compute_trends(history)
    assert [f.nodeid.split("::")[-1] for f in trends.flaky] == ["test_flaky"]
    assert trends.flaky[0].outcomes == {"passed": 2, "failed": 1}


def test_changed_code_is_a_new_code_key_so_a_fix_is_not_flaky(repo, tmp_path):
    repo.write("test_suite.py", "def test_fix():\n    assert 1 == 2\n")
    repo.commit("broken")
    db = repo.root / "q.db"
    run_pytest(repo, "--buttress-history-file", str(db))
    repo.write("test_suite.py", "def test_fix():\n    assert 1 == 1\n")  # uncommitted fix
    run_pytest(repo, "--buttress-history-file", str(db))
    history = History(db)
    assert len({s.code for s in history.sessions()}) == 2
    assert compute_trends(history).flaky == []


def test_slower_tests_need_both_the_ratio_and_the_floor(tmp_path):
    history = History(tmp_path / "q.db")
    for i in range(4):
        history.record_session(
            commit="c",
            code="c",
            duration=1.0 + i,
            when=1000.0 + i,
            results=[
                TestResult("t::slow_now", "passed", 0.10),
                TestResult("t::tiny", "passed", 0.001),
                TestResult("t::noisy", "passed", 2.0),
            ],
        )
    history.record_session(
        commit="c",
        code="c",
        duration=9.0,
        when=2000.0,
        results=[
            TestResult("t::slow_now", "passed", 0.40),  # 4x and +0.3 s: slower
            TestResult("t::tiny", "passed", 0.004),  # 4x but +3 ms: not worth a line
            TestResult("t::noisy", "passed", 2.2),  # +0.2 s but only 1.1x
        ],
    )
    trends = compute_trends(history)
    assert [t.nodeid for t in trends.slower] == ["t::slow_now"]
    assert trends.slower[0].ratio == pytest.approx(4.0)
    assert trends.slowest[0] == ("t::noisy", 2.2)
    assert [s.duration for s in trends.sessions] == [1.0, 2.0, 3.0, 4.0, 9.0]


def test_metric_trends_png_html_and_cli(tmp_path, monkeypatch):
    history = History(tmp_path / "q.db")
    for i, cov in enumerate((91.0, 92.5, 90.2)):
        history.record_run(
            commit=f"c{i}",
            branch="main",
            target="src",
            profile="default",
            status="passed",
            overall={"coverage": cov, "cognitive": 12.0 + i, "duplication": 1.5},
            new={},
            files={},
            when=100.0 + i,
        )
    history.record_session(commit="c2", code="c2", duration=3.0, results=[TestResult("t::a", "passed", 0.2)])
    trends = compute_trends(history)
    assert [v for _, _, v in trends.series("coverage")] == [91.0, 92.5, 90.2]
    png = tmp_path / "trends.png"
    render_png(trends, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = render_html(trends)
    assert "<svg" in page
    assert "<script" not in page
    runner = CliRunner()
    done = runner.invoke(
        cli, ["quality", "trends", "--db", str(tmp_path / "q.db"), "--html", str(tmp_path / "t.html")]
    )
    assert done.exit_code == 0, done.output
    assert "coverage" in done.output
    assert "90.2" in done.output
    assert (tmp_path / "t.html").is_file()


def test_a_corrupt_history_is_a_store_error_naming_the_file(tmp_path):
    bad = tmp_path / "q.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=str(bad)):
        History(bad).runs()
    done = CliRunner().invoke(cli, ["quality", "trends", "--db", str(bad)])
    assert done.exit_code == 2
    assert Path(bad).read_bytes().startswith(b"this is not sqlite")  # never recreated over


def test_recorder_in_process_outcomes_of_every_phase(tmp_path, monkeypatch):
    # The same plugin, driven in this process so every branch of the recorder is exercised directly.
    from buttress.quality import pytest_plugin

    (tmp_path / "test_inner.py").write_text(
        "import pytest\n\n"
        "@pytest.fixture\ndef broken_teardown():\n    yield\n    raise RuntimeError('teardown')\n\n"
        "@pytest.fixture\ndef broken_setup():\n    raise RuntimeError('setup')\n\n"
        "def test_pass():\n    pass\n\n"
        "def test_fail():\n    assert False\n\n"
        "def test_teardown(broken_teardown):\n    pass\n\n"
        "def test_setup(broken_setup):\n    pass\n\n"
        "@pytest.mark.skip(reason='no')\ndef test_skip():\n    pass\n\n"
        "@pytest.mark.xfail(reason='known')\ndef test_xfail():\n    assert False\n"
    )
    db = tmp_path / "q.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(pytest_plugin.ENV, raising=False)
    code = pytest.main(
        [
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:buttress_quality",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "--buttress-history-file",
            str(db),
            "test_inner.py",
        ],
        plugins=[pytest_plugin],
    )
    assert code == 1
    [session] = History(db).sessions()
    results = {r.nodeid.split("::")[-1]: r.outcome for r in History(db).results([session.id])[session.id]}
    assert results == {
        "test_pass": "passed",
        "test_fail": "failed",
        "test_teardown": "error",
        "test_setup": "error",
        "test_skip": "skipped",
        "test_xfail": "skipped",
    }
    assert (session.passed, session.failed, session.skipped, session.errors) == (1, 1, 2, 2)
    assert session.code == "no-git"  # tmp_path is not a git work tree
