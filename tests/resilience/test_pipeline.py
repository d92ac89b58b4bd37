"""Pipeline: outermost-first composition, the three faces, blocks; named policies from configuration."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from buttress import config
from buttress.clock import VirtualClock
from buttress.errors import ConfigError
from buttress.resilience import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    Fallback,
    NamedPipeline,
    Pipeline,
    Retry,
    Timeout,
    TimeoutExceededError,
    policy,
)
from buttress.resilience import registry as named
from buttress.telemetry import EventStream, Registry
from buttress.testing import Faults, run_virtual


@pytest.fixture(autouse=True)
def _fresh_policies():
    named.clear()
    previous = config.use(None)
    yield
    config.use(previous)
    named.clear()


def test_order_is_outermost_first(registry, events) -> None:
    clock = VirtualClock(auto_advance=True)
    breaker = CircuitBreaker(
        "p", window=3, minimum_calls=3, wait_open=60, clock=clock, registry=registry, events=events
    )
    retry = Retry("p", attempts=3, base=1, jitter="none", clock=clock, registry=registry)
    flaky = Faults(clock=clock).fail(2)

    # retry outside the breaker: each attempt is one breaker call
    outer_retry = Pipeline(retry, breaker)
    assert outer_retry.call(flaky.wrap(lambda: "ok")) == "ok"
    assert breaker.metrics().calls == 3
    assert breaker.metrics().failed == 2

    # breaker outside the retry: the breaker sees one call for all attempts
    breaker.reset()
    outer_breaker = Pipeline(breaker, retry)
    assert outer_breaker.call(Faults(clock=clock).fail(2).wrap(lambda: "ok")) == "ok"
    assert breaker.metrics().calls == 1
    assert breaker.metrics().failed == 0


def test_open_breaker_stops_retries_and_fallback_answers(registry, events) -> None:
    clock = VirtualClock(auto_advance=True)
    breaker = CircuitBreaker(
        "p", window=2, minimum_calls=2, wait_open=60, clock=clock, registry=registry, events=events
    )
    pipeline = Pipeline(
        Fallback("cached", name="p", registry=registry),
        Retry("p", attempts=5, base=1, jitter="none", clock=clock, registry=registry),
        breaker,
    )
    down = Faults(clock=clock).always(ConnectionError("down"))
    fn = pipeline(down.wrap(lambda: "live"))
    assert fn() == "cached"
    assert down.calls == 2  # two attempts opened the breaker; the third got CircuitOpenError, not retried
    assert breaker.state == "open"
    assert clock.monotonic() == 3  # backoffs of 1 s and 2 s before the attempt that was refused


def test_async_pipeline_with_timeout_and_bulkhead(registry, events) -> None:
    clock = VirtualClock()
    pipeline = Pipeline(
        Timeout(5, name="p", registry=registry),
        Retry("p", attempts=2, base=1, jitter="none", clock=clock, registry=registry),
        Bulkhead("p", max_concurrent=1, registry=registry),
    )
    sleeps = iter([10, 0])

    @pipeline
    async def fetch(x: int) -> int:
        await asyncio.sleep(next(sleeps))
        return x

    async def main() -> None:
        with pytest.raises(TimeoutExceededError):
            await fetch(1)  # the first attempt overruns the total timeout, retries included

    run_virtual(main(), clock)
    assert clock.monotonic() == 5


async def test_call_and_acall(registry) -> None:
    pipeline = Pipeline(Retry("p", registry=registry), Bulkhead("p", registry=registry))

    def add(a: int, b: int = 0) -> int:
        return a + b

    async def aadd(a: int, b: int = 0) -> int:
        return a + b

    assert pipeline.call(add, 1, b=2) == 3
    assert await pipeline.acall(aadd, 1, b=3) == 4
    with pytest.raises(TypeError, match="acall"):
        pipeline.call(aadd, 1)
    with pytest.raises(TypeError, match=r"policy\.call"):
        await pipeline.acall(add, 1)  # type: ignore[arg-type]


def test_block_guards_and_passes_through_retry(registry, events) -> None:
    clock = VirtualClock(auto_advance=True)
    breaker = CircuitBreaker("p", window=1, minimum_calls=1, clock=clock, registry=registry, events=events)
    bulkhead = Bulkhead("p", max_concurrent=1, registry=registry)
    pipeline = Pipeline(
        Retry("p", registry=registry), breaker, bulkhead, Timeout(1, sync="deadline", clock=clock)
    )
    with pipeline:
        assert bulkhead.available == 0
    assert bulkhead.available == 1
    with pytest.raises(TimeoutExceededError), pipeline:
        clock.advance(2)  # the deadline check fails the block; the breaker outside records that failure
    assert breaker.state == "open"
    assert bulkhead.available == 1
    with pytest.raises(CircuitOpenError), pipeline:
        raise AssertionError("not run")
    assert bulkhead.available == 1


async def test_async_block_releases_on_inner_refusal(registry, events) -> None:
    breaker = CircuitBreaker("p", registry=registry, events=events)
    bulkhead = Bulkhead("p", max_concurrent=1, registry=registry)
    pipeline = Pipeline(breaker, bulkhead)
    await bulkhead.acquire_async()
    with pytest.raises(BulkheadFullError):
        async with pipeline:
            pass
    assert breaker.metrics().failed == 1  # the breaker saw the inner policy's refusal as a failure
    bulkhead.release()
    async with pipeline:
        pass


def test_async_block_overrunning_its_timeout_fails_the_breaker_outside(registry, events) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker("p", window=1, minimum_calls=1, clock=clock, registry=registry, events=events)
    bulkhead = Bulkhead("p", max_concurrent=1, registry=registry)
    pipeline = Pipeline(breaker, bulkhead, Timeout(1, name="p", registry=registry))

    async def overrun() -> None:
        async with pipeline:
            await asyncio.sleep(5)

    async def main() -> None:
        with pytest.raises(TimeoutExceededError):
            await overrun()

    run_virtual(main(), clock)
    assert clock.monotonic() == 1  # cancelled at the deadline, not after the sleep
    assert breaker.state == "open"  # the timeout's error went out through the bulkhead to the breaker
    assert bulkhead.available == 1


def test_leaving_a_block_that_was_never_entered_is_an_error(registry, events) -> None:
    breaker = CircuitBreaker("p", registry=registry, events=events)
    with pytest.raises(RuntimeError, match="without a matching __enter__"):
        breaker.__exit__(None, None, None)


def test_find_and_bad_members(registry, events) -> None:
    breaker = CircuitBreaker("p", registry=registry, events=events)
    inner = Pipeline(breaker)
    outer = Pipeline(Retry("p", registry=registry), inner)
    assert outer.find(CircuitBreaker) is breaker
    assert outer.find(Bulkhead) is None
    assert len(outer) == 2
    with pytest.raises(TypeError, match="argument 1"):
        Pipeline(breaker, "retry")  # type: ignore[arg-type]


# -- named policies -------------------------------------------------------------------------------------

PROVIDERS = """
[resilience.policies.email]
timeout = "30s"
retry = { attempts = 3, backoff = "exponential", base = "1s", factor = 2, max = "10s", jitter = "full" }
breaker = { window = "count:50", failure_rate = 0.6, wait_open = "10s", half_open_calls = 5 }
bulkhead = { max_concurrent = 50, max_wait = "100ms" }
http = { connect = "5s", read = "10s" }

[resilience.policies.storage]
retry = 5
breaker = "time:30s"
bulkhead = 8
rate_limit = { rate = 100, period = "1s" }
order = ["retry", "breaker", "rate_limit", "bulkhead"]
"""


def test_policy_builds_from_configuration_once() -> None:
    cfg = config.loads(PROVIDERS)
    config.use(cfg)
    email = policy("email")
    assert isinstance(email, NamedPipeline)
    assert policy("email") is email
    kinds = [type(p).__name__ for p in email]
    assert kinds == ["Timeout", "Retry", "CircuitBreaker", "Bulkhead"]
    retry = email.find(Retry)
    breaker = email.find(CircuitBreaker)
    bulkhead = email.find(Bulkhead)
    assert retry is not None
    assert breaker is not None
    assert bulkhead is not None
    assert (retry.max_attempts, retry.backoff.base, retry.backoff.factor, retry.backoff.max_delay) == (
        3,
        1,
        2,
        10,
    )
    assert (breaker._window_kind, breaker._window_size, breaker._failure_threshold) == ("count", 50, 0.6)
    assert (breaker._half_open_calls, breaker._minimum_calls) == (5, 50)
    assert (bulkhead.max_concurrent, bulkhead.max_wait) == (50, 0.1)
    assert email.http is not None
    assert (email.http.connect, email.http.read) == (5, 10)
    storage = policy("storage")
    assert [type(p).__name__ for p in storage] == ["Retry", "CircuitBreaker", "RateLimiter", "Bulkhead"]
    assert storage.find(Retry).max_attempts == 5  # type: ignore[union-attr]
    assert storage.find(Bulkhead).max_concurrent == 8  # type: ignore[union-attr]
    # another configuration in use: built afresh
    config.use(config.loads(PROVIDERS))
    assert policy("email") is not email


def test_unknown_policy_lists_the_known_ones() -> None:
    config.use(config.loads(PROVIDERS))
    with pytest.raises(ConfigError) as info:
        policy("sms")
    assert info.value.problems[0].path == "resilience.policies.sms"
    assert "email, storage" in str(info.value)


def test_order_must_name_every_configured_policy() -> None:
    cfg = config.loads("[resilience.policies.x]\nretry = 2\nbulkhead = 3\norder = ['retry']\n")
    with pytest.raises(ConfigError, match=r"resilience\.policies\.x\.order"):
        policy("x", config=cfg)


@pytest.mark.parametrize(
    ("toml", "path"),
    [
        ("breaker = { failure_rate = 0 }", "breaker.failure_rate"),
        ("breaker = { slow_call_rate = 1.01 }", "breaker.slow_call_rate"),
        ('breaker = { window = "count:0" }', "breaker.window"),
        ('breaker = { window = "time:-5s" }', "breaker.window"),
        ("breaker = { half_open_calls = 0 }", "breaker.half_open_calls"),
        ('breaker = { wait_open = "-1s" }', "breaker.wait_open"),
        ("retry = { attempts = 0 }", "retry.attempts"),
        ('retry = { jitter = "gaussian" }', "retry.jitter"),
        ('retry = { base = "-100ms" }', "retry.base"),
        ("retry = { budget = 1.5 }", "retry.budget"),
        ('timeout = "0s"', "timeout.duration"),
        ("bulkhead = { max_concurrent = -1 }", "bulkhead.max_concurrent"),
        ("rate_limit = { rate = 0 }", "rate_limit.rate"),
        ('dead_letter = "mysql://x"', "dead_letter"),
        ('dead_letter = "sqlite:"', "dead_letter"),
        ("dead_letter = 42", "dead_letter"),
        ('order = ["retry", "breaker", "retry"]', "order"),
        ('order = ["retry", "cache"]', "order[1]"),
        ("retries = 3", "retries"),
    ],
)
def test_bad_configuration_names_the_field(toml: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.loads(f"[resilience.policies.p]\n{toml}\n")
    assert [p.path for p in info.value.problems] == [f"resilience.policies.p.{path}"]


def test_growing_open_wait_from_configuration() -> None:
    cfg = config.loads(
        "[resilience.policies.idp]\nbreaker = { window = 2, minimum_calls = 2, wait_open = '10s', "
        "wait_open_factor = 2, wait_open_max = '25s' }\n"
    )
    breaker = policy("idp", config=cfg).find(CircuitBreaker)
    assert breaker is not None
    assert [breaker._wait_fn(n) for n in (1, 2, 3)] == [10, 20, 25]


def test_retry_budget_throttle_and_http_timeouts_from_configuration() -> None:
    cfg = config.loads(
        "[resilience.policies.idp]\n"
        "retry = { attempts = 2, budget = 0.2, budget_burst = 3, throttle_k = 2 }\n"
        'http = { connect = "2s", read = "500ms" }\n'
    )
    pipeline = policy("idp", config=cfg)
    retry = pipeline.find(Retry)
    assert retry is not None
    assert retry.budget is not None
    assert (retry.budget.ratio, retry.budget.burst) == (0.2, 3)
    assert retry.throttle is not None
    assert retry.throttle.k == 2
    assert pipeline.http is not None
    timeout = pipeline.http.as_httpx()  # handed to the provider's HTTP client, which enforces it
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (2, 0.5, None, None)


def test_settings_are_kept(registry: Registry, events: EventStream) -> None:
    cfg = config.loads(PROVIDERS)
    email = policy("email", config=cfg)
    settings: dict[str, Any] = email.settings
    assert settings["bulkhead"] == {"max_concurrent": 50, "max_wait": 0.1}


def test_the_documented_provider_configuration_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/resilience.md ships the providers' settings; they must load and mean what they say."""
    doc = (Path(__file__).parents[2] / "docs" / "resilience.md").read_text()
    monkeypatch.chdir(tmp_path)  # the email policy's dead-letter store is a relative path
    section = doc.split("### An event platform's providers", 1)[1]
    toml = section.split("```toml", 1)[1].split("```", 1)[0]
    cfg = config.loads(toml)
    for name in ("email", "storage", "identity"):
        pipeline = policy(name, config=cfg)
        retry = pipeline.find(Retry)
        breaker = pipeline.find(CircuitBreaker)
        bulkhead = pipeline.find(Bulkhead)
        assert retry is not None
        assert breaker is not None
        assert bulkhead is not None
        assert (retry.max_attempts, retry.backoff.base, retry.backoff.factor, retry.backoff.max_delay) == (
            3,
            1,
            2,
            10,
        )
        assert (breaker._failure_threshold, breaker._window_kind, breaker._window_size) == (0.6, "count", 50)
        assert (breaker._wait_fn(1), breaker._half_open_calls) == (10, 5)
        assert (bulkhead.max_concurrent, bulkhead.max_wait) == (50, 0.1)
        assert pipeline.http is not None
        assert (pipeline.http.connect, pipeline.http.read) == (5, 10)
    assert type(policy("email", config=cfg).policies[0]).__name__ == "DeadLetterQueue"


def test_build_takes_clock_registry_and_events(tmp_path: Path) -> None:
    cfg = config.loads(
        "[resilience.policies.mail]\n"
        'breaker = { window = "count:4", minimum_calls = 2, failure_rate = 0.5, wait_open = "10s" }\n'
        "retry = 1\n"
        f'dead_letter = "sqlite:{tmp_path / "dlq.db"}"\n'
    )
    clock, registry, events = VirtualClock(), Registry(), EventStream()
    entry = cfg.section("resilience")["policies"]["mail"]
    pipeline = named.build(
        "mail", entry, clock=clock, registry=registry, events=events, idempotency_key=lambda to: f"mail-{to}"
    )
    flaky = Faults(clock=clock).always(ConnectionError("down")).wrap(lambda to: to)
    guarded = pipeline(flaky)
    for to in ("a", "b"):
        with pytest.raises(ConnectionError) as info:
            guarded(to)
        assert info.value.dead_letter_id  # type: ignore[attr-defined]
    transitions = [e for e in events.recent() if getattr(e, "to_state", None) == "open"]
    assert len(transitions) == 1
    assert registry.value("buttress_circuitbreaker_state", {"name": "mail", "state": "open"}) == 1
    (depth,) = [f for f in registry.families() if f.name == "buttress_dlq_depth"]
    (gauge,) = depth.children
    assert gauge.labels["policy"] == "mail"
    assert registry.value("buttress_dlq_depth", gauge.labels) == 2
    queue = pipeline.policies[0]
    assert sorted(letter.idempotency_key for letter in queue.store.list()) == ["mail-a", "mail-b"]
