"""The state a namespace's two faces share: backend, TTL strategy, tags, metrics, envelopes.

:class:`~buttress.cache.Cache` and :class:`~buttress.cache.AsyncCache` are thin faces over one
:class:`CacheCore`; everything that can be decided when the namespace is built is decided here, so the
faces' hot paths are closures over plain local variables.
"""

from __future__ import annotations

import functools
import pickle
import random
import sys
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypedDict

from buttress.cache.backends.memory import MemoryStore
from buttress.cache.invalidation import LocalTags, RedisTags, Tags
from buttress.cache.keys import check_hashable, namespace_prefix
from buttress.cache.metrics import CacheMetrics
from buttress.cache.patterns.aside import xfetch_due
from buttress.cache.serialize import Envelope, Serializer, serializer_for
from buttress.cache.ttl import AdaptiveTTL, FixedTTL, JitteredTTL, TTLStrategy, make_strategy
from buttress.cache.versioning import fingerprint
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError
from buttress.telemetry import Registry

__all__ = ["CacheCore", "CacheOptions", "estimate_size"]


def _check_options(name: str, ttl: Any, serve_stale: float, early_recompute: float, lease: float) -> None:
    """Raise one :class:`ConfigError` naming every option of ``name`` that cannot work."""
    problems = []
    if not (isinstance(ttl, int | float) and ttl > 0):
        problems.append(f"ttl must be a positive number of seconds, got {ttl!r}")
    if serve_stale < 0:
        problems.append(f"serve_stale must be >= 0 seconds, got {serve_stale!r}")
    if early_recompute < 0:
        problems.append(f"early_recompute (XFetch beta) must be >= 0, got {early_recompute!r}")
    if lease < 0:
        problems.append(f"lease must be >= 0 seconds, got {lease!r}")
    if problems:
        raise ConfigError(f"cache {name!r}: " + "; ".join(problems))


class CacheOptions(TypedDict, total=False):
    """The keyword arguments of :class:`~buttress.cache.Cache` and :class:`~buttress.cache.AsyncCache`."""

    backend: str | MemoryStore
    ttl: float
    ttl_strategy: str | TTLStrategy
    jitter: float
    p_stale: float | None
    ttl_min: float | None
    ttl_max: float | None
    max_entries: int | None
    max_bytes: int | None
    policy: str
    version: str
    schema: Any
    serializer: str | Serializer
    tiered: bool | None
    l1_ttl: float | None
    serve_stale: float
    early_recompute: float
    lease: float
    key_prefix: str
    socket_timeout: float
    down_for: float
    redis_options: dict[str, Any] | None
    weigher: Callable[[Any], int] | None
    clock: Clock
    registry: Registry | None
    rng: random.Random | None


def estimate_size(value: Any) -> int:
    """Bytes a value is estimated to take: its pickled length (shallow ``sys.getsizeof`` if unpicklable).

    Pickled length tracks the data a value holds rather than Python's per-object overhead, so it ranks
    entries sensibly for a byte bound; it costs one pickling per write, paid only with ``max_bytes``.
    """
    try:
        return max(1, len(pickle.dumps(value, pickle.HIGHEST_PROTOCOL)))
    except Exception:  # unpicklable values still need a weight
        return max(1, sys.getsizeof(value))


class CacheCore:
    """Everything one namespace is made of; see :class:`~buttress.cache.Cache` for the arguments."""

    def __init__(
        self,
        name: str = "default",
        *,
        backend: str | MemoryStore = "memory",
        ttl: float = 300.0,
        ttl_strategy: str | TTLStrategy = "fixed",
        jitter: float = 0.1,
        p_stale: float | None = None,
        ttl_min: float | None = None,
        ttl_max: float | None = None,
        max_entries: int | None = 10_000,
        max_bytes: int | None = None,
        policy: str = "tinylfu",
        version: str = "1",
        schema: Any = None,
        serializer: str | Serializer = "pickle",
        tiered: bool | None = None,
        l1_ttl: float | None = None,
        serve_stale: float = 0.0,
        early_recompute: float = 0.0,
        lease: float = 0.0,
        key_prefix: str = "buttress",
        socket_timeout: float = 1.0,
        down_for: float = 1.0,
        redis_options: dict[str, Any] | None = None,
        weigher: Callable[[Any], int] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        registry: Registry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        _check_options(name, ttl, serve_stale, early_recompute, lease)
        self.name = name
        self.clock = clock
        self.ttl = float(ttl)
        self.serve_stale = float(serve_stale)
        self.beta = float(early_recompute)
        self.lease = float(lease)
        self.metrics = CacheMetrics(name, registry)
        self.fingerprint = fingerprint(schema)
        self.version = version
        self.prefix = namespace_prefix(key_prefix, name, version, self.fingerprint)
        self.serializer = serializer_for(serializer)
        self.random = (rng or random.Random()).random
        self.strategy: TTLStrategy = (
            make_strategy(
                ttl_strategy,
                ttl,
                jitter=jitter,
                p_stale=p_stale,
                ttl_min=ttl_min,
                ttl_max=ttl_max,
                clock=clock,
            )
            if isinstance(ttl_strategy, str)
            else ttl_strategy
        )
        self.fixed_ttl: float | None = self.strategy.ttl if isinstance(self.strategy, FixedTTL) else None
        # Envelopes (freshness + tags) are chosen when the namespace needs them; a namespace that never
        # uses tags, XFetch or serve-stale stores bare values and reads them with no wrapper check.
        self.enveloped = self.serve_stale > 0 or self.beta > 0
        self._rebinders: list[Callable[[], None]] = []
        # Bumped by every write, delete and invalidation: a load that started before one of them does
        # not store what it loaded (it may predate the change), it only returns it.
        self.epoch = 0
        if weigher is None and max_bytes is not None:
            weigher = estimate_size
        self.weigher = weigher
        self.local_tags = LocalTags()

        # -- backend ---------------------------------------------------------------------------------
        self.remote: Any = None  # RedisBackend
        self.tiered: Any = None  # TieredBackend
        self.tags: Tags = self.local_tags
        self.kind = "memory"
        self.store: MemoryStore | None = self._open(
            backend,
            functools.partial(self._memory, max_entries, max_bytes, policy),
            {"socket_timeout": socket_timeout, "down_for": down_for, **(redis_options or {})},
            tiered=tiered is None or tiered,
            l1_ttl=l1_ttl,
        )
        if self.store is not None:
            store = self.store
            self.metrics.size_gauges(lambda: float(len(store)), self._bytes_estimate)

    def _open(
        self,
        backend: str | MemoryStore,
        new_store: Callable[[], MemoryStore],
        redis: dict[str, Any],
        *,
        tiered: bool,
        l1_ttl: float | None,
    ) -> MemoryStore | None:
        """The in-process store for ``backend`` (``None`` for Redis alone); sets the shared tier's parts."""
        if isinstance(backend, MemoryStore):
            return backend
        if backend == "memory":
            return new_store()
        if isinstance(backend, str):
            return self._open_redis(backend, redis, new_store if tiered else None, l1_ttl)
        raise ConfigError(
            f"cache {self.name!r}: backend must be 'memory', a Redis URL or a MemoryStore, got {backend!r}"
        )

    def _open_redis(
        self,
        url: str,
        options: dict[str, Any],
        new_l1: Callable[[], MemoryStore] | None,
        l1_ttl: float | None,
    ) -> MemoryStore | None:
        """Connect to Redis; with ``new_l1``, put that in-process store in front of it (tiered)."""
        from buttress.cache.backends.redis import RedisBackend

        self.remote = RedisBackend(
            url,
            prefix=self.prefix,
            serializer=self.serializer,
            metrics=self.metrics,
            clock=self.clock,
            **options,
        )
        if new_l1 is None:
            self.kind = "redis"
            self.tags = RedisTags(self.remote, self.local_tags, remote_reads=True)
            return None
        from buttress.cache.backends.tiered import TieredBackend

        l1 = new_l1()
        self.tiered = TieredBackend(
            l1,
            self.remote,
            metrics=self.metrics,
            tags=RedisTags(self.remote, self.local_tags, remote_reads=False),
            promote_ttl=self.ttl,
            l1_ttl=l1_ttl,
        )
        self.tags = self.tiered.tags
        self.kind = "tiered"
        return l1

    def _memory(self, max_entries: int | None, max_bytes: int | None, policy: str) -> MemoryStore:
        evictions = self.metrics.evictions

        def on_evict(key: str, value: object, cause: str) -> None:
            if cause == "size":
                evictions.value += 1

        return MemoryStore(
            max_entries, max_bytes=max_bytes, policy=policy, clock=self.clock, on_evict=on_evict
        )

    def _bytes_estimate(self) -> float:
        store = self.store
        if store is None:
            return 0.0
        if store.max_bytes is not None:
            return float(store.weight)
        keys = list(store.keys())
        if not keys:
            return 0.0
        sample = keys[:: max(1, len(keys) // 32)][:32]
        sizes = [estimate_size(e.value) for k in sample if (e := store.peek(k)) is not None]
        return float(sum(sizes) / max(1, len(sizes)) * len(keys))

    # -- decisions shared by both faces --------------------------------------------------------------

    def on_rebind(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` when the namespace switches to envelopes (the faces rebuild their closures)."""
        self._rebinders.append(fn)

    def need_envelopes(self) -> None:
        """Switch to envelopes (first tagged write); every face rebuilds its hot paths once."""
        if not self.enveloped:
            self.enveloped = True
            for fn in self._rebinders:
                fn()

    def ttl_for(self, key: Hashable, ttl: float | None) -> float:
        """The TTL for a write of ``key``: the caller's, or the strategy's."""
        if ttl is not None:
            if not ttl > 0:
                raise ConfigError(
                    f"cache {self.name!r}: ttl must be a positive number of seconds, got {ttl!r}"
                )
            return float(ttl)
        if self.fixed_ttl is not None:
            return self.fixed_ttl
        return self.strategy.ttl_for(key)

    def observe(self, key: Hashable) -> None:
        """Tell an adaptive strategy that ``key`` changed now."""
        if self.strategy.observes:
            self.strategy.observe(key)

    def wrap(self, value: Any, ttl: float, delta: float, pairs: tuple[tuple[str, int], ...]) -> Any:
        """The value to store: an :class:`Envelope` in envelope mode, else ``value`` itself."""
        if not self.enveloped:
            return value
        return Envelope(value, self.clock.time() + ttl, delta, pairs)

    def stored_ttl(self, ttl: float) -> float:
        """How long the backend keeps an entry: its TTL plus the serve-stale grace."""
        return ttl + self.serve_stale

    def check_key(self, key: Any) -> Any:
        """``key`` checked for the backend (hashable in memory; str in Redis, hashed there if needed)."""
        if self.kind == "memory":
            return check_hashable(key)
        if type(key) is not str:
            from buttress.cache.keys import CacheKeyError

            raise CacheKeyError(
                f"cache {self.name!r} is Redis-backed: keys must be str, got {type(key).__name__}"
            )
        return key

    def tag_pairs(self, tags: Sequence[str]) -> tuple[tuple[str, int], ...]:
        """Stamps to store with an entry written now with ``tags``."""
        if not tags:
            return ()
        self.need_envelopes()
        return self.tags.stamps(tags)

    def describe(self) -> dict[str, Any]:
        """A summary for ``buttress cache stats`` and logs."""
        strategy = type(self.strategy).__name__
        info: dict[str, Any] = {
            "namespace": self.name,
            "backend": self.kind,
            "ttl": self.ttl,
            "ttl_strategy": strategy,
            "prefix": self.prefix,
            "hits": self.metrics.hits.value,
            "misses": self.metrics.misses.value,
            "hit_ratio": self.metrics.hit_ratio(),
            "loads": self.metrics.loads.value,
            "load_errors": self.metrics.load_errors.value,
            "stampede_suppressed": self.metrics.suppressed.value,
            "backend_errors": self.metrics.errors.value,
            "corrupt_entries": self.metrics.corrupt.value,
            "evictions": self.metrics.evictions.value,
        }
        if isinstance(self.strategy, AdaptiveTTL):
            info["adaptive_rate"] = self.strategy.rate
        if isinstance(self.strategy, JitteredTTL):
            info["jitter"] = self.strategy.jitter
        if self.store is not None:
            info["entries"] = len(self.store)
            info["bytes_estimate"] = self._bytes_estimate()
        return info

    @staticmethod
    def xfetch(now: float, env: Envelope, beta: float, u: float) -> bool:
        """XFetch's test for ``env`` (:func:`~buttress.cache.patterns.aside.xfetch_due`), ``u`` in [0, 1)."""
        return xfetch_due(now, env.fresh_until, env.delta, beta, u or 1e-300)  # ln(0) is undefined
