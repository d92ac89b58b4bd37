"""A pytest plugin that records each test's duration and outcome into the quality history.

It is registered for every pytest run once buttress is installed (entry point ``pytest11``), and does
nothing unless asked: pass ``--buttress-history`` (and ``--buttress-history-file PATH``), or set
``BUTTRESS_TEST_HISTORY`` to a path (or to ``1`` for the default ``.buttress/quality.db`` under the
root directory pytest chose). Other projects' test runs are therefore untouched::

    pytest --buttress-history                          # records into .buttress/quality.db
    pytest --buttress-history-file /tmp/q.db           # or anywhere
    BUTTRESS_TEST_HISTORY=/tmp/q.db pytest              # the same, from the environment

A test's duration is its setup + call + teardown time; its outcome is ``passed``, ``failed``,
``skipped`` or ``error`` (a failing setup or teardown). Under pytest-xdist only the controlling process
writes. ``buttress quality trends`` reads what this records: slowest tests, tests that got slower, flaky
tests (outcome changes between sessions on the same code key), and the suite's time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ENV", "Recorder", "code_key"]

#: The environment variable that switches recording on (a path, or ``1`` for the default path).
ENV = "BUTTRESS_TEST_HISTORY"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--buttress-history[=PATH]``."""
    group = parser.getgroup("buttress", "buttress quality history")
    group.addoption(
        "--buttress-history",
        action="store_true",
        default=False,
        help=f"record each test's duration and outcome into the buttress quality history (also ${ENV})",
    )
    group.addoption(
        "--buttress-history-file",
        action="store",
        default=None,
        metavar="PATH",
        help="where to record (default: .buttress/quality.db under the root directory); implies "
        "--buttress-history",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the recorder only when recording is asked for (and not in an xdist worker)."""
    flag = bool(config.getoption("--buttress-history", default=False))
    option = config.getoption("--buttress-history-file", default=None)
    env = os.environ.get(ENV, "")
    if not flag and option is None and not env:
        return
    if hasattr(config, "workerinput"):
        return  # xdist worker: the controller sees every report and writes once
    chosen = option or ("" if env in ("", "1") else env)
    path = Path(chosen) if chosen else Path(config.rootpath) / ".buttress" / "quality.db"
    # git runs where pytest was invoked: rootpath can be an ancestor when an option's value is a path.
    config.pluginmanager.register(
        Recorder(path, Path(config.invocation_params.dir)), "buttress-quality-recorder"
    )


def code_key(root: Path) -> tuple[str | None, str]:
    """``(commit, key)`` where ``key`` names the exact code: the commit plus a hash of uncommitted changes.

    Two sessions with the same key ran the same code, so a test whose outcome differs between them is
    flaky. Outside git the key is ``"no-git"``.
    """
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
                cwd=root,
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            or None
        )
        diff = subprocess.run(
            ["git", "diff", "HEAD", "--no-color", "--no-ext-diff"], cwd=root, capture_output=True, check=False
        ).stdout
    except OSError:
        return None, "no-git"
    if commit is None:
        return None, "no-git"
    return commit, commit + (":" + hashlib.sha256(diff).hexdigest()[:16] if diff else "")


class Recorder:
    """Collects reports during the session and writes them once at its end."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self.root = root
        self.started = time.perf_counter()
        self.durations: dict[str, float] = {}
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Add up each phase's time; the worst phase outcome wins (an error in teardown is an error)."""
        node = report.nodeid
        self.durations[node] = self.durations.get(node, 0.0) + float(report.duration)
        outcome = _outcome(report)
        if outcome is None or self.outcomes.get(node) == "error":
            return
        if report.when == "call" or outcome == "error" or node not in self.outcomes:
            self.outcomes[node] = outcome

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: Any) -> None:
        """Write the session and its results."""
        from buttress.quality.history import History, TestResult

        if not self.outcomes:
            return
        commit, key = code_key(self.root)
        History(self.path).record_session(
            commit=commit,
            code=key,
            duration=time.perf_counter() - self.started,
            results=[
                TestResult(n, o, round(self.durations.get(n, 0.0), 6)) for n, o in self.outcomes.items()
            ],
        )


def _outcome(report: pytest.TestReport) -> str | None:
    """What one phase says about its test.

    The call's outcome; ``error`` for a failing setup or teardown; ``skipped`` for a skip in setup;
    ``None`` for a setup or teardown that passed.
    """
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "skipped" if report.skipped else "failed"
        return "failed" if report.failed else ("skipped" if report.skipped else "passed")
    if report.failed:
        return "error"
    return "skipped" if report.skipped else None
