"""Bulkhead: cap how many calls to one dependency run at once, so a slow one cannot take every thread.

::

    bulkhead = Bulkhead("email", max_concurrent=50, max_wait=0.1)

A call takes one of ``max_concurrent`` slots for as long as it runs. When none is free it waits up to
``max_wait`` seconds for one (``0`` rejects at once) and then fails with
:class:`~buttress.resilience.BulkheadFullError`. Slots freed while calls wait are handed to
the waiters in arrival order. One bulkhead
serves threads and coroutines together: the slots are tokens in a :class:`queue.SimpleQueue`, whose
non-blocking ``get``/``put`` are atomic C calls, so the uncontended path takes no Python lock. Sync waiters
block their thread (on ``clock``, so a :class:`~buttress.clock.VirtualClock` drives ``max_wait``); async
waiters await a future with the event loop's timer.

Telemetry: ``buttress_bulkhead_available_concurrent_calls{name}``,
``buttress_bulkhead_max_allowed_concurrent_calls{name}``, ``buttress_bulkhead_in_use{name}``,
``buttress_bulkhead_waiting{name}`` (gauges read at collection) and
``buttress_bulkhead_rejected_calls_total{name}``.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.resilience._forward import build
from buttress.resilience._util import check_duration, check_name, check_positive_int, wait_event
from buttress.resilience.errors import BulkheadFullError
from buttress.resilience.policy import Policy
from buttress.telemetry.registry import REGISTRY, Registry

__all__ = ["Bulkhead"]


class _Waiter:
    """A thread or a coroutine waiting for a slot; ``granted`` is set under the bulkhead's lock."""

    __slots__ = ("event", "future", "granted", "loop")

    def __init__(
        self,
        event: threading.Event | None = None,
        future: asyncio.Future[None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.event = event
        self.future = future
        self.loop = loop
        self.granted = False

    def wake(self) -> None:
        if self.event is not None:
            self.event.set()
        elif self.loop is not None and self.future is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(_resolve, self.future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Bulkhead(Policy):
    """A concurrency limit for sync and async calls (see the module docstring).

    Args:
        name: labels metrics and errors.
        max_concurrent: how many calls may run at once (at least 1).
        max_wait: how long a call may wait for a slot, in seconds; 0 rejects at once.
        clock: time source for sync waits.
        registry: where metrics go.

    Raises:
        ConfigError: naming the bad argument.
    """

    def __init__(
        self,
        name: str,
        *,
        max_concurrent: int = 25,
        max_wait: float | str = 0.0,
        clock: Clock = SYSTEM_CLOCK,
        registry: Registry = REGISTRY,
    ) -> None:
        super().__init__()
        self.name = check_name("Bulkhead", name)
        self.max_concurrent = check_positive_int("Bulkhead", "max_concurrent", max_concurrent)
        wait = check_duration("Bulkhead", "max_wait", max_wait)
        assert wait is not None
        self.max_wait = wait
        self._clock = clock
        self._slots: queue.SimpleQueue[bool] = queue.SimpleQueue()
        for _ in range(self.max_concurrent):
            self._slots.put(True)
        self._lock = threading.Lock()
        self._waiters: collections.deque[_Waiter] = collections.deque()
        labels = {"name": self.name}
        self._rejected = registry.counter(
            "buttress_bulkhead_rejected_calls", "Calls a bulkhead turned away.", labels
        )
        ref = weakref.ref(self)
        registry.gauge(
            "buttress_bulkhead_available_concurrent_calls",
            "Free slots in the bulkhead.",
            labels,
            fn=lambda: float(b.available) if (b := ref()) is not None else 0.0,
        )
        registry.gauge(
            "buttress_bulkhead_in_use",
            "Calls holding a slot of the bulkhead.",
            labels,
            fn=lambda: float(b.max_concurrent - b.available) if (b := ref()) is not None else 0.0,
        )
        registry.gauge(
            "buttress_bulkhead_waiting",
            "Calls waiting for a slot.",
            labels,
            fn=lambda: float(len(b._waiters)) if (b := ref()) is not None else 0.0,
        )
        registry.gauge("buttress_bulkhead_max_allowed_concurrent_calls", "The bulkhead's size.", labels).set(
            self.max_concurrent
        )

    def __repr__(self) -> str:
        return f"Bulkhead({self.name!r}, max_concurrent={self.max_concurrent}, available={self.available})"

    @property
    def available(self) -> int:
        """Free slots now."""
        return self._slots.qsize()

    # -- slots ---------------------------------------------------------------------------------------

    def release(self) -> None:
        """Give a slot back, handing it straight to the longest waiter if there is one."""
        self._slots.put(True)
        if self._waiters:
            self._hand_off()

    def _hand_off(self) -> None:
        with self._lock:
            while self._waiters:
                try:
                    self._slots.get_nowait()
                except queue.Empty:
                    return  # someone else took the slot first
                waiter = self._waiters.popleft()
                waiter.granted = True
                waiter.wake()

    def _enqueue(self, waiter: _Waiter) -> bool:
        """Register ``waiter``; True when a slot turned up meanwhile and is now the caller's."""
        with self._lock:
            self._waiters.append(waiter)
        # A release between our failed get and the registration above put its slot back without seeing us.
        try:
            self._slots.get_nowait()
        except queue.Empty:
            return False
        with self._lock:
            if not waiter.granted:
                self._waiters.remove(waiter)
                return True
        self.release()  # we were handed a slot as well: keep one, give the other back
        return True

    def _give_up(self, waiter: _Waiter) -> bool:
        """After waiting: True when a slot was handed over after all, else unregister and reject."""
        with self._lock:
            if waiter.granted:
                return True
            self._waiters.remove(waiter)
        return False

    def _reject(self) -> BulkheadFullError:
        self._rejected.value += 1
        return BulkheadFullError(self.name, self.max_concurrent, self.max_wait)

    def acquire(self) -> None:
        """Take a slot for the calling thread, waiting up to ``max_wait``.

        Raises:
            BulkheadFullError: when no slot was free in time.
        """
        try:
            self._slots.get_nowait()
            return
        except queue.Empty:
            if self.max_wait <= 0:
                raise self._reject() from None
        event = threading.Event()
        waiter = _Waiter(event=event)
        if self._enqueue(waiter):
            return
        wait_event(event, self.max_wait, self._clock)
        if not self._give_up(waiter):
            raise self._reject()

    async def acquire_async(self) -> None:
        """Take a slot for the calling coroutine, waiting up to ``max_wait`` on the loop's timer.

        Raises:
            BulkheadFullError: when no slot was free in time.
        """
        try:
            self._slots.get_nowait()
            return
        except queue.Empty:
            if self.max_wait <= 0:
                raise self._reject() from None
        loop = asyncio.get_running_loop()
        waiter = _Waiter(future=loop.create_future(), loop=loop)
        if self._enqueue(waiter):
            return
        assert waiter.future is not None
        try:
            await asyncio.wait([waiter.future], timeout=self.max_wait)
        except asyncio.CancelledError:
            if self._give_up(waiter):
                self.release()  # cancelled just as a slot arrived: pass it on
            raise
        if not self._give_up(waiter):
            raise self._reject()

    # -- wrappers ------------------------------------------------------------------------------------

    def _wrap(self, fn: Callable[..., Any], asynchronous: bool) -> Callable[..., Any]:
        namespace = {
            "fn": fn,
            "get": self._slots.get_nowait,
            "empty": queue.Empty,
            "acquire": self.acquire_async if asynchronous else self.acquire,
            "release": self.release,
        }
        return build(_BULKHEAD, fn, namespace, "bulkhead_call", asynchronous)

    def wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The sync wrapper: a non-blocking slot take, the call, the slot back."""
        return self._wrap(fn, asynchronous=False)

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The async wrapper: the same slots; waiting, when needed, on the event loop."""
        return self._wrap(fn, asynchronous=True)

    def _enter(self) -> Any:
        self.acquire()

    def _exit(self, token: Any, error: BaseException | None) -> None:
        self.release()

    async def _aenter(self) -> Any:
        await self.acquire_async()

    async def _aexit(self, token: Any, error: BaseException | None) -> None:
        self.release()


# The free-slot path is one C call to take a slot and one to give it back.
_BULKHEAD = """
@async def bulkhead_call({params}):
    try:
        get()
    except empty:
        @await acquire()
    try:
        return @await fn({call})
    finally:
        release()
"""
