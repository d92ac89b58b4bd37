"""Circuit breaker: stop calling a failing dependency, and probe it carefully before trusting it again.

The model is Resilience4j's. A breaker is **closed** while calls go through and their outcomes fill a
sliding window (the last N calls, or the calls of the last N seconds). When at least ``minimum_calls``
outcomes are in the window and the failure rate (or the slow-call rate) reaches its threshold, the breaker
**opens**: calls fail fast with :class:`~buttress.resilience.CircuitOpenError` for ``wait_open`` seconds,
a fixed wait or one that grows each time the breaker re-opens. Then it becomes **half-open** and lets
exactly ``half_open_calls`` trial calls through — never more in flight, under threads or thousands of
coroutines — and closes again if their failure and slow rates stay under the thresholds, or re-opens.

::

    breaker = CircuitBreaker("email", window="count:50", failure_rate=0.6, wait_open=10, half_open_calls=5,
                             slow_call_duration=2.0)

    @breaker
    async def send(message): ...

Which outcomes count:

* an exception is a **failure** when it is an instance of ``record_on`` (default: every ``Exception``)
  and ``record_if(error)`` (when given) is true; it is **ignored** — not counted, and a half-open permit
  is handed back — when it is an instance of ``ignore_on`` or ``ignore_if(error)`` is true. Ignoring
  wins. Any other exception counts as a success (Resilience4j's rule), and ``BaseException`` that is not
  an ``Exception`` (cancellation, ``KeyboardInterrupt``) is always ignored;
* a returned value is a failure when ``failure_if_result(value)`` is true (the value is still returned);
* a call is **slow** when it takes ``slow_call_duration`` seconds or more (off by default).

The protected call never runs under a lock. In the closed state with a count window, a successful call
takes no lock at all; state changes, and records that change the window's totals, take the breaker's
lock. Manual states: ``disabled`` (every call passes, nothing is recorded), ``forced_open`` (every call is
refused), ``metrics_only`` (outcomes are recorded and published, the state never changes).

Telemetry (Resilience4j names under ``buttress_``): ``buttress_circuitbreaker_state{name,state}`` (1 for
the current state), ``buttress_circuitbreaker_calls_total{name,kind}`` with kind ``successful``,
``failed``, ``ignored``, ``not_permitted``, ``slow_successful``, ``slow_failed``;
``buttress_circuitbreaker_failure_rate{name}`` and ``buttress_circuitbreaker_slow_call_rate{name}``
(-1 until ``minimum_calls`` outcomes are in the window), ``buttress_circuitbreaker_buffered_calls{name}``;
and a :class:`~buttress.telemetry.StateTransition` with ``source="circuitbreaker"`` on every change.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from buttress.clock import SYSTEM_CLOCK, Clock, SystemClock, VirtualClock
from buttress.config import parse_duration
from buttress.errors import ConfigError, ConfigProblem
from buttress.resilience._forward import build
from buttress.resilience._util import (
    check_callable,
    check_duration,
    check_exception_types,
    check_name,
    check_positive_int,
    check_rate,
)
from buttress.resilience._windows import (
    FAILED,
    SLOW,
    SLOW_FAILED,
    SLOW_SUCCESS,
    SUCCESS,
    CountWindow,
    Snapshot,
    TimeWindow,
)
from buttress.resilience.errors import CircuitOpenError
from buttress.resilience.policy import Policy
from buttress.telemetry.events import EVENTS, EventStream, StateTransition
from buttress.telemetry.registry import REGISTRY, Registry

__all__ = [
    "CLOSED",
    "DISABLED",
    "FORCED_OPEN",
    "HALF_OPEN",
    "METRICS_ONLY",
    "OPEN",
    "STATES",
    "BreakerMetrics",
    "CircuitBreaker",
    "exponential_wait",
]

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"
DISABLED: Final = "disabled"
FORCED_OPEN: Final = "forced_open"
METRICS_ONLY: Final = "metrics_only"
#: Every state a breaker can be in.
STATES: Final = (CLOSED, OPEN, HALF_OPEN, DISABLED, FORCED_OPEN, METRICS_ONLY)

_IGNORED: Final = -1
_KINDS: Final = ("successful", "failed", "ignored", "not_permitted", "slow_successful", "slow_failed")
# Which outcome counter each window outcome increments.
_OUTCOME_KIND: Final = {
    SUCCESS: "successful",
    FAILED: "failed",
    SLOW_SUCCESS: "slow_successful",
    SLOW_FAILED: "slow_failed",
}


_Fast = tuple[Callable[[], int], list[int]]


def _no_sequence() -> int:
    return 0


def exponential_wait(
    base: float, factor: float = 2.0, maximum: float | None = None
) -> Callable[[int], float]:
    """A growing wait in the open state: ``base * factor ** (n - 1)`` for the n-th consecutive opening.

    Pass the result as ``wait_open``; the count restarts when the breaker closes.

    Args:
        base: the first wait, in seconds.
        factor: how much each re-opening multiplies the wait.
        maximum: the longest wait (no limit when ``None``).
    """
    b = check_duration("exponential_wait", "base", base, positive=True)
    assert b is not None
    if isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 1:
        raise ConfigError(
            [ConfigProblem("exponential_wait.factor", "must be a number of at least 1", factor)]
        )
    top = check_duration("exponential_wait", "maximum", maximum, positive=True, allow_none=True)

    def wait(n: int) -> float:
        value = b * float(factor) ** max(0, n - 1)
        return value if top is None else min(top, value)

    return wait


@dataclass(frozen=True, slots=True)
class BreakerMetrics:
    """A breaker's window at one moment.

    Attributes:
        state: the current state.
        calls: outcomes in the window.
        failed: failed outcomes in the window (slow or not).
        slow: slow outcomes in the window (failed or not).
        failure_rate: ``failed / calls``, or -1.0 below ``minimum_calls``.
        slow_call_rate: ``slow / calls``, or -1.0 below ``minimum_calls``.
    """

    state: str
    calls: int
    failed: int
    slow: int
    failure_rate: float
    slow_call_rate: float


_WINDOW = "CircuitBreaker.window"


def _parse_window(value: int | str) -> tuple[str, int]:
    """``50`` / ``"count:50"`` -> ("count", 50); ``"time:60s"`` / ``"time:60"`` -> ("time", 60)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return ("count", check_positive_int("CircuitBreaker", "window", value))
    if isinstance(value, str):
        kind, sep, size = value.partition(":")
        parse = _WINDOW_KINDS.get(kind.strip().lower()) if sep else None
        if parse is not None:
            return parse(value, size.strip())
    raise _window_error(value)


def _count_window(value: str, size: str) -> tuple[str, int]:
    if not size.isdigit():
        raise _window_error(value)
    return ("count", check_positive_int("CircuitBreaker", "window", int(size)))


def _time_window(value: str, size: str) -> tuple[str, int]:
    try:
        # Bare digits are seconds; anything else is a duration with units ("90s", "2m").
        seconds = parse_duration(float(size) if size.isdigit() else size)
    except ValueError:
        seconds = -1.0
    if seconds >= 1 and seconds == int(seconds):
        return ("time", int(seconds))
    raise ConfigError(
        [
            ConfigProblem(
                _WINDOW, 'a time window must be a whole number of seconds >= 1, e.g. "time:60s"', value
            )
        ]
    )


def _window_error(value: object) -> ConfigError:
    return ConfigError(
        [
            ConfigProblem(
                _WINDOW, 'must be a positive count (50), "count:50" or a time window "time:60s"', value
            )
        ]
    )


# The window kinds a string may name before its colon, and how each reads the size after it.
_WINDOW_KINDS: dict[str, Callable[[str, str], tuple[str, int]]] = {
    "count": _count_window,
    "time": _time_window,
}


class CircuitBreaker(Policy):
    """A circuit breaker for sync and async calls (see the module docstring for the model).

    Args:
        name: names the breaker in metrics, events and :class:`CircuitOpenError`.
        window: ``100`` or ``"count:100"`` for the last 100 calls; ``"time:60s"`` for the calls of the last
            60 seconds (one-second buckets).
        failure_rate: open when failed calls / calls in the window reach this ratio, in (0, 1].
        slow_call_rate: open when slow calls / calls reach this ratio, in (0, 1].
        slow_call_duration: a call taking this many seconds or more is slow; ``None`` (the default)
            switches slow-call detection off and saves two clock reads per call.
        minimum_calls: how many outcomes the window needs before rates are judged (capped at a count
            window's size).
        wait_open: seconds to stay open, or a function of the number of consecutive openings returning
            seconds (see :func:`exponential_wait`).
        half_open_calls: exactly how many trial calls the half-open state lets through.
        max_wait_half_open: re-open when the trial calls have not all finished after this many seconds;
            ``None`` waits for them indefinitely.
        automatic_half_open: become half-open when ``wait_open`` has passed even if no call arrives
            (reading :attr:`state` also makes the move), instead of on the first call after it.
        record_on: exception classes that count as failures (default: ``Exception``).
        record_if: a predicate that must also be true for an exception to count as a failure.
        ignore_on: exception classes that are not counted at all (ignoring wins over recording).
        ignore_if: a predicate that marks an exception as ignored.
        failure_if_result: a predicate on returned values; true counts the call as failed.
        clock: time source for waits and durations (bind a :class:`~buttress.clock.VirtualClock` in tests).
        registry: where metrics go (default: the process-wide registry).
        events: where state transitions are published (default: the process-wide stream).

    Raises:
        ConfigError: naming the bad argument, for thresholds outside (0, 1], non-positive windows or
            permits, and negative durations.
    """

    def __init__(
        self,
        name: str,
        *,
        window: int | str = 100,
        failure_rate: float = 0.5,
        slow_call_rate: float = 1.0,
        slow_call_duration: float | str | None = None,
        minimum_calls: int = 100,
        wait_open: float | str | Callable[[int], float] = 60.0,
        half_open_calls: int = 10,
        max_wait_half_open: float | str | None = None,
        automatic_half_open: bool = False,
        record_on: type[BaseException] | Iterable[type[BaseException]] = Exception,
        record_if: Callable[[BaseException], bool] | None = None,
        ignore_on: type[BaseException] | Iterable[type[BaseException]] | None = None,
        ignore_if: Callable[[BaseException], bool] | None = None,
        failure_if_result: Callable[[Any], bool] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        registry: Registry = REGISTRY,
        events: EventStream = EVENTS,
    ) -> None:
        super().__init__()
        owner = "CircuitBreaker"
        self.name = check_name(owner, name)
        self._window_kind, self._window_size = _parse_window(window)
        self._failure_threshold = check_rate(owner, "failure_rate", failure_rate)
        self._slow_threshold = check_rate(owner, "slow_call_rate", slow_call_rate)
        self._slow_duration = check_duration(owner, "slow_call_duration", slow_call_duration, allow_none=True)
        self._minimum_calls = check_positive_int(owner, "minimum_calls", minimum_calls)
        if self._window_kind == "count":
            self._minimum_calls = min(self._minimum_calls, self._window_size)
        if callable(wait_open):
            self._wait_fn: Callable[[int], float] = wait_open
        else:
            fixed = check_duration(owner, "wait_open", wait_open)
            assert fixed is not None
            self._wait_fn = lambda _n: fixed
        self._half_open_calls = check_positive_int(owner, "half_open_calls", half_open_calls)
        self._max_wait_half_open = check_duration(
            owner, "max_wait_half_open", max_wait_half_open, positive=True, allow_none=True
        )
        self._automatic = bool(automatic_half_open)
        self._record_on = check_exception_types(owner, "record_on", record_on) or (Exception,)
        self._record_if = check_callable(owner, "record_if", record_if)
        self._ignore_on = check_exception_types(owner, "ignore_on", ignore_on)
        self._ignore_if = check_callable(owner, "ignore_if", ignore_if)
        self._failure_if_result = check_callable(owner, "failure_if_result", failure_if_result)
        self._clock = clock
        self._mono = clock.monotonic
        self._events = events

        self._lock = threading.Lock()
        self._state: str = CLOSED
        self._episode = 0  # bumps on every transition; outcomes of calls admitted earlier are stale
        self._window: CountWindow | TimeWindow = self._new_window()
        # While closed, a fresh tuple (next sequence number, ring) of the closed window, else None: the one
        # attribute the fast path reads; its identity also tells a late outcome that the window changed.
        self._fast: _Fast | None = self._fast_of(self._window)
        self._permits = 0
        self._open_until = 0.0
        self._openings = 0
        self._half_open_until: float | None = None
        self._timer: threading.Timer | None = None

        labels = {"name": self.name}
        self._counters = {
            kind: registry.counter(
                "buttress_circuitbreaker_calls",
                "Calls through a circuit breaker, by outcome.",
                {**labels, "kind": kind},
            )
            for kind in _KINDS
        }
        self._c_successful = self._counters["successful"]
        self._c_not_permitted = self._counters["not_permitted"]
        ref = weakref.ref(self)
        for state in STATES:
            registry.gauge(
                "buttress_circuitbreaker_state",
                "1 for the state a circuit breaker is in, 0 for the others.",
                {**labels, "state": state},
                fn=_state_reader(ref, state),
            )
        registry.gauge(
            "buttress_circuitbreaker_failure_rate",
            "Failed calls over calls in the window (-1 below minimum_calls).",
            labels,
            fn=_metric_reader(ref, "failure_rate"),
        )
        registry.gauge(
            "buttress_circuitbreaker_slow_call_rate",
            "Slow calls over calls in the window (-1 below minimum_calls).",
            labels,
            fn=_metric_reader(ref, "slow_call_rate"),
        )
        registry.gauge(
            "buttress_circuitbreaker_buffered_calls",
            "Outcomes currently in the breaker's window.",
            labels,
            fn=_metric_reader(ref, "calls"),
        )

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._state!r})"

    # -- reading -------------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The current state; with ``automatic_half_open`` reading it moves open to half-open on time."""
        if self._automatic and self._state == OPEN and self._mono() >= self._open_until:
            self._publish(self._move_if(OPEN, HALF_OPEN, self._episode))
        elif self._state == HALF_OPEN and self._half_open_expired():
            self._publish(self._move_if(HALF_OPEN, OPEN, self._episode))
        return self._state

    def metrics(self) -> BreakerMetrics:
        """The window's totals and rates now (rates are -1.0 below ``minimum_calls``)."""
        state = self.state
        with self._lock:
            snap = self._snapshot()
            needed = self._half_open_calls if self._state == HALF_OPEN else self._minimum_calls
        enough = snap.calls >= needed
        return BreakerMetrics(
            state=state,
            calls=snap.calls,
            failed=snap.failed,
            slow=snap.slow,
            failure_rate=snap.failure_rate() if enough else -1.0,
            slow_call_rate=snap.slow_call_rate() if enough else -1.0,
        )

    @property
    def retry_after(self) -> float:
        """Seconds until the breaker lets a trial call through (0.0 unless open)."""
        if self._state != OPEN:
            return 0.0
        return max(0.0, self._open_until - self._mono())

    # -- manual control --------------------------------------------------------------------------------

    def transition_to(self, state: str) -> None:
        """Move to ``state`` now (one of :data:`STATES`); moving to ``closed`` starts a fresh window."""
        if state not in STATES:
            raise ValueError(f"unknown circuit breaker state {state!r}; use one of {', '.join(STATES)}")
        with self._lock:
            event = self._move(state)
        self._publish(event)

    def reset(self) -> None:
        """Back to closed with an empty window and the open-wait growth forgotten."""
        with self._lock:
            event = self._move(CLOSED)
            self._openings = 0
            self._window = self._new_window()
            self._fast = self._fast_of(self._window)
        self._publish(event)

    def disable(self) -> None:
        """Let every call through and record nothing, until another transition."""
        self.transition_to(DISABLED)

    def force_open(self) -> None:
        """Refuse every call until another transition (an operator's kill switch)."""
        self.transition_to(FORCED_OPEN)

    def metrics_only(self) -> None:
        """Record outcomes and publish rates but never change state, until another transition."""
        self.transition_to(METRICS_ONLY)

    # -- state machine (callers hold self._lock unless noted) -----------------------------------------

    def _new_window(self) -> CountWindow | TimeWindow:
        if self._window_kind == "count":
            return CountWindow(self._window_size, judge_at=self._minimum_calls - 1)
        return TimeWindow(self._window_size, self._mono())

    @staticmethod
    def _fast_of(window: CountWindow | TimeWindow) -> _Fast:
        if isinstance(window, CountWindow):
            return (window.next, window.ring)
        return (_no_sequence, [])

    def _snapshot(self) -> Snapshot:
        return self._window.snapshot(self._mono())

    def _move(self, to: str, due: float | None = None) -> StateTransition | None:
        """Enter ``to``; returns the event to publish once the lock is released.

        ``due`` is the monotonic time the move became due (a wait that ran out), when it is made later.
        """
        source = self._state
        now = self._mono()
        snap = self._window.snapshot(now)
        self._episode += 1
        self._state = to
        self._fast = None
        self._half_open_until = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        entering = _ENTERING.get(to)
        if entering is not None:
            entering(self, source, now)
        if source == to:
            return None
        return StateTransition(
            source="circuitbreaker",
            name=self.name,
            from_state=source,
            to_state=to,
            time=self._clock.time() - (max(0.0, now - due) if due is not None else 0.0),
            attributes={
                "failure_rate": round(snap.failure_rate(), 6),
                "slow_call_rate": round(snap.slow_call_rate(), 6),
                "calls": snap.calls,
            },
        )

    # What entering each state sets up (forced open and disabled need nothing); see _ENTERING.

    def _entering_closed(self, source: str, now: float) -> None:
        if source != CLOSED:
            self._openings = 0
            self._window = self._new_window()
        self._fast = self._fast_of(self._window)

    def _entering_open(self, source: str, now: float) -> None:
        self._openings += 1
        self._open_until = now + max(0.0, float(self._wait_fn(self._openings)))
        if self._automatic:
            self._arm_timer(self._open_until - now, self._episode)

    def _entering_half_open(self, source: str, now: float) -> None:
        self._permits = self._half_open_calls
        self._window = CountWindow(self._half_open_calls)
        if self._max_wait_half_open is not None:
            self._half_open_until = now + self._max_wait_half_open

    def _entering_metrics_only(self, source: str, now: float) -> None:
        if source not in (CLOSED, METRICS_ONLY):
            self._window = self._new_window()  # keep judging the closed state's window, else start afresh

    def _move_if(self, source: str, to: str, episode: int) -> StateTransition | None:
        """Move ``source`` -> ``to`` unless something moved the breaker since ``episode`` (takes the lock)."""
        with self._lock:
            if self._state != source or self._episode != episode:
                return None
            if source == OPEN:
                if self._mono() < self._open_until:
                    return None
                return self._move(to, due=self._open_until)
            if source == HALF_OPEN and self._half_open_until is not None:
                return self._move(to, due=self._half_open_until)
            return self._move(to)

    def _publish(self, event: StateTransition | None) -> None:
        # Outside the lock: a subscriber may read the breaker (or even call through it).
        if event is not None:
            self._events.publish(event)

    def _arm_timer(self, delay: float, episode: int) -> None:
        def fire() -> None:
            left = self._open_until - self._mono()
            if left > 0 and self._episode == episode and self._state == OPEN:
                self._arm_timer(left, episode)  # a timer may wake a hair early: wait out the rest
                return
            self._publish(self._move_if(OPEN, HALF_OPEN, episode))

        if isinstance(self._clock, SystemClock):
            timer = threading.Timer(delay, fire)
            timer.daemon = True
            self._timer = timer
            timer.start()
        elif not isinstance(self._clock, VirtualClock):
            # Another real clock: a thread sleeps on it. (A virtual clock moves only when a test moves it,
            # so there reading `state`, a metrics scrape or the next call makes the move, at the exact
            # time it was due; a parked thread could not tell how far time moved before it parked.)
            until = self._open_until

            def sleep_then_fire() -> None:
                while (left := until - self._mono()) > 0:
                    self._clock.sleep(left)
                fire()

            threading.Thread(target=sleep_then_fire, name=f"breaker-{self.name}", daemon=True).start()

    def _half_open_expired(self) -> bool:
        until = self._half_open_until
        return until is not None and self._mono() >= until

    def _judge(self, calls: int, needed: int) -> bool:
        """True when the window's rates call for opening."""
        if calls < needed:
            return False
        w = self._window
        return w.failed / calls >= self._failure_threshold or w.slow / calls >= self._slow_threshold

    # -- admission -------------------------------------------------------------------------------------

    def _acquire(self) -> int:
        """Admit one call outside the fast path; returns the episode to report its outcome against.

        Returns -1 when the outcome must not be recorded (disabled). Raises :class:`CircuitOpenError`.
        """
        event = None
        try:
            with self._lock:
                state = self._state
                if state == OPEN and self._mono() >= self._open_until:
                    event = self._move(HALF_OPEN, due=self._open_until if self._automatic else None)
                    state = HALF_OPEN
                elif state == HALF_OPEN and self._half_open_expired():
                    event = self._move(OPEN, due=self._half_open_until)
                    state = OPEN
                if state in (CLOSED, METRICS_ONLY):
                    return self._episode
                if state == DISABLED:
                    return -1
                if state == HALF_OPEN and self._permits > 0:
                    self._permits -= 1
                    return self._episode
                retry_after = max(0.0, self._open_until - self._mono()) if state == OPEN else 0.0
        finally:
            self._publish(event)
        self._c_not_permitted.value += 1
        raise CircuitOpenError(self.name, state, retry_after)

    def _classify_error(self, exc: BaseException, elapsed: float) -> int:
        if not isinstance(exc, Exception):
            return _IGNORED
        if self._ignore_on and isinstance(exc, self._ignore_on):
            return _IGNORED
        if self._ignore_if is not None and self._ignore_if(exc):
            return _IGNORED
        failed = isinstance(exc, self._record_on) and (self._record_if is None or bool(self._record_if(exc)))
        slow = self._slow_duration is not None and elapsed >= self._slow_duration
        return (FAILED if failed else SUCCESS) | (SLOW if slow else 0)

    def _classify_result(self, result: Any, elapsed: float) -> int:
        failed = self._failure_if_result is not None and bool(self._failure_if_result(result))
        slow = self._slow_duration is not None and elapsed >= self._slow_duration
        return (FAILED if failed else SUCCESS) | (SLOW if slow else 0)

    def _count(self, outcome: int) -> None:
        counter = self._counters["ignored"] if outcome == _IGNORED else self._counters[_OUTCOME_KIND[outcome]]
        counter.value += 1

    def _record(self, episode: int, outcome: int) -> None:
        """Record the outcome of a call admitted by :meth:`_acquire` in ``episode``."""
        if episode < 0:
            return  # disabled: nothing is recorded
        self._count(outcome)
        with self._lock:
            event = self._settle(episode, outcome)
        self._publish(event)

    def _settle(self, episode: int, outcome: int) -> StateTransition | None:
        """Put ``outcome`` in the window and judge it; returns the transition that causes, if any."""
        if episode != self._episode:
            return None  # admitted before a transition: its outcome belongs to a window that is gone
        state = self._state
        if state == HALF_OPEN:
            return self._settle_trial(outcome)
        if outcome == _IGNORED or state not in (CLOSED, METRICS_ONLY):
            return None
        calls = self._put(outcome)
        if state == CLOSED and self._judge(calls, self._minimum_calls):
            return self._move(OPEN)
        return None

    def _settle_trial(self, outcome: int) -> StateTransition | None:
        """Count one half-open trial; the last one decides between closing and re-opening."""
        if outcome == _IGNORED:
            self._permits += 1  # an ignored trial does not count; let another caller try
            return None
        window = self._window
        assert isinstance(window, CountWindow)
        calls = window.record(outcome)
        if calls < self._half_open_calls:
            return None
        return self._move(OPEN if self._judge(calls, self._half_open_calls) else CLOSED)

    def _put(self, outcome: int, seq: int = -1) -> int:
        window = self._window
        if isinstance(window, CountWindow):
            return window.record(outcome, seq)
        return window.record(outcome, self._mono())

    def _record_fast(self, fast: _Fast, outcome: int, seq: int = -1) -> None:
        """Record the outcome of a call admitted on the closed fast path while ``fast`` was current."""
        event = None
        with self._lock:
            if fast is not self._fast:
                return  # the breaker left the closed state (or was reset) while the call ran
            calls = self._put(outcome, seq)
            if self._judge(calls, self._minimum_calls):
                event = self._move(OPEN)
        self._publish(event)

    def _fast_error(self, fast: _Fast, exc: BaseException, elapsed: float) -> None:
        outcome = self._classify_error(exc, elapsed)
        self._count(outcome)
        if outcome != _IGNORED:
            self._record_fast(fast, outcome)

    # -- blocks ----------------------------------------------------------------------------------------

    def _enter(self) -> Any:
        return (self._acquire(), self._mono())

    def _exit(self, token: Any, error: BaseException | None) -> None:
        episode, start = token
        elapsed = self._mono() - start
        outcome = SUCCESS if error is None else self._classify_error(error, elapsed)
        if error is None and self._slow_duration is not None and elapsed >= self._slow_duration:
            outcome = SLOW_SUCCESS
        self._record(episode, outcome)

    # -- wrappers --------------------------------------------------------------------------------------

    def _guarded_sync(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        episode = self._acquire()
        mono = self._mono
        start = mono()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._record(episode, self._classify_error(exc, mono() - start))
            raise
        self._record(episode, self._classify_result(result, mono() - start))
        return result

    async def _guarded_async(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        episode = self._acquire()
        mono = self._mono
        start = mono()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._record(episode, self._classify_error(exc, mono() - start))
            raise
        self._record(episode, self._classify_result(result, mono() - start))
        return result

    def _closed_generic(self, fast: _Fast, result: Any, elapsed: float) -> None:
        outcome = self._classify_result(result, elapsed)
        self._count(outcome)
        if outcome or self._window_kind == "time":
            self._record_fast(fast, outcome)
        else:
            nxt, ring = fast
            seq = nxt()
            if ring[seq % self._window_size]:
                self._record_fast(fast, SUCCESS, seq)

    def _wrap(self, fn: Callable[..., Any], asynchronous: bool) -> Callable[..., Any]:
        """Build the wrapper; the closed-state code path is picked here, once, from the configuration."""
        if self._window_kind == "count" and self._failure_if_result is None:
            template = _COUNT_SLOW if self._slow_duration is not None else _COUNT
        else:
            template = _GENERIC
        namespace = {
            "core": self,
            "fn": fn,
            "guarded": self._guarded_async if asynchronous else self._guarded_sync,
            "fast_error": self._fast_error,
            "record_fast": self._record_fast,
            "closed_generic": self._closed_generic,
            "succ": self._c_successful,
            "slow_successful": self._counters["slow_successful"],
            "size": self._window_size,
            "mono": self._mono,
            "slow": self._slow_duration,
        }
        return build(template, fn, namespace, "breaker_call", asynchronous)

    def wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The sync wrapper (see :mod:`buttress.resilience._forward` for how it is built)."""
        return self._wrap(fn, asynchronous=False)

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The async wrapper: the same paths around ``await fn(...)``."""
        return self._wrap(fn, asynchronous=True)


# What a breaker sets up on entering each state, called by CircuitBreaker._move under the lock.
_ENTERING: Final[dict[str, Callable[[CircuitBreaker, str, float], None]]] = {
    CLOSED: CircuitBreaker._entering_closed,
    OPEN: CircuitBreaker._entering_open,
    HALF_OPEN: CircuitBreaker._entering_half_open,
    METRICS_ONLY: CircuitBreaker._entering_metrics_only,
}


# Closed, count window, no slow-call detection: no clock read at all. A success takes a sequence number
# and looks at its slot; only a slot that is not a plain success (an old failure to evict, or the
# minimum-calls marker) sends it to the locked path.
_COUNT = """
@async def breaker_call({params}):
    fast = core._fast
    if fast is None:
        return @await guarded(fn, {args}, {kwargs})
    try:
        result = @await fn({call})
    except BaseException as exc:
        fast_error(fast, exc, 0.0)
        raise
    nxt, ring = fast
    seq = nxt()
    if ring[seq % size]:
        record_fast(fast, 0, seq)
    succ.value += 1
    return result
"""

# The same with slow-call detection: one clock read before the call and one after.
_COUNT_SLOW = """
@async def breaker_call({params}):
    fast = core._fast
    if fast is None:
        return @await guarded(fn, {args}, {kwargs})
    start = mono()
    try:
        result = @await fn({call})
    except BaseException as exc:
        fast_error(fast, exc, mono() - start)
        raise
    if mono() - start < slow:
        nxt, ring = fast
        seq = nxt()
        if ring[seq % size]:
            record_fast(fast, 0, seq)
        succ.value += 1
    else:
        record_fast(fast, 2)
        slow_successful.value += 1
    return result
"""

# Time windows and result predicates: every outcome is recorded under the lock.
_GENERIC = """
@async def breaker_call({params}):
    fast = core._fast
    if fast is None:
        return @await guarded(fn, {args}, {kwargs})
    start = mono()
    try:
        result = @await fn({call})
    except BaseException as exc:
        fast_error(fast, exc, mono() - start)
        raise
    closed_generic(fast, result, mono() - start)
    return result
"""


def _state_reader(ref: weakref.ref[CircuitBreaker], state: str) -> Callable[[], float]:
    def read() -> float:
        breaker = ref()
        return 1.0 if breaker is not None and breaker.state == state else 0.0

    return read


def _metric_reader(ref: weakref.ref[CircuitBreaker], field: str) -> Callable[[], float]:
    def read() -> float:
        breaker = ref()
        return float(getattr(breaker.metrics(), field)) if breaker is not None else 0.0

    return read
