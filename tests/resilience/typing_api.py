"""Uses the resilience API the way a user would; checked by ``mypy --strict`` in test_typing.py.

``assert_type`` lines fail the check if a decorator loses the wrapped function's signature or return type.
"""

from __future__ import annotations

from typing import assert_type

from buttress.resilience import (
    Bulkhead,
    CircuitBreaker,
    DeadLetterQueue,
    Fallback,
    Pipeline,
    RateLimiter,
    Retry,
    Timeout,
    policy,
)

breaker = CircuitBreaker("email", window="count:50", failure_rate=0.6, wait_open=10, half_open_calls=5)
retry = Retry("email", attempts=3, base="1s", factor=2, max_delay="10s", jitter="full")
pipeline = Pipeline(Timeout(30), retry, breaker, Bulkhead("email", max_concurrent=50, max_wait=0.1))


@pipeline
def send(registration_id: int, address: str, *, urgent: bool = False) -> bool:
    return urgent


@pipeline
async def asend(registration_id: int, address: str) -> list[str]:
    return [address]


@breaker
@retry
def nested(x: float) -> float:
    return x


async def use() -> None:
    assert_type(send(1, "a@example.org", urgent=True), bool)
    assert_type(await asend(1, "a@example.org"), list[str])
    assert_type(nested(2.0), float)
    assert_type(pipeline.call(send, 1, "a@example.org"), bool)
    assert_type(await pipeline.acall(asend, 2, "b@example.org"), list[str])
    assert_type(Fallback(0)(nested)(1.0), float)
    assert_type(RateLimiter("maps", rate=10)(send)(3, "c"), bool)
    with breaker:
        pass
    async with pipeline:
        pass
    email = policy("email")
    assert_type(email(send)(4, "d"), bool)
    queue = DeadLetterQueue("sqlite:.buttress/dlq.db", policy="email")
    queue.replay(send, email)


def misuse() -> None:
    send("not an int", "a")  # type: ignore[arg-type]
    pipeline.call(send, 1)  # type: ignore[call-arg]
