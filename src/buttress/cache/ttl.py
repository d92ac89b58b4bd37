"""TTL strategies: how long an entry lives, decided when it is written.

* :class:`FixedTTL` — every entry lives ``ttl`` seconds.
* :class:`JitteredTTL` — ``ttl × (1 ± jitter)``, uniformly: entries written together (a warm-up, a
  deploy) do not all expire in the same second and stampede the source together.
* :class:`AdaptiveTTL` — the TTL that bounds staleness. If a key's value changes as a Poisson process
  with rate λ (changes per second), the chance that it changed within ``t`` seconds of being cached is
  ``1 − e^(−λt)``. Asking that chance to be at most ``p_stale`` gives::

      TTL = −ln(1 − p_stale) / λ          clamped to [ttl_min, ttl_max]

  λ is estimated from what the namespace observes: every write and invalidation of a key that was
  written before is one change; the time since the key's previous change is one inter-change interval.
  λ is the reciprocal of an exponentially weighted mean of those intervals (weight ``alpha`` per
  observation), so it follows a namespace whose data starts changing faster or slower. Until two changes
  of one key have been seen, the base ``ttl`` is used. The last-change times of at most ``track`` keys are
  kept (oldest forgotten first), so memory stays bounded.

Strategies expose ``ttl_for(key) -> float`` and ``observe(key)``; the cache calls ``observe`` on each
write and invalidation only when the strategy needs it (``observes`` is true).
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Hashable
from typing import Protocol

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError

__all__ = ["AdaptiveTTL", "FixedTTL", "JitteredTTL", "TTLStrategy", "make_strategy"]


class TTLStrategy(Protocol):
    """Decides each entry's TTL; ``observes`` says whether :meth:`observe` must be called."""

    observes: bool

    def ttl_for(self, key: Hashable) -> float:
        """Seconds the entry written now under ``key`` should live."""
        ...

    def observe(self, key: Hashable) -> None:
        """``key`` was written or invalidated now."""
        ...


class FixedTTL:
    """The same TTL for every entry.

    Args:
        ttl: seconds; must be positive.
    """

    __slots__ = ("ttl",)
    observes = False

    def __init__(self, ttl: float) -> None:
        if not ttl > 0:
            raise ConfigError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self.ttl = float(ttl)

    def ttl_for(self, key: Hashable) -> float:
        """``ttl``."""
        return self.ttl

    def observe(self, key: Hashable) -> None:
        """Nothing to learn."""


class JitteredTTL:
    """``ttl × (1 + u)`` with ``u`` uniform in ``[−jitter, +jitter]``.

    Args:
        ttl: the centre, in seconds.
        jitter: the fraction of ``ttl`` to spread by, in ``[0, 1)``.
        rng: the random source (seed one in tests).
    """

    __slots__ = ("_uniform", "jitter", "ttl")
    observes = False

    def __init__(self, ttl: float, jitter: float = 0.1, *, rng: random.Random | None = None) -> None:
        if not ttl > 0:
            raise ConfigError(f"ttl must be a positive number of seconds, got {ttl!r}")
        if not 0 <= jitter < 1:
            raise ConfigError(f"jitter must be a fraction in [0, 1), got {jitter!r}")
        self.ttl = float(ttl)
        self.jitter = float(jitter)
        self._uniform = (rng or random.Random()).uniform

    def ttl_for(self, key: Hashable) -> float:
        """A TTL drawn uniformly from ``ttl × [1 − jitter, 1 + jitter]``."""
        return self.ttl * (1.0 + self._uniform(-self.jitter, self.jitter))

    def observe(self, key: Hashable) -> None:
        """Nothing to learn."""


class AdaptiveTTL:
    """``−ln(1 − p_stale) / λ`` clamped to ``[ttl_min, ttl_max]``, λ learned from observed changes.

    Args:
        ttl: used until λ can be estimated.
        p_stale: the accepted probability that a cached value has changed at the source, in (0, 1).
        ttl_min: lower clamp (default ``ttl / 10``).
        ttl_max: upper clamp (default ``ttl × 10``).
        alpha: weight of each new interval in the moving mean.
        track: how many keys' last-change times to remember.
        clock: the clock changes are timed on.
    """

    __slots__ = (
        "_factor",
        "_last",
        "_mean",
        "alpha",
        "clock",
        "p_stale",
        "track",
        "ttl",
        "ttl_max",
        "ttl_min",
    )
    observes = True

    def __init__(
        self,
        ttl: float,
        p_stale: float = 0.05,
        *,
        ttl_min: float | None = None,
        ttl_max: float | None = None,
        alpha: float = 0.1,
        track: int = 10_000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not ttl > 0:
            raise ConfigError(f"ttl must be a positive number of seconds, got {ttl!r}")
        if not 0 < p_stale < 1:
            raise ConfigError(f"p_stale must be a probability strictly between 0 and 1, got {p_stale!r}")
        self.ttl = float(ttl)
        self.p_stale = float(p_stale)
        self.ttl_min = float(ttl_min) if ttl_min is not None else self.ttl / 10
        self.ttl_max = float(ttl_max) if ttl_max is not None else self.ttl * 10
        if self.ttl_min > self.ttl_max:
            raise ConfigError(f"ttl_min ({self.ttl_min}) must not exceed ttl_max ({self.ttl_max})")
        self.alpha = alpha
        self.track = track
        self.clock = clock
        self._factor = -math.log1p(-self.p_stale)
        self._last: OrderedDict[Hashable, float] = OrderedDict()
        self._mean: float | None = None

    @property
    def rate(self) -> float | None:
        """The estimated λ (changes per key per second), or ``None`` before the first interval."""
        if self._mean is None:
            return None
        return math.inf if self._mean == 0 else 1.0 / self._mean

    def observe(self, key: Hashable) -> None:
        """Record a change of ``key`` now."""
        now = self.clock.monotonic()
        last = self._last.pop(key, None)
        self._last[key] = now
        if last is not None:
            interval = now - last
            self._mean = interval if self._mean is None else self._mean + self.alpha * (interval - self._mean)
        elif len(self._last) > self.track:
            self._last.popitem(last=False)

    def ttl_for(self, key: Hashable) -> float:
        """The clamped staleness-bounding TTL, or ``ttl`` before λ is known."""
        mean = self._mean
        if mean is None:
            return self.ttl
        # TTL = −ln(1 − p) / λ = −ln(1 − p) × mean interval
        return min(self.ttl_max, max(self.ttl_min, self._factor * mean))


def make_strategy(
    kind: str,
    ttl: float,
    *,
    jitter: float = 0.1,
    p_stale: float | None = None,
    ttl_min: float | None = None,
    ttl_max: float | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> FixedTTL | JitteredTTL | AdaptiveTTL:
    """The strategy named ``kind`` (``fixed``, ``jittered``, ``adaptive``) built from config values."""
    if kind == "fixed":
        return FixedTTL(ttl)
    if kind == "jittered":
        return JitteredTTL(ttl, jitter)
    if kind == "adaptive":
        return AdaptiveTTL(
            ttl, p_stale if p_stale is not None else 0.05, ttl_min=ttl_min, ttl_max=ttl_max, clock=clock
        )
    raise ConfigError(f"ttl_strategy must be 'fixed', 'jittered' or 'adaptive', got {kind!r}")
