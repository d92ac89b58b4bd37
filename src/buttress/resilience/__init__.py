"""Resilience policies: circuit breaker, retry, timeout, bulkhead, rate limiter, fallback, pipelines.

Every policy is one object that decorates sync and async functions (the face is chosen when it
decorates), runs one-off calls (``.call``, ``.acall``) and, where that makes sense, guards a block
(``with``). Policies compose in a :class:`Pipeline`, outermost first; :func:`policy` builds named
pipelines from ``[resilience.policies.<name>]`` in ``buttress.toml``; :class:`DeadLetterQueue` keeps
work that failed for good. Every part counts into the telemetry registry under ``buttress_*`` names and
publishes state changes on the event stream.
"""

from buttress.resilience.backoff import Backoff
from buttress.resilience.budget import AdaptiveThrottle, RetryBudget
from buttress.resilience.bulkhead import Bulkhead
from buttress.resilience.circuit import BreakerMetrics, CircuitBreaker, exponential_wait
from buttress.resilience.dlq import DeadLetter, DeadLetterQueue, ReplayReport, current_letter, open_store
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
from buttress.resilience.pipeline import Pipeline
from buttress.resilience.policy import Policy
from buttress.resilience.ratelimit import RateLimiter
from buttress.resilience.registry import HttpTimeouts, NamedPipeline, policy
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
    "DeadLetter",
    "DeadLetterQueue",
    "Fallback",
    "HttpTimeouts",
    "NamedPipeline",
    "Pipeline",
    "Policy",
    "RateLimitedError",
    "RateLimiter",
    "ReplayReport",
    "ResilienceError",
    "Retry",
    "RetryBudget",
    "RetryExhaustedError",
    "ThrottledError",
    "Timeout",
    "TimeoutExceededError",
    "current_letter",
    "exponential_wait",
    "open_store",
    "policy",
    "retry_after_hint",
]
