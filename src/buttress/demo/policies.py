"""The providers' resilience pipelines, built per platform from ``[resilience.policies.<name>]``.

The demo's configuration names one policy per provider — ``email``, ``storage``, ``identity`` — in the
``[resilience]`` section that :mod:`buttress.resilience` validates, and :func:`build_pipeline` turns each
checked entry into the same :class:`~buttress.resilience.NamedPipeline` that
``buttress.resilience.registry.build(name, entry)`` builds: the same constructors with the same arguments,
composed in the entry's ``order``, with the entry's ``http`` timeouts on ``pipeline.http``.

Why not call ``registry.build`` itself: it builds every policy on the process-wide telemetry registry,
event stream and system clock, and takes no parameters to change them. A platform has its own (tests run
several platforms in one process, each with a fresh ``Registry``, an ``EventStream`` and a
``VirtualClock``), so this module passes them through. ``tests/demo/test_policies.py`` checks that both
builders produce the same pipeline from the same entry, so the two cannot drift apart unnoticed.

The entry's ``dead_letter`` is not built into the pipeline here: the platform builds the confirmation
emails' :class:`~buttress.resilience.DeadLetterQueue` itself, with the registration's idempotency key
(see :mod:`buttress.demo.wiring`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from buttress.errors import ConfigError, ConfigProblem
from buttress.resilience import (
    AdaptiveThrottle,
    Bulkhead,
    CircuitBreaker,
    HttpTimeouts,
    NamedPipeline,
    RateLimiter,
    Retry,
    RetryBudget,
    Timeout,
    exponential_wait,
)

if TYPE_CHECKING:
    from buttress.clock import Clock
    from buttress.config import Config
    from buttress.resilience import Policy
    from buttress.telemetry import EventStream, Registry

__all__ = ["PROVIDERS", "build_pipeline", "provider_entries"]

#: The providers whose calls run through a named pipeline, by policy name.
PROVIDERS = ("email", "storage", "identity")


def provider_entries(cfg: Config) -> dict[str, dict[str, Any]]:
    """The checked ``[resilience.policies.<provider>]`` entry of every provider.

    Raises:
        ConfigError: naming each provider whose entry is missing, with the table to add.
    """
    entries: dict[str, dict[str, Any]] = cfg.section("resilience")["policies"]
    missing = [name for name in PROVIDERS if name not in entries]
    if missing:
        raise ConfigError(
            [
                ConfigProblem(
                    f"resilience.policies.{name}",
                    f"the demo calls the {name} provider through this policy; add a "
                    f"[resilience.policies.{name}] table (the embedded buttress.demo.toml has one to copy)",
                    has_value=False,
                )
                for name in missing
            ],
            cfg.source,
        )
    return {name: entries[name] for name in PROVIDERS}


@dataclass(frozen=True)
class _On:
    """Where a platform's policies live: its clock, its metrics registry and its event stream."""

    clock: Clock
    registry: Registry
    events: EventStream


def build_pipeline(
    name: str, entry: dict[str, Any], *, clock: Clock, registry: Registry, events: EventStream
) -> NamedPipeline:
    """The pipeline of one checked ``[resilience.policies.<name>]`` entry, on this platform's telemetry.

    Args:
        name: the entry's name; labels every policy's metrics.
        entry: the checked entry (as ``cfg.section("resilience")["policies"][name]``).
        clock: the clock of every time-dependent policy.
        registry: where the policies count.
        events: where the breaker publishes its transitions.

    Raises:
        ConfigError: when ``order`` leaves out a configured policy (as ``registry.build`` does).
    """
    on = _On(clock, registry, events)
    by_kind = {kind: make(name, entry[kind], on) for kind, make in _BUILDERS.items() if entry.get(kind)}
    policies = _in_order(name, by_kind, entry.get("order") or [])
    h = entry.get("http")
    http = HttpTimeouts(connect=h["connect"], read=h["read"], write=h["write"], pool=h["pool"]) if h else None
    return NamedPipeline(*policies, name=name, http=http, settings=entry)


def _in_order(name: str, by_kind: dict[str, Policy], order: list[str]) -> list[Policy]:
    """The configured policies in ``order``, outermost first; every one of them must be named there."""
    missing = [kind for kind in by_kind if kind not in order]
    if missing:
        raise ConfigError(
            [
                ConfigProblem(
                    f"resilience.policies.{name}.order",
                    f"must name every configured policy; add {', '.join(map(repr, missing))}",
                    order,
                )
            ]
        )
    return [by_kind[kind] for kind in order if kind in by_kind]


def _timeout(name: str, t: dict[str, Any], on: _On) -> Policy:
    return Timeout(t["duration"], name=name, sync=t["sync"], clock=on.clock, registry=on.registry)


def _retry(name: str, r: dict[str, Any], on: _On) -> Policy:
    budget = throttle = None
    if r["budget"] is not None:
        budget = RetryBudget(r["budget"], burst=r["budget_burst"], clock=on.clock)
    if r["throttle_k"] is not None:
        throttle = AdaptiveThrottle(r["throttle_k"], clock=on.clock)
    return Retry(
        name,
        attempts=r["attempts"],
        backoff=r["backoff"],
        base=r["base"],
        factor=r["factor"],
        max_delay=r["max"],
        jitter=r["jitter"],
        max_time=r["max_time"],
        budget=budget,
        throttle=throttle,
        clock=on.clock,
        registry=on.registry,
    )


def _breaker(name: str, b: dict[str, Any], on: _On) -> Policy:
    wait: Any = b["wait_open"]
    if b["wait_open_factor"] > 1 or b["wait_open_max"] is not None:
        wait = exponential_wait(b["wait_open"], b["wait_open_factor"], b["wait_open_max"])
    return CircuitBreaker(
        name,
        window=b["window"],
        failure_rate=b["failure_rate"],
        slow_call_rate=b["slow_call_rate"],
        slow_call_duration=b["slow_call_duration"],
        minimum_calls=b["minimum_calls"],
        wait_open=wait,
        half_open_calls=b["half_open_calls"],
        max_wait_half_open=b["max_wait_half_open"],
        automatic_half_open=b["automatic_half_open"],
        clock=on.clock,
        registry=on.registry,
        events=on.events,
    )


def _rate_limit(name: str, rl: dict[str, Any], on: _On) -> Policy:
    return RateLimiter(
        name,
        rate=rl["rate"],
        period=rl["period"],
        burst=rl["burst"],
        max_wait=rl["max_wait"],
        clock=on.clock,
        registry=on.registry,
    )


def _bulkhead(name: str, bh: dict[str, Any], on: _On) -> Policy:
    return Bulkhead(
        name,
        max_concurrent=bh["max_concurrent"],
        max_wait=bh["max_wait"],
        clock=on.clock,
        registry=on.registry,
    )


# Each policy kind an entry may configure, and how its checked table becomes the policy; the same kinds
# in the same order as buttress.resilience.registry's table, so a missing kind is named the same way.
_BUILDERS: dict[str, Callable[[str, dict[str, Any], _On], Policy]] = {
    "timeout": _timeout,
    "retry": _retry,
    "breaker": _breaker,
    "rate_limit": _rate_limit,
    "bulkhead": _bulkhead,
}
