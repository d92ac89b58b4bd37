"""One shared deadline timer per event loop, for async timeouts.

``asyncio.timeout`` creates a context manager object and schedules (and usually cancels) one loop timer
per call. Here every timed call on a loop shares one scheduler: a heap of ``(deadline, seq, entry)`` and a
single ``loop.call_at`` handle armed at the earliest deadline. A call pushes its entry and pops it when it
finishes; the handle is only re-armed when a new deadline is earlier than the armed one, so with one
timeout value (deadlines arrive in order) the loop sees about one timer per timeout period, not one per
call. When the handle fires it cancels the tasks whose deadlines passed, exactly as ``asyncio.timeout``
does (``task.cancel()``, then ``task.uncancel()`` when converting the ``CancelledError``).

Finished entries are dropped from the top of the heap; one finished out of order waits there until the
entries before it finish, so the heap holds at most the calls started within one timeout period.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import weakref
from typing import Final

__all__ = ["Entry", "Scheduler", "scheduler_for"]

# asyncio runs a timer up to one clock resolution early; compare deadlines with that slack.
_SLACK: Final = 1e-6


class Entry:
    """One timed call: its task while it runs (``None`` once finished or fired), and whether it fired."""

    __slots__ = ("cancelling", "fired", "task")

    def __init__(self, task: asyncio.Task[object], cancelling: int) -> None:
        self.task: asyncio.Task[object] | None = task
        self.cancelling = cancelling
        self.fired = False


class Scheduler:
    """The deadlines of one event loop."""

    __slots__ = ("__weakref__", "_armed_at", "_handle", "_heap", "_loop", "_next")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[float, int, Entry]] = []
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = math.inf
        self._next = itertools.count().__next__

    def add(self, deadline: float, task: asyncio.Task[object]) -> Entry:
        """Start timing ``task`` until ``deadline`` (in ``loop.time()``)."""
        entry = Entry(task, task.cancelling())
        heapq.heappush(self._heap, (deadline, self._next(), entry))
        if deadline < self._armed_at:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = self._loop.call_at(deadline, self._fire)
            self._armed_at = deadline
        return entry

    def finish(self, entry: Entry) -> None:
        """The timed call ended (either way); forget it."""
        entry.task = None
        heap = self._heap
        while heap and heap[0][2].task is None:
            heapq.heappop(heap)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = math.inf
        heap = self._heap
        now = self._loop.time() + _SLACK
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)[2]
            task = entry.task
            if task is not None:
                entry.task = None
                entry.fired = True
                task.cancel()
        while heap and heap[0][2].task is None:
            heapq.heappop(heap)
        if heap:
            self._armed_at = heap[0][0]
            self._handle = self._loop.call_at(self._armed_at, self._fire)

    def __len__(self) -> int:
        return len(self._heap)


_schedulers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Scheduler] = weakref.WeakKeyDictionary()


def scheduler_for(loop: asyncio.AbstractEventLoop) -> Scheduler:
    """The scheduler of ``loop``, created on first use and dropped with the loop."""
    scheduler = _schedulers.get(loop)
    if scheduler is None:
        scheduler = _schedulers[loop] = Scheduler(loop)
    return scheduler
