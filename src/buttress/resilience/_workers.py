"""A small pool of daemon threads for sync timeouts.

A thread cannot be stopped from outside, so a sync call that overruns its timeout is *abandoned*: the
caller gets :class:`~buttress.resilience.TimeoutExceededError` at the deadline and the call keeps running
in its worker until it returns on its own; its result or error is then dropped. The workers are daemon
threads (unlike :class:`concurrent.futures.ThreadPoolExecutor`'s), so an abandoned call that never
returns cannot keep the interpreter from exiting. Idle workers are reused; at most ``max_workers`` run,
further calls wait in the queue.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Job", "Workers"]

log = logging.getLogger("buttress.resilience")


class Job:
    """One call handed to a worker, and how it ended."""

    __slots__ = ("abandoned", "args", "context", "done", "error", "fn", "kwargs", "result")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.context = contextvars.copy_context()
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.abandoned = False

    def run(self) -> None:
        try:
            self.result = self.context.run(self.fn, *self.args, **self.kwargs)
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()
            if self.abandoned:
                log.debug(
                    "an abandoned call to %r finished after its timeout; its outcome is dropped", self.fn
                )
            self.fn = self.args = self.kwargs = None  # type: ignore[assignment]


class Workers:
    """Daemon worker threads fed from one queue."""

    def __init__(self, name: str, max_workers: int) -> None:
        self._name = name
        self._max = max_workers
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, job: Job) -> None:
        """Queue ``job``; start a worker when none is idle and the pool is below its maximum."""
        with self._lock:
            start = self._idle == 0 and self._threads < self._max
            if start:
                self._threads += 1
            elif self._idle > 0:
                self._idle -= 1  # an idle worker will take it
            # else: every worker is busy and the pool is full; the job waits in the queue
        self._queue.put(job)
        if start:
            threading.Thread(target=self._work, name=f"buttress-timeout-{self._name}", daemon=True).start()

    def _work(self) -> None:
        get = self._queue.get
        while True:
            job = get()
            if job is None:  # pragma: no cover - only sent by tests tearing down
                return
            job.run()
            with self._lock:
                self._idle += 1
