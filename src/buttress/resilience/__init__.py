"""Resilience policies: circuit breaker, retry, timeout, bulkhead, rate limiter, fallback, pipelines."""

from buttress.resilience.backoff import Backoff
from buttress.resilience.budget import AdaptiveThrottle, RetryBudget
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
from buttress.resilience.retry import Attempt, Retry, retry_after_hint

__all__ = [
    "AdaptiveThrottle",
    "Attempt",
    "Backoff",
    "BreakerMetrics",
    "BulkheadFullError",
    "CircuitBreaker",
    "CircuitOpenError",
    "Policy",
    "RateLimitedError",
    "ResilienceError",
    "Retry",
    "RetryBudget",
    "RetryExhaustedError",
    "ThrottledError",
    "TimeoutExceededError",
    "exponential_wait",
    "retry_after_hint",
]
