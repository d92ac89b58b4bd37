"""Caching for service platforms: in-process, Redis and two-tier stores behind one API.

::

    from buttress.cache import Cache, cache

    events = cache("events")                         # from [cache.namespaces.events] in buttress.toml
    page = events.get_or_load(f"event:{code}", lambda: load_event(code))

See ``docs/cache.md`` for backends, patterns (aside, read/write-through, write-behind), invalidation,
warming, TTL strategies and versioning.
"""

from buttress.cache.api import AsyncCache, Cache
from buttress.cache.backends.memory import MISS, MemoryStore
from buttress.cache.invalidation import EventInvalidator, InvalidationBus, LocalBus, RedisBus
from buttress.cache.keys import CacheKeyError, KeyTemplate
from buttress.cache.patterns.aside import AsyncSingleFlight, SingleFlight
from buttress.cache.registry import async_cache, cache, event_bus, publish_event
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
    "event_bus",
    "fingerprint",
    "publish_event",
]
