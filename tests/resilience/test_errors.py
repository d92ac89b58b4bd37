"""The resilience errors: one family, picklable with every attribute, messages that name real fixes."""

from __future__ import annotations

import pickle
import re

import pytest

from buttress.errors import ButtressError, ResilienceError
from buttress.resilience import (
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    RateLimitedError,
    RetryExhaustedError,
    ThrottledError,
    TimeoutExceededError,
)

ERRORS = [
    CircuitOpenError("email", "open", 3.0),
    CircuitOpenError("email", "half_open", 0.0),
    CircuitOpenError("email", "forced_open", 0.0),
    BulkheadFullError("db", 25, 0.1),
    RateLimitedError("api", 1.5),
    RateLimitedError("api", 1.5, "the provider said 429"),
    ThrottledError("idp", 0.75),
    RetryExhaustedError("email", 3, {"status": "queued"}),
    TimeoutExceededError("storage", 2.0),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: f"{type(e).__name__}-{getattr(e, 'state', '')}")
def test_errors_cross_process_boundaries_whole(error: ResilienceError) -> None:
    """Pickled (a worker process, a task queue), an error keeps its type, message and attributes."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
    assert isinstance(copy, ResilienceError)
    assert isinstance(copy, ButtressError)


def test_timeouts_are_also_builtin_timeouts_and_throttling_is_rate_limiting() -> None:
    assert isinstance(TimeoutExceededError("t", 1.0), TimeoutError)
    throttled = ThrottledError("idp", 0.5)
    assert isinstance(throttled, RateLimitedError)
    assert throttled.retry_after == 0.0


def test_a_forced_open_breaker_names_methods_that_exist(registry, events) -> None:
    breaker = CircuitBreaker("svc", registry=registry, events=events)
    breaker.force_open()
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: 1)
    remedies = re.findall(r"(\w+)\('?(\w*)'?\)", str(info.value))
    assert remedies
    for method, argument in remedies:
        getattr(breaker, method)(*([argument] if argument else []))
        assert breaker.state == "closed"
        breaker.force_open()
