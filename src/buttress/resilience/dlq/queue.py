"""The dead-letter queue: keep work that failed for good, and run it again later.

::

    queue = DeadLetterQueue("sqlite:.buttress/dlq.db", policy="email")
    email = Pipeline(queue, Retry("email"), CircuitBreaker("email"))

    @email
    def send_confirmation(registration_id: int, address: str) -> None: ...

When a call through the queue fails — its retries exhausted, an error the retry policy does not retry, an
open circuit — the queue stores its arguments as a :class:`DeadLetter` (with the error, the attempts made,
first and last failure time, a correlation id and an idempotency key) and re-raises the error with the
item's id in ``error.dead_letter_id``. The put is durable before the error reaches the caller; if the store
cannot take it, the caller gets a :class:`~buttress.errors.StoreError` instead, so nothing is lost silently.

Later, :meth:`DeadLetterQueue.replay` runs the items through a handler — normally the same function under
the same pipeline::

    report = queue.replay(send_confirmation_unwrapped, email)

An item the handler finishes is deleted; one whose replay fails goes to the back of the queue with the new
error; an open circuit (or a rate limit) stops the replay and leaves the items untouched rather than
burning them. Delivery is at least once: a replayer that dies mid-item leaves a lease that expires, and the
item is replayed again, so handlers check :func:`current_letter` ``().idempotency_key``. During a replay the
queue does not dead-letter the handler's failures a second time.

Telemetry: ``buttress_dlq_depth{store,policy}``, ``buttress_dlq_oldest_age_seconds{store,policy}``
(gauges read from the store at collection time) and ``buttress_dlq_items_total{store,policy,kind}`` with
kind ``dead_lettered``, ``replayed``, ``replay_failed`` and ``purged``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import os
import socket
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import StoreError
from buttress.resilience._forward import build
from buttress.resilience._util import check_callable, check_exception_types, check_name, is_async_callable
from buttress.resilience.dlq._replay import REPLAYING, ProgressFn, Replay
from buttress.resilience.dlq.base import (
    DeadLetter,
    ReplayReport,
    Store,
    dump_payload,
    error_fields,
    redact,
)
from buttress.resilience.policy import Policy
from buttress.telemetry.registry import REGISTRY, Registry

__all__ = ["CORRELATION_ID", "DeadLetterQueue", "current_letter"]

#: Set it (e.g. in request middleware) and dead letters created in that context carry it.
CORRELATION_ID: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar(
    "buttress_correlation_id", default=None
)


def current_letter() -> DeadLetter | None:
    """The dead letter being replayed in this context, or ``None`` outside a replay.

    A handler uses ``current_letter().idempotency_key`` to recognise work it already did.
    """
    return REPLAYING.get()


def _default_payload(*args: Any, **kwargs: Any) -> Any:
    return {"args": list(args), "kwargs": kwargs}


class DeadLetterQueue(Policy):
    """A store of dead letters for one policy, and the policy that fills it (see the module docstring).

    Args:
        store: a :class:`Store`, or its address (``"sqlite:PATH"``, ``"redis://…"``).
        policy: the name items are filed under (``--policy`` in ``buttress dlq``).
        payload: turns the failed call's ``(*args, **kwargs)`` into JSON data; by default the arguments
            themselves, stored as ``{"args": [...], "kwargs": {...}}`` and passed back as arguments on
            replay. With a custom function the item is a value and replay calls ``handler(payload)``.
        idempotency_key: computes the key from the call's arguments (default: the item's id).
        on: exception classes that are dead-lettered (default ``Exception``).
        on_if: a predicate that must also hold.
        clock: wall-clock source for failure times and ages.
        registry: where metrics go.
    """

    def __init__(
        self,
        store: Store | str,
        *,
        policy: str = "default",
        payload: Callable[..., Any] | None = None,
        idempotency_key: Callable[..., str] | None = None,
        on: type[BaseException] | Iterable[type[BaseException]] = Exception,
        on_if: Callable[[BaseException], bool] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        registry: Registry = REGISTRY,
    ) -> None:
        super().__init__()
        if isinstance(store, str):
            from buttress.resilience.dlq import open_store

            store = open_store(store, clock=clock)
        if not isinstance(store, Store):
            raise TypeError(f"DeadLetterQueue(store=...) takes a Store or a store address, got {store!r}")
        self.store = store
        self.policy = check_name("DeadLetterQueue", policy)
        self.name = self.policy
        self._payload = check_callable("DeadLetterQueue", "payload", payload)
        self._key = check_callable("DeadLetterQueue", "idempotency_key", idempotency_key)
        self._on = check_exception_types("DeadLetterQueue", "on", on) or (Exception,)
        self._on_if = check_callable("DeadLetterQueue", "on_if", on_if)
        self._clock = clock
        labels = {"store": redact(store.url), "policy": self.policy}
        help_items = "Dead letters by what happened to them."
        self._counters = {
            kind: registry.counter("buttress_dlq_items", help_items, {**labels, "kind": kind})
            for kind in ("dead_lettered", "replayed", "replay_failed", "purged")
        }
        ref = weakref.ref(self)
        registry.gauge(
            "buttress_dlq_depth",
            "Dead letters waiting in the store.",
            labels,
            fn=lambda: float(q.depth()) if (q := ref()) is not None else 0.0,
        )
        registry.gauge(
            "buttress_dlq_oldest_age_seconds",
            "Age of the oldest dead letter (0 when there is none).",
            labels,
            fn=lambda: q.oldest_age() if (q := ref()) is not None else 0.0,
        )

    def __repr__(self) -> str:
        return f"DeadLetterQueue({self.store!r}, policy={self.policy!r})"

    # -- reading -------------------------------------------------------------------------------------

    def depth(self) -> int:
        """Items waiting under this policy."""
        return self.store.count(self.policy)

    def oldest_age(self) -> float:
        """Seconds since the oldest waiting item was dead-lettered (0.0 when none is waiting)."""
        oldest = self.store.oldest(self.policy)
        return 0.0 if oldest is None else max(0.0, self._clock.time() - oldest)

    def list(self, *, older_than: float | None = None, limit: int | None = None) -> builtins.list[DeadLetter]:
        """Items of this policy in queue order."""
        return self.store.list(policy=self.policy, older_than=older_than, limit=limit)

    def get(self, letter_id: str) -> DeadLetter | None:
        """One item by id."""
        return self.store.get(letter_id)

    def purge(self, *, older_than: float | None = None, ids: Sequence[str] | None = None) -> int:
        """Delete this policy's items (those older than ``older_than`` seconds, or these ``ids``)."""
        count = self.store.purge(policy=self.policy, older_than=older_than, ids=ids)
        self._counters["purged"].value += count
        return count

    # -- writing -------------------------------------------------------------------------------------

    def put(
        self,
        payload: Any,
        *,
        error: BaseException | None = None,
        attempts: int = 1,
        first_failure: float | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        kind: str = "value",
    ) -> DeadLetter:
        """Store one item durably and return it.

        Args:
            payload: the work, as JSON data.
            error: the error that made it a dead letter.
            attempts: attempts made so far.
            first_failure: when it first failed (epoch seconds; default now).
            correlation_id: default: :data:`CORRELATION_ID` of the current context.
            idempotency_key: default: the item's id.
            kind: ``"value"`` (replay calls ``handler(payload)``) or ``"call"`` (``payload`` holds
                ``args`` and ``kwargs``).

        Raises:
            TypeError: when ``payload`` is not JSON data.
            StoreError: when the store cannot keep it.
        """
        if kind not in ("value", "call"):
            raise ValueError(f"kind must be 'value' or 'call', got {kind!r}")
        dump_payload(payload)  # fail before touching the store
        now = self._clock.time()
        letter_id = uuid.uuid4().hex
        error_type, error_message = error_fields(error)
        letter = DeadLetter(
            id=letter_id,
            policy=self.policy,
            payload=payload,
            kind=kind,  # type: ignore[arg-type]
            error_type=error_type,
            error_message=error_message,
            attempts=attempts,
            first_failure=first_failure if first_failure is not None else now,
            last_failure=now,
            correlation_id=correlation_id if correlation_id is not None else CORRELATION_ID.get(),
            idempotency_key=idempotency_key or letter_id,
            created=now,
        )
        self.store.put(letter)
        self._counters["dead_lettered"].value += 1
        return letter

    async def aput(self, payload: Any, **kwargs: Any) -> DeadLetter:
        """:meth:`put` from a coroutine (the store runs in a worker thread)."""
        return await asyncio.to_thread(self.put, payload, **kwargs)

    def _wants(self, error: BaseException) -> bool:
        if not isinstance(error, self._on) or not isinstance(error, Exception):
            return False
        return self._on_if is None or bool(self._on_if(error))

    def _letter_args(
        self, error: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        if self._payload is None:
            payload, kind = _default_payload(*args, **kwargs), "call"
        else:
            payload, kind = self._payload(*args, **kwargs), "value"
        return {
            "error": error,
            "attempts": int(getattr(error, "retry_attempts", 1)),
            "first_failure": getattr(error, "first_failure", None),
            "idempotency_key": self._key(*args, **kwargs) if self._key is not None else None,
            "kind": kind,
            "payload": payload,
        }

    def _saved(self, error: BaseException, letter: DeadLetter) -> None:
        try:
            error.dead_letter_id = letter.id  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - exceptions without a __dict__
            pass

    def _not_saved(self, error: BaseException, problem: BaseException) -> StoreError:
        return StoreError(
            f"A call under policy {self.policy!r} failed with {type(error).__name__}: {error}, and it could "
            f"not be dead-lettered in {redact(self.store.url)}: {problem}. The work was NOT saved."
        )

    def _save(self, error: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Dead-letter a failed call, or raise :class:`StoreError` saying the work was not saved."""
        try:
            fields = self._letter_args(error, args, kwargs)
            letter = self.put(fields.pop("payload"), **fields)
        except (StoreError, TypeError) as problem:
            raise self._not_saved(error, problem) from error
        self._saved(error, letter)

    async def _asave(self, error: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """:meth:`_save` with the store in a worker thread."""
        await asyncio.to_thread(self._save, error, args, kwargs)

    def _wrap(self, fn: Callable[..., Any], asynchronous: bool) -> Callable[..., Any]:
        namespace = {
            "fn": fn,
            "replaying": REPLAYING,
            "wants": self._wants,
            "save": self._asave if asynchronous else self._save,
        }
        return build(_DEAD_LETTER, fn, namespace, "dead_letter_call", asynchronous)

    def wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The sync wrapper: a plain ``try``; a failure is stored before it is re-raised."""
        return self._wrap(fn, asynchronous=False)

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The async wrapper: the store is written from a worker thread, off the event loop."""
        return self._wrap(fn, asynchronous=True)

    # -- replay --------------------------------------------------------------------------------------

    @staticmethod
    def _consumer() -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _total(self, older_than: float | None, limit: int | None) -> int:
        total = len(self.store.list(policy=self.policy, older_than=older_than, limit=limit))
        return total

    def replay(
        self,
        handler: Callable[..., Any],
        pipeline: Policy | None = None,
        *,
        older_than: float | None = None,
        limit: int | None = None,
        lease: float = 300.0,
        batch: int = 10,
        on_progress: ProgressFn | None = None,
    ) -> ReplayReport:
        """Run this policy's items through ``handler`` (under ``pipeline``), deleting each that succeeds.

        Args:
            handler: the sync function that does the work.
            pipeline: the policies to run it under, usually the ones it failed under; an open circuit
                stops the replay.
            older_than: only items at least this many seconds old.
            limit: at most this many items.
            lease: seconds an item stays leased to this replay before another may claim it.
            batch: how many items to lease at a time.
            on_progress: called after each item with ``(done, total, item)``.

        Raises:
            TypeError: when ``handler`` is async (use :meth:`areplay`).
        """
        if is_async_callable(handler):
            raise TypeError(
                "replay() takes a sync handler; use `await queue.areplay(handler, ...)` for async ones."
            )
        runner = pipeline.wrap_sync(handler) if pipeline is not None else handler
        return Replay(
            self, older_than=older_than, limit=limit, lease=lease, batch=batch, on_progress=on_progress
        ).run(runner)

    def _failed(self, letter: DeadLetter, consumer: str, error: BaseException) -> None:
        error_type, message = error_fields(error)
        attempts = int(getattr(error, "retry_attempts", 1))
        self.store.release(
            letter, consumer, failed=letter.with_failure(error_type, message, attempts, self._clock.time())
        )
        self._counters["replay_failed"].value += 1

    async def areplay(
        self,
        handler: Callable[..., Awaitable[Any]],
        pipeline: Policy | None = None,
        *,
        older_than: float | None = None,
        limit: int | None = None,
        lease: float = 300.0,
        batch: int = 10,
        on_progress: ProgressFn | None = None,
    ) -> ReplayReport:
        """:meth:`replay` for an async handler; the store runs in a worker thread."""
        if not is_async_callable(handler):
            raise TypeError("areplay() takes an async handler; use queue.replay(handler, ...) for sync ones.")
        runner = pipeline.wrap_async(handler) if pipeline is not None else handler
        return await Replay(
            self, older_than=older_than, limit=limit, lease=lease, batch=batch, on_progress=on_progress
        ).arun(runner)


# During a replay the handler's failures are the replay's business, not new dead letters.
_DEAD_LETTER = """
@async def dead_letter_call({params}):
    try:
        return @await fn({call})
    except Exception as exc:
        if replaying.get() is not None or not wants(exc):
            raise
        @await save(exc, {args}, {kwargs})
        raise
"""
