"""One replay of a dead-letter queue, written once and driven from sync or async code.

The decisions of a replay — claim a batch, run each item, delete it, put it back with its new error, or
stop at an open circuit and hand the rest back untouched — live in :meth:`Replay.steps`, a generator that
yields *steps* and is sent each step's result (httpx's auth flows work the same way). A step is either a
store call (:class:`_StoreCall`) or one item through the handler (:class:`_Handle`). The sync driver
runs each step inline; the async driver runs store calls in a worker thread and awaits the handler. So
:meth:`~buttress.resilience.dlq.queue.DeadLetterQueue.replay` and ``areplay`` cannot drift apart.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Final

from buttress.resilience.dlq.base import DeadLetter, ReplayReport
from buttress.resilience.errors import CircuitOpenError, RateLimitedError

if TYPE_CHECKING:
    from buttress.resilience.dlq.queue import DeadLetterQueue

__all__ = ["REPLAYING", "ProgressFn", "Replay"]

#: The dead letter being replayed in this context (read through ``current_letter()``).
REPLAYING: Final[contextvars.ContextVar[DeadLetter | None]] = contextvars.ContextVar(
    "buttress_dlq_replaying", default=None
)

ProgressFn = Callable[[int, int, DeadLetter], None]

# Errors that say "not now" about every item, not "this item is bad": they stop the replay.
_STOPS = (CircuitOpenError, RateLimitedError)


def invoke(runner: Callable[..., Any], letter: DeadLetter) -> Any:
    """Call ``runner`` with a letter's work: its arguments for a ``call`` item, its payload otherwise."""
    if letter.kind == "call" and isinstance(letter.payload, dict):
        return runner(*letter.payload.get("args", ()), **letter.payload.get("kwargs", {}))
    return runner(letter.payload)


class _StoreCall:
    """A step that reads or writes the store; its result is what the store method returns."""

    __slots__ = ("args", "fn", "kwargs")

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def run(self, runner: Callable[..., Any]) -> Any:
        return self.fn(*self.args, **self.kwargs)

    async def arun(self, runner: Callable[..., Any]) -> Any:
        # Store drivers block (sqlite3, redis-py): keep them off the event loop.
        return await asyncio.to_thread(self.fn, *self.args, **self.kwargs)


class _Handle:
    """A step that runs one letter through the handler; its result is the error raised, or ``None``.

    Only :class:`Exception` is caught: a ``KeyboardInterrupt`` or a cancellation ends the replay, and the
    item's lease expires so that another replay picks it up.
    """

    __slots__ = ("letter",)

    def __init__(self, letter: DeadLetter) -> None:
        self.letter = letter

    def run(self, runner: Callable[..., Any]) -> Exception | None:
        token = REPLAYING.set(self.letter)
        try:
            invoke(runner, self.letter)
        except Exception as exc:
            return exc
        finally:
            REPLAYING.reset(token)
        return None

    async def arun(self, runner: Callable[..., Any]) -> Exception | None:
        token = REPLAYING.set(self.letter)
        try:
            result = invoke(runner, self.letter)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            return exc
        finally:
            REPLAYING.reset(token)
        return None


_Step = _StoreCall | _Handle
_Flow = Generator[_Step, Any, ReplayReport]


class Replay:
    """One pass over a queue's items, and its running totals.

    Part of the queue's own machinery, so it uses the queue's private helpers.

    Args:
        queue: the queue being replayed.
        older_than: only items at least this many seconds old.
        limit: at most this many items.
        lease: seconds an item stays leased to this replay.
        batch: items claimed at a time.
        on_progress: called after each item with ``(done, total, item)``.
    """

    __slots__ = (
        "batch",
        "consumer",
        "done",
        "failed",
        "lease",
        "limit",
        "older_than",
        "on_progress",
        "queue",
        "replayed",
        "stopped",
        "total",
    )

    def __init__(
        self,
        queue: DeadLetterQueue,
        *,
        older_than: float | None,
        limit: int | None,
        lease: float,
        batch: int,
        on_progress: ProgressFn | None,
    ) -> None:
        self.queue = queue
        self.older_than = older_than
        self.limit = limit
        self.lease = lease
        self.batch = batch
        self.on_progress = on_progress
        self.consumer = ""
        self.total = self.done = self.replayed = self.failed = 0
        self.stopped: str | None = None

    # -- drivers -------------------------------------------------------------------------------------

    def run(self, runner: Callable[..., Any]) -> ReplayReport:
        """Replay with a sync ``runner``, every step inline."""
        flow = self.steps()
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as finished:
                return finished.value  # type: ignore[no-any-return]
            reply = step.run(runner)

    async def arun(self, runner: Callable[..., Any]) -> ReplayReport:
        """Replay with an async ``runner``; store calls run in a worker thread."""
        flow = self.steps()
        reply: Any = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as finished:
                return finished.value  # type: ignore[no-any-return]
            reply = await step.arun(runner)

    # -- the decisions, once -------------------------------------------------------------------------

    def steps(self) -> _Flow:
        """The replay as steps: claim batches until the items, the limit or a stopping error run out."""
        queue, store, limit = self.queue, self.queue.store, self.limit
        self.total = yield _StoreCall(queue._total, self.older_than, limit)
        self.consumer = queue._consumer()
        upto = yield _StoreCall(store.mark, queue.policy)
        while self.stopped is None and (limit is None or self.done < limit):
            size = self.batch if limit is None else min(self.batch, limit - self.done)
            letters = yield _StoreCall(
                store.claim,
                self.consumer,
                policy=queue.policy,
                older_than=self.older_than,
                upto=upto,
                limit=size,
                lease=self.lease,
            )
            if not letters:
                break
            yield from self._batch(letters)
        remaining = yield _StoreCall(store.count, queue.policy)
        return ReplayReport(self.replayed, self.failed, remaining, self.stopped)

    def _batch(self, letters: Sequence[DeadLetter]) -> Generator[_Step, Any, None]:
        """Run one claimed batch; a stopping error releases the rest of it untouched."""
        queue, consumer = self.queue, self.consumer
        for index, letter in enumerate(letters):
            error = yield _Handle(letter)
            if isinstance(error, _STOPS):
                self.stopped = str(error)
                for rest in letters[index:]:
                    yield _StoreCall(queue.store.release, rest, consumer)
                return
            if error is None:
                yield _StoreCall(queue.store.ack, letter, consumer)
                queue._counters["replayed"].value += 1
                self.replayed += 1
            else:
                yield _StoreCall(queue._failed, letter, consumer, error)
                self.failed += 1
            self.done += 1
            if self.on_progress is not None:
                self.on_progress(self.done, self.total, letter)
