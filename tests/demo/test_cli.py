"""``buttress demo --duration 20`` as a user runs it: exits 0 and prints the summary; bad options exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from buttress.cli.demo import command

pytestmark = pytest.mark.slow


def test_bounded_demo_run_exits_0_with_the_summary(tmp_path, monkeypatch):
    # In this process (the command as click runs it), so the runner and traffic generator are measured
    # by coverage; the workers are still separate processes, started the way a user's run starts them.
    monkeypatch.setenv("COLUMNS", "200")
    summary_file = tmp_path / "summary.json"
    result = CliRunner().invoke(
        command,
        [
            "--duration",
            "20",
            "--port",
            "0",
            "--state-dir",
            str(tmp_path / "state"),
            "--outage",
            "email:4:6",
            "--json",
            str(summary_file),
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    for heading in (
        "platform:",
        "dashboard:",
        "dead letters:",
        "buttress demo — summary",
        "Endpoints",
        "Cache",
        "Circuit transitions",
        "confirmation emails",
    ):
        assert heading in out
    # The banner names the dead-letter store, for `buttress dlq list --store ...` while the demo runs.
    store = f"sqlite:{tmp_path / 'state' / 'dlq.db'}"
    assert f"--store {store}" in " ".join(out.split())
    summary = json.loads(summary_file.read_text())
    # Every confirmation the outage dead-lettered was replayed or is still in the queue: none lost.
    dead = summary["dead_letters"]
    assert dead["store"] == store
    assert dead["dead_lettered"] == dead["replayed"] + dead["depth"]
    assert summary["emails"]["dead_lettered"] == dead["dead_lettered"]
    assert set(summary["fallbacks"]) == {"storage", "identity"}
    assert summary["traffic"]["requests"] > 100
    assert summary["traffic"]["errors"] == 0  # the email outage never fails a request
    routes = {e["route"] for e in summary["endpoints"]}
    assert {"/api/v1/events/{code}", "/api/v1/events", "/api/v1/speakers/{username}"} <= routes
    assert all(e["p50_ms"] <= e["p95_ms"] <= e["p99_ms"] for e in summary["endpoints"])
    assert {c["namespace"] for c in summary["cache"]} >= {"events", "speakers", "search"}
    assert summary["db_queries"] > 0
    assert [o["provider"] for o in summary["outages"]] == ["email"]


def test_bad_options_exit_2_with_the_reason(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "buttress.cli.main", "demo", "--workers", "3", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "--redis-url" in run.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "buttress.cli.main",
            "demo",
            "--outage",
            "email:soon",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "PROVIDER:START:LENGTH" in bad.stderr
