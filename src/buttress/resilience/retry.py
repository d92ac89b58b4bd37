"""Retry: call again after a failure, with backoff and jitter, within limits.

::

    retry = Retry("email", attempts=3, base=1.0, factor=2, max_delay=10, jitter="full")

    @retry
    def send(message): ...

The n-th retry waits ``min(max_delay, base * factor ** (n - 1))`` seconds, jittered (see
:mod:`buttress.resilience.backoff`), and at least the ``retry_after`` hint an error carries
(:class:`CircuitOpenError`, :class:`RateLimitedError`, or your own exception with a ``retry_after``
attribute in seconds; pass ``retry_after=`` to read hints some other way, e.g. from an HTTP 429's header).

What is retried: exceptions that are instances of ``retry_on`` (default: ``Exception``), are not
instances of ``abort_on`` (default: :class:`CircuitOpenError` — an open circuit means "stop", and
retrying it would defeat the breaker), and satisfy ``retry_if(error)`` when given; and results for which
``retry_if_result(result)`` is true. Anything else is returned or raised at once.

Limits: ``attempts`` in all (the first call included); ``max_time`` seconds spent retrying, counted from
the first failure (a delay that would cross it is not taken); an optional :class:`RetryBudget` shared
by many policies; optional :class:`AdaptiveThrottle` that rejects calls locally with
:class:`ThrottledError` while the dependency refuses most of them.

When retrying stops, the last error is re-raised as itself (its ``retry_attempts`` attribute says how
many attempts were made); a rejected result ends with :class:`RetryExhaustedError`. All waiting goes
through ``clock``, so a :class:`~buttress.clock.VirtualClock` makes retry tests instant.

The success path costs one ``try`` and one counter increment. Counted in
``buttress_retry_calls_total{name,kind}`` with kind ``successful_without_retry``,
``successful_with_retry``, ``failed_with_retry`` and ``failed_without_retry`` (Resilience4j's kinds).
"""

from __future__ import annotations

import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Final

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.resilience._forward import build
from buttress.resilience._util import (
    asleep,
    check_callable,
    check_duration,
    check_exception_types,
    check_name,
    check_positive_int,
)
from buttress.resilience.backoff import Backoff
from buttress.resilience.budget import AdaptiveThrottle, RetryBudget
from buttress.resilience.errors import CircuitOpenError, RetryExhaustedError, ThrottledError
from buttress.resilience.policy import Policy
from buttress.telemetry.registry import REGISTRY, Registry

__all__ = ["Attempt", "Retry", "retry_after_hint"]

_KINDS: Final = (
    "successful_without_retry",
    "successful_with_retry",
    "failed_with_retry",
    "failed_without_retry",
)


def retry_after_hint(error: BaseException) -> float | None:
    """The default hint reader: the error's ``retry_after`` attribute, when it is a number of seconds."""
    value = getattr(error, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


class _GiveUp(Exception):
    """Internal: retrying ends; ``result`` is set when a rejected result (not an error) ended it."""


class _Retrying:
    """One call's retry state: attempts so far, its own delay sequence, when retrying started."""

    __slots__ = ("attempts", "delays", "first_failure", "policy", "started")

    def __init__(self, policy: Retry) -> None:
        self.policy = policy
        self.attempts = 1
        self.delays = policy.backoff.delays()
        self.started = policy._mono()
        self.first_failure = policy._clock.time()

    def next_delay(self, outcome: BaseException | _Rejected) -> float:
        """Seconds to wait before retrying after ``outcome``; raises what ends the call when it gives up.

        ``outcome`` is the last attempt's error, re-raised as itself when retrying stops, or its rejected
        result, which ends with :class:`RetryExhaustedError`.
        """
        if isinstance(outcome, _Rejected):
            delay = self.delay_after_result()
            if delay is None:
                raise self.exhausted(outcome.result)
            return delay
        delay = self.delay_after_error(outcome)
        if delay is None:
            self.failed(outcome)
            raise outcome
        return delay

    def rejects(self, result: Any) -> bool:
        """Whether ``retry_if_result`` asks for another attempt after ``result``."""
        predicate = self.policy._retry_if_result
        return predicate is not None and bool(predicate(result))

    def succeeded(self) -> None:
        """Count a call that succeeded after at least one retry."""
        policy = self.policy
        if policy.throttle is not None:
            policy.throttle.accepted()
        policy._ok_retried.value += 1

    def delay_after_error(self, error: BaseException) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up (the error is then re-raised)."""
        policy = self.policy
        throttle = policy.throttle
        if not policy.retryable(error):
            if throttle is not None:
                throttle.accepted()  # the dependency answered; the error is about the request
            return None
        return self._next_delay(policy.hint(error))

    def delay_after_result(self) -> float | None:
        """Seconds to wait after a rejected result, or ``None`` to give up."""
        throttle = self.policy.throttle
        if throttle is not None:
            throttle.accepted()
        return self._next_delay(None)

    def _next_delay(self, hint: float | None) -> float | None:
        policy = self.policy
        if self.attempts >= policy.max_attempts:
            return None
        delay = next(self.delays)
        if hint is not None and hint > delay:
            delay = hint
        if policy.max_time is not None and policy._mono() - self.started + delay > policy.max_time:
            return None
        if policy.budget is not None and not policy.budget.withdraw():
            return None
        return delay

    def before_attempt(self) -> None:
        """Count the next attempt; the throttle may refuse to send it (raising :class:`ThrottledError`)."""
        policy = self.policy
        throttle = policy.throttle
        if throttle is not None and not throttle.allow():
            error = ThrottledError(policy.name, throttle.probability())
            self.failed(error)
            raise error
        self.attempts += 1

    def failed(self, error: BaseException) -> None:
        """Count a call that ends with ``error`` and note the attempts on it."""
        policy = self.policy
        kind = policy._failed_with if self.attempts > 1 else policy._failed_without
        kind.value += 1
        try:  # read by an outer DeadLetterQueue, and useful in logs
            error.retry_attempts = self.attempts  # type: ignore[attr-defined]
            error.first_failure = self.first_failure  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - exceptions with __slots__ and no __dict__
            pass

    def exhausted(self, result: Any) -> RetryExhaustedError:
        """Count a call whose every result was rejected and build its error."""
        self.policy._failed_with.value += 1
        return RetryExhaustedError(self.policy.name, self.attempts, result)


class Retry(Policy):
    """Retries a sync or async call on failure (see the module docstring).

    Args:
        name: labels the policy's metrics.
        attempts: total attempts including the first, at least 1.
        backoff: ``"exponential"``, ``"constant"`` or ``"linear"``.
        base: first delay, seconds (number or ``"1s"``).
        factor: growth factor for ``exponential``.
        max_delay: cap on one delay, seconds; ``None`` for none.
        jitter: ``"none"``, ``"full"``, ``"equal"`` or ``"decorrelated"``.
        max_time: cap on the time spent retrying, counted from the first failure; ``None`` for none.
        retry_on: exception classes to retry.
        retry_if: a predicate that must also hold for an exception to be retried.
        abort_on: exception classes never retried (wins over ``retry_on``).
        retry_if_result: a predicate on results; true means "retry".
        retry_after: reads a minimum delay from an error (default :func:`retry_after_hint`).
        budget: a :class:`RetryBudget` limiting retries to a ratio of calls.
        throttle: an :class:`AdaptiveThrottle` rejecting calls locally while the dependency is refusing.
        rng: random source for jitter.
        clock: time source for sleeping and ``max_time``.
        registry: where metrics go.

    Raises:
        ConfigError: naming the bad argument (non-positive attempts, negative durations, unknown jitter).
    """

    def __init__(
        self,
        name: str = "default",
        *,
        attempts: int = 3,
        backoff: str = "exponential",
        base: float | str = 1.0,
        factor: float = 2.0,
        max_delay: float | str | None = 10.0,
        jitter: str = "full",
        max_time: float | str | None = None,
        retry_on: type[BaseException] | Iterable[type[BaseException]] = Exception,
        retry_if: Callable[[BaseException], bool] | None = None,
        abort_on: type[BaseException] | Iterable[type[BaseException]] | None = CircuitOpenError,
        retry_if_result: Callable[[Any], bool] | None = None,
        retry_after: Callable[[BaseException], float | None] | None = retry_after_hint,
        budget: RetryBudget | None = None,
        throttle: AdaptiveThrottle | None = None,
        rng: random.Random | None = None,
        clock: Clock = SYSTEM_CLOCK,
        registry: Registry = REGISTRY,
    ) -> None:
        super().__init__()
        owner = "Retry"
        self.name = check_name(owner, name)
        self.max_attempts = check_positive_int(owner, "attempts", attempts)
        self.backoff = Backoff(backoff, base=base, factor=factor, max_delay=max_delay, jitter=jitter, rng=rng)
        self.max_time = check_duration(owner, "max_time", max_time, allow_none=True)
        self._retry_on = check_exception_types(owner, "retry_on", retry_on) or (Exception,)
        self._retry_if = check_callable(owner, "retry_if", retry_if)
        self._abort_on = check_exception_types(owner, "abort_on", abort_on)
        self._retry_if_result = check_callable(owner, "retry_if_result", retry_if_result)
        self._retry_after = check_callable(owner, "retry_after", retry_after)
        if budget is not None and not isinstance(budget, RetryBudget):
            raise TypeError(f"Retry(budget=...) takes a RetryBudget, got {budget!r}")
        if throttle is not None and not isinstance(throttle, AdaptiveThrottle):
            raise TypeError(f"Retry(throttle=...) takes an AdaptiveThrottle, got {throttle!r}")
        self.budget = budget
        self.throttle = throttle
        self._clock = clock
        self._mono = clock.monotonic
        self._sleep = clock.sleep
        self._asleep = functools.partial(asleep, clock)
        counters = {
            kind: registry.counter(
                "buttress_retry_calls",
                "Calls through a retry policy, by outcome.",
                {"name": self.name, "kind": kind},
            )
            for kind in _KINDS
        }
        self._ok_first = counters["successful_without_retry"]
        self._ok_retried = counters["successful_with_retry"]
        self._failed_with = counters["failed_with_retry"]
        self._failed_without = counters["failed_without_retry"]

    def __repr__(self) -> str:
        return f"Retry({self.name!r}, attempts={self.max_attempts}, backoff={self.backoff!r})"

    # -- decisions -----------------------------------------------------------------------------------

    def retryable(self, error: BaseException) -> bool:
        """Whether ``error`` is one this policy retries (ignoring the attempt and time limits)."""
        if not isinstance(error, self._retry_on):
            return False
        if self._abort_on and isinstance(error, self._abort_on):
            return False
        return self._retry_if is None or bool(self._retry_if(error))

    def hint(self, error: BaseException) -> float | None:
        """The minimum delay ``error`` asks for, if any."""
        return self._retry_after(error) if self._retry_after is not None else None

    def _admit(self) -> None:
        """Before a call's first attempt: feed the budget and let the throttle refuse."""
        if self.budget is not None:
            self.budget.calls += 1
        throttle = self.throttle
        if throttle is not None and not throttle.allow():
            self._failed_without.value += 1
            raise ThrottledError(self.name, throttle.probability())

    # -- sync ----------------------------------------------------------------------------------------

    def _retry_sync(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], first: Any
    ) -> Any:
        """Drive retries after a failed first attempt; ``first`` is its error or its rejected result."""
        state = _Retrying(self)
        outcome = first
        while True:
            self._sleep(state.next_delay(outcome))
            state.before_attempt()
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                outcome = exc
                continue
            if not state.rejects(result):
                state.succeeded()
                return result
            outcome = _Rejected(result)

    def _wrap(self, fn: Callable[..., Any], asynchronous: bool) -> Callable[..., Any]:
        plain = self._retry_if_result is None and self.budget is None and self.throttle is None
        namespace = {
            "fn": fn,
            "retry": self._retry_async if asynchronous else self._retry_sync,
            "ok": self._ok_first,
            "admit": self._admit,
            "rejects": self._retry_if_result,
            "throttle": self.throttle,
            "Rejected": _Rejected,
        }
        return build(_PLAIN if plain else _CHECKED, fn, namespace, "retry_call", asynchronous)

    def wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The sync wrapper: a plain ``try`` on the success path, the retry loop only after a failure."""
        return self._wrap(fn, asynchronous=False)

    # -- async ---------------------------------------------------------------------------------------

    async def _retry_async(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any], first: Any
    ) -> Any:
        """:meth:`_retry_sync` awaiting ``fn`` and sleeping with ``clock.asleep``."""
        state = _Retrying(self)
        outcome = first
        while True:
            await self._asleep(state.next_delay(outcome))
            state.before_attempt()
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                outcome = exc
                continue
            if not state.rejects(result):
                state.succeeded()
                return result
            outcome = _Rejected(result)

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The async wrapper: the same decisions as :meth:`wrap_sync`, sleeping with ``clock.asleep``."""
        return self._wrap(fn, asynchronous=True)

    # -- blocks --------------------------------------------------------------------------------------

    def attempts(self) -> _Attempts:
        """Retry a block of code: ``for attempt in retry.attempts(): with attempt: ...``.

        Works with ``async for`` / ``async with`` too. The loop ends after a block that raised nothing;
        a block whose error is not retried, or the last attempt's error, propagates out of the loop.
        """
        return _Attempts(self)


# No result predicate, budget or throttle: one try and one counter increment on success.
_PLAIN = """
@async def retry_call({params}):
    try:
        result = @await fn({call})
    except Exception as exc:
        return @await retry(fn, {args}, {kwargs}, exc)
    ok.value += 1
    return result
"""

_CHECKED = """
@async def retry_call({params}):
    admit()
    try:
        result = @await fn({call})
    except Exception as exc:
        return @await retry(fn, {args}, {kwargs}, exc)
    if rejects is not None and rejects(result):
        return @await retry(fn, {args}, {kwargs}, Rejected(result))
    if throttle is not None:
        throttle.accepted()
    ok.value += 1
    return result
"""


class _Rejected:
    """A result that ``retry_if_result`` rejected, travelling through the retry loop."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result


class Attempt:
    """One attempt of a block under :meth:`Retry.attempts`; a (sync or async) context manager.

    Attributes:
        number: 1 for the first attempt.
    """

    __slots__ = ("_iterator", "number")

    def __init__(self, iterator: _Attempts, number: int) -> None:
        self._iterator = iterator
        self.number = number

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return self._iterator._finish(exc)

    async def __aenter__(self) -> Attempt:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return self._iterator._finish(exc)


class _Attempts:
    """Iterator (sync and async) over the attempts of one block."""

    __slots__ = ("_delay", "_done", "_error", "_number", "_policy", "_state")

    def __init__(self, policy: Retry) -> None:
        self._policy = policy
        self._number = 0
        self._state: _Retrying | None = None
        self._error: BaseException | None = None
        self._delay = 0.0
        self._done = False

    def _finish(self, error: BaseException | None) -> bool:
        """Record an attempt's outcome; returns True to swallow an error that will be retried."""
        policy = self._policy
        if error is None:
            self._done = True
            counter = policy._ok_retried if self._number > 1 else policy._ok_first
            counter.value += 1
            if policy.throttle is not None:
                policy.throttle.accepted()
            return False
        if not isinstance(error, Exception):
            self._done = True
            return False
        if self._state is None:
            self._state = _Retrying(policy)
        delay = self._state.delay_after_error(error)
        if delay is None:
            self._done = True
            self._state.failed(error)
            return False
        self._delay = delay
        return True

    def _advance(self) -> Attempt:
        self._number += 1
        if self._state is not None:
            self._state.before_attempt()
        else:
            self._policy._admit()
        return Attempt(self, self._number)

    def __iter__(self) -> Iterator[Attempt]:
        while not self._done:
            if self._number:
                self._policy._sleep(self._delay)
            yield self._advance()

    async def _aiter(self) -> AsyncIterator[Attempt]:
        while not self._done:
            if self._number:
                await self._policy._asleep(self._delay)
            yield self._advance()

    def __aiter__(self) -> AsyncIterator[Attempt]:
        return self._aiter()
