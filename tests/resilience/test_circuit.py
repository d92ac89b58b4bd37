"""Circuit breaker: windows, thresholds, states, permits, classification, telemetry (sync faces)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from buttress.clock import VirtualClock
from buttress.errors import ConfigError
from buttress.resilience import CircuitBreaker, CircuitOpenError, exponential_wait
from buttress.resilience.circuit import _parse_window
from buttress.telemetry import EventStream, Registry, StateTransition, capture_events
from buttress.testing import Faults


def make(clock: VirtualClock, registry: Registry, events: EventStream, **kw: Any) -> CircuitBreaker:
    kw.setdefault("window", 4)
    kw.setdefault("minimum_calls", 4)
    kw.setdefault("failure_rate", 0.5)
    kw.setdefault("wait_open", 10)
    kw.setdefault("half_open_calls", 2)
    return CircuitBreaker("svc", clock=clock, registry=registry, events=events, **kw)


def ok() -> str:
    return "ok"


def boom() -> None:
    raise ConnectionError("down")


def fail(breaker: CircuitBreaker, times: int = 1, error: BaseException | None = None) -> None:
    for _ in range(times):
        fn = boom if error is None else Faults().fail(1, error).wrap(ok)
        with pytest.raises(type(error) if error else ConnectionError):
            breaker.call(fn)


def transitions(events: EventStream) -> list[tuple[str, str]]:
    return [(e.from_state, e.to_state) for e in events.recent() if isinstance(e, StateTransition)]


def test_opens_when_failure_rate_reached_after_minimum_calls(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events)
    fail(breaker, 2)  # 2 of 2: below minimum_calls, stays closed
    assert breaker.state == "closed"
    assert breaker.metrics().failure_rate == -1.0
    assert breaker.call(ok) == "ok"
    assert breaker.state == "closed"  # 2 of 3 failed, still below 4 calls
    fail(breaker)  # 3 of 4 failed = 75 % >= 50 %
    assert breaker.state == "open"
    assert transitions(events) == [("closed", "open")]
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert info.value.name == "svc"
    assert info.value.retry_after == 10.0
    virtual_clock.advance(4)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert info.value.retry_after == 6.0


def test_stays_closed_below_threshold_and_window_slides(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, failure_rate=0.75)
    fail(breaker, 2)
    breaker.call(ok)
    breaker.call(ok)  # 2/4 = 50 % < 75 %
    for _ in range(10):
        breaker.call(ok)
    assert breaker.metrics().failed == 0  # the failures slid out of the 4-call window
    fail(breaker, 2)
    assert breaker.state == "closed"  # 2 of the last 4
    fail(breaker)
    assert breaker.state == "open"  # 3 of the last 4


def test_time_window_forgets_old_failures(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, window="time:10s", minimum_calls=3, failure_rate=0.6)
    fail(breaker, 2)
    virtual_clock.advance(10)  # those two fall out of the window
    breaker.call(ok)
    fail(breaker, 1)
    assert breaker.metrics().calls == 2
    assert breaker.state == "closed"
    fail(breaker, 1)  # 2 of 3 in the last 10 s
    assert breaker.state == "open"


def test_slow_calls_open_the_breaker(registry, events) -> None:
    clock = VirtualClock(auto_advance=True)
    breaker = make(clock, registry, events, slow_call_duration=2.0, slow_call_rate=0.5, failure_rate=1.0)
    slow = Faults(clock=clock).latency(3.0, times=2).wrap(ok)
    assert breaker.call(slow) == "ok"
    assert breaker.call(slow) == "ok"
    breaker.call(ok)
    assert breaker.state == "closed"
    breaker.call(ok)  # 2 slow of 4 = 50 %
    assert breaker.state == "open"
    assert registry.value("buttress_circuitbreaker_calls", {"name": "svc", "kind": "slow_successful"}) == 2
    assert registry.value("buttress_circuitbreaker_calls", {"name": "svc", "kind": "successful"}) == 2


def test_slow_failures_count_as_both(registry, events) -> None:
    clock = VirtualClock(auto_advance=True)
    breaker = make(clock, registry, events, slow_call_duration=1.0, slow_call_rate=1.0, failure_rate=1.0)
    slow_fail = Faults(clock=clock).always(ConnectionError("slow and down"), latency=1.5).wrap(ok)
    with pytest.raises(ConnectionError):
        breaker.call(slow_fail)
    m = breaker.metrics()
    assert (m.calls, m.failed, m.slow) == (1, 1, 1)
    assert registry.value("buttress_circuitbreaker_calls", {"name": "svc", "kind": "slow_failed"}) == 1


def test_half_open_closes_after_good_trials(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, half_open_calls=2)
    fail(breaker, 4)
    assert breaker.state == "open"
    virtual_clock.advance(10)
    assert breaker.state == "open"  # no automatic transition: the next call moves it
    assert breaker.call(ok) == "ok"
    assert breaker.state == "half_open"
    assert breaker.call(ok) == "ok"
    assert breaker.state == "closed"
    assert breaker.metrics().calls == 0  # a fresh window
    assert transitions(events) == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_half_open_reopens_on_failed_trials_and_wait_grows(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, wait_open=exponential_wait(10, 2, 25), half_open_calls=2)
    fail(breaker, 4)
    assert breaker.retry_after == 10
    virtual_clock.advance(10)
    fail(breaker, 1)
    breaker.call(ok)  # 1 of 2 failed = 50 % -> open again, for longer
    assert breaker.state == "open"
    assert breaker.retry_after == 20
    virtual_clock.advance(20)
    fail(breaker, 2)
    assert breaker.retry_after == 25  # capped
    virtual_clock.advance(25)
    breaker.call(ok)
    breaker.call(ok)
    assert breaker.state == "closed"
    fail(breaker, 4)
    assert breaker.retry_after == 10  # closing forgot the growth


def test_half_open_refuses_beyond_permits(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, half_open_calls=1)
    breaker.transition_to("half_open")
    seen: list[str] = []

    def reentrant() -> str:
        # a second call while the only permit is in use is refused
        with pytest.raises(CircuitOpenError) as info:
            breaker.call(ok)
        seen.append(info.value.state)
        return "done"

    assert breaker.call(reentrant) == "done"
    assert seen == ["half_open"]
    assert breaker.state == "closed"
    assert registry.value("buttress_circuitbreaker_calls", {"name": "svc", "kind": "not_permitted"}) == 1


def test_ignored_error_in_half_open_returns_the_permit(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, half_open_calls=1, ignore_on=KeyError)
    breaker.transition_to("half_open")
    with pytest.raises(KeyError):
        breaker.call(Faults().fail(1, KeyError("k")).wrap(ok))
    assert breaker.state == "half_open"
    assert breaker.call(ok) == "ok"
    assert breaker.state == "closed"


def test_max_wait_in_half_open_reopens(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, half_open_calls=2, max_wait_half_open=5)
    breaker.transition_to("half_open")
    breaker.call(ok)  # one of two trials done, the other never comes
    virtual_clock.advance(5)
    assert breaker.state == "open"
    assert transitions(events)[-1] == ("half_open", "open")


def test_automatic_half_open_on_time_with_the_real_clock(registry, events) -> None:
    """With the system clock a timer moves the breaker to half-open without any call or read."""
    breaker = CircuitBreaker(
        "svc",
        window=2,
        minimum_calls=2,
        wait_open=0.02,
        automatic_half_open=True,
        registry=registry,
        events=events,
    )
    arrived = threading.Event()
    events.subscribe(lambda e: arrived.set() if getattr(e, "to_state", "") == "half_open" else None)
    fail(breaker, 2)
    assert arrived.wait(30)  # the timer fired; nothing called or read the breaker meanwhile
    assert breaker._state == "half_open"
    assert transitions(events) == [("closed", "open"), ("open", "half_open")]


def test_automatic_half_open_on_a_virtual_clock_is_exact(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, automatic_half_open=True)
    fail(breaker, 4)
    virtual_clock.advance(9.5)
    assert breaker.state == "open"
    virtual_clock.advance(3)
    assert registry.value("buttress_circuitbreaker_state", {"name": "svc", "state": "half_open"}) == 1.0
    assert breaker.state == "half_open"
    moved = [e for e in events.recent() if isinstance(e, StateTransition) and e.to_state == "half_open"]
    assert len(moved) == 1
    assert moved[0].time == virtual_clock.time() - 2.5  # stamped when it was due, 10 s after opening


def test_automatic_half_open_read_makes_the_move(registry, events) -> None:
    clock = VirtualClock(auto_advance=True)
    breaker = make(clock, registry, events, automatic_half_open=True)
    fail(breaker, 4)
    clock.advance(10)
    assert breaker.state == "half_open"
    assert registry.value("buttress_circuitbreaker_state", {"name": "svc", "state": "half_open"}) == 1.0
    assert registry.value("buttress_circuitbreaker_state", {"name": "svc", "state": "open"}) == 0.0


def test_manual_states(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events)
    breaker.force_open()
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert info.value.state == "forced_open"
    virtual_clock.advance(1000)
    assert breaker.state == "forced_open"

    breaker.disable()
    fail(breaker, 10)
    assert breaker.state == "disabled"
    assert breaker.metrics().calls == 0  # nothing recorded
    assert breaker.call(ok) == "ok"

    breaker.metrics_only()
    fail(breaker, 10)
    m = breaker.metrics()
    assert (m.state, m.calls, m.failure_rate) == ("metrics_only", 4, 1.0)

    breaker.reset()
    assert breaker.state == "closed"
    assert breaker.metrics().calls == 0
    with pytest.raises(ValueError, match="unknown circuit breaker state"):
        breaker.transition_to("ajar")
    assert transitions(events) == [
        ("closed", "forced_open"),
        ("forced_open", "disabled"),
        ("disabled", "metrics_only"),
        ("metrics_only", "closed"),
    ]


def test_classification_record_ignore_predicates(virtual_clock, registry, events) -> None:
    breaker = make(
        virtual_clock,
        registry,
        events,
        window=10,
        minimum_calls=10,
        record_on=(ConnectionError, ValueError),
        record_if=lambda e: "transient" not in str(e),
        ignore_on=ConnectionResetError,
        ignore_if=lambda e: "ignore me" in str(e),
        failure_if_result=lambda r: r == "bad",
    )
    fail(breaker, 1, ConnectionError("down"))  # failed
    fail(breaker, 1, ConnectionResetError("reset"))  # ignored: ignore wins over record_on
    fail(breaker, 1, ValueError("ignore me"))  # ignored by predicate
    fail(breaker, 1, ValueError("transient"))  # record_if false: counts as a success
    fail(breaker, 1, KeyError("other"))  # not in record_on: a success
    assert breaker.call(Faults().returns("bad").wrap(ok)) == "bad"  # failed, value still returned
    kind = {
        k: registry.value("buttress_circuitbreaker_calls", {"name": "svc", "kind": k})
        for k in ("successful", "failed", "ignored")
    }
    assert kind == {"successful": 2, "failed": 2, "ignored": 2}
    m = breaker.metrics()
    assert (m.calls, m.failed) == (4, 2)


def test_cancellation_and_base_exceptions_are_ignored(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, window=2, minimum_calls=1)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    assert breaker.metrics().calls == 0
    assert registry.value("buttress_circuitbreaker_calls", {"name": "svc", "kind": "ignored"}) == 1


def test_protected_call_runs_without_a_lock() -> None:
    """pybreaker holds its lock during the call; eight callers must be inside at the same time."""
    breaker = CircuitBreaker("parallel", registry=Registry(), events=EventStream())
    barrier = threading.Barrier(8, timeout=30)
    errors: list[BaseException] = []

    @breaker
    def meet() -> None:
        barrier.wait()  # returns only when all eight are inside the protected call together

    def run() -> None:
        try:
            meet()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_half_open_permits_exact_under_eight_threads(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, half_open_calls=3)
    fail(breaker, 4)
    virtual_clock.advance(10)
    lock = threading.Lock()
    release = threading.Event()
    decided = threading.Semaphore(0)
    start = threading.Barrier(8, timeout=30)
    inside = peak = 0
    outcomes: list[str] = []

    def trial() -> str:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        decided.release()
        release.wait(30)
        with lock:
            inside -= 1
        return "ok"

    def caller() -> None:
        start.wait()
        try:
            breaker.call(trial)
        except CircuitOpenError:
            outcomes.append("refused")
            decided.release()
        else:
            outcomes.append("ok")

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for _ in range(8):
        assert decided.acquire(timeout=30)
    assert peak == 3
    assert outcomes.count("refused") == 5
    release.set()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 3
    assert breaker.state == "closed"


def test_late_outcome_of_an_earlier_state_is_dropped(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, half_open_calls=1)

    def trips_then_fails() -> None:
        fail(breaker, 4)  # the breaker opens while this call is still running
        virtual_clock.advance(10)
        breaker.call(ok)  # the single half-open trial closes it again
        raise ConnectionError("late")

    with pytest.raises(ConnectionError):
        breaker.call(trips_then_fails)
    assert breaker.state == "closed"
    assert breaker.metrics().failed == 0  # the late failure belonged to a window that is gone


def test_context_manager_records_blocks(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events)
    for _ in range(4):
        with pytest.raises(ConnectionError), breaker:
            raise ConnectionError
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError), breaker:
        raise AssertionError("never runs")
    virtual_clock.advance(10)
    with breaker:
        pass
    with breaker:
        pass
    assert breaker.state == "closed"


def test_blocks_classify_outcomes_like_calls(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, slow_call_duration=1, ignore_on=LookupError)
    with breaker:
        virtual_clock.advance(2)  # the block ran slowly
    with pytest.raises(KeyError), breaker:
        raise KeyError("ignored")

    def moved_while_running() -> None:
        with breaker:
            breaker.reset()  # something moves the breaker while the block runs
            raise ConnectionError("late")

    with pytest.raises(ConnectionError):
        moved_while_running()
    kinds = {
        k: registry.value("buttress_circuitbreaker_calls", {"name": "svc", "kind": k})
        for k in ("slow_successful", "ignored", "failed")
    }
    assert kinds == {"slow_successful": 1, "ignored": 1, "failed": 1}  # all counted...
    m = breaker.metrics()
    assert (m.calls, m.failed) == (
        0,
        0,
    )  # ...none in the fresh window: the late failure belonged to the old one


def test_result_failures_slide_out_of_a_count_window(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, failure_if_result=lambda r: r == "bad")

    def bad() -> str:
        return "bad"

    assert breaker.call(bad) == "bad"
    for _ in range(4):
        assert breaker.call(ok) == "ok"
    m = breaker.metrics()
    assert (m.calls, m.failed) == (4, 0)  # the bad result was pushed out by four good ones
    breaker.call(bad)
    breaker.call(bad)
    assert breaker.state == "open"


def test_half_open_expiry_is_noticed_by_the_next_call(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events, half_open_calls=2, max_wait_half_open=5)
    breaker.transition_to("half_open")
    breaker.call(ok)  # one trial of two; the other never comes
    virtual_clock.advance(5)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)  # no read of `state` in between: the call itself makes the move
    assert (info.value.state, info.value.retry_after) == ("open", 10)
    assert transitions(events)[-1] == ("half_open", "open")
    assert breaker.retry_after == 10
    virtual_clock.advance(10)
    assert breaker.call(ok) == "ok"
    assert breaker.state == "half_open"
    assert breaker.retry_after == 0.0  # only an open breaker asks callers to wait


class SteppingClock:
    """A real clock of a kind the breaker does not know (neither the system's nor a VirtualClock)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_767_225_600.0 + self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds  # sleeping is what moves this clock

    async def asleep(self, seconds: float) -> None:
        self.now += seconds


def test_automatic_half_open_on_another_clock_sleeps_on_that_clock(registry, events) -> None:
    clock = SteppingClock()
    breaker = CircuitBreaker(
        "svc",
        window=2,
        minimum_calls=2,
        wait_open=30,
        automatic_half_open=True,
        clock=clock,
        registry=registry,
        events=events,
    )
    arrived = threading.Event()
    events.subscribe(lambda e: arrived.set() if getattr(e, "to_state", "") == "half_open" else None)
    fail(breaker, 2)
    assert arrived.wait(30)  # a thread slept the 30 s on the breaker's own clock, then moved it
    assert clock.now == 30
    assert transitions(events) == [("closed", "open"), ("open", "half_open")]


def test_telemetry(virtual_clock, registry, events) -> None:
    breaker = make(virtual_clock, registry, events)
    with capture_events(events) as seen:
        fail(breaker, 3)
        breaker.call(ok)
    labels = {"name": "svc"}
    assert registry.value("buttress_circuitbreaker_failure_rate", labels) == 0.75
    assert registry.value("buttress_circuitbreaker_slow_call_rate", labels) == 0.0
    assert registry.value("buttress_circuitbreaker_buffered_calls", labels) == 4
    assert registry.value("buttress_circuitbreaker_state", {**labels, "state": "open"}) == 1.0
    assert registry.value("buttress_circuitbreaker_state", {**labels, "state": "closed"}) == 0.0
    (event,) = seen
    assert isinstance(event, StateTransition)
    assert (event.source, event.name, event.from_state, event.to_state) == (
        "circuitbreaker",
        "svc",
        "closed",
        "open",
    )
    assert event.time == virtual_clock.time()
    assert event.attributes["failure_rate"] == 0.75


def test_decorator_keeps_name_and_call_rejects_async(registry, events) -> None:
    breaker = CircuitBreaker("meta", registry=registry, events=events)

    @breaker
    def documented(x: int) -> int:
        """Doubles."""
        return 2 * x

    assert documented(2) == 4
    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Doubles."

    async def coro() -> None:
        return None

    with pytest.raises(TypeError, match="acall"):
        breaker.call(coro)
    with pytest.raises(TypeError, match="not callable"):
        breaker(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_rate": 0}, "CircuitBreaker.failure_rate"),
        ({"failure_rate": 1.5}, "CircuitBreaker.failure_rate"),
        ({"slow_call_rate": -0.1}, "CircuitBreaker.slow_call_rate"),
        ({"window": 0}, "CircuitBreaker.window"),
        ({"window": "count:-3"}, "CircuitBreaker.window"),
        ({"window": "time:0s"}, "CircuitBreaker.window"),
        ({"window": "sliding"}, "CircuitBreaker.window"),
        ({"window": True}, "CircuitBreaker.window"),
        ({"window": 2.5}, "CircuitBreaker.window"),
        ({"window": "count:x"}, "CircuitBreaker.window"),
        ({"window": "time:1.5s"}, "CircuitBreaker.window"),
        ({"window": "hours:2"}, "CircuitBreaker.window"),
        ({"half_open_calls": 0}, "CircuitBreaker.half_open_calls"),
        ({"minimum_calls": 0}, "CircuitBreaker.minimum_calls"),
        ({"wait_open": -1}, "CircuitBreaker.wait_open"),
        ({"wait_open": "soon"}, "CircuitBreaker.wait_open"),
        ({"slow_call_duration": "-2s"}, "CircuitBreaker.slow_call_duration"),
        ({"max_wait_half_open": 0}, "CircuitBreaker.max_wait_half_open"),
        ({"record_on": [ValueError, "oops"]}, "CircuitBreaker.record_on"),
        ({"ignore_if": 3}, "CircuitBreaker.ignore_if"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        CircuitBreaker("bad", registry=Registry(), **kwargs)
    assert info.value.problems[0].path == field


@pytest.mark.parametrize(
    ("window", "parsed"),
    [
        (50, ("count", 50)),
        ("count:50", ("count", 50)),
        (" COUNT : 7 ", ("count", 7)),
        ("time:60s", ("time", 60)),
        ("time:60", ("time", 60)),
        ("Time:2m", ("time", 120)),
        ("time:1h30m", ("time", 5400)),
    ],
)
def test_window_spellings(window: int | str, parsed: tuple[str, int]) -> None:
    assert _parse_window(window) == parsed


def test_bad_name() -> None:
    with pytest.raises(ConfigError, match=r"CircuitBreaker\.name"):
        CircuitBreaker("", registry=Registry())


def test_exponential_wait() -> None:
    wait = exponential_wait(1, 3, 20)
    assert [wait(n) for n in (1, 2, 3, 4)] == [1, 3, 9, 20]
    with pytest.raises(ConfigError, match="factor"):
        exponential_wait(1, 0.5)
    with pytest.raises(ConfigError, match="base"):
        exponential_wait(0)


def test_circuit_open_error_pickles() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(CircuitOpenError("x", "open", 3.0)))
    assert (err.name, err.state, err.retry_after) == ("x", "open", 3.0)
