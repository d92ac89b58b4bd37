"""Helpers for the kill -9 durability tests of the dead-letter stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("dlq_worker.py")


class Worker:
    """A dlq_worker.py process whose acknowledged ids the test collects."""

    def __init__(self, store: str, effects: Path, seed: int) -> None:
        self.acked: list[str] = []
        self.errors = 0
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), store, str(effects), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        first = self._line()
        if first != "READY":
            self.proc.kill()
            raise RuntimeError(
                f"worker did not start: {first!r}\n{self.proc.stderr.read() if self.proc.stderr else ''}"
            )

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def _take(self, line: str) -> None:
        if line.startswith("ACK "):
            self.acked.append(line[4:])
        elif line.startswith("ERR "):
            self.errors += 1

    def run_until(self, acks: int) -> None:
        """Read the worker's output until it has acknowledged ``acks`` more items."""
        target = len(self.acked) + acks
        while len(self.acked) < target:
            line = self._line()
            if not line and self.proc.poll() is not None:
                stderr = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"worker died on its own (exit {self.proc.returncode}):\n{stderr[-3000:]}")
            self._take(line)

    def kill(self) -> None:
        """SIGKILL, then collect what it printed before dying (those items were acknowledged too)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        assert self.proc.stdout is not None
        for line in self.proc.stdout.read().splitlines():
            self._take(line.strip())
        self.proc.stdout.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def replayed(effects: Path) -> list[str]:
    """Idempotency keys the workers' handler recorded (one per replay, repeats allowed)."""
    if not effects.exists():
        return []
    return [line for line in effects.read_text().splitlines() if line]
