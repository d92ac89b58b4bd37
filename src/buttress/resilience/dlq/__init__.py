"""Dead-letter queues: work that failed for good, kept durably and replayed later.

Stores: :class:`SQLiteStore` (embedded, the default ``.buttress/dlq.db``) and :class:`RedisStore`
(Redis Streams with consumer groups, the ``redis`` extra). :func:`open_store` opens either from an
address; :class:`DeadLetterQueue` is the policy that fills a store and replays it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.resilience.dlq.base import DeadLetter, ReplayReport, Store, redact
from buttress.resilience.dlq.queue import CORRELATION_ID, DeadLetterQueue, current_letter
from buttress.resilience.dlq.sqlite import SQLiteStore

if TYPE_CHECKING:
    from buttress.resilience.dlq.redis import RedisStore

__all__ = [
    "CORRELATION_ID",
    "DeadLetter",
    "DeadLetterQueue",
    "RedisStore",
    "ReplayReport",
    "SQLiteStore",
    "Store",
    "current_letter",
    "open_store",
]


def open_store(address: str, *, clock: Clock = SYSTEM_CLOCK) -> Store:
    """Open the store at ``address``: ``sqlite:PATH`` (or a path ending in ``.db``) or a Redis URL.

    Raises:
        ValueError: for an address of no known kind.
        StoreError: when the store cannot be opened or is corrupt.
    """
    scheme = address.split(":", 1)[0].lower() if ":" in address else ""
    if scheme == "sqlite":
        path = address[len("sqlite:") :]
        if path.startswith("//"):
            path = path[2:]  # sqlite:///abs/path and sqlite://rel both accepted
        if not path:
            raise ValueError('a SQLite store needs a path: "sqlite:.buttress/dlq.db"')
        return SQLiteStore(path, clock=clock)
    if scheme in ("redis", "rediss", "unix"):
        from buttress.resilience.dlq.redis import RedisStore

        return RedisStore(address, clock=clock)
    if not scheme and address.endswith(".db"):
        return SQLiteStore(address, clock=clock)
    raise ValueError(
        f'unknown dead-letter store {redact(address)!r}: use "sqlite:PATH" or "redis://host:port/db"'
    )


def __getattr__(name: str) -> Any:
    # RedisStore imports lazily so that importing the package never needs the redis extra.
    if name == "RedisStore":
        from buttress.resilience.dlq.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
