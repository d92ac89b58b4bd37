"""The SLO engine: error budgets, burn rates and multiwindow, multi-burn-rate alerts that also resolve.

For each SLO the engine keeps two running sums per minute — good and total requests — in ring buffers of
*cumulative* counts, so the requests in any window ending now are one subtraction::

    total(last w minutes) = cum_total[now] - cum_total[now - w]

which makes evaluating an SLO over every window (5 m, 30 m, 1 h, 2 h, 6 h, 1 d, 3 d and the SLO window)
a handful of array reads (``benchmarks/slo.py`` measures it).

**Burn rate** over a window is the window's error ratio divided by the error budget ratio
``1 - objective``: at burn rate 1 the budget lasts exactly the SLO window; at 14.4 a 30-day budget is 2 %
gone in an hour.

**Alerts** follow the SRE workbook (chapter 5, "Alerting on SLOs") and Sloth: an alert condition fires when
the burn rate over *both* its long and its short window exceeds its factor, and the long window saw at least
``min_traffic`` requests. The defaults page at 14.4× over 1 h and 5 m, or 6× over 6 h and 30 m; they open a
ticket at 3× over 1 d and 2 h, or 1× over 3 d and 6 h. A severity fires while any of its conditions holds
and resolves when none does; the short window is what makes it resolve soon after the burn stops.

Each transition is published as an :class:`~buttress.telemetry.events.Alert` on the event stream (and so
reaches a :class:`~buttress.telemetry.notifier.Notifier`'s webhooks) and written to the history store, so
reports can list incidents.
"""

from __future__ import annotations

import datetime as _dt
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.slo.recorder import SeriesSample
from buttress.slo.spec import AlertWindow, SLOSpec, format_duration
from buttress.telemetry.events import EVENTS, Alert, EventStream
from buttress.telemetry.registry import REGISTRY, Gauge, Registry

if TYPE_CHECKING:
    from buttress.telemetry.notifier import Notifier

__all__ = ["BURN_WINDOWS", "AlertState", "MinuteRing", "SLOEngine", "SLOStatus", "good_and_total"]

#: The windows burn rates are reported over, in minutes.
BURN_WINDOWS: tuple[int, ...] = (5, 30, 60, 120, 360, 1440, 4320)


class MinuteRing:
    """Cumulative good/total counts per minute over the last ``minutes`` minutes.

    Args:
        minutes: the longest window that will be asked for.

    Minutes are integers (``epoch_seconds // 60``). Data for a minute older than the ring is dropped
    (:attr:`dropped` counts it); data for a past minute still in the ring is added to every later
    cumulative entry, which is rare (a late writer) and bounded by the ring size.
    """

    __slots__ = ("_good", "_size", "_total", "dropped", "first", "last")

    def __init__(self, minutes: int) -> None:
        if minutes < 1:
            raise ValueError(f"a ring needs at least one minute, got {minutes!r}")
        self._size = minutes + 1
        self._good = array("d", bytes(8 * self._size))
        self._total = array("d", bytes(8 * self._size))
        self.first: int | None = None
        self.last: int | None = None
        self.dropped = 0.0

    def add(self, minute: int, good: float, total: float) -> None:
        """Count ``good`` of ``total`` requests in ``minute``."""
        size, g, t = self._size, self._good, self._total
        last = self.last
        if last is None or self.first is None:
            self.first = self.last = minute
            g[minute % size] = good
            t[minute % size] = total
            return
        if minute > last:
            carry_g, carry_t = g[last % size], t[last % size]
            for m in range(max(last + 1, minute - size + 1), minute + 1):
                g[m % size] = carry_g
                t[m % size] = carry_t
            self.last = last = minute
        if minute < last - size + 2:
            self.dropped += total
            return
        if minute < self.first:
            # Before the first minute seen: every entry already in the ring is after it.
            for m in range(max(minute, last - size + 2), last + 1):
                g[m % size] += good
                t[m % size] += total
            self.first = minute
            return
        for m in range(minute, last + 1):
            g[m % size] += good
            t[m % size] += total

    def _cum(self, arr: array[float], minute: int) -> float:
        last, first = self.last, self.first
        if last is None or first is None or minute < first:
            return 0.0
        if minute > last:
            minute = last
        return arr[minute % self._size]

    def window(self, end: int, minutes: int) -> tuple[float, float]:
        """``(good, total)`` over the ``minutes`` minutes ending with minute ``end`` (inclusive)."""
        if minutes >= self._size:
            raise ValueError(f"window of {minutes} minutes exceeds the ring's {self._size - 1}")
        start = end - minutes
        g, t = self._good, self._total
        return (self._cum(g, end) - self._cum(g, start), self._cum(t, end) - self._cum(t, start))

    def span(self, start: int, end: int) -> tuple[float, float]:
        """``(good, total)`` from minute ``start`` to ``end`` inclusive (within the ring)."""
        return self.window(end, max(end - start + 1, 0))


def good_and_total(spec: SLOSpec, sample: SeriesSample, count: int | None = None) -> tuple[float, float]:
    """How many of a sample's requests were good for ``spec`` (which must select the sample's series)."""
    n = sample.sketch.count if count is None else count
    if spec.sli == "latency":
        assert spec.threshold is not None
        return float(sample.sketch.cumulative_counts((spec.threshold,))[0]), float(n)
    return (0.0 if sample.status_class in spec.error_statuses else float(n)), float(n)


@dataclass(frozen=True, slots=True)
class AlertState:
    """One severity of one SLO at one evaluation."""

    severity: str
    firing: bool
    since: float | None
    conditions: tuple[tuple[AlertWindow, float, float, bool], ...]  # window, long burn, short burn, holds


@dataclass(frozen=True, slots=True)
class SLOStatus:
    """Where an SLO stands at one evaluation.

    Attributes:
        name, sli, objective: from the spec.
        minute: the last complete minute evaluated (``epoch_seconds // 60``).
        good, total: requests in the SLO window (rolling, or the calendar month so far).
        sli_value: ``good / total`` (1.0 with no traffic).
        budget_consumed: share of the window's error budget spent: ``bad / ((1 - objective) * total)``.
        budget_remaining: ``1 - budget_consumed`` (negative once the SLO is breached).
        burn_rates: window label (``"5m"``…``"3d"``) to burn rate.
        alerts: severity to :class:`AlertState`.
    """

    name: str
    sli: str
    objective: float
    minute: int
    good: float
    total: float
    sli_value: float
    budget_consumed: float
    budget_remaining: float
    burn_rates: Mapping[str, float]
    alerts: Mapping[str, AlertState] = field(default_factory=dict)

    @property
    def breached(self) -> bool:
        """Whether the window's error budget is spent (the objective is not met)."""
        return self.total > 0 and self.sli_value < self.objective

    @property
    def firing(self) -> list[str]:
        """Severities firing now."""
        return [s for s, a in self.alerts.items() if a.firing]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "name": self.name,
            "sli": self.sli,
            "objective": self.objective,
            "minute": self.minute,
            "good": self.good,
            "total": self.total,
            "sli_value": self.sli_value,
            "budget_consumed": self.budget_consumed,
            "budget_remaining": self.budget_remaining,
            "burn_rates": dict(self.burn_rates),
            "breached": self.breached,
            "firing": self.firing,
        }


class AlertSink(Protocol):
    """Where alert transitions are recorded besides the event stream (the history store)."""

    def record_alert(self, slo: str, severity: str, status: str, at: float, summary: str) -> None:
        """Record that ``slo``'s ``severity`` alert started (``"firing"``) or stopped (``"resolved"``)."""
        ...


class _Tracked:
    """Engine state for one SLO: its spec, ring, gauges and alert states."""

    __slots__ = ("alert_since", "gauges", "ring", "spec", "windows")

    def __init__(self, spec: SLOSpec, registry: Registry) -> None:
        self.spec = spec
        longest = max(
            [*BURN_WINDOWS, *(int(a.long // 60) for a in spec.alerts), int(spec.window_seconds // 60)]
        )
        self.ring = MinuteRing(longest + 1)
        self.windows = tuple((format_duration(w * 60.0), w) for w in BURN_WINDOWS)
        labels = {"slo": spec.name}
        self.gauges: dict[str, Gauge] = {
            "remaining": registry.gauge(
                "buttress_slo_error_budget_remaining", "Share of error budget left", labels
            ),
            "sli": registry.gauge("buttress_slo_sli", "Good share of requests in the SLO window", labels),
            "objective": registry.gauge("buttress_slo_objective", "The SLO's objective", labels),
        }
        self.gauges["objective"].set(spec.objective)
        for label, _ in self.windows:
            self.gauges[label] = registry.gauge(
                "buttress_slo_burn_rate", "Error budget burn rate", {"slo": spec.name, "window": label}
            )
        self.alert_since: dict[str, float | None] = {a.severity: None for a in spec.alerts}


class SLOEngine:
    """Computes budgets and burn rates for a set of SLOs, and fires and resolves their alerts.

    Args:
        specs: the SLOs.
        clock: the clock whose ``time()`` says which minute is complete (a ``VirtualClock`` in tests).
        events: where alert transitions are published.
        registry: where ``buttress_slo_*`` gauges go.
        notifier: if given, attached to ``events`` so alerts are POSTed to its webhooks.
        sink: if given (a :class:`~buttress.slo.store.HistoryStore`), alert transitions are recorded in it.

    Feed it with :meth:`ingest` (per-series samples of one minute, as the recorder and store produce them) or
    :meth:`record` (already classified counts), then call :meth:`evaluate`.
    """

    def __init__(
        self,
        specs: Sequence[SLOSpec],
        *,
        clock: Clock = SYSTEM_CLOCK,
        events: EventStream = EVENTS,
        registry: Registry = REGISTRY,
        notifier: Notifier | None = None,
        sink: AlertSink | None = None,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"SLO names must be unique; got {names!r}")
        self.clock = clock
        self.events = events
        self.sink = sink
        self._slos = {s.name: _Tracked(s, registry) for s in specs}
        self._tracked = list(self._slos.values())
        self._selection: dict[tuple[str, str], tuple[_Tracked, ...]] = {}
        if notifier is not None:
            notifier.attach(events)

    @property
    def specs(self) -> list[SLOSpec]:
        """The SLOs this engine tracks."""
        return [t.spec for t in self._tracked]

    # -- input -----------------------------------------------------------------------------------------

    def ingest(self, minute: int, samples: Iterable[SeriesSample]) -> None:
        """Count one minute's per-series samples toward every SLO that selects them.

        Args:
            minute: ``epoch_seconds // 60`` of the minute the samples cover.
            samples: per-series sketches (from :meth:`HttpRecorder.collect` or the history store).
        """
        totals: dict[str, list[float]] = {}
        for sample in samples:
            key = (sample.route, sample.method)
            chosen = self._selection.get(key)
            if chosen is None:
                chosen = tuple(t for t in self._tracked if t.spec.selects(*key))
                self._selection[key] = chosen
            if not chosen:
                continue
            n = sample.sketch.count
            for t in chosen:
                good, total = good_and_total(t.spec, sample, n)
                acc = totals.setdefault(t.spec.name, [0.0, 0.0])
                acc[0] += good
                acc[1] += total
        for name, (good, total) in totals.items():
            self._slos[name].ring.add(minute, good, total)

    def record(self, name: str, minute: int, good: float, total: float) -> None:
        """Count ``good`` of ``total`` requests for SLO ``name`` in ``minute``.

        Raises:
            KeyError: no SLO has that name.
            ValueError: counts are negative or ``good > total``.
        """
        if not 0 <= good <= total:
            raise ValueError(f"need 0 <= good <= total, got good={good!r} total={total!r}")
        self._slos[name].ring.add(minute, good, total)

    # -- evaluation ------------------------------------------------------------------------------------

    def current_minute(self) -> int:
        """The last complete minute on the engine's clock."""
        return int(self.clock.time() // 60) - 1

    def status(self, name: str, minute: int | None = None) -> SLOStatus:
        """The status of one SLO at ``minute`` (default: the last complete minute), without alerting."""
        t = self._slos[name]
        end = self.current_minute() if minute is None else minute
        return self._status(t, end, self._conditions(t, end))

    def evaluate(self, minute: int | None = None) -> list[SLOStatus]:
        """Evaluate every SLO at ``minute`` (default: the last complete one); fire and resolve alerts.

        Returns:
            The status of each SLO, in spec order.
        """
        end = self.current_minute() if minute is None else minute
        at = (end + 1) * 60.0
        out = []
        for t in self._tracked:
            conditions = self._conditions(t, end)
            status = self._status(t, end, conditions)
            for severity, state in status.alerts.items():
                was = t.alert_since[severity] is not None
                if state.firing != was:
                    t.alert_since[severity] = at if state.firing else None
                    self._announce(t.spec, severity, state, status, at)
            out.append(status)
        return out

    def _conditions(self, t: _Tracked, end: int) -> dict[str, list[tuple[AlertWindow, float, float, bool]]]:
        ring, spec = t.ring, t.spec
        budget = spec.error_budget
        out: dict[str, list[tuple[AlertWindow, float, float, bool]]] = {}
        for a in spec.alerts:
            lg, lt = ring.window(end, int(a.long // 60))
            sg, st = ring.window(end, int(a.short // 60))
            long_burn = (lt - lg) / lt / budget if lt else 0.0
            short_burn = (st - sg) / st / budget if st else 0.0
            holds = long_burn > a.burn_rate and short_burn > a.burn_rate and lt >= spec.min_traffic
            out.setdefault(a.severity, []).append((a, long_burn, short_burn, holds))
        return out

    def _status(
        self, t: _Tracked, end: int, conditions: dict[str, list[tuple[AlertWindow, float, float, bool]]]
    ) -> SLOStatus:
        spec, ring, gauges = t.spec, t.ring, t.gauges
        budget = spec.error_budget
        burn: dict[str, float] = {}
        for label, minutes in t.windows:
            g, n = ring.window(end, minutes)
            rate = (n - g) / n / budget if n else 0.0
            burn[label] = rate
            gauges[label].value = rate
        if spec.window == "month":
            good, total = ring.span(month_start_minute(end), end)
        else:
            good, total = ring.window(end, int(float(spec.window) // 60))
        sli = good / total if total else 1.0
        consumed = (total - good) / (budget * total) if total else 0.0
        gauges["remaining"].value = 1.0 - consumed
        gauges["sli"].value = sli
        alerts = {}
        for severity, conds in conditions.items():
            firing = any(c[3] for c in conds)
            since = t.alert_since.get(severity)
            alerts[severity] = AlertState(severity, firing, since if firing else None, tuple(conds))
        return SLOStatus(
            name=spec.name,
            sli=spec.sli,
            objective=spec.objective,
            minute=end,
            good=good,
            total=total,
            sli_value=sli,
            budget_consumed=consumed,
            budget_remaining=1.0 - consumed,
            burn_rates=burn,
            alerts=alerts,
        )

    def _announce(
        self, spec: SLOSpec, severity: str, state: AlertState, status: SLOStatus, at: float
    ) -> None:
        if state.firing:
            held = [c for c in state.conditions if c[3]]
            a, long_burn, short_burn, _ = held[0]
            summary = (
                f"SLO {spec.name} is burning its error budget at {long_burn:.1f}x over "
                f"{format_duration(a.long)} and {short_burn:.1f}x over {format_duration(a.short)} "
                f"(threshold {a.burn_rate:g}x); {status.budget_remaining:.1%} of the budget is left."
            )
        else:
            left = status.budget_remaining
            summary = f"SLO {spec.name} {severity} alert resolved; {left:.1%} of the budget is left."
        labels = {"slo": spec.name, "service": spec.service, "severity": severity, **dict(spec.labels)}
        status_word: Literal["firing", "resolved"] = "firing" if state.firing else "resolved"
        self.events.publish(
            Alert(
                source="slo",
                name=spec.name,
                severity=severity,
                status=status_word,
                summary=summary,
                labels=labels,
                time=at,
                attributes={"objective": spec.objective, "burn_rates": dict(status.burn_rates)},
            )
        )
        if self.sink is not None:
            self.sink.record_alert(spec.name, severity, status_word, at, summary)


def month_start_minute(minute: int) -> int:
    """The first minute (``epoch_seconds // 60``) of the UTC calendar month containing ``minute``."""
    when = _dt.datetime.fromtimestamp(minute * 60, tz=_dt.UTC)
    start = when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int(start.timestamp() // 60)
