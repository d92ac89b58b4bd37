"""The traffic generator against the platform on SQLite: the request mix, both loops, and what it counts.

Runs are bounded by a fraction of a second; the assertions are about what was sent and counted, never
about how fast.
"""

from __future__ import annotations

import collections

import pytest

from buttress.demo.http import Connection
from buttress.demo.serve import bind
from buttress.demo.traffic import MIX, TrafficGenerator

_READS = {"event_detail": 3, "events_list": 1, "current_event": 1, "speaker": 2, "company_search": 1}


async def _discovered(app, **kwargs) -> TrafficGenerator:
    generator = TrafficGenerator(app.url, token=app.token, **kwargs)
    client = Connection(app.url)
    try:
        await generator.discover(client)
    finally:
        await client.close()
    return generator


async def test_the_mix_covers_every_operation_with_its_method_and_path(sqlite_app):
    generator = await _discovered(sqlite_app, seed=5)
    requests = [generator.next_request() for _ in range(5000)]
    by_op = collections.defaultdict(list)
    for op, method, path, kwargs in requests:
        by_op[op].append((method, path, kwargs))
    assert set(by_op) == set(MIX)
    share = len(by_op["event_detail"]) / len(requests)
    assert 0.25 < share < 0.35  # 30 % of the mix
    method, path, kwargs = by_op["registration"][0]
    assert (method, path) == ("POST", "/api/v1/events/batbern60/registrations")
    emails = {kw["json_body"]["email"] for _, _, kw in by_op["registration"]}
    assert len(emails) == len(by_op["registration"])  # every visitor registers once
    for op in ("patch_event", "patch_speaker"):
        method, path, kwargs = by_op[op][0]
        assert method == "PATCH"
        assert kwargs["headers"] == {"Authorization": f"Bearer {sqlite_app.token}"}
    searches = [kw["params"]["q"] for _, _, kw in by_op["company_search"]]
    assert all(2 <= len(q) <= 4 for q in searches)
    # Zipf popularity: the most popular event gets far more detail views than the median one.
    details = collections.Counter(path for _, path, _ in by_op["event_detail"])
    counts = sorted(details.values(), reverse=True)
    assert counts[0] > 5 * counts[len(counts) // 2]


async def test_a_closed_loop_run_answers_every_request(sqlite_app):
    generator = await _discovered(sqlite_app, rate=None, concurrency=2, mix=_READS, seed=2)
    report = await generator.run(0.3)
    data = report.to_json()
    assert data["requests"] > 0
    assert data["errors"] == 0
    assert data["dropped"] == 0
    assert set(data["ops"]) == set(_READS)
    assert {s for op in data["ops"].values() for s in op["statuses"]} == {"2xx"}
    answered = [op for op in data["ops"].values() if op["requests"]]
    assert all(0 < op["p50_ms"] <= op["p95_ms"] <= op["p99_ms"] for op in answered)


async def test_an_open_loop_drops_arrivals_that_find_no_free_client(sqlite_app):
    generator = await _discovered(sqlite_app, rate=5000, concurrency=1, mix=_READS, seed=3)
    report = await generator.run(0.2)
    assert report.requests > 0
    assert report.dropped > 0  # arrivals are not delayed: a full house drops them
    assert report.errors == 0


async def test_an_unreachable_platform_counts_transport_errors(sqlite_app):
    generator = await _discovered(sqlite_app, rate=None, concurrency=2, mix=_READS)
    with bind() as sock:
        generator.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    report = await generator.run(0.1)  # nothing listens there any more
    assert report.requests > 0
    assert report.errors == report.requests
    assert {s for op in report.ops.values() for s in op.statuses} == {"transport"}


def test_options_are_checked():
    with pytest.raises(ValueError, match="rate must be a positive number"):
        TrafficGenerator("http://127.0.0.1:1", token="t", rate=0)
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        TrafficGenerator("http://127.0.0.1:1", token="t", concurrency=0)
    with pytest.raises(ValueError, match=r"unknown operation\(s\) \['delete_event'\]"):
        TrafficGenerator("http://127.0.0.1:1", token="t", mix={"delete_event": 1.0})
    generator = TrafficGenerator("http://127.0.0.1:1/", token="t", rate=10)
    assert generator.base_url == "http://127.0.0.1:1"
    generator.set_rate(50)
    assert generator.rate == 50
    for bad in (None, 0, -1):
        with pytest.raises(ValueError, match="rate must be a positive number"):
            generator.set_rate(bad)
