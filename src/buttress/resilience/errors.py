"""The errors resilience policies raise, under :class:`~buttress.errors.ResilienceError`.

::

    ResilienceError
    ├── CircuitOpenError       the breaker refused the call; carries .name and .retry_after
    ├── BulkheadFullError      no concurrency slot freed up within max_wait
    ├── RateLimitedError       no permit within max_wait; carries .retry_after
    │   └── ThrottledError     adaptive client-side throttling rejected the call locally
    ├── RetryExhaustedError    every attempt returned a result the retry policy rejects
    └── TimeoutExceededError   the call overran its deadline (also a builtin TimeoutError)

An error that a policy gives up on after retrying is re-raised as itself, not wrapped, so callers keep
catching what the dependency raises; a note says how many attempts were made.
"""

from __future__ import annotations

from typing import Any

from buttress.errors import ResilienceError

__all__ = [
    "BulkheadFullError",
    "CircuitOpenError",
    "RateLimitedError",
    "ResilienceError",
    "RetryExhaustedError",
    "ThrottledError",
    "TimeoutExceededError",
]


class CircuitOpenError(ResilienceError):
    """A circuit breaker did not permit the call.

    Attributes:
        name: the breaker's name.
        state: the breaker's state when it refused (``"open"``, ``"half_open"`` or ``"forced_open"``).
        retry_after: seconds until the breaker will let a trial call through (0.0 when it cannot tell,
            e.g. every half-open trial permit is in use). Retry honours it as a minimum delay.
    """

    def __init__(self, name: str, state: str, retry_after: float) -> None:
        self.name = name
        self.state = state
        self.retry_after = retry_after
        if state == "half_open":
            why = "is half-open and every trial call permit is in use"
        elif state == "forced_open":
            why = (
                "was forced open by an operator; call reset() or transition_to('closed') to let calls through"
            )
        else:
            why = f"is open; it lets a trial call through in {retry_after:.3g}s"
        super().__init__(f"Circuit breaker {name!r} {why}.")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.state, self.retry_after))


class BulkheadFullError(ResilienceError):
    """Every concurrency slot of a bulkhead stayed busy for ``max_wait``.

    Attributes:
        name: the bulkhead's name.
        max_concurrent: its size.
        max_wait: how long the caller was allowed to wait, in seconds.
    """

    def __init__(self, name: str, max_concurrent: int, max_wait: float) -> None:
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_wait = max_wait
        super().__init__(
            f"Bulkhead {name!r} is full: all {max_concurrent} slots stayed busy for {max_wait:.3g}s. "
            "Raise max_concurrent or max_wait, or shed this load upstream."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.max_concurrent, self.max_wait))


class RateLimitedError(ResilienceError):
    """A rate limiter had no permit for the call within its ``max_wait``.

    Attributes:
        name: the limiter's name.
        retry_after: seconds until a permit will be available.
    """

    def __init__(self, name: str, retry_after: float, message: str | None = None) -> None:
        self.name = name
        self.retry_after = retry_after
        super().__init__(
            message or f"Rate limiter {name!r} has no permit free; the next one is due in {retry_after:.3g}s."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.retry_after, str(self)))


class ThrottledError(RateLimitedError):
    """Adaptive client-side throttling rejected the call without sending it (SRE book, "Handling Overload").

    Attributes:
        probability: the rejection probability in force when the call was rejected.
    """

    def __init__(self, name: str, probability: float) -> None:
        self.probability = probability
        super().__init__(
            name,
            0.0,
            f"Retry policy {name!r} throttled the call locally: the dependency accepted too few recent "
            f"requests (rejecting with probability {probability:.2f}).",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.probability))


class RetryExhaustedError(ResilienceError):
    """Every attempt returned a result that the retry policy's result predicate rejected.

    Errors raised by the call are re-raised as themselves; this error exists for rejected *results*,
    which have no exception of their own.

    Attributes:
        name: the retry policy's name.
        attempts: how many attempts were made.
        result: the last result.
    """

    def __init__(self, name: str, attempts: int, result: Any) -> None:
        self.name = name
        self.attempts = attempts
        self.result = result
        super().__init__(
            f"Retry policy {name!r} gave up after {attempts} attempt(s): every result was rejected by "
            f"retry_if_result (last: {result!r:.80})."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.attempts, self.result))


class TimeoutExceededError(ResilienceError, TimeoutError):
    """A call overran its timeout.

    Attributes:
        name: the timeout policy's name.
        timeout: the limit, in seconds.
    """

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        super().__init__(f"Timeout {name!r}: the call did not finish within {timeout:.3g}s.")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.timeout))
