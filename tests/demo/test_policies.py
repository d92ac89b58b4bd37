"""The providers' pipelines come from ``[resilience.policies.<name>]`` and match what buttress.resilience
builds from the same entries; only the clock, registry and event stream are the platform's."""

from __future__ import annotations

import pytest

from buttress import config
from buttress.clock import VirtualClock
from buttress.demo.policies import PROVIDERS, build_pipeline, provider_entries
from buttress.demo.wiring import dead_letter_store, demo_config
from buttress.errors import ConfigError
from buttress.resilience import Bulkhead, CircuitBreaker, Retry
from buttress.resilience import registry as resilience_registry
from buttress.telemetry import EventStream, Registry, StateTransition

_SCALARS = (int, float, str, bool, type, type(None))


def _is_plain(value):
    if isinstance(value, tuple):
        return all(isinstance(v, _SCALARS) for v in value)
    return isinstance(value, _SCALARS)


def _plain(obj):
    """The configuration a policy resolved at construction: its plain-data attributes."""
    names = [n for n in getattr(type(obj), "__slots__", ()) if hasattr(obj, n)] or list(vars(obj))
    return {n: getattr(obj, n) for n in names if _is_plain(getattr(obj, n))}


def test_the_embedded_configuration_is_the_event_platform_reference():
    entries = provider_entries(demo_config())
    assert sorted(entries) == sorted(PROVIDERS)
    for entry in entries.values():
        assert entry["order"] == ["retry", "breaker", "bulkhead"]
        assert entry["retry"]["attempts"] == 3
        assert entry["retry"]["factor"] == 2
        b = entry["breaker"]
        assert (b["window"], b["failure_rate"], b["wait_open"], b["half_open_calls"]) == (
            "count:50",
            0.6,
            10,
            5,
        )
        assert (entry["bulkhead"]["max_concurrent"], entry["bulkhead"]["max_wait"]) == (50, 0.1)
        assert (entry["http"]["connect"], entry["http"]["read"]) == (5, 10)
        assert entry["dead_letter"] is None  # the platform chooses the store (state dir or --redis-url)
    # Email keeps the reference retry waits; storage and identity are shortened (said in the file).
    assert (entries["email"]["retry"]["base"], entries["email"]["retry"]["max"]) == (1, 10)
    for name in ("storage", "identity"):
        assert (entries[name]["retry"]["base"], entries[name]["retry"]["max"]) == (0.1, 1)


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_demo_builds_what_the_resilience_registry_builds(name):
    entry = provider_entries(demo_config())[name]
    clock, registry, events = VirtualClock(), Registry(), EventStream()
    ours = build_pipeline(name, entry, clock=clock, registry=registry, events=events)
    # registry.build with its defaults counts into the process-wide registry; the demo passes its own.
    theirs = resilience_registry.build(name, entry)
    kinds = [Retry, CircuitBreaker, Bulkhead]
    assert [type(p) for p in ours.policies] == [type(p) for p in theirs.policies] == kinds
    assert (ours.name, ours.http, ours.settings) == (theirs.name, theirs.http, theirs.settings)
    for a, b in zip(ours.policies, theirs.policies, strict=True):
        assert _plain(a) == _plain(b)
    retry_a, retry_b = ours.policies[0], theirs.policies[0]
    assert _plain(retry_a.backoff) == _plain(retry_b.backoff)
    breaker = ours.find(CircuitBreaker)
    assert breaker is not None
    assert [breaker._wait_fn(n) for n in (1, 2, 3)] == [
        theirs.find(CircuitBreaker)._wait_fn(n) for n in (1, 2, 3)
    ]
    assert ours.http is not None
    assert ours.http.as_httpx().connect == 5

    # ...but on the platform's own clock, registry and event stream.
    seen = []
    events.subscribe(seen.append, StateTransition)
    breaker.transition_to("open")
    assert [(e.name, e.to_state) for e in seen] == [(name, "open")]
    assert registry.value("buttress_circuitbreaker_state", {"name": name, "state": "open"}) == 1
    assert breaker.retry_after == 10
    clock.advance(4)
    assert breaker.retry_after == 6


def test_a_missing_provider_policy_is_a_config_error_naming_it():
    cfg = config.loads("[resilience.policies.email]\nretry = 3\n", "test.toml")
    with pytest.raises(ConfigError) as err:
        provider_entries(cfg)
    paths = [p.path for p in err.value.problems]
    assert paths == ["resilience.policies.storage", "resilience.policies.identity"]
    assert "[resilience.policies.storage]" in str(err.value)


def test_the_old_demo_policies_section_is_refused():
    with pytest.raises(ConfigError, match=r"demo\.policies"):
        config.loads('[demo.policies.email]\ntimeout = "5s"\n', "old.toml")


def test_the_dead_letter_store_is_the_state_dir_redis_or_the_configured_one(tmp_path):
    cfg = demo_config()
    assert dead_letter_store(cfg, state_dir=str(tmp_path), redis_url=None) == f"sqlite:{tmp_path}/dlq.db"
    assert dead_letter_store(cfg, state_dir=str(tmp_path), redis_url="redis://h:1/0") == "redis://h:1/0"
    configured = config.loads('[resilience.policies.email]\ndead_letter = "sqlite:/x/mail.db"\n', "t.toml")
    assert (
        dead_letter_store(configured, state_dir=str(tmp_path), redis_url="redis://h:1/0")
        == "sqlite:/x/mail.db"
    )


#: State that is a reading of the policy's clock (a bucket's last refill, the throttle's current second):
#: near 0 on ours (virtual clock), the machine's uptime on theirs (system clock).
_CLOCK_READINGS = {"_last", "_second"}


def _settings(obj):
    return {k: v for k, v in _plain(obj).items() if k not in _CLOCK_READINGS}


_EVERY_KIND = """
[resilience.policies.full]
timeout = "2s"
retry = { attempts = 4, base = "100ms", max = "1s", budget = 0.2, budget_burst = 5, throttle_k = 2 }
breaker = { window = "time:30s", wait_open = "1s", wait_open_factor = 2, wait_open_max = "8s" }
rate_limit = { rate = 100, period = "1s", burst = 10 }
bulkhead = { max_concurrent = 4 }
order = ["timeout", "retry", "breaker", "rate_limit", "bulkhead"]
"""


def test_every_policy_kind_is_built_like_the_resilience_registry_builds_it():
    from buttress.resilience import RateLimiter, Timeout

    entry = config.loads(_EVERY_KIND, "t.toml").section("resilience")["policies"]["full"]
    clock = VirtualClock()
    ours = build_pipeline("full", entry, clock=clock, registry=Registry(), events=EventStream())
    theirs = resilience_registry.build("full", entry)
    kinds = [Timeout, Retry, CircuitBreaker, RateLimiter, Bulkhead]
    assert [type(p) for p in ours.policies] == [type(p) for p in theirs.policies] == kinds
    for a, b in zip(ours.policies, theirs.policies, strict=True):
        assert _settings(a) == _settings(b)
    retry_a, retry_b = ours.policies[1], theirs.policies[1]
    assert retry_a.budget is not None
    assert _settings(retry_a.budget) == _settings(retry_b.budget)
    assert retry_a.throttle is not None
    assert _settings(retry_a.throttle) == _settings(retry_b.throttle)
    # The open wait grows per consecutive opening, capped (wait_open_factor, wait_open_max).
    breaker = ours.find(CircuitBreaker)
    assert [breaker._wait_fn(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]
    assert ours.http is None


def test_an_order_that_leaves_out_a_configured_policy_is_a_config_error():
    text = _EVERY_KIND.replace('"rate_limit", "bulkhead"]', '"bulkhead"]')
    entry = config.loads(text, "t.toml").section("resilience")["policies"]["full"]
    with pytest.raises(ConfigError) as err:
        build_pipeline("full", entry, clock=VirtualClock(), registry=Registry(), events=EventStream())
    (problem,) = err.value.problems
    assert problem.path == "resilience.policies.full.order"
    assert "add 'rate_limit'" in problem.message
