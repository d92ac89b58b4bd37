"""The loop that turns recorded requests into SLO state: collect each minute, store it, evaluate alerts.

::

    monitor = SLOMonitor(from_config(), store=HistoryStore())
    monitor.start()            # a daemon thread ticking at each minute boundary
    ...
    monitor.stop()

Each :meth:`SLOMonitor.tick` that finds a new minute has begun collects the recorder's per-series sketches
of the minute that just ended, merges them into the history store, feeds them to the engine and evaluates
every SLO (firing or resolving alerts). On start the engine is warmed from the store's last days, so a
restarted process still knows the 3-day burn rate. Tests drive :meth:`tick` on a ``VirtualClock``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.slo.engine import SLOEngine, SLOStatus
from buttress.slo.recorder import RECORDER, HttpRecorder
from buttress.slo.spec import SLOSpec
from buttress.slo.store import HistoryStore
from buttress.telemetry.events import EVENTS, EventStream
from buttress.telemetry.registry import REGISTRY, Registry

__all__ = ["SLOMonitor"]

log = logging.getLogger("buttress.slo")


class SLOMonitor:
    """Drives a recorder, an engine and (optionally) a history store on one clock.

    Args:
        specs: the SLOs.
        recorder: where the middleware records (default: the process-wide recorder).
        store: the history store to write minutes and alerts into, and to warm the engine from.
        clock: the clock minutes are read from.
        events, registry: passed to the engine.
        engine: an engine to use instead of building one from ``specs``.
    """

    def __init__(
        self,
        specs: Sequence[SLOSpec],
        recorder: HttpRecorder | None = None,
        *,
        store: HistoryStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        events: EventStream = EVENTS,
        registry: Registry = REGISTRY,
        engine: SLOEngine | None = None,
    ) -> None:
        self.recorder = recorder if recorder is not None else RECORDER
        self.store = store
        self.clock = clock
        self.engine = engine or SLOEngine(specs, clock=clock, events=events, registry=registry, sink=store)
        self._minute = int(clock.time() // 60)
        self._last_downsample = clock.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if store is not None:
            self._warm(store)

    def _warm(self, store: HistoryStore) -> None:
        longest = max((t.window_seconds for t in self.engine.specs), default=0.0)
        now = self._minute * 60.0
        for minute, samples in store.minutes(now - max(longest, 3 * 86400.0), now):
            self.engine.ingest(minute, samples)

    def tick(self) -> list[SLOStatus]:
        """Close the minute if a new one began, then evaluate every SLO.

        Returns:
            Each SLO's status.
        """
        now = self.clock.time()
        minute = int(now // 60)
        if minute > self._minute:
            samples = self.recorder.collect()
            ended = minute - 1
            if samples:
                self.engine.ingest(ended, samples)
                if self.store is not None:
                    self.store.write(ended * 60.0, samples)
            self._minute = minute
            if self.store is not None and now - self._last_downsample >= 3600.0:
                self._last_downsample = now
                self.store.downsample(now)
        return self.engine.evaluate(minute - 1)

    def start(self) -> None:
        """Tick at every minute boundary in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="buttress-slo-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.clock.time()
            self.clock.sleep(60.0 - now % 60.0 + 0.05)  # just past the boundary, so the minute is complete
            if self._stop.is_set():
                return
            try:
                self.tick()
            except Exception:  # the monitor must outlive one bad tick (a locked or full disk)
                log.exception("SLO monitor tick failed")

    def stop(self) -> None:
        """Stop the thread after its current sleep (at most a minute); it is a daemon, so exit is not held."""
        self._stop.set()
        self._thread = None
