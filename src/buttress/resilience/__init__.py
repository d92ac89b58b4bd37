"""Resilience policies: circuit breaker, retry, timeout, bulkhead, rate limiter, fallback, pipelines."""

from buttress.resilience.backoff import Backoff
from buttress.resilience.budget import AdaptiveThrottle, RetryBudget
from buttress.resilience.bulkhead import Bulkhead
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
from buttress.resilience.fallback import NO_FALLBACK, Fallback
from buttress.resilience.policy import Policy
from buttress.resilience.ratelimit import RateLimiter
from buttress.resilience.retry import Attempt, Retry, retry_after_hint
from buttress.resilience.timeout import Timeout

__all__ = [
    "NO_FALLBACK",
    "AdaptiveThrottle",
    "Attempt",
    "Backoff",
    "BreakerMetrics",
    "Bulkhead",
    "BulkheadFullError",
    "CircuitBreaker",
    "CircuitOpenError",
    "Fallback",
    "Policy",
    "RateLimitedError",
    "RateLimiter",
    "ResilienceError",
    "Retry",
    "RetryBudget",
    "RetryExhaustedError",
    "ThrottledError",
    "Timeout",
    "TimeoutExceededError",
    "exponential_wait",
    "retry_after_hint",
]
