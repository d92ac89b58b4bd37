"""Retry: backoff schedule, classification, limits, budget, throttling, hints and blocks (sync faces)."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest

from buttress.clock import VirtualClock
from buttress.errors import ConfigError
from buttress.resilience import (
    AdaptiveThrottle,
    CircuitOpenError,
    RateLimitedError,
    Retry,
    RetryBudget,
    RetryExhaustedError,
    ThrottledError,
)
from buttress.telemetry import Registry
from buttress.testing import Faults


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(auto_advance=True)  # sync sleeps in the test thread move time themselves


class Recorder:
    """A function that notes the virtual time of each call and follows a Faults schedule."""

    def __init__(self, clock: VirtualClock, faults: Faults) -> None:
        self.clock = clock
        self.times: list[float] = []
        self.fn = faults.wrap(self.run)

    def run(self) -> str:
        return "ok"

    def __call__(self) -> Any:
        self.times.append(self.clock.monotonic())
        return self.fn()

    def gaps(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.times)]


def counts(registry: Registry, name: str = "r") -> dict[str, float]:
    kinds = ("successful_without_retry", "successful_with_retry", "failed_with_retry", "failed_without_retry")
    return {
        k: registry.value("buttress_retry_calls", {"name": name, "kind": k})
        for k in kinds
        if registry.value("buttress_retry_calls", {"name": name, "kind": k})
    }


def test_success_first_time(clock, registry) -> None:
    retry = Retry("r", clock=clock, registry=registry)
    assert retry.call(lambda: 42) == 42
    assert counts(registry) == {"successful_without_retry": 1}
    assert clock.monotonic() == 0


def test_exponential_schedule_without_jitter(clock, registry) -> None:
    retry = Retry(
        "r", attempts=5, base=1, factor=2, max_delay=5, jitter="none", clock=clock, registry=registry
    )
    rec = Recorder(clock, Faults(clock=clock).fail(4))
    assert retry.call(rec) == "ok"
    assert rec.gaps() == [1, 2, 4, 5]
    assert counts(registry) == {"successful_with_retry": 1}


def test_gives_up_reraising_the_last_error(clock, registry) -> None:
    retry = Retry("r", attempts=3, base="1s", jitter="none", clock=clock, registry=registry)
    errors = [ConnectionError(f"try {i}") for i in range(3)]
    faults = Faults(clock=clock)
    for e in errors:
        faults.fail(1, e)
    rec = Recorder(clock, faults)
    with pytest.raises(ConnectionError) as info:
        retry.call(rec)
    assert info.value is errors[2]
    assert info.value.retry_attempts == 3  # type: ignore[attr-defined]
    assert rec.gaps() == [1, 2]
    assert counts(registry) == {"failed_with_retry": 1}


def test_non_retryable_errors_raise_at_once(clock, registry) -> None:
    retry = Retry("r", retry_on=ConnectionError, clock=clock, registry=registry)
    rec = Recorder(clock, Faults(clock=clock).fail(1, ValueError("bad input")))
    with pytest.raises(ValueError):
        retry.call(rec)
    assert len(rec.times) == 1
    assert counts(registry) == {"failed_without_retry": 1}


def test_open_circuit_is_not_retried_by_default(clock, registry) -> None:
    retry = Retry("r", clock=clock, registry=registry)
    rec = Recorder(clock, Faults(clock=clock).fail(1, CircuitOpenError("email", "open", 3.0)))
    with pytest.raises(CircuitOpenError):
        retry.call(rec)
    assert len(rec.times) == 1


def test_predicates(clock, registry) -> None:
    retry = Retry(
        "r",
        attempts=4,
        jitter="none",
        base=0.5,
        retry_if=lambda e: "transient" in str(e),
        retry_if_result=lambda r: r is None,
        clock=clock,
        registry=registry,
    )
    rec = Recorder(clock, Faults(clock=clock).fail(1, OSError("transient")).returns(None))
    assert retry.call(rec) == "ok"
    assert len(rec.times) == 3
    rec = Recorder(clock, Faults(clock=clock).fail(1, OSError("permanent")))
    with pytest.raises(OSError, match="permanent"):
        retry.call(rec)
    always_none = Recorder(clock, Faults(clock=clock).returns(None, times=10))
    with pytest.raises(RetryExhaustedError) as info:
        retry.call(always_none)
    assert (info.value.attempts, info.value.result) == (4, None)


def test_retry_after_hint_is_a_minimum_delay(clock, registry) -> None:
    retry = Retry("r", base=0.1, jitter="none", clock=clock, registry=registry)
    rec = Recorder(clock, Faults(clock=clock).fail(1, RateLimitedError("api", retry_after=7.0)))
    assert retry.call(rec) == "ok"
    assert rec.gaps() == [7.0]

    class Http429(Exception):
        def __init__(self, header: str) -> None:
            self.header = header

    custom = Retry(
        "r2",
        base=0.1,
        jitter="none",
        retry_after=lambda e: float(e.header) if isinstance(e, Http429) else None,
        clock=clock,
        registry=registry,
    )
    rec = Recorder(clock, Faults(clock=clock).fail(1, Http429("3")))
    assert custom.call(rec) == "ok"
    assert rec.gaps() == [3.0]


def test_max_time_stops_before_crossing(clock, registry) -> None:
    retry = Retry(
        "r", attempts=10, base=1, factor=2, jitter="none", max_time=6, clock=clock, registry=registry
    )
    rec = Recorder(clock, Faults(clock=clock).always(ConnectionError()))
    with pytest.raises(ConnectionError) as info:
        retry.call(rec)
    assert rec.gaps() == [1, 2]  # 1 + 2 = 3 s spent; the next 4 s would end at 7 > 6
    assert info.value.retry_attempts == 3  # type: ignore[attr-defined]


def test_budget_limits_retries_to_a_ratio_of_calls(clock, registry) -> None:
    budget = RetryBudget(0.1, burst=2, clock=clock)
    retry = Retry("r", attempts=2, base=0, jitter="none", budget=budget, clock=clock, registry=registry)
    flaky = Faults(clock=clock).always(ConnectionError())
    fn = flaky.wrap(lambda: "ok")
    for _ in range(2):  # the initial burst allows two retries
        with pytest.raises(ConnectionError):
            retry.call(fn)
    assert flaky.calls == 4
    with pytest.raises(ConnectionError):
        retry.call(fn)
    assert flaky.calls == 5  # budget spent: no retry
    flaky.heal()
    for _ in range(10):  # every call deposits a tenth of a token, failing ones too
        retry.call(fn)
    flaky.always(ConnectionError())
    with pytest.raises(ConnectionError):
        retry.call(fn)
    assert flaky.calls == 5 + 10 + 2  # one retry again
    # 2 (full) - 2 retries + 0.1 deposited by each of the 12 later calls (the first deposit overflowed)
    assert budget.tokens == pytest.approx(0.3)


def test_budget_trickle(clock) -> None:
    budget = RetryBudget(0.5, burst=3, min_per_second=0.5, clock=clock)
    assert [budget.withdraw() for _ in range(4)] == [True, True, True, False]
    clock.advance(2)
    assert budget.withdraw()
    assert not budget.withdraw()
    clock.advance(100)
    assert budget.tokens == 3  # capped at burst


def test_adaptive_throttle_rejects_in_proportion(clock, registry) -> None:
    throttle = AdaptiveThrottle(k=2, window=120, clock=clock, rng=random.Random(7))
    retry = Retry("r", attempts=1, throttle=throttle, clock=clock, registry=registry)
    overloaded = Faults(clock=clock).always(ConnectionError("503"))
    fn = overloaded.wrap(lambda: "ok")
    rejected = 0
    for _ in range(200):
        try:
            retry.call(fn)
        except ThrottledError:
            rejected += 1
        except ConnectionError:
            pass
    assert throttle.accepts == 0
    assert throttle.probability() == pytest.approx(200 / 201)
    assert rejected > 150  # nearly everything is rejected locally once nothing is accepted
    assert overloaded.calls == 200 - rejected
    clock.advance(121)  # the window forgets
    assert throttle.probability() == 0.0
    overloaded.heal()
    for _ in range(10):
        assert retry.call(fn) == "ok"
    assert (throttle.requests, throttle.accepts) == (10, 10)


def test_throttle_counts_errors_the_dependency_answered_as_accepted(clock, registry) -> None:
    throttle = AdaptiveThrottle(clock=clock)
    retry = Retry(
        "r", attempts=1, retry_on=ConnectionError, throttle=throttle, clock=clock, registry=registry
    )
    with pytest.raises(ValueError):
        retry.call(Faults().fail(1, ValueError("400 bad request")).wrap(lambda: 1))
    assert (throttle.requests, throttle.accepts) == (1, 1)


class Fixed(random.Random):
    """A random source that always draws ``x``, so the throttle's choices are known in advance."""

    def __init__(self, x: float) -> None:
        super().__init__(0)
        self.x = x

    def random(self) -> float:
        return self.x


def test_throttle_counts_retried_answers_and_may_refuse_a_retry(clock, registry) -> None:
    # Draws of 0.99 let a request through unless nearly every earlier one went unanswered.
    throttle = AdaptiveThrottle(k=2, clock=clock, rng=Fixed(0.99))
    retry = Retry(
        "r",
        attempts=3,
        base=0,
        retry_if_result=lambda r: r is None,
        throttle=throttle,
        clock=clock,
        registry=registry,
    )
    rec = Recorder(clock, Faults(clock=clock).fail(1, ConnectionError()).returns(None))
    assert retry.call(rec) == "ok"
    # Three requests; the rejected result and the success were answers, the connection error was not.
    assert (throttle.requests, throttle.accepts) == (3, 2)
    assert counts(registry) == {"successful_with_retry": 1}

    # Draws of 0.0 refuse a request whenever the rejection probability is above zero.
    strict = AdaptiveThrottle(k=2, clock=clock, rng=Fixed(0.0))
    retry = Retry("s", attempts=3, base=0, throttle=strict, clock=clock, registry=registry)
    down = Faults(clock=clock).always(ConnectionError())
    with pytest.raises(ThrottledError) as info:
        retry.call(down.wrap(lambda: "ok"))
    assert down.calls == 1  # the retry was refused locally and never sent
    assert info.value.retry_attempts == 1  # type: ignore[attr-defined]
    assert counts(registry, "s") == {"failed_without_retry": 1}


def test_attempts_block(clock, registry) -> None:
    retry = Retry("r", attempts=3, base=1, jitter="none", clock=clock, registry=registry)
    seen = []
    for attempt in retry.attempts():
        with attempt:
            seen.append((attempt.number, clock.monotonic()))
            if attempt.number < 3:
                raise ConnectionError
    assert seen == [(1, 0), (2, 1), (3, 3)]
    assert counts(registry) == {"successful_with_retry": 1}
    tried = []

    def block() -> None:
        for attempt in Retry("r", retry_on=ConnectionError, clock=clock, registry=registry).attempts():
            with attempt:
                tried.append(attempt.number)
                raise KeyError("not retried")

    with pytest.raises(KeyError):
        block()
    assert tried == [1]


def test_attempts_block_feeds_the_throttle_and_lets_base_exceptions_through(clock, registry) -> None:
    throttle = AdaptiveThrottle(k=2, clock=clock, rng=Fixed(0.99))
    retry = Retry("r", attempts=3, base=0, throttle=throttle, clock=clock, registry=registry)
    for attempt in retry.attempts():
        with attempt:
            if attempt.number == 1:
                raise ConnectionError
    assert (throttle.requests, throttle.accepts) == (2, 1)
    tried = []

    def cancelled() -> None:
        for attempt in retry.attempts():
            with attempt:
                tried.append(attempt.number)
                raise asyncio.CancelledError  # not a failure of the dependency: never retried or counted

    with pytest.raises(asyncio.CancelledError):
        cancelled()
    assert tried == [1]
    assert counts(registry) == {"successful_with_retry": 1}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"attempts": 0}, "Retry.attempts"),
        ({"attempts": 2.5}, "Retry.attempts"),
        ({"base": -1}, "Retry.base"),
        ({"max_delay": "-1s"}, "Retry.max_delay"),
        ({"max_time": -3}, "Retry.max_time"),
        ({"jitter": "random"}, "Retry.jitter"),
        ({"backoff": "fibonacci"}, "Retry.backoff"),
        ({"factor": 0.5}, "Retry.factor"),
        ({"retry_on": "ConnectionError"}, "Retry.retry_on"),
        ({"retry_if_result": "yes"}, "Retry.retry_if_result"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Retry("bad", registry=Registry(), **kwargs)
    assert info.value.problems[0].path == field


def test_bad_budget_and_throttle() -> None:
    with pytest.raises(ConfigError, match=r"RetryBudget\.ratio"):
        RetryBudget(0)
    with pytest.raises(ConfigError, match=r"RetryBudget\.burst"):
        RetryBudget(0.1, burst=0)
    with pytest.raises(ConfigError, match=r"RetryBudget\.burst"):
        RetryBudget(0.1, burst=float("inf"))
    with pytest.raises(ConfigError, match=r"RetryBudget\.min_per_second"):
        RetryBudget(0.1, min_per_second=-1)
    with pytest.raises(ConfigError, match=r"AdaptiveThrottle\.k"):
        AdaptiveThrottle(k=0.5)
    with pytest.raises(ConfigError, match=r"AdaptiveThrottle\.window"):
        AdaptiveThrottle(window="0s")
    with pytest.raises(TypeError, match="RetryBudget"):
        Retry(budget=0.1, registry=Registry())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="AdaptiveThrottle"):
        Retry(throttle=2, registry=Registry())  # type: ignore[arg-type]
