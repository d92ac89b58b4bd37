"""The Web Vitals beacon endpoint over real HTTP: P75 per page and device, and bad beacons turned away."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from buttress.clock import VirtualClock
from buttress.slo.vitals import THRESHOLDS, BeaconRejected, VitalsCollector, rate, script, vitals_app
from buttress.telemetry.registry import Registry
from conftest import serve_asgi


def beacon(page="/events/{id}", device="mobile", metrics=None):
    return {"page": page, "device": device, "metrics": metrics or []}


@pytest.fixture
def served():
    clock = VirtualClock()
    collector = VitalsCollector(registry=Registry(), clock=clock, rate=1.0, burst=5, max_body=2048)
    with serve_asgi(vitals_app(collector)) as url, httpx.Client(base_url=url) as client:
        yield client, collector, clock


def test_p75_per_page_and_device(served):
    client, collector, clock = served
    rnd = np.random.default_rng(3)
    lcp_mobile = rnd.lognormal(7.9, 0.4, 60)  # ~2.7 s median on mobile
    lcp_desktop = rnd.lognormal(7.0, 0.3, 40)
    sent = 0
    for device, values in (("mobile", lcp_mobile), ("desktop", lcp_desktop)):
        for i, v in enumerate(values):
            metrics = [{"name": "LCP", "value": float(v), "id": f"{device}-lcp-{i}", "rating": "good"}]
            metrics.append(
                {"name": "CLS", "value": 0.02 if device == "desktop" else 0.3, "id": f"{device}-cls-{i}"}
            )
            response = client.post("/vitals", json=beacon(device=device, metrics=metrics))
            assert response.status_code == 202, response.text
            assert response.json() == {"accepted": 2, "duplicates": 0}
            sent += 1
            clock.advance(1.0)  # one beacon a second per client is within the rate
    summary = {(s["metric"], s["device"]): s for s in client.get("/summary").json()}
    mobile, desktop = summary[("LCP", "mobile")], summary[("LCP", "desktop")]
    for row, values in ((mobile, lcp_mobile), (desktop, lcp_desktop)):
        exact = float(np.quantile(values, 0.75, method="lower"))
        assert row["count"] == len(values)
        assert abs(row["p75"] - exact) <= 0.011 * exact  # 1 % sketch error (plus ms/s rounding)
        assert row["rating"] == rate("LCP", row["p75"])  # rated by the server, not the client's claim
    assert mobile["rating"] in ("needs-improvement", "poor")
    assert desktop["rating"] == "good"
    assert summary[("CLS", "mobile")]["rating"] == "poor"
    assert summary[("CLS", "desktop")]["rating"] == "good"
    ratings = collector.registry.value(
        "buttress_web_vitals_ratings",
        {"page": "/events/{id}", "device": "desktop", "metric": "CLS", "rating": "good"},
    )
    assert ratings == 40


def test_duplicate_metric_ids_count_once(served):
    client, collector, _ = served
    body = beacon(
        metrics=[{"name": "INP", "value": 180, "id": "v5-1"}, {"name": "TTFB", "value": 300, "id": "v5-2"}]
    )
    assert client.post("/vitals", json=body).json() == {"accepted": 2, "duplicates": 0}
    assert client.post("/vitals", json=body).json() == {"accepted": 0, "duplicates": 2}
    assert [s.count for s in collector.summary()] == [1, 1]


def test_malformed_beacons_are_rejected(served):
    client, collector, clock = served
    cases = [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 422, "must be a JSON object"),
        (
            json.dumps(beacon(page="events", device="fridge", metrics=[])).encode(),
            422,
            "page must be a path starting with '/' of at most 200 characters; "
            "device must be one of mobile, tablet, "
            "desktop; metrics must be a list of 1 to 10 entries",
        ),
        (
            json.dumps(beacon(metrics=[{"name": "XYZ", "value": 1, "id": "a"}])).encode(),
            422,
            "metrics[0].name must be one of",
        ),
        (
            json.dumps(beacon(metrics=[{"name": "LCP", "value": -5, "id": "a"}])).encode(),
            422,
            "metrics[0].value must be a number",
        ),
        (
            json.dumps(beacon(metrics=[{"name": "CLS", "value": "NaN", "id": "a"}])).encode(),
            422,
            "metrics[0].value",
        ),
        (
            json.dumps(beacon(metrics=[{"name": "FCP", "value": 10, "id": ""}])).encode(),
            422,
            "metrics[0].id must be",
        ),
        (
            json.dumps({**beacon(metrics=[{"name": "FCP", "value": 10, "id": "x"}]), "cookie": "x"}).encode(),
            422,
            "unknown fields",
        ),
    ]
    for body, status, message in cases:
        clock.advance(1.0)
        response = client.post("/vitals", content=body, headers={"content-type": "application/json"})
        assert response.status_code == status, body
        assert message in response.json()["error"]
    assert collector.summary() == []


def test_oversized_beacons_are_rejected(served):
    client, collector, clock = served
    big = json.dumps(beacon(metrics=[{"name": "LCP", "value": 1, "id": "x" * 100}] * 30)).encode()
    assert len(big) > 2048
    response = client.post("/vitals", content=big)
    assert response.status_code == 413
    clock.advance(1.0)

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b" " * 512

    response = client.post("/vitals", content=chunks())
    assert response.status_code == 413
    assert collector.summary() == []


def test_a_flooding_client_is_rate_limited(served):
    client, collector, clock = served
    statuses = []
    for i in range(8):
        body = beacon(metrics=[{"name": "TTFB", "value": 100 + i, "id": f"flood-{i}"}])
        statuses.append(client.post("/vitals", json=body).status_code)
    assert statuses == [202] * 5 + [429] * 3  # a burst of five, then one per second
    clock.advance(2.0)
    statuses = [
        client.post(
            "/vitals", json=beacon(metrics=[{"name": "TTFB", "value": 1, "id": f"later-{i}"}])
        ).status_code
        for i in range(3)
    ]
    assert statuses == [202, 202, 429]
    assert sum(s.count for s in collector.summary()) == 7


def test_script_is_served_and_shipped(served):
    client, _, _ = served
    response = client.get("/vitals.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    body = response.content
    assert body == script()
    # Built from web-vitals: the five observers, the endpoint and sendBeacon; no CDN reference.
    text = body.decode()
    assert "/_buttress/vitals" in text
    assert "sendBeacon" in text
    for entry_type in (
        "largest-contentful-paint",
        "layout-shift",
        "first-contentful-paint",
        "navigation",
        '"event"',
    ):
        assert entry_type in text  # the PerformanceObserver entry types behind LCP, CLS, FCP, TTFB and INP
    assert "http://" not in text
    assert "https://" not in text
    assert len(body) < 20_000


def test_thresholds_and_ratings():
    assert THRESHOLDS["LCP"] == (2500, 4000)
    assert THRESHOLDS["INP"] == (200, 500)
    assert THRESHOLDS["CLS"] == (0.1, 0.25)
    assert THRESHOLDS["FCP"] == (1800, 3000)
    assert THRESHOLDS["TTFB"] == (800, 1800)
    assert [rate("LCP", v) for v in (2500, 2501, 4000, 4001)] == [
        "good",
        "needs-improvement",
        "needs-improvement",
        "poor",
    ]


def test_pages_are_bounded():
    collector = VitalsCollector(registry=Registry(), max_pages=2)
    for i in range(4):
        collector.record(f"/p{i}", "desktop", [("FCP", 100.0, f"id{i}")])
    assert sorted({s.page for s in collector.summary()}) == ["/p0", "/p1", "<other>"]


def test_bad_collector_settings():
    with pytest.raises(ValueError, match="max_body"):
        VitalsCollector(max_body=10)


def test_clients_behind_a_trusted_proxy_are_told_apart():
    collector = VitalsCollector(registry=Registry(), clock=VirtualClock(), burst=1)
    # uvicorn's own proxy-header handling is off, so the app is what reads X-Forwarded-For.
    app = vitals_app(collector, trust_forwarded=True)
    with serve_asgi(app, proxy_headers=False) as url, httpx.Client(base_url=url) as client:

        def post(forwarded: str, i: int) -> int:
            body = beacon(metrics=[{"name": "FCP", "value": 900, "id": f"{forwarded}-{i}"}])
            return client.post("/vitals", json=body, headers={"X-Forwarded-For": forwarded}).status_code

        assert [post("10.0.0.1, 172.16.0.9", 0), post("10.0.0.1", 1), post("10.0.0.2", 2)] == [202, 429, 202]


def test_forwarded_addresses_are_ignored_unless_trusted():
    collector = VitalsCollector(registry=Registry(), clock=VirtualClock(), burst=2)
    app = vitals_app(collector)
    with serve_asgi(app, proxy_headers=False) as url, httpx.Client(base_url=url) as client:
        statuses = [
            client.post(
                "/vitals",
                json=beacon(metrics=[{"name": "FCP", "value": 900, "id": f"spoof-{i}"}]),
                headers={"X-Forwarded-For": f"10.0.0.{i}"},
            ).status_code
            for i in range(3)
        ]
    assert statuses == [202, 202, 429]  # all from 127.0.0.1, whatever the header claims


def test_remembered_clients_and_metric_ids_are_bounded():
    clock = VirtualClock()
    collector = VitalsCollector(registry=Registry(), clock=clock, burst=1, max_clients=2, dedup_size=2)
    collector.admit("a")
    collector.admit("b")
    collector.admit("c")  # "a", seen least recently, is forgotten: it starts again with a full bucket
    collector.admit("a")
    with pytest.raises(BeaconRejected) as info:
        collector.admit("c")  # still remembered, and empty
    assert info.value.status == 429
    metrics = [("TTFB", 100.0, "1"), ("TTFB", 100.0, "2"), ("TTFB", 100.0, "3")]
    assert collector.record("/p", "mobile", metrics) == (3, 0)
    assert collector.record("/p", "mobile", [("TTFB", 100.0, "3"), ("TTFB", 100.0, "1")]) == (1, 1)


def test_collector_api_checks_the_body_itself():
    collector = VitalsCollector(registry=Registry(), clock=VirtualClock(), max_body=256)
    with pytest.raises(BeaconRejected) as info:
        collector.accept(b" " * 300, "client")
    assert (info.value.status, info.value.message) == (413, "beacon larger than 256 bytes")
    body = json.dumps(beacon(device="desktop", metrics=[7, {"name": "LCP", "value": 1200, "id": "x"}]))
    with pytest.raises(BeaconRejected) as info:
        collector.accept(body.encode(), "client")
    assert (info.value.status, info.value.message) == (422, "metrics[0] must be an object")
    ok = json.dumps(beacon(device="desktop", metrics=[{"name": "LCP", "value": 1200, "id": "x"}]))
    assert collector.accept(ok.encode(), "client") == (1, 0)
    (summary,) = collector.summary()
    assert (summary.metric, summary.device, summary.count, summary.rating) == ("LCP", "desktop", 1, "good")


async def test_a_client_that_disconnects_mid_beacon_gets_400():
    # The ASGI message a server sends when the client goes away while the body is being read.
    app = vitals_app(VitalsCollector(registry=Registry(), clock=VirtualClock()))
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/vitals",
        "raw_path": b"/vitals",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 400
