"""Named policies: ``buttress.policy("email")`` builds a :class:`Pipeline` from ``buttress.toml``.

::

    [resilience.policies.email]
    retry = { attempts = 3, base = "1s", factor = 2, max = "10s" }
    breaker = { window = "count:50", failure_rate = 0.6, wait_open = "10s", half_open_calls = 5 }
    bulkhead = { max_concurrent = 50, max_wait = "100ms" }
    http = { connect = "5s", read = "10s" }
    dead_letter = "sqlite:.buttress/dlq.db"

    send = buttress.policy("email")(send_confirmation)

The pipeline is built once per name and process and then returned again, so every caller of
``policy("email")`` shares one breaker, one bulkhead and one dead-letter queue — the state a policy is
for. Its policies are named after the entry (``name="email"`` labels their metrics), composed in
``order`` (default: timeout, retry, breaker, rate_limit, bulkhead, outermost first), with the dead-letter
queue outermost so it sees what is left after every retry. Switching the process configuration with
:func:`buttress.config.use` makes the next ``policy(name)`` build afresh; :func:`clear` forgets every
built policy (tests).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.config import Config, current
from buttress.errors import ConfigError, ConfigProblem
from buttress.resilience.bulkhead import Bulkhead
from buttress.resilience.circuit import CircuitBreaker, exponential_wait
from buttress.resilience.pipeline import Pipeline
from buttress.resilience.policy import Policy
from buttress.resilience.ratelimit import RateLimiter
from buttress.resilience.retry import Retry
from buttress.resilience.timeout import Timeout
from buttress.telemetry.events import EVENTS, EventStream
from buttress.telemetry.registry import REGISTRY, Registry

__all__ = ["HttpTimeouts", "NamedPipeline", "build", "clear", "names", "policy"]


@dataclass(frozen=True, slots=True)
class HttpTimeouts:
    """The HTTP client timeouts configured for a provider (seconds; ``None`` means the client's default).

    The pipeline does not enforce these — the HTTP client does, per socket operation, which ends a stuck
    request instead of abandoning it. Hand them to the client when you build it.
    """

    connect: float | None = None
    read: float | None = None
    write: float | None = None
    pool: float | None = None

    def as_httpx(self) -> Any:
        """An ``httpx.Timeout`` with these values (needs the ``web`` extra)."""
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "HttpTimeouts.as_httpx() requires the 'web' extra: pip install 'buttress[web]'"
            ) from exc
        return httpx.Timeout(None, connect=self.connect, read=self.read, write=self.write, pool=self.pool)


class NamedPipeline(Pipeline):
    """A pipeline built from configuration: its policies plus the settings that are not policies.

    Attributes:
        http: the ``http`` timeouts of the entry, for the provider's HTTP client.
        settings: the checked configuration entry the pipeline was built from.
    """

    def __init__(
        self, *policies: Policy, name: str, http: HttpTimeouts | None, settings: dict[str, Any]
    ) -> None:
        super().__init__(*policies, name=name)
        self.http = http
        self.settings = settings


@dataclass(frozen=True, slots=True)
class _Env:
    """What every policy of one pipeline is built with: its clock, metrics registry and event stream."""

    clock: Clock
    registry: Registry
    events: EventStream


def build(
    name: str,
    entry: dict[str, Any],
    *,
    clock: Clock = SYSTEM_CLOCK,
    registry: Registry = REGISTRY,
    events: EventStream = EVENTS,
    idempotency_key: Callable[..., str] | None = None,
) -> NamedPipeline:
    """Build the pipeline for one checked ``[resilience.policies.<name>]`` entry.

    :func:`policy` calls this with the process's defaults; call it yourself to build the same pipeline
    on a virtual clock, into a test's own registry, or several times in one process.

    Args:
        name: the entry's name; labels every policy's metrics.
        entry: the checked entry (as :data:`buttress.resilience.schema.POLICY` returns it).
        clock: the clock every policy waits and measures on.
        registry: where every policy counts.
        events: where the breaker publishes its state transitions.
        idempotency_key: for an entry with ``dead_letter``: derives each dead letter's key from the
            call's arguments (see :class:`~buttress.resilience.dlq.DeadLetterQueue`).
    """
    env = _Env(clock, registry, events)
    by_kind = {kind: make(name, entry[kind], env) for kind, make in _BUILDERS.items() if entry.get(kind)}
    policies = _in_order(name, by_kind, entry.get("order") or [])
    store = entry.get("dead_letter")
    if store:
        from buttress.resilience.dlq import DeadLetterQueue, open_store

        queue = DeadLetterQueue(
            open_store(store, clock=clock),
            policy=name,
            idempotency_key=idempotency_key,
            clock=clock,
            registry=registry,
        )
        policies.insert(0, queue)
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


def _timeout(name: str, t: dict[str, Any], env: _Env) -> Policy:
    return Timeout(t["duration"], name=name, sync=t["sync"], clock=env.clock, registry=env.registry)


def _retry(name: str, r: dict[str, Any], env: _Env) -> Policy:
    budget = throttle = None
    if r["budget"] is not None:
        from buttress.resilience.budget import RetryBudget

        budget = RetryBudget(r["budget"], burst=r["budget_burst"])
    if r["throttle_k"] is not None:
        from buttress.resilience.budget import AdaptiveThrottle

        throttle = AdaptiveThrottle(r["throttle_k"])
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
        clock=env.clock,
        registry=env.registry,
    )


def _breaker(name: str, b: dict[str, Any], env: _Env) -> Policy:
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
        clock=env.clock,
        registry=env.registry,
        events=env.events,
    )


def _rate_limit(name: str, rl: dict[str, Any], env: _Env) -> Policy:
    return RateLimiter(
        name,
        rate=rl["rate"],
        period=rl["period"],
        burst=rl["burst"],
        max_wait=rl["max_wait"],
        clock=env.clock,
        registry=env.registry,
    )


def _bulkhead(name: str, bh: dict[str, Any], env: _Env) -> Policy:
    return Bulkhead(
        name,
        max_concurrent=bh["max_concurrent"],
        max_wait=bh["max_wait"],
        clock=env.clock,
        registry=env.registry,
    )


# Each policy kind an entry may configure, and how its checked table becomes the policy. The order is
# the one ``order`` lists missing kinds in.
_BUILDERS: dict[str, Callable[[str, dict[str, Any], _Env], Policy]] = {
    "timeout": _timeout,
    "retry": _retry,
    "breaker": _breaker,
    "rate_limit": _rate_limit,
    "bulkhead": _bulkhead,
}


_lock = threading.Lock()
# name -> (the configuration it was built from, the pipeline); holding the Config keeps identity checks sound.
_built: dict[str, tuple[Config, NamedPipeline]] = {}


def policy(name: str, *, config: Config | None = None) -> NamedPipeline:
    """The pipeline configured as ``[resilience.policies.<name>]``; the same object on every call.

    Args:
        name: the entry's name.
        config: the configuration to read (default: :func:`buttress.config.current`).

    Raises:
        ConfigError: when no such entry exists (listing the ones that do), or the file is invalid.
    """
    cfg = config if config is not None else current()
    found = _built.get(name)
    if found is not None and found[0] is cfg:
        return found[1]
    with _lock:
        found = _built.get(name)
        if found is not None and found[0] is cfg:
            return found[1]
        section = cfg.section("resilience")
        entries = section["policies"]
        if name not in entries:
            known = ", ".join(sorted(entries)) or "none are configured"
            raise ConfigError(
                [
                    ConfigProblem(
                        f"resilience.policies.{name}",
                        f"no such policy; add a [resilience.policies.{name}] table (configured: {known})",
                        has_value=False,
                    )
                ],
                cfg.source,
            )
        pipeline = build(name, entries[name])
        _built[name] = (cfg, pipeline)
        return pipeline


def names(config: Config | None = None) -> list[str]:
    """The configured policy names."""
    cfg = config if config is not None else current()
    return sorted(cfg.section("resilience")["policies"])


def clear() -> None:
    """Forget every built policy, so the next :func:`policy` call builds afresh (tests)."""
    with _lock:
        _built.clear()
