"""Caching for service platforms: in-process, Redis and two-tier stores behind one API.

::

    from buttress.cache import Cache, cache

    events = cache("events")                         # from [cache.namespaces.events] in buttress.toml
    page = events.get_or_load(f"event:{code}", lambda: load_event(code))

See ``docs/cache.md`` for backends, patterns (aside, read/write-through, write-behind), invalidation,
warming, TTL strategies and versioning.
"""

import sys as _sys
import types as _types
from typing import Any as _Any

from buttress.cache.api import AsyncCache, Cache
from buttress.cache.backends.memory import MISS, MemoryStore
from buttress.cache.invalidation import EventInvalidator, InvalidationBus, LocalBus, RedisBus
from buttress.cache.keys import CacheKeyError, KeyTemplate
from buttress.cache.patterns.aside import AsyncSingleFlight, SingleFlight
from buttress.cache.registry import (
    async_cache,
    cache,
    declared_warmers,
    event_bus,
    publish_event,
    warm_declared,
)
from buttress.cache.serialize import JsonSerializer, PickleSerializer, SerializationError, Serializer
from buttress.cache.ttl import AdaptiveTTL, FixedTTL, JitteredTTL, TTLStrategy
from buttress.cache.versioning import fingerprint

__all__ = [
    "MISS",
    "AdaptiveTTL",
    "AsyncCache",
    "AsyncSingleFlight",
    "Cache",
    "CacheKeyError",
    "EventInvalidator",
    "FixedTTL",
    "InvalidationBus",
    "JitteredTTL",
    "JsonSerializer",
    "KeyTemplate",
    "LocalBus",
    "MemoryStore",
    "PickleSerializer",
    "RedisBus",
    "SerializationError",
    "Serializer",
    "SingleFlight",
    "TTLStrategy",
    "async_cache",
    "cache",
    "declared_warmers",
    "event_bus",
    "fingerprint",
    "publish_event",
    "warm_declared",
]


class _CallableModule(_types.ModuleType):
    """Lets ``buttress.cache("events")`` work although ``buttress.cache`` is this package.

    The design's one-liner ``buttress.cache("events")`` names the package, because importing a
    submodule always rebinds ``buttress.cache`` to the package; so the package itself is callable and
    forwards to :func:`cache`. Type checkers see a module here: typed code imports
    ``from buttress.cache import cache``.
    """

    def __call__(self, name: str, **kwargs: _Any) -> Cache:
        return cache(name, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
