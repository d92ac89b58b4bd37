"""Limits on retrying as a whole: a retry budget and adaptive client-side throttling.

Retries multiply load exactly when a dependency is struggling. Two guards keep them in proportion:

* :class:`RetryBudget` — retries may add at most ``ratio`` (say 10 %) to the calls made, token-bucket
  style (Finagle's ``RetryBudget``, gRPC's retry throttling): every first attempt deposits ``ratio`` of a
  token, every retry withdraws a whole one, the bucket holds at most ``burst`` tokens (and starts full),
  and ``min_per_second`` tokens trickle in so a quiet service can still retry now and then. Deposits are
  counted with a plain increment and settled lazily when a retry asks for a token, so the success path
  pays one attribute increment. Under heavy thread contention a deposit can rarely be lost: a budget is
  a soft limit.
* :class:`AdaptiveThrottle` — the client rejects calls locally, before sending them, with probability
  ``max(0, (requests - k * accepts) / (requests + 1))`` over the last ``window`` seconds (Google SRE book,
  "Handling Overload"). With ``k = 2`` the backend sees at most about twice the load it accepts.
"""

from __future__ import annotations

import math
import random
import threading

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError, ConfigProblem
from buttress.resilience._util import check_duration

__all__ = ["AdaptiveThrottle", "RetryBudget"]


class RetryBudget:
    """Retries limited to a ratio of recent calls (token bucket); share one between policies to pool it.

    Args:
        ratio: tokens deposited per first attempt, in (0, 1]; ``0.1`` allows retries worth 10 % of calls.
        burst: the bucket's capacity, in retries; also its initial content.
        min_per_second: tokens added per second regardless of traffic.
        clock: time source for the trickle.
    """

    __slots__ = ("_last", "_lock", "_mono", "_seen", "_tokens", "burst", "calls", "min_per_second", "ratio")

    def __init__(
        self,
        ratio: float = 0.1,
        *,
        burst: float = 10.0,
        min_per_second: float = 0.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
            raise ConfigError(
                [ConfigProblem("RetryBudget.ratio", "must be a ratio in (0, 1], e.g. 0.1", ratio)]
            )
        if isinstance(burst, bool) or not isinstance(burst, int | float) or burst < 1 or math.isinf(burst):
            raise ConfigError([ConfigProblem("RetryBudget.burst", "must be a number of at least 1", burst)])
        if (
            isinstance(min_per_second, bool)
            or not isinstance(min_per_second, int | float)
            or min_per_second < 0
        ):
            raise ConfigError(
                [
                    ConfigProblem(
                        "RetryBudget.min_per_second", "must be a number of at least 0", min_per_second
                    )
                ]
            )
        self.ratio = float(ratio)
        self.burst = float(burst)
        self.min_per_second = float(min_per_second)
        self.calls = 0  # first attempts; incremented by the retry wrapper on every call
        self._seen = 0
        self._tokens = self.burst
        self._lock = threading.Lock()
        self._mono = clock.monotonic
        self._last = self._mono()

    def _settle(self) -> None:
        now = self._mono()
        calls = self.calls
        self._tokens = min(
            self.burst,
            self._tokens + (calls - self._seen) * self.ratio + (now - self._last) * self.min_per_second,
        )
        self._seen = calls
        self._last = now

    def withdraw(self) -> bool:
        """Take one retry's token; ``False`` when the budget is spent."""
        with self._lock:
            self._settle()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    @property
    def tokens(self) -> float:
        """Retries the budget would allow right now."""
        with self._lock:
            self._settle()
            return self._tokens

    def __repr__(self) -> str:
        return f"RetryBudget(ratio={self.ratio}, burst={self.burst}, tokens={self.tokens:.2f})"


class AdaptiveThrottle:
    """Client-side throttling from the SRE book: reject locally in proportion to what the backend refuses.

    Args:
        k: the multiplier; 2 lets about twice the accepted load through, lower is more aggressive.
        window: seconds of history (the book uses two minutes), kept in one-second buckets.
        clock: time source for the window.
        rng: the random source (pass ``random.Random(seed)`` for repeatable tests).
    """

    __slots__ = (
        "_accepts",
        "_lock",
        "_mono",
        "_random",
        "_requests",
        "_second",
        "accepts",
        "k",
        "requests",
        "window",
    )

    def __init__(
        self,
        k: float = 2.0,
        *,
        window: float | str = 120.0,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int | float) or k < 1 or math.isinf(k):
            raise ConfigError(
                [ConfigProblem("AdaptiveThrottle.k", "must be a number of at least 1, e.g. 2", k)]
            )
        seconds = check_duration("AdaptiveThrottle", "window", window, positive=True)
        assert seconds is not None
        self.k = float(k)
        self.window = max(1, math.ceil(seconds))
        self._requests = [0] * self.window
        self._accepts = [0] * self.window
        self.requests = 0
        self.accepts = 0
        self._lock = threading.Lock()
        self._mono = clock.monotonic
        self._second = math.floor(self._mono())
        self._random = rng.random if rng is not None else random.random

    def _roll(self) -> int:
        second = math.floor(self._mono())
        last = self._second
        if second > last:
            for s in range(last + 1, min(second, last + self.window) + 1):
                j = s % self.window
                self.requests -= self._requests[j]
                self.accepts -= self._accepts[j]
                self._requests[j] = self._accepts[j] = 0
            self._second = second
        return second % self.window

    def probability(self) -> float:
        """The current local rejection probability."""
        with self._lock:
            self._roll()
            return max(0.0, (self.requests - self.k * self.accepts) / (self.requests + 1))

    def allow(self) -> bool:
        """Decide whether to send one request; counts it as a request either way."""
        with self._lock:
            j = self._roll()
            p = max(0.0, (self.requests - self.k * self.accepts) / (self.requests + 1))
            self._requests[j] += 1
            self.requests += 1
        return p <= 0.0 or self._random() >= p

    def accepted(self) -> None:
        """The backend accepted a request that :meth:`allow` let through (it answered, even with an error)."""
        with self._lock:
            j = self._roll()
            self._accepts[j] += 1
            self.accepts += 1

    def __repr__(self) -> str:
        return f"AdaptiveThrottle(k={self.k}, window={self.window}, p={self.probability():.3f})"
