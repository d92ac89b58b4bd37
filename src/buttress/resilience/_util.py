"""Small shared pieces: deciding sync versus async once, clock-aware waits, argument checks."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Iterable
from typing import Any

from buttress.clock import Clock, SystemClock
from buttress.errors import ConfigError, ConfigProblem

__all__ = [
    "asleep",
    "check_duration",
    "check_exception_types",
    "check_positive_int",
    "check_rate",
    "is_async_callable",
    "wait_event",
]


def is_async_callable(obj: object) -> bool:
    """True when calling ``obj`` returns an awaitable coroutine.

    Unwraps :func:`functools.partial` and looks at a callable object's ``__call__``, the way starlette's
    ``is_async_callable`` does, so a partial of an ``async def`` is recognised as async.
    """
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - we want the method, not callable()
    return call is not None and not inspect.isfunction(obj) and inspect.iscoroutinefunction(call)


def wait_event(event: threading.Event, timeout: float, clock: Clock) -> None:
    """Block until ``event`` is set or ``timeout`` seconds pass on ``clock``.

    The real clock waits on the event itself. Any other clock (a :class:`~buttress.clock.VirtualClock`)
    parks a helper thread in ``clock.sleep(timeout)`` that sets the event when the clock has moved far
    enough, so a waiting thread wakes when a test advances virtual time. The caller decides what woke it
    by checking its own state under its own lock.
    """
    if timeout <= 0 or event.is_set():
        return
    if isinstance(clock, SystemClock):
        event.wait(timeout)
        return

    def alarm() -> None:
        clock.sleep(timeout)
        event.set()

    threading.Thread(target=alarm, name="buttress-virtual-wait", daemon=True).start()
    event.wait()


async def asleep(clock: Clock, seconds: float) -> None:
    """Suspend the calling coroutine for ``seconds`` of ``clock`` time.

    When the running loop already keeps time with this clock (a loop from
    :meth:`VirtualClock.new_event_loop`, as :func:`buttress.testing.run_virtual` uses), sleep on the loop's
    own timers: an auto-advancing virtual loop jumps to loop timers when idle, but not to coroutines parked
    in ``clock.asleep``, which would then wait forever.
    """
    loop = asyncio.get_running_loop()
    if getattr(loop, "time", None) == clock.monotonic:
        await asyncio.sleep(seconds)
    else:
        await clock.asleep(seconds)


def _problem(owner: str, field: str, message: str, value: Any) -> ConfigError:
    return ConfigError([ConfigProblem(f"{owner}.{field}" if owner else field, message, value)])


def check_positive_int(owner: str, field: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an int of at least ``minimum``, or a :class:`ConfigError` naming ``owner.field``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _problem(owner, field, f"must be a whole number of at least {minimum}", value)
    return value


def check_rate(owner: str, field: str, value: Any) -> float:
    """A threshold ratio in (0, 1], or a :class:`ConfigError` naming ``owner.field``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise _problem(owner, field, "must be a ratio in (0, 1], e.g. 0.5 for 50 %", value)
    return float(value)


def check_duration(
    owner: str, field: str, value: Any, *, positive: bool = False, allow_none: bool = False
) -> float | None:
    """Seconds from a number or a duration string (``"250ms"``); negative values are errors."""
    from buttress.config import parse_duration

    if value is None:
        if allow_none:
            return None
        raise _problem(owner, field, 'is required: give a duration such as 2.0 or "2s"', value)
    try:
        seconds = parse_duration(value)  # finite and not negative, or ValueError
    except ValueError as exc:
        raise _problem(owner, field, str(exc), value) from None
    except OverflowError:  # an int too large for a float
        raise _problem(owner, field, "is too large for a duration in seconds", value) from None
    if positive and seconds <= 0:
        raise _problem(owner, field, 'must be a positive duration such as 0.1 or "100ms"', value)
    return seconds


def check_exception_types(
    owner: str, field: str, value: type[BaseException] | Iterable[type[BaseException]] | None
) -> tuple[type[BaseException], ...]:
    """A tuple of exception classes from one class, an iterable of them or ``None``."""
    if value is None:
        return ()
    items = (value,) if isinstance(value, type) else tuple(value)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise _problem(
                owner, field, "must be exception classes, e.g. (ConnectionError, TimeoutError)", item
            )
    return items


def check_callable(owner: str, field: str, value: Any) -> Callable[..., Any] | None:
    """``value`` when it is callable or ``None``; otherwise a :class:`ConfigError`."""
    if value is not None and not callable(value):
        raise _problem(owner, field, "must be a function (or None)", value)
    return value  # type: ignore[no-any-return]


def check_name(kind: str, value: Any) -> str:
    """A non-empty policy name, used as a metric label."""
    if not isinstance(value, str) or not value:
        raise _problem(kind, "name", "must be a non-empty string; it labels metrics and events", value)
    return value
