"""Backoff schedules with jitter, after the AWS Architecture Blog's "Exponential Backoff And Jitter".

With ``temp = min(max_delay, base * factor ** (n - 1))`` for the n-th retry (``base`` for ``constant``,
``base * n`` for ``linear``), the jitter kinds are:

==============  ===========================================================================
``none``        ``temp``
``full``        ``uniform(0, temp)``
``equal``       ``temp / 2 + uniform(0, temp / 2)``
``decorrelated``  ``min(max_delay, uniform(base, previous * 3))``, starting from ``previous = base``
==============  ===========================================================================

Each call that needs retrying gets its own iterator from :meth:`Backoff.delays`, so the decorrelated
kind's ``previous`` is never shared between concurrent calls.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Final

from buttress.errors import ConfigError, ConfigProblem
from buttress.resilience._util import check_duration

__all__ = ["BACKOFFS", "JITTERS", "Backoff"]

#: Backoff shapes.
BACKOFFS: Final = ("exponential", "constant", "linear")
#: Jitter kinds (AWS Architecture Blog definitions).
JITTERS: Final = ("none", "full", "equal", "decorrelated")


class Backoff:
    """An immutable backoff schedule; :meth:`delays` starts a fresh, per-call sequence.

    Args:
        kind: ``"exponential"`` (``base * factor ** (n - 1)``), ``"constant"`` (``base``) or ``"linear"``
            (``base * n``).
        base: the first delay, in seconds.
        factor: the growth factor of ``exponential`` (at least 1).
        max_delay: no delay is longer than this (``None``: no cap).
        jitter: ``"none"``, ``"full"``, ``"equal"`` or ``"decorrelated"``.
        rng: the random source (pass ``random.Random(seed)`` for repeatable tests).
        owner: the name used in error messages (``"Retry"`` or a config path).
    """

    __slots__ = ("_uniform", "base", "factor", "jitter", "kind", "max_delay")

    def __init__(
        self,
        kind: str = "exponential",
        *,
        base: float | str = 1.0,
        factor: float = 2.0,
        max_delay: float | str | None = 10.0,
        jitter: str = "full",
        rng: random.Random | None = None,
        owner: str = "Retry",
    ) -> None:
        if kind not in BACKOFFS:
            raise ConfigError(
                [ConfigProblem(f"{owner}.backoff", f"must be one of {', '.join(map(repr, BACKOFFS))}", kind)]
            )
        if jitter not in JITTERS:
            raise ConfigError(
                [ConfigProblem(f"{owner}.jitter", f"must be one of {', '.join(map(repr, JITTERS))}", jitter)]
            )
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 1:
            raise ConfigError([ConfigProblem(f"{owner}.factor", "must be a number of at least 1", factor)])
        b = check_duration(owner, "base", base)
        assert b is not None
        self.kind = kind
        self.base = b
        self.factor = float(factor)
        self.max_delay = check_duration(owner, "max_delay", max_delay, allow_none=True)
        self.jitter = jitter
        self._uniform = rng.uniform if rng is not None else random.uniform

    def __repr__(self) -> str:
        return (
            f"Backoff({self.kind!r}, base={self.base}, factor={self.factor}, "
            f"max_delay={self.max_delay}, jitter={self.jitter!r})"
        )

    def ceiling(self, n: int) -> float:
        """The un-jittered delay before the ``n``-th retry (1-based), capped at ``max_delay``."""
        if self.kind == "constant":
            temp = self.base
        elif self.kind == "linear":
            temp = self.base * n
        else:
            try:
                temp = self.base * self.factor ** (n - 1)
            except OverflowError:
                temp = float("inf")
        return temp if self.max_delay is None else min(self.max_delay, temp)

    def delays(self) -> Iterator[float]:
        """An endless iterator of delays for one call's retries; its jitter state is its own."""
        uniform = self._uniform
        n = 0
        previous = self.base
        cap = self.max_delay
        while True:
            n += 1
            if self.jitter == "decorrelated":
                upper = previous * 3 if cap is None else min(cap * 3, previous * 3)
                value = uniform(self.base, max(self.base, upper))
                previous = value if cap is None else min(cap, value)
                yield previous
                continue
            temp = self.ceiling(n)
            if self.jitter == "none":
                yield temp
            elif self.jitter == "full":
                yield uniform(0.0, temp)
            else:  # equal
                yield temp / 2 + uniform(0.0, temp / 2)
