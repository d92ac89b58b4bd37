"""``buttress demo --duration 20`` as a user runs it: exits 0 and prints the summary; bad options exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from buttress.cli.demo import command
from buttress.demo.serve import bind

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    # rich wraps at 80 columns when not on a terminal; long paths must stay whole for the assertions.
    monkeypatch.setenv("COLUMNS", "200")


def test_bounded_demo_run_exits_0_with_the_summary(tmp_path):
    # In this process (the command as click runs it), so the runner and traffic generator are measured
    # by coverage; the workers are still separate processes, started the way a user's run starts them.
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


def _invoke(*args: str):
    return CliRunner().invoke(command, list(args))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--duration", "0"], "--duration must be a positive number of seconds"),
        (["--rate", "-5"], "--rate must be a positive number of requests per second"),
        (["--port", "70000"], "--port must be from 0 to 65535"),
        (["--outage", "dns:1:2"], "PROVIDER:START:LENGTH with PROVIDER email, storage or identity"),
        (["--outage", "email:1"], "expected PROVIDER:START:LENGTH"),
        (["--outage", "email:-1:5"], "START must be >= 0 and LENGTH > 0"),
        (["--outage", "email:1:0"], "START must be >= 0 and LENGTH > 0"),
    ],
)
def test_each_bad_option_is_named_with_exit_2(args, words, tmp_path):
    result = _invoke(*args, "--state-dir", str(tmp_path))
    assert result.exit_code == 2
    assert words in " ".join(result.stderr.split())


def test_problems_are_reported_together():
    from buttress.demo.runner import Demo, DemoOptions

    with pytest.raises(ValueError, match=r"--workers must be at least 1; --rate must be") as err:
        Demo(DemoOptions(workers=0, rate=0))
    assert "--redis-url" not in str(err.value)
    # Several workers share their cache through Redis, unless there is no cache to share.
    assert DemoOptions(workers=2, cache=False).problems() == []
    assert DemoOptions(workers=2, redis_url="redis://localhost:6379/0").problems() == []


def test_a_database_that_cannot_be_opened_exits_2(tmp_path):
    missing = _invoke(
        "--database-url", f"sqlite:///{tmp_path}/no/such/dir/demo.db", "--state-dir", str(tmp_path)
    )
    assert missing.exit_code == 2
    assert f"the directory {tmp_path}/no/such/dir does not exist" in " ".join(missing.stderr.split())
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a SQLite database file" * 100)
    broken = _invoke("--database-url", f"sqlite:///{garbage}", "--state-dir", str(tmp_path))
    assert broken.exit_code == 2
    stderr = " ".join(broken.stderr.split())
    assert f"the demo could not run: cannot prepare the database sqlite:///{garbage}" in stderr
    assert "file is not a database" in stderr


def test_a_port_in_use_exits_2_naming_it(tmp_path):
    with bind() as taken:
        port = str(taken.getsockname()[1])
        result = _invoke("--port", port, "--state-dir", str(tmp_path), "--duration", "1")
    assert result.exit_code == 2
    stderr = " ".join(result.stderr.split())
    assert f"cannot listen on 127.0.0.1:{port}" in stderr
    assert "pick another port with --port" in stderr
