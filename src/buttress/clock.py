"""One notion of time for every time-dependent part of buttress.

Every component that waits, measures or expires takes ``clock=``. Production code uses
:data:`SYSTEM_CLOCK`; tests use :class:`VirtualClock`, whose time moves only when the test says so,
which makes breakers, retries, TTLs and burn-rate windows exact and instant to test::

    clock = VirtualClock()
    breaker = CircuitBreaker("email", wait_open=10.0, clock=clock)
    ...                       # trip the breaker
    clock.advance(10.0)       # ten seconds pass, no wall time spent

Three ways to wait on a virtual clock:

* **Sync sleepers in other threads** block in :meth:`VirtualClock.sleep` until :meth:`~VirtualClock.advance`
  moves time past their deadline; they are woken in deadline order.
* **Sync sleep in the test's own thread** would block forever, so ``VirtualClock(auto_advance=True)`` makes
  :meth:`~VirtualClock.sleep` move time forward by itself (a retry loop "sleeps" 7 s in microseconds).
* **asyncio**: :meth:`~VirtualClock.asleep` parks a coroutine until the clock passes its deadline;
  ``await clock.advance_async(s)`` moves time deadline by deadline and lets woken coroutines run at their
  own deadline before moving on. :meth:`~VirtualClock.new_event_loop` builds an event loop whose own timers
  (``asyncio.sleep``, ``asyncio.timeout``, ``loop.call_later``) follow the virtual clock; with
  ``auto_advance=True`` that loop jumps time forward whenever it would otherwise idle until a timer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import selectors
import threading
import time as _time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """What buttress needs from time.

    ``monotonic`` measures intervals (durations, deadlines, windows); ``time`` is wall-clock seconds since
    the epoch, used only for timestamps that people read or that cross processes.
    """

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling coroutine for ``seconds``."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time`, :func:`time.sleep`, :func:`asyncio.sleep`.

    The methods are the standard-library functions themselves, bound once, so a hot path that caches
    ``clock.monotonic`` pays nothing over calling :func:`time.monotonic` directly.
    """

    monotonic = staticmethod(_time.monotonic)
    time = staticmethod(_time.time)
    sleep = staticmethod(_time.sleep)

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling coroutine for ``seconds`` on the running event loop."""
        await asyncio.sleep(seconds)

    def sleep_until(self, deadline: float) -> None:
        """Block until :func:`time.monotonic` reaches ``deadline``."""
        remaining = deadline - _time.monotonic()
        if remaining > 0:
            _time.sleep(remaining)

    async def asleep_until(self, deadline: float) -> None:
        """Suspend the calling coroutine until :func:`time.monotonic` reaches ``deadline``."""
        await asyncio.sleep(max(0.0, deadline - _time.monotonic()))

    def __repr__(self) -> str:
        return "SystemClock()"


#: The process-wide real clock; the default ``clock=`` everywhere.
SYSTEM_CLOCK = SystemClock()


class _Sleeper:
    """One parked waiter: a thread's event or a coroutine's future."""

    __slots__ = ("event", "future", "loop")

    def __init__(
        self,
        event: threading.Event | None = None,
        future: asyncio.Future[None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.event = event
        self.future = future
        self.loop = loop

    def wake(self) -> None:
        if self.event is not None:
            self.event.set()
            return
        fut, loop = self.future, self.loop
        assert fut is not None
        assert loop is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            if not fut.done():
                fut.set_result(None)
        else:
            loop.call_soon_threadsafe(_resolve, fut)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class VirtualClock:
    """A clock that moves only when told to, for exact and instant tests.

    Args:
        start: the initial monotonic reading, in seconds.
        wall_start: the wall-clock time (epoch seconds) that corresponds to ``start``.
        auto_advance: if true, a sync :meth:`sleep` moves the clock forward itself instead of blocking,
            and an event loop from :meth:`new_event_loop` jumps to its next timer instead of idling.

    The clock is thread-safe: any thread may read it, sleep on it or advance it.
    """

    def __init__(
        self, start: float = 0.0, *, wall_start: float = 1_767_225_600.0, auto_advance: bool = False
    ):
        self._now = float(start)
        self._wall_offset = float(wall_start) - float(start)
        self.auto_advance = auto_advance
        self._lock = threading.Lock()
        self._parked = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, _Sleeper]] = []
        self._seq = itertools.count()
        self._loops: list[asyncio.AbstractEventLoop] = []

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r}, sleepers={len(self._heap)})"

    # -- reading ---------------------------------------------------------------------------------------

    def monotonic(self) -> float:
        """The current virtual time in seconds."""
        return self._now

    def time(self) -> float:
        """Virtual wall-clock seconds since the epoch (moves with :meth:`monotonic`)."""
        return self._now + self._wall_offset

    @property
    def sleepers(self) -> int:
        """How many threads and coroutines are parked on this clock."""
        return len(self._heap)

    def next_deadline(self) -> float | None:
        """The earliest deadline of a parked sleeper, or ``None``."""
        with self._lock:
            return self._heap[0][0] if self._heap else None

    # -- waiting ---------------------------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        """Block until the clock has moved ``seconds`` forward (or move it, with ``auto_advance``)."""
        if seconds <= 0:
            return
        if self.auto_advance:
            self.advance(seconds)
            return
        event = threading.Event()
        self._park(self._now + seconds, _Sleeper(event=event))
        event.wait()

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling coroutine until the clock has moved ``seconds`` forward."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        if isinstance(loop, _VirtualEventLoop) and loop._virtual_clock is self:
            # On a loop that runs on this clock, a loop timer is the sleeper: the loop can then jump
            # to it when idle (auto_advance) instead of waiting for someone to call advance().
            await asyncio.sleep(seconds)
            return
        fut: asyncio.Future[None] = loop.create_future()
        self._park(self._now + seconds, _Sleeper(future=fut, loop=loop))
        await fut

    def sleep_until(self, deadline: float) -> None:
        """Block until the monotonic reading ``deadline`` (absolute, so no drift from a late start)."""
        if deadline <= self._now:
            return
        if self.auto_advance:
            self.advance_to(deadline)
            return
        event = threading.Event()
        self._park(deadline, _Sleeper(event=event))
        event.wait()

    async def asleep_until(self, deadline: float) -> None:
        """Suspend the calling coroutine until the monotonic reading ``deadline``."""
        await self.asleep(deadline - self._now)

    def _park(self, deadline: float, sleeper: _Sleeper) -> None:
        with self._lock:
            heapq.heappush(self._heap, (deadline, next(self._seq), sleeper))
            self._parked.notify_all()

    def wait_for_sleepers(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` sleepers are parked (or ``timeout`` real seconds pass).

        Tests use this to know that threads they started have reached their sleep before advancing
        time; it is event-driven (a condition variable), not polling.

        Returns:
            Whether the sleepers were there in time.
        """
        with self._parked:
            return self._parked.wait_for(lambda: len(self._heap) >= count, timeout)

    # -- moving ----------------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers in deadline order.

        Time is set to each sleeper's deadline before it is woken, so a sleeper that reads the clock on
        waking sees its own deadline. Sync threads then run concurrently with the caller; use
        :meth:`advance_async` in a coroutine to also let woken coroutines run at their deadlines.
        """
        if seconds < 0:
            raise ValueError(f"advance(seconds) needs seconds >= 0, got {seconds!r}: a clock never goes back")
        target = self._now + seconds
        while True:
            sleeper = self._pop_due(target)
            if sleeper is None:
                break
            sleeper.wake()
        self._set(target)

    def advance_to(self, when: float) -> None:
        """Move time forward to the monotonic reading ``when`` (no-op if already past)."""
        if when > self._now:
            self.advance(when - self._now)

    async def advance_async(self, seconds: float, *, settle: int = 8) -> None:
        """Move time forward by ``seconds`` from a coroutine, deadline by deadline.

        At each deadline the due sleepers are woken and the event loop is given ``settle`` turns, so
        woken coroutines run (and may park again) before time moves on: a coroutine that sleeps 1 s
        three times inside ``advance_async(3)`` wakes at 1, 2 and 3.
        """
        if seconds < 0:
            raise ValueError(f"advance_async(seconds) needs seconds >= 0, got {seconds!r}")
        target = self._now + seconds
        await self._settle(settle)
        while True:
            sleeper = self._pop_due(target)
            if sleeper is None:
                break
            sleeper.wake()
            await self._settle(settle)
        self._set(target)
        await self._settle(settle)

    @staticmethod
    async def _settle(turns: int) -> None:
        for _ in range(turns):
            await asyncio.sleep(0)

    def _pop_due(self, target: float) -> _Sleeper | None:
        with self._lock:
            if not self._heap or self._heap[0][0] > target:
                return None
            deadline, _, sleeper = heapq.heappop(self._heap)
            if deadline > self._now:
                self._now = deadline
            return sleeper

    def _set(self, target: float) -> None:
        with self._lock:
            if target > self._now:
                self._now = target
            loops = list(self._loops)
        # Wake event loops bound to this clock so their timers that just became due run promptly.
        for loop in loops:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_noop)

    # -- asyncio integration ---------------------------------------------------------------------------

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """An event loop whose timers run on this clock.

        ``asyncio.sleep``, ``asyncio.timeout``, ``wait_for`` and ``loop.call_later`` all use ``loop.time()``,
        which this loop reads from the virtual clock. With ``auto_advance`` the loop, when it has nothing
        to do but wait for a timer, moves the clock to that timer instead of waiting in real time; real
        I/O that is ready is still served first.
        """
        loop = _VirtualEventLoop(self)
        with self._lock:
            self._loops.append(loop)
        return loop


def _noop() -> None:
    return None


class _VirtualSelector(selectors.DefaultSelector):
    """A selector that lets an auto-advancing virtual clock stand in for waiting on timers."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0 or not self._clock.auto_advance:
            return super().select(timeout)
        ready = super().select(0)
        if not ready:
            self._clock.advance(timeout)
        return ready


class _VirtualEventLoop(asyncio.SelectorEventLoop):
    """A selector event loop reading its time from a :class:`VirtualClock`."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(selector=_VirtualSelector(clock))
        self._virtual_clock = clock
        self.time: Callable[[], float] = clock.monotonic
