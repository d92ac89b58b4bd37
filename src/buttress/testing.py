"""What users import in their own tests: a virtual clock fixture and fault injection.

This module is also a pytest plugin (registered by the ``pytest11`` entry point), so installing buttress
gives every test suite the ``virtual_clock`` fixture::

    def test_breaker_half_opens(virtual_clock):
        breaker = CircuitBreaker("email", wait_open=10, clock=virtual_clock)
        ...
        virtual_clock.advance(10)

:class:`Faults` wraps a function so that it fails, or takes (virtual) time, on the calls you choose —
the injected faults buttress's own tests use against its policies::

    faults = Faults(clock=virtual_clock).fail(times=2, error=ConnectionError("down")).latency(0.2)
    flaky_send = faults.wrap(send_email)

Importing this module imports pytest only inside the fixture functions' plugin hooks, so it is safe to
import from application code that runs outside pytest.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, cast

from buttress.clock import SYSTEM_CLOCK, Clock, VirtualClock

__all__ = ["Faults", "run_virtual", "virtual_clock"]

P = ParamSpec("P")
T = TypeVar("T")

try:  # the plugin part: only when pytest is importable
    import pytest

    @pytest.fixture
    def virtual_clock() -> VirtualClock:
        """A fresh :class:`~buttress.clock.VirtualClock` at time 0 (``auto_advance`` off)."""
        return VirtualClock()

except ImportError:  # pragma: no cover - pytest is absent outside tests
    pass


@dataclass
class _Step:
    error: BaseException | None = None
    delay: float = 0.0
    result: Any = None
    has_result: bool = False

    def settle(self) -> bool:
        """After the delay: raise the injected error, or say whether a canned result replaces the call."""
        if self.error is not None:
            raise self.error
        return self.has_result


@dataclass
class Faults:
    """A schedule of injected faults applied to the calls of a wrapped function, in order.

    Each builder call appends steps; calls beyond the schedule run the real function. Latency is spent on
    ``clock`` (a :class:`~buttress.clock.VirtualClock` in tests), never in real time unless you pass the
    system clock.

    Attributes:
        calls: how many calls the wrapper has seen.
    """

    clock: Clock = SYSTEM_CLOCK
    steps: list[_Step] = field(default_factory=list)
    calls: int = 0
    _always: _Step | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail(self, times: int = 1, error: BaseException | type[BaseException] = ConnectionError) -> Faults:
        """The next ``times`` calls raise ``error``."""
        exc = error() if isinstance(error, type) else error
        self.steps.extend(_Step(error=exc) for _ in range(times))
        return self

    def succeed(self, times: int = 1) -> Faults:
        """The next ``times`` calls run the real function."""
        self.steps.extend(_Step() for _ in range(times))
        return self

    def returns(self, value: Any, times: int = 1) -> Faults:
        """The next ``times`` calls return ``value`` without running the real function."""
        self.steps.extend(_Step(result=value, has_result=True) for _ in range(times))
        return self

    def latency(self, seconds: float, times: int = 1) -> Faults:
        """The next ``times`` calls take ``seconds`` (on the clock) before running the real function."""
        self.steps.extend(_Step(delay=seconds) for _ in range(times))
        return self

    def always(
        self, error: BaseException | type[BaseException] | None = None, latency: float = 0.0
    ) -> Faults:
        """After the schedule, every call fails with ``error`` and/or takes ``latency``."""
        exc = error() if isinstance(error, type) else error
        self._always = _Step(error=exc, delay=latency)
        return self

    def heal(self) -> Faults:
        """Clear the schedule and the ``always`` fault: calls run the real function again."""
        with self._lock:
            self.steps.clear()
            self._always = None
        return self

    def _next(self) -> _Step | None:
        with self._lock:
            self.calls += 1
            if self.steps:
                return self.steps.pop(0)
            return self._always

    def wrap(self, fn: Callable[P, T]) -> Callable[P, T]:
        """A sync or async wrapper (matching ``fn``) that applies the schedule to each call."""
        if inspect.iscoroutinefunction(fn):
            return cast(Callable[P, T], self._wrap_async(cast(Callable[P, Awaitable[Any]], fn)))
        return self._wrap_sync(fn)

    def _wrap_sync(self, fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            step = self._next()
            if step is None:
                return fn(*args, **kwargs)
            if step.delay:
                self.clock.sleep(step.delay)
            if step.settle():
                return cast(T, step.result)
            return fn(*args, **kwargs)

        return wrapper

    def _wrap_async(self, fn: Callable[P, Awaitable[Any]]) -> Callable[P, Awaitable[Any]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            step = self._next()
            if step is None:
                return await fn(*args, **kwargs)
            if step.delay:
                await self.clock.asleep(step.delay)
            if step.settle():
                return step.result
            return await fn(*args, **kwargs)

        return wrapper


def run_virtual(coro: Awaitable[T], clock: VirtualClock) -> T:
    """Run ``coro`` to completion on an event loop whose timers follow ``clock`` (auto-advancing).

    Everything the coroutine awaits on timers (``asyncio.sleep``, ``asyncio.timeout``, ``wait_for``)
    completes without spending wall time.
    """
    previous = clock.auto_advance
    clock.auto_advance = True
    loop = clock.new_event_loop()
    try:
        return loop.run_until_complete(_as_coroutine(coro))
    finally:
        clock.auto_advance = previous
        loop.close()


async def _as_coroutine(aw: Awaitable[T]) -> T:
    return await aw
