"""Resilience policies: circuit breaker, retry, timeout, bulkhead, rate limiter, fallback, pipelines."""

from buttress.resilience.circuit import BreakerMetrics, CircuitBreaker, exponential_wait
from buttress.resilience.errors import (
    BulkheadFullError,
    CircuitOpenError,
    RateLimitedError,
    ResilienceError,
    RetryExhaustedError,
    ThrottledError,
    TimeoutExceededError,
)
from buttress.resilience.policy import Policy

__all__ = [
    "BreakerMetrics",
    "BulkheadFullError",
    "CircuitBreaker",
    "CircuitOpenError",
    "Policy",
    "RateLimitedError",
    "ResilienceError",
    "RetryExhaustedError",
    "ThrottledError",
    "TimeoutExceededError",
    "exponential_wait",
]
