import pytest

from buttress.telemetry import Counter, Gauge, Latency, Registry


def test_get_or_create_returns_same_series():
    reg = Registry()
    a = reg.counter("buttress_x", "x", {"name": "a"})
    assert reg.counter("buttress_x", "x", {"name": "a"}) is a
    b = reg.counter("buttress_x", "x", {"name": "b"})
    assert b is not a
    a.value += 1
    a.inc(2)
    assert reg.value("buttress_x", {"name": "a"}) == 3
    assert reg.value("buttress_x", {"name": "zzz"}) == 0
    (family,) = reg.families()
    assert family.kind == "counter"
    assert [c.labels for c in family.children] == [{"name": "a"}, {"name": "b"}]


def test_label_order_does_not_matter():
    reg = Registry()
    assert reg.gauge("g", "g", {"a": "1", "b": "2"}) is reg.gauge("g", "g", {"b": "2", "a": "1"})


def test_counter_cannot_go_down():
    with pytest.raises(ValueError, match="only go up"):
        Registry().counter("c", "c").inc(-1)


def test_gauge_function_read_at_collection():
    reg = Registry()
    depth = [3]
    g = reg.gauge("buttress_q_depth", "depth", fn=lambda: depth[0])
    depth[0] = 7
    assert isinstance(g, Gauge)
    assert reg.value("buttress_q_depth") == 7


def test_latency_records_into_sketch():
    reg = Registry()
    lat = reg.latency("buttress_lat_seconds", "lat", {"route": "/"})
    assert isinstance(lat, Latency)
    for v in (0.01, 0.02, 0.03):
        lat.record(v)
    assert lat.sketch.count == 3
    assert reg.value("buttress_lat_seconds", {"route": "/"}) == 3


def test_kind_conflict_and_bad_names():
    reg = Registry()
    reg.counter("m", "m")
    with pytest.raises(ValueError, match="already registered as a counter"):
        reg.gauge("m", "m")
    with pytest.raises(ValueError, match="not a valid Prometheus name"):
        reg.counter("9bad-name", "x")
    assert isinstance(reg.get("m"), Counter)
    reg.clear()
    assert reg.families() == []
