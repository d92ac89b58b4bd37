"""The dashboard app over real HTTP: page, vendored assets, JSON state, server-sent events, controls."""

from __future__ import annotations

import json

import httpx
import pytest

from buttress.dashboard import Control, LocalSource, create_dashboard
from buttress.demo.serve import BackgroundServer
from buttress.telemetry import EventStream, Registry


@pytest.fixture
def served():
    registry = Registry()
    registry.counter("buttress_cache_requests", "", {"namespace": "events", "result": "hit"}).value = 9
    registry.counter("buttress_cache_requests", "", {"namespace": "events", "result": "miss"}).value = 1
    registry.gauge("buttress_circuitbreaker_state", "", {"name": "email", "state": "open"}).set(1)
    registry.gauge("buttress_circuitbreaker_state", "", {"name": "email", "state": "closed"}).set(0)
    pressed = []
    control = Control(
        name="email",
        state=lambda: {"down": bool(pressed and pressed[-1] == "break")},
        actions={"break": lambda: pressed.append("break"), "heal": lambda: pressed.append("heal")},
    )
    app = create_dashboard(
        LocalSource(registry, EventStream()), title="test", interval=0.05, controls=[control]
    )
    server = BackgroundServer(app).start_thread()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client, registry, pressed
    finally:
        server.stop_thread()


def test_page_and_vendored_chart_library_are_served_locally(served):
    client, _, _ = served
    page = client.get("/")
    assert page.status_code == 200
    assert "static/uPlot.iife.min.js" in page.text
    assert "http" not in page.text.split("<body", 1)[1].split("</body>")[0]  # no CDN, no remote asset
    assert client.get("/static/uPlot.iife.min.js").status_code == 200
    assert "MIT License" in client.get("/static/LICENSE.uPlot.txt").text
    assert (
        client.get("/static/dashboard.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )


def test_state_shows_caches_and_breakers(served):
    client, _, _ = served
    state = client.get("/api/state").json()
    assert state["cache"][0]["namespace"] == "events"
    assert state["cache"][0]["hit_rate"] == pytest.approx(0.9)
    assert state["breakers"] == [{"name": "email", "state": "open", "workers": {"open": 1.0}, "calls": {}}]


def test_stream_pushes_updates_that_follow_the_registry(served):
    client, registry, _ = served
    seen = []
    with client.stream("GET", "/api/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = json.loads(line[6:])
            seen.append(data["cache"][0]["hits"])
            if len(seen) == 1:
                registry.counter(
                    "buttress_cache_requests", "", {"namespace": "events", "result": "hit"}
                ).value += 5
            if seen[-1] == 14:
                break
    assert seen[0] == 9
    assert seen[-1] == 14


def test_controls_run_their_actions_and_unknown_ones_are_404(served):
    client, _, pressed = served
    r = client.post("/api/controls/email/break")
    assert r.json() == {"name": "email", "action": "break", "state": {"down": True}}
    assert client.post("/api/controls/email/heal").json()["state"] == {"down": False}
    assert pressed == ["break", "heal"]
    missing = client.post("/api/controls/email/explode")
    assert missing.status_code == 404
    assert missing.json()["controls"] == {"email": ["break", "heal"]}


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval"):
        create_dashboard(interval=0)


def test_async_actions_are_awaited_and_non_finite_numbers_become_null():
    pressed = []

    async def drain() -> None:
        pressed.append("drain")

    control = Control(name="queue", state=lambda: {"drained": pressed == ["drain"]}, actions={"drain": drain})
    app = create_dashboard(
        LocalSource(Registry(), EventStream()),
        controls=[control],
        extras=lambda merged: {"ratio": float("nan"), "limits": [float("inf"), 1.5], "name": "x"},
    )
    server = BackgroundServer(app).start_thread()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.post("/api/controls/queue/drain").json()["state"] == {"drained": True}
            state = client.get("/api/state").json()
            assert client.post("/api/controls/nope/drain").status_code == 404
    finally:
        server.stop_thread()
    assert state["extras"] == {"ratio": None, "limits": [None, 1.5], "name": "x"}
    assert state["controls"] == [
        {"name": "queue", "description": "", "state": {"drained": True}, "actions": ["drain"]}
    ]
