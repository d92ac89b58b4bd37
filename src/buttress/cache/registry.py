"""Named namespaces built from ``buttress.toml``: ``buttress.cache("events")``.

The first call for a name builds the namespace from ``[cache]`` and ``[cache.namespaces.<name>]`` of
the current configuration (:func:`buttress.config.current`) and keeps it; later calls return the same
object, so every module of a service shares one L1, one connection pool and one set of metrics per
namespace. A name with no table gets the section's defaults (memory backend, 5-minute fixed TTL).

Domain-event invalidation (``invalidate_on``) is wired when a namespace is built: to the process's
in-process bus (``events_bus = "local"``) or to Redis pub/sub (``events_bus = "redis"``, on the
section's Redis backend). Publish events with :func:`publish_event`.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from buttress._extras import import_object
from buttress.cache.api import AsyncCache, Cache
from buttress.cache.core import CacheCore
from buttress.cache.invalidation import EventInvalidator, InvalidationBus, LocalBus, RedisBus
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.config import Config, current
from buttress.errors import ConfigError
from buttress.telemetry import Registry

if TYPE_CHECKING:
    from buttress.cache.warming import Progress, Warmer, WarmReport

__all__ = [
    "async_cache",
    "cache",
    "declared_warmers",
    "event_bus",
    "publish_event",
    "reset",
    "resolve_warmer",
    "warm_declared",
]

_lock = threading.RLock()
_cores: dict[str, CacheCore] = {}
_sync: dict[str, Cache] = {}
_invalidators: list[EventInvalidator] = []
_bus: InvalidationBus | None = None


def options_for(name: str, config: Config | None = None) -> dict[str, Any]:
    """The :class:`~buttress.cache.Cache` keyword arguments that ``[cache]`` gives namespace ``name``."""
    section = (config or current()).section("cache")
    ns = section["namespaces"].get(name)
    if ns is None:
        from buttress.cache.schema import NAMESPACE
        from buttress.config import Problems

        problems = Problems()
        ns = NAMESPACE.parse({}, f"cache.namespaces.{name}", problems)
        if problems.items:  # pragma: no cover - the defaults are valid
            raise ConfigError(problems.items)
    backend = ns["backend"] or section["backend"]
    return {
        "backend": backend,
        "ttl": ns["ttl"],
        "ttl_strategy": ns["ttl_strategy"],
        "jitter": ns["jitter"],
        "p_stale": ns["p_stale"],
        "ttl_min": ns["ttl_min"],
        "ttl_max": ns["ttl_max"],
        "max_entries": ns["max_entries"],
        "max_bytes": ns["max_bytes"],
        "version": ns["version"],
        "tiered": ns["tiered"],
        "l1_ttl": ns["l1_ttl"],
        "serve_stale": ns["serve_stale"],
        "early_recompute": ns["early_recompute"],
        "lease": ns["lease"],
        "key_prefix": section["key_prefix"],
        "socket_timeout": section["socket_timeout"],
        "down_for": section["down_for"],
    }


def event_bus() -> InvalidationBus:
    """The process's domain-event bus, as ``[cache].events_bus`` says (built on first use)."""
    global _bus
    with _lock:
        if _bus is None:
            section = current().section("cache")
            if section["events_bus"] == "redis":
                if not section["backend"].startswith(("redis", "rediss", "unix")):
                    raise ConfigError('cache.events_bus = "redis" needs cache.backend to be a Redis URL')
                _bus = RedisBus(section["backend"], channel=f"{section['key_prefix']}:events")
            else:
                _bus = LocalBus()
        return _bus


def publish_event(event: str, **payload: Any) -> None:
    """Publish a domain event (``publish_event("event.updated", code="PyCon-25")``) on :func:`event_bus`."""
    event_bus().publish(event, payload)


def _core(name: str, schema: Any, clock: Clock, registry: Registry | None) -> CacheCore:
    core = _cores.get(name)
    if core is None:
        options = options_for(name)
        core = CacheCore(name, schema=schema, clock=clock, registry=registry, **options)
        _cores[name] = core
        mapping = current().section("cache")["namespaces"].get(name, {}).get("invalidate_on") or {}
        if mapping:
            sync = _sync.setdefault(name, Cache(core=core))
            _invalidators.append(EventInvalidator(event_bus(), {sync: mapping}))
    return core


def cache(
    name: str, *, schema: Any = None, clock: Clock = SYSTEM_CLOCK, registry: Registry | None = None
) -> Cache:
    """The :class:`~buttress.cache.Cache` for namespace ``name``, built from configuration once.

    Args:
        name: a ``[cache.namespaces.<name>]`` table (or any name, for the defaults).
        schema: the cached type, for the schema fingerprint (used on first build only).
        clock: the clock (used on first build only).
        registry: the metrics registry (used on first build only).
    """
    with _lock:
        existing = _sync.get(name)
        if existing is not None:
            return existing
        result = Cache(core=_core(name, schema, clock, registry))
        _sync[name] = result
        return result


def async_cache(
    name: str, *, schema: Any = None, clock: Clock = SYSTEM_CLOCK, registry: Registry | None = None
) -> AsyncCache:
    """An :class:`~buttress.cache.AsyncCache` for namespace ``name`` over the shared core.

    A new face each call (faces are cheap; single-flight lives in a face, one per event loop), sharing
    entries, connections and metrics with :func:`cache`.
    """
    with _lock:
        return AsyncCache(core=_core(name, schema, clock, registry))


def resolve_warmer(spec: str, where: str) -> Callable[[], Any]:
    """The function ``"package.module:function"`` names, as a no-argument loader.

    A coroutine function is wrapped to run on an event loop of its own (warmers run on worker threads).

    Args:
        spec: ``package.module:function`` (dots after the colon reach nested attributes).
        where: the configuration path shown in errors (``cache.namespaces.events.warmers[0]``).

    Raises:
        ConfigError: naming ``where``, when the spec is malformed, does not import or is not callable.
    """
    try:
        target = import_object(spec, "warmer")
    except LookupError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not callable(target):
        raise ConfigError(f"{where}: warmer {spec!r} is not a function")
    if inspect.iscoroutinefunction(target):
        fn = target
        return lambda: asyncio.run(fn())
    return target  # type: ignore[no-any-return]


def declared_warmers(names: Iterable[str] | None = None) -> list[Warmer]:
    """The warmers ``[cache.namespaces.<name>].warmers`` declare, each on :func:`cache` ``(name)``.

    A warmer is required when ``[cache].warmers_required`` lists its spec or its function's name.

    Args:
        names: the namespaces to take; every configured namespace when ``None``.

    Raises:
        ConfigError: for an unknown namespace or a warmer that cannot be imported.
    """
    from buttress.cache.warming import Warmer

    section = current().section("cache")
    namespaces = section["namespaces"]
    chosen = list(namespaces) if names is None else list(names)
    required = set(section["warmers_required"])
    warmers = []
    for name in chosen:
        if name not in namespaces:
            raise ConfigError(f"cache namespace {name!r} is not configured; known: {', '.join(namespaces)}")
        for i, spec in enumerate(namespaces[name]["warmers"]):
            load = resolve_warmer(spec, f"cache.namespaces.{name}.warmers[{i}]")
            must = spec in required or spec.partition(":")[2] in required
            warmers.append(Warmer(f"{name}:{spec}", cache(name), load, required=must))
    return warmers


def warm_declared(
    names: Iterable[str] | None = None,
    *,
    concurrency: int = 4,
    on_progress: Callable[[Progress], None] | None = None,
) -> WarmReport:
    """Run the warmers buttress.toml declares — the start-up call of a service that warms its caches.

    ::

        report = buttress.cache.warm_declared(on_progress=lambda p: log.info("warming %s", p))

    Raises:
        WarmingError: when a required warmer failed (after every warmer ran; others' failures are in
            the report only).
        ConfigError: for an unknown namespace or a warmer that cannot be imported.
    """
    from buttress.cache.warming import warm

    return warm(declared_warmers(names), concurrency=concurrency, on_progress=on_progress)


def reset() -> None:
    """Close and forget every namespace built here (tests, and reloading configuration)."""
    global _bus
    with _lock:
        for invalidator in _invalidators:
            invalidator.close()
        _invalidators.clear()
        for face in _sync.values():
            face.close()
        for name, core in _cores.items():
            if name not in _sync and core.tiered is not None:
                core.tiered.close()
        _sync.clear()
        _cores.clear()
        if isinstance(_bus, RedisBus):
            _bus.close()
        _bus = None
