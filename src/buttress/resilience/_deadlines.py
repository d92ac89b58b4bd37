"""One shared deadline timer per timeout policy and event loop, for async timeouts.

``asyncio.timeout`` builds a context manager and schedules (then cancels) one loop timer per call. Here
all calls of one :class:`~buttress.resilience.Timeout` on one loop share a :class:`Lane`: a deque of
``[deadline, task, cancelling, fired]`` entries and a single ``loop.call_at`` handle. Because the policy's
timeout is fixed and the loop's clock only moves forward, deadlines join the lane in order, so adding is
an ``append`` and finishing (the oldest call usually finishes first) a ``popleft`` — no heap. The handle is
armed only when none is pending; when it fires it cancels the tasks whose deadlines passed, exactly as
``asyncio.timeout`` does (``task.cancel()``, later ``task.uncancel()`` when the ``CancelledError`` is
turned into a timeout), drops finished entries and re-arms at the next live deadline. So the loop sees
about one timer per timeout period, not one per call.

An entry that finishes out of order stays in the deque until the entries before it finish; the lane
holds at most the calls started within one timeout period.
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

__all__ = ["DEADLINE", "FIRED", "TASK", "Lane"]

# Entry fields: [deadline, task (None once finished or fired), cancelling() at the start, fired].
DEADLINE: Final = 0
TASK: Final = 1
CANCELLING: Final = 2
FIRED: Final = 3

# asyncio runs a timer up to one clock resolution early; compare deadlines with that slack.
_SLACK: Final = 1e-6


def _clock_of(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The loop's time function, skipping the Python method when it is plain ``time.monotonic``."""
    own = loop.__dict__.get("time") if hasattr(loop, "__dict__") else None
    if own is not None:
        return own  # type: ignore[no-any-return] # e.g. a VirtualClock loop
    if type(loop).time is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


class Lane:
    """The pending deadlines of one timeout policy on one event loop."""

    __slots__ = ("__weakref__", "handle", "loop", "now", "queue")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.now = _clock_of(loop)
        self.queue: collections.deque[list[Any]] = collections.deque()
        self.handle: asyncio.TimerHandle | None = None

    def arm(self, deadline: float) -> None:
        """Schedule the shared timer at ``deadline`` (no timer is pending)."""
        self.handle = self.loop.call_at(deadline, self._fire)

    def trim(self) -> None:
        """Drop finished entries from the front."""
        queue = self.queue
        while queue and queue[0][TASK] is None:
            queue.popleft()

    def _fire(self) -> None:
        self.handle = None
        queue = self.queue
        now = self.loop.time() + _SLACK
        while queue and queue[0][DEADLINE] <= now:
            entry = queue.popleft()
            task = entry[TASK]
            if task is not None:
                entry[TASK] = None
                entry[FIRED] = True
                task.cancel()
        self.trim()
        if queue:
            self.arm(queue[0][DEADLINE])

    def __len__(self) -> int:
        return len(self.queue)


class Lanes:
    """A policy's lanes by loop, with the last one used kept at hand."""

    __slots__ = ("_by_loop", "last")

    def __init__(self) -> None:
        self.last: Lane | None = None
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Lane] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, loop: asyncio.AbstractEventLoop) -> Lane:
        """The lane of ``loop`` (created on first use, dropped with the loop)."""
        lane = self._by_loop.get(loop)
        if lane is None:
            lane = self._by_loop[loop] = Lane(loop)
        self.last = lane
        return lane
