"""Cache-aside building blocks: single-flight, XFetch early recomputation, and the load lease.

* **Single-flight** — concurrent misses of one key in one process share one load: the first caller
  runs the loader, the others wait for its result (or its exception). Counted as
  ``buttress_cache_stampede_suppressed_total``.
* **XFetch** (Vattani, Chierichetti, Lowenstein, *Optimal Probabilistic Cache Stampede Prevention*,
  VLDB 2015) — a hit recomputes early, before expiry, with a probability that rises as expiry nears and
  with how long the value took to compute (Δ)::

      recompute if  now − Δ · β · ln(U) ≥ expiry,   U uniform in (0, 1]

  ``β = 1`` is the paper's optimum; larger recomputes earlier. Because ``−ln(U)`` is unbounded, a very
  popular key is refreshed by one reader slightly before expiry, and the others keep getting hits.
* **Lease** — across processes, a loader first takes ``SET <key>:lease <token> NX PX <ttl>`` in Redis;
  the processes that do not get it poll the cache until the holder's value appears (or the lease
  runs out, when they load themselves). Four processes missing one key load it once. This is the idea
  of Facebook's memcache leases (Nishtala et al., NSDI 2013) on plain Redis commands.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["AsyncSingleFlight", "SingleFlight", "xfetch_due"]

T = TypeVar("T")


def xfetch_due(now: float, fresh_until: float, delta: float, beta: float, u: float) -> bool:
    """True when XFetch says to recompute now.

    Args:
        now: the current time (same clock as ``fresh_until``).
        fresh_until: when the value expires.
        delta: seconds the value took to compute.
        beta: eagerness (1 is optimal for exponentially distributed arrivals).
        u: a uniform random number in (0, 1].
    """
    return now - delta * beta * math.log(u) >= fresh_until


class _Flight:
    __slots__ = ("done", "error", "value", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.waiters = 0


class SingleFlight(Generic[T]):
    """Collapses concurrent calls for one key (threads) into one call.

    ``do(key, fn)`` runs ``fn`` if no call for ``key`` is in flight, else waits for that call's outcome.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight] = {}

    def in_flight(self, key: Hashable) -> bool:
        """True while a call for ``key`` runs."""
        return key in self._flights

    def do(self, key: Hashable, fn: Callable[[], T]) -> tuple[T, bool]:
        """``(result, shared)``: ``shared`` is true when another caller's call produced it.

        Raises:
            BaseException: whatever ``fn`` raised, in every caller that waited for it.
        """
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            else:
                flight.waiters += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value, True
        try:
            flight.value = fn()
            return flight.value, False
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()


class AsyncSingleFlight(Generic[T]):
    """Collapses concurrent coroutines for one key into one awaited call (one event loop)."""

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[T]] = {}

    def in_flight(self, key: Hashable) -> bool:
        """True while a call for ``key`` runs."""
        return key in self._flights

    async def do(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``(result, shared)``, as :meth:`SingleFlight.do`.

        A waiter that is cancelled does not cancel the shared call (the future is shielded).
        """
        fut = self._flights.get(key)
        if fut is not None:
            return await asyncio.shield(fut), True
        fut = asyncio.get_running_loop().create_future()
        self._flights[key] = fut
        try:
            value = await fn()
        except BaseException as exc:
            if not fut.done():
                if isinstance(exc, asyncio.CancelledError):
                    fut.cancel()
                else:
                    fut.set_exception(exc)
                    # Retrieve it so an exception no waiter picks up is not reported as "never retrieved".
                    fut.exception()
            raise
        else:
            fut.set_result(value)
            return value, False
        finally:
            del self._flights[key]
