"""The demo's dashboard in real headless Chromium (Debian's), driven by playwright-core through node.

Starts ``buttress demo`` as a user would, opens ``/_buttress/`` in the browser, checks that the numbers on
the page are live (they change between updates pushed over server-sent events), presses the email
provider's break and heal buttons, and writes a screenshot to ``test-artifacts/dashboard.png``.

Needs ``chromium`` (Debian package), ``node`` and ``npm ci`` in tests/dashboard/browser; without them the
test is skipped, or fails under ``BUTTRESS_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import servers

ROOT = Path(__file__).resolve().parents[2]
BROWSER = Path(__file__).resolve().parent / "browser"
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _requirements() -> tuple[str, str]:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    node = shutil.which("node")
    if chromium is None:
        servers.unavailable("headless Chromium is not installed (Debian: apt-get install chromium)")
    if node is None:
        servers.unavailable("node is not installed")
    if not (BROWSER / "node_modules" / "playwright-core").is_dir():
        servers.unavailable("playwright-core is not installed: run `npm ci` in tests/dashboard/browser")
    return chromium, node


class _Lines:
    """Reads a process's output on a thread so the test can wait for a line with a deadline."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.put(line)
        self.lines.put("")

    def wait_for(self, prefix: str, timeout: float = 90.0) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            self.seen.append(line)
            if line == "":
                raise AssertionError("the demo exited early:\n" + "".join(self.seen))
            if line.strip().startswith(prefix):
                return line.strip()

    def rest(self, timeout: float = 60.0) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            if line == "":
                return "".join(self.seen)
            self.seen.append(line)


def test_dashboard_shows_live_numbers_in_headless_chromium(tmp_path):
    chromium, node = _requirements()
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "buttress.cli.main",
            "demo",
            "--port",
            "0",
            "--rate",
            "40",
            "--state-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        output = _Lines(demo.stdout)
        url = output.wait_for("dashboard:").split()[-1]
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        run = subprocess.run(
            [node, str(BROWSER / "drive.mjs"), url, str(shot), "email"],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "CHROMIUM": chromium},
            cwd=BROWSER,
        )
        assert run.returncode == 0, run.stderr
        seen = json.loads(run.stdout.strip().splitlines()[-1])
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=90) == 0
        summary = output.rest()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        demo.stdout.close()

    first, second = seen["first"], seen["second"]
    assert seen["errors"] == []
    assert first["connection"] == "live"
    assert second["updates"] >= first["updates"] + 3
    assert first["charts"] == 3
    # Live numbers: throughput is a number, and the busiest endpoints' totals grew between readings.
    assert float(second["totalRps"]) > 0
    assert float(second["topP95"]) > 0
    before = {row[0]: int(row[-1]) for row in first["endpoints"]}
    after = {row[0]: int(row[-1]) for row in second["endpoints"]}
    assert len(after) >= 5
    assert sum(after.values()) > sum(before.values())
    assert {row[0] for row in second["caches"]} >= {"events", "speakers", "search"}
    assert {b.split()[0] for b in second["breakers"]} >= {"email", "storage", "identity"}
    # The email dead-letter queue, from its own depth gauge (buttress_dlq_depth), shown once.
    assert [row[0] for row in second["dlq"]] == ["email"]
    assert second["dlqDepth"].isdigit()
    assert seen["controls"][0].startswith("down: true")
    assert seen["controls"][1].startswith("down: false")
    assert shot.stat().st_size > 10_000
    assert "buttress demo — summary" in summary
