"""The SLO history store: exact merges across worker processes, downsampling, corruption, warm restart."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from buttress.clock import VirtualClock
from buttress.errors import StoreError
from buttress.slo.monitor import SLOMonitor
from buttress.slo.recorder import HttpRecorder, SeriesSample
from buttress.slo.routes import RouteSelector
from buttress.slo.spec import SLOSpec
from buttress.slo.store import HistoryCorruptError, HistoryStore
from buttress.telemetry.events import EventStream
from buttress.telemetry.registry import Registry
from buttress.telemetry.sketch import Sketch

NOV_1 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()

WORKER = textwrap.dedent(
    """
    import random, sys
    from buttress.slo.recorder import SeriesSample
    from buttress.slo.store import HistoryStore
    from buttress.telemetry.sketch import Sketch

    path, seed, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    store = HistoryStore(path)
    rnd = random.Random(seed)
    for minute in range(20):
        samples = []
        for route in ("/a", "/b/{id}"):
            sketch = Sketch()
            for _ in range(50):
                sketch.add(rnd.lognormvariate(-3, 1))
            samples.append(SeriesSample(route, "GET", "2xx", sketch))
        store.write(start + 60 * minute, samples)
    """
)


def worker_samples(seed: int) -> dict[tuple[int, str], list[float]]:
    rnd = random.Random(seed)
    out: dict[tuple[int, str], list[float]] = {}
    for minute in range(20):
        for route in ("/a", "/b/{id}"):
            out[(minute, route)] = [rnd.lognormvariate(-3, 1) for _ in range(50)]
    return out


def test_worker_processes_merge_exactly(tmp_path):
    path = tmp_path / "slo.db"
    HistoryStore(path).close()
    seeds = [1, 2, 3, 4]
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(seed), str(NOV_1)]) for seed in seeds
    ]
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    expected: dict[tuple[int, str], list[float]] = {}
    for seed in seeds:
        for key, values in worker_samples(seed).items():
            expected.setdefault(key, []).extend(values)
    rows = list(HistoryStore(path).rows(NOV_1, NOV_1 + 3600))
    assert len(rows) == 40
    for row in rows:
        values = expected[(int(row.start - NOV_1) // 60, row.route)]
        reference = Sketch()
        for v in values:
            reference.add(v)
        assert row.count == 200
        assert row.sketch == reference  # the same buckets as one sketch of every worker's samples
        for q in (0.5, 0.95, 0.99):
            exact = float(np.quantile(values, q, method="lower"))
            assert abs(row.sketch.quantile(q) - exact) <= 0.01 * exact


def test_sketch_quantiles_against_numpy_after_merging_shards():
    rnd = np.random.default_rng(11)
    shards = [rnd.lognormal(-4, 1.2, size=5000) for _ in range(8)]
    merged = Sketch()
    for shard in shards:
        part = Sketch()
        for v in shard:
            part.add(float(v))
        merged.merge(part)
        exact = float(np.quantile(shard, 0.99, method="lower"))
        assert abs(part.quantile(0.99) - exact) <= 0.01 * exact
    everything = np.concatenate(shards)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        exact = float(np.quantile(everything, q, method="lower"))
        assert abs(merged.quantile(q) - exact) <= 0.01 * exact


def sample(route: str, values: list[float], cls: str = "2xx") -> SeriesSample:
    sketch = Sketch()
    for v in values:
        sketch.add(v)
    return SeriesSample(route, "GET", cls, sketch)


def test_downsampling_folds_old_minutes_into_hours(tmp_path):
    store = HistoryStore(tmp_path / "slo.db", raw_retention=3 * 86400, retention=10 * 86400)
    for minute in range(180):  # three hours
        store.write(NOV_1 + 60 * minute, [sample("/a", [0.01 * (1 + minute % 7)])])
    before = Sketch()
    for row in store.rows(NOV_1, NOV_1 + 3 * 3600):
        before.merge(row.sketch)
    folded = store.downsample(NOV_1 + 3 * 86400 + 2 * 3600 + 30)  # the first two hours are now old
    assert folded == 120
    rows = list(store.rows(NOV_1, NOV_1 + 3 * 3600))
    assert [(r.resolution, r.count) for r in rows[:2]] == [(3600, 60), (3600, 60)]
    assert sum(1 for r in rows if r.resolution == 60) == 60
    after = Sketch()
    for row in rows:
        after.merge(row.sketch)
    assert after == before  # nothing lost or double counted
    store.downsample(NOV_1 + 11 * 86400)  # past retention: everything goes
    assert list(store.rows(NOV_1, NOV_1 + 86400)) == []


def test_corrupt_file_is_reported_and_left_alone(tmp_path):
    path = tmp_path / "slo.db"
    path.write_bytes(b"this is not a database at all" * 100)
    original = path.read_bytes()
    with pytest.raises(HistoryCorruptError, match="unreadable") as info:
        HistoryStore(path)
    assert isinstance(info.value, StoreError)
    assert info.value.path == str(path)
    assert path.read_bytes() == original


def test_damaged_pages_are_reported(tmp_path):
    path = tmp_path / "slo.db"
    store = HistoryStore(path)
    for minute in range(300):
        store.write(NOV_1 + 60 * minute, [sample(f"/r{i}", [0.01, 0.02]) for i in range(10)])
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    size = len(data)
    data[size // 2 : size // 2 + 4096] = bytes(range(256)) * 16
    path.write_bytes(bytes(data))
    with pytest.raises(HistoryCorruptError, match="unreadable"):
        HistoryStore(path)  # quick_check finds the damaged pages when the file is opened
    assert path.stat().st_size == size


def test_a_bad_sketch_blob_is_reported(tmp_path):
    path = tmp_path / "slo.db"
    HistoryStore(path).write(NOV_1, [sample("/a", [0.1])])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE series SET sketch = x'00112233'")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryCorruptError, match="bad sketch"):
        list(HistoryStore(path).rows(0, 2**40))


def test_foreign_sqlite_file_is_not_taken_over(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE stuff (x)")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryCorruptError, match="no such table: meta"):
        HistoryStore(path)


def test_retention_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="at least 3 days"):
        HistoryStore(tmp_path / "a.db", raw_retention=3600)
    with pytest.raises(ValueError, match="retention \\(hours\\) must be at least raw_retention"):
        HistoryStore(tmp_path / "a.db", raw_retention=8 * 86400, retention=7 * 86400)
    assert not (tmp_path / "a.db").exists()


@pytest.mark.parametrize(
    ("meta", "problem"),
    [
        ("UPDATE meta SET value = '2'", "schema version '2', this buttress reads '1'"),
        ("DELETE FROM meta", "it has no buttress schema version"),
    ],
)
def test_a_history_of_another_schema_is_not_touched(tmp_path, meta, problem):
    path = tmp_path / "slo.db"
    with HistoryStore(path) as store:
        store.write(NOV_1, [sample("/a", [0.1])])
    conn = sqlite3.connect(path)
    conn.execute(meta)
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(HistoryCorruptError) as info:
        HistoryStore(path)
    assert problem in str(info.value)
    assert "move it aside" in str(info.value)
    assert path.read_bytes() == before


def test_a_folder_that_cannot_be_created_is_a_store_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the folder for the SLO history") as info:
        HistoryStore(tmp_path / "file" / "slo.db")
    assert not isinstance(info.value, HistoryCorruptError)


def test_alert_intervals_open_once_and_close(tmp_path):
    with HistoryStore(tmp_path / "slo.db") as store:
        assert store.span() is None
        assert store.write(NOV_1, []) == 0  # an idle minute writes nothing
        assert store.span() is None
        store.record_alert("api", "page", "firing", NOV_1 + 60, "burning fast")
        store.record_alert("api", "page", "firing", NOV_1 + 120, "still burning")  # already open
        store.record_alert("api", "ticket", "firing", NOV_1 + 120, "slow burn")
        store.record_alert("api", "page", "resolved", NOV_1 + 600, "")
        alerts = store.alerts(NOV_1, NOV_1 + 3600)
        assert [(a.severity, a.started, a.ended, a.summary) for a in alerts] == [
            ("page", NOV_1 + 60, NOV_1 + 600, "burning fast"),
            ("ticket", NOV_1 + 120, None, "slow burn"),
        ]
        assert store.alerts(NOV_1 + 700, NOV_1 + 800)[0].severity == "ticket"  # still firing overlaps
    store.close()  # closing twice is harmless


def test_monitor_writes_minutes_and_warms_a_restarted_engine(tmp_path):
    clock = VirtualClock(wall_start=NOV_1)
    spec = SLOSpec("api", "availability", 0.99, 30 * 86400.0, (RouteSelector.parse("*"),))
    store = HistoryStore(tmp_path / "slo.db")
    recorder = HttpRecorder(Registry())
    monitor = SLOMonitor(
        [spec], recorder, store=store, clock=clock, events=EventStream(), registry=Registry()
    )
    for _minute in range(30):
        for i in range(10):
            recorder.record("/a", "GET", 500 if i == 0 else 200, 0.01)
        clock.advance(60)
        status = monitor.tick()[0]
    assert (status.good, status.total) == (270, 300)
    assert len(list(store.rows(NOV_1, NOV_1 + 3600))) == 60
    # A new process: the engine starts from the history.
    again = SLOMonitor(
        [spec],
        HttpRecorder(Registry()),
        store=HistoryStore(tmp_path / "slo.db"),
        clock=clock,
        events=EventStream(),
        registry=Registry(),
    )
    restarted = again.tick()[0]
    assert (restarted.good, restarted.total) == (270, 300)
    assert restarted.burn_rates["1h"] == pytest.approx(10.0)


class SignallingClock(VirtualClock):
    """A virtual clock that tells the test when a thread parks on it (no polling, no sleeps)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        import threading

        self.parked = threading.Semaphore(0)

    def _park(self, deadline, sleeper):
        super()._park(deadline, sleeper)
        self.parked.release()


def test_monitor_thread_ticks_at_minute_boundaries(tmp_path):
    import threading

    from buttress.slo.schema import DEFAULT_ALERTS
    from buttress.slo.spec import AlertWindow
    from buttress.telemetry.events import Alert

    clock = SignallingClock(wall_start=NOV_1)
    alerts = tuple(AlertWindow(a["severity"], a["long"], a["short"], a["burn_rate"]) for a in DEFAULT_ALERTS)
    spec = SLOSpec("api", "availability", 0.99, 30 * 86400.0, (RouteSelector.parse("*"),), alerts=alerts)
    events = EventStream()
    recorder = HttpRecorder(Registry())
    store = HistoryStore(tmp_path / "slo.db")
    monitor = SLOMonitor([spec], recorder, store=store, clock=clock, events=events, registry=Registry())
    fired = threading.Event()
    events.subscribe(lambda e: fired.set(), Alert)
    for _ in range(20):
        recorder.record("/a", "GET", 503, 0.01)
    monitor.start()
    assert clock.parked.acquire(timeout=10)  # the thread sleeps until just past the minute boundary
    assert clock.next_deadline() == pytest.approx(60.05)
    clock.advance(61)
    assert fired.wait(10), "the monitor thread did not tick after the minute boundary"
    assert clock.parked.acquire(timeout=10)
    assert clock.next_deadline() == pytest.approx(120.05)  # parked again, just past the next boundary
    monitor.stop()
    clock.advance(60)  # let the parked thread see the stop flag
    rows = list(store.rows(NOV_1, NOV_1 + 3600))
    assert [(r.route, r.count) for r in rows] == [("/a", 20)]


def test_monitor_thread_outlives_a_failing_tick(tmp_path, caplog):
    from buttress.testing import Faults

    clock = SignallingClock(wall_start=NOV_1)
    spec = SLOSpec("api", "availability", 0.99, 30 * 86400.0, (RouteSelector.parse("*"),))
    recorder = HttpRecorder(Registry())
    store = HistoryStore(tmp_path / "slo.db")
    faults = Faults().fail(1, sqlite3.OperationalError("database or disk is full"))
    store.write = faults.wrap(store.write)  # type: ignore[method-assign]
    monitor = SLOMonitor(
        [spec], recorder, store=store, clock=clock, events=EventStream(), registry=Registry()
    )
    recorder.record("/a", "GET", 200, 0.01)
    monitor.start()
    assert clock.parked.acquire(timeout=10)
    clock.advance(61)  # the first minute's write fails
    assert clock.parked.acquire(timeout=10)  # ... and the thread parks for the next minute all the same
    assert "SLO monitor tick failed" in caplog.text
    recorder.record("/a", "GET", 200, 0.02)
    recorder.record("/a", "GET", 200, 0.03)
    clock.advance(60)
    assert clock.parked.acquire(timeout=10)
    monitor.stop()
    clock.advance(60)
    assert faults.calls == 2
    assert [(r.start - NOV_1, r.count) for r in store.rows(NOV_1, NOV_1 + 3600)] == [(60, 2)]


def test_writes_to_the_same_minute_merge_exactly(tmp_path):
    with HistoryStore(tmp_path / "slo.db") as store:
        store.write(NOV_1 + 5, [sample("/a", [0.01, 0.02]), sample("/a", [0.5], cls="5xx")])
        store.write(NOV_1 + 59, [sample("/a", [0.03, 0.04, 0.05])])  # same minute, another worker
        rows = {(r.status_class, r.start): r for r in store.rows(NOV_1, NOV_1 + 60)}
    assert sorted(rows) == [("2xx", int(NOV_1)), ("5xx", int(NOV_1))]
    merged = rows[("2xx", int(NOV_1))]
    assert (merged.count, merged.sketch.count) == (5, 5)
    assert merged.sketch.sum == pytest.approx(0.15)
    assert merged.sketch.quantile(1.0) == pytest.approx(0.05, rel=0.01)
