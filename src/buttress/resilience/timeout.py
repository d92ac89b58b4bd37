"""Timeout: give up on a call that takes too long.

**Async calls** are cancelled at the deadline, the way ``asyncio.timeout`` cancels them, and the caller
gets :class:`~buttress.resilience.TimeoutExceededError` (also a builtin ``TimeoutError``); an outside
cancellation that arrives at the same moment still propagates as ``CancelledError``. It is cheaper than
``asyncio.timeout``: all timed calls on a loop share one deadline timer (see
:mod:`buttress.resilience._deadlines`) instead of scheduling one per call. Deadlines use the loop's time,
so on a loop from :meth:`VirtualClock.new_event_loop` they follow the virtual clock.

**Sync calls** cannot be interrupted from outside a thread, so they get one of two documented behaviours,
chosen with ``sync=``:

``"thread"`` (default)
    The call runs in a worker thread (a small pool of daemon threads, at most ``max_workers``) while the
    caller waits up to the timeout. At the deadline the caller gets ``TimeoutExceededError`` and the call is
    **abandoned**: it keeps running in its worker until it returns on its own, and its result or error is
    dropped. Side effects it makes after the deadline still happen, so time-bound only idempotent work, or
    give the called code its own timeouts (HTTP clients' connect/read timeouts) so it ends soon after.
    Context variables are copied into the worker.
``"deadline"``
    The call runs in the caller's thread to completion; if it took longer than the timeout, its result is
    dropped and ``TimeoutExceededError`` is raised afterwards. Nothing runs in another thread, nothing is
    abandoned; the caller is not released early. Useful to make slow calls count as failures.

``with timeout:`` around a sync block uses the ``"deadline"`` behaviour; ``async with timeout:`` cancels
the block at the deadline.

Counted in ``buttress_timelimiter_calls_total{name,kind}`` with kind ``successful``, ``failed`` or
``timeout`` (Resilience4j's TimeLimiter names).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError, ConfigProblem
from buttress.resilience._deadlines import CANCELLING, FIRED, TASK, Lane, Lanes
from buttress.resilience._forward import build
from buttress.resilience._util import check_duration, check_name, check_positive_int, wait_event
from buttress.resilience._workers import Job, Workers
from buttress.resilience.errors import TimeoutExceededError
from buttress.resilience.policy import Policy
from buttress.telemetry.registry import REGISTRY, Registry

__all__ = ["SYNC_MODES", "Timeout"]

#: How a sync call is bounded (see the module docstring).
SYNC_MODES: Final = ("thread", "deadline")


class Timeout(Policy):
    """Bounds how long a call may take (see the module docstring for sync and async semantics).

    Args:
        seconds: the limit (a number or ``"2s"``); must be positive.
        name: labels metrics and errors.
        sync: ``"thread"`` or ``"deadline"``: how sync calls are bounded.
        max_workers: the most worker threads ``"thread"`` mode runs at once for this policy.
        clock: time source for sync calls (async calls use the event loop's time).
        registry: where metrics go.

    Raises:
        ConfigError: naming the bad argument.
    """

    def __init__(
        self,
        seconds: float | str,
        *,
        name: str = "default",
        sync: str = "thread",
        max_workers: int = 64,
        clock: Clock = SYSTEM_CLOCK,
        registry: Registry = REGISTRY,
    ) -> None:
        super().__init__()
        self.name = check_name("Timeout", name)
        limit = check_duration("Timeout", "seconds", seconds, positive=True)
        assert limit is not None
        self.seconds = limit
        if sync not in SYNC_MODES:
            raise ConfigError(
                [ConfigProblem("Timeout.sync", f"must be one of {', '.join(map(repr, SYNC_MODES))}", sync)]
            )
        self.sync = sync
        self._workers = Workers(self.name, check_positive_int("Timeout", "max_workers", max_workers))
        self._clock = clock
        self._mono = clock.monotonic
        labels = {"name": self.name}
        help_text = "Calls through a timeout, by outcome."
        self._ok = registry.counter("buttress_timelimiter_calls", help_text, {**labels, "kind": "successful"})
        self._failed = registry.counter("buttress_timelimiter_calls", help_text, {**labels, "kind": "failed"})
        self._timeouts = registry.counter(
            "buttress_timelimiter_calls", help_text, {**labels, "kind": "timeout"}
        )
        self._lanes = Lanes()  # the shared deadline timer of each event loop this policy runs on

    def __repr__(self) -> str:
        return f"Timeout({self.seconds!r}, name={self.name!r}, sync={self.sync!r})"

    def _expired(self) -> TimeoutExceededError:
        self._timeouts.value += 1
        return TimeoutExceededError(self.name, self.seconds)

    # -- async ---------------------------------------------------------------------------------------

    def _lane(self) -> tuple[Lane, asyncio.Task[Any]]:
        loop = asyncio.get_running_loop()
        lane = self._lanes.last
        if lane is None or lane.loop is not loop:
            lane = self._lanes.get(loop)
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("Timeout needs to run inside an asyncio task.")
        return lane, task

    def _start(self) -> tuple[Lane, list[Any]]:
        lane, task = self._lane()
        deadline = lane.now() + self.seconds
        entry: list[Any] = [deadline, task, task.cancelling(), False]
        lane.queue.append(entry)
        if lane.handle is None:
            lane.arm(deadline)
        return lane, entry

    def _expired_or_not(self, entry: list[Any], error: BaseException | None) -> None:
        """After our deadline fired: raise TimeoutExceededError if it caused ``error``, else tidy up."""
        task = asyncio.current_task()
        assert task is not None
        remaining = task.uncancel()
        if isinstance(error, asyncio.CancelledError) and remaining <= entry[CANCELLING]:
            raise self._expired() from None

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The async wrapper: an append to and a pop from the loop's lane of deadlines per call."""
        namespace = {
            "fn": fn,
            "lanes": self._lanes,
            "seconds": self.seconds,
            "get_running_loop": asyncio.get_running_loop,
            "current_task": asyncio.current_task,
            "expired_or_not": self._expired_or_not,
            "ok": self._ok,
            "failed": self._failed,
            "TASK": TASK,
            "FIRED": FIRED,
        }
        return build(_TIMED_ASYNC, fn, namespace, "timed_call")

    async def _aenter(self) -> Any:
        return self._start()

    async def _aexit(self, token: Any, error: BaseException | None) -> None:
        lane, entry = token
        entry[TASK] = None
        lane.trim()
        if entry[FIRED]:
            self._expired_or_not(entry, error)

    # -- sync ----------------------------------------------------------------------------------------

    def _run_in_worker(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        job = Job(fn, args, kwargs)
        self._workers.submit(job)
        wait_event(job.done, self.seconds, self._clock)
        if not job.done.is_set():
            job.abandoned = True
            raise self._expired()
        if job.error is not None:
            self._failed.value += 1
            error = job.error
            job.error = None
            raise error
        self._ok.value += 1
        return job.result

    def _run_inline(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        mono = self._mono
        start = mono()
        try:
            result = fn(*args, **kwargs)
        except BaseException:
            self._failed.value += 1
            raise
        if mono() - start > self.seconds:
            raise self._expired()
        self._ok.value += 1
        return result

    def wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The sync wrapper: a worker thread (``"thread"``) or an after-the-fact check (``"deadline"``)."""
        run = self._run_in_worker if self.sync == "thread" else self._run_inline
        return build(_TIMED_SYNC, fn, {"fn": fn, "run": run}, "timed_call")

    def _enter(self) -> Any:
        return self._mono()

    def _exit(self, token: Any, error: BaseException | None) -> None:
        if error is None and self._mono() - token > self.seconds:
            raise self._expired()


# Everything on the success path is inline: the lane of the running loop (the last one used, normally),
# one list for the entry, an append, and a popleft once the call is done.
_TIMED_ASYNC = """
async def timed_call({params}):
    loop = get_running_loop()
    lane = lanes.last
    if lane is None or lane.loop is not loop:
        lane = lanes.get(loop)
    task = current_task(loop)
    entry = [lane.now() + seconds, task, task.cancelling(), False]
    queue = lane.queue
    queue.append(entry)
    if lane.handle is None:
        lane.arm(entry[0])
    try:
        result = await fn({call})
    except BaseException as exc:
        entry[TASK] = None
        lane.trim()
        if entry[FIRED]:
            expired_or_not(entry, exc)
        failed.value += 1
        raise
    entry[TASK] = None
    while queue and queue[0][TASK] is None:
        queue.popleft()
    if entry[FIRED]:  # the call swallowed our cancellation and returned anyway
        expired_or_not(entry, None)
    ok.value += 1
    return result
"""

_TIMED_SYNC = """
def timed_call({params}):
    return run(fn, {args}, {kwargs})
"""
