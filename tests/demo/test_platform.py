"""The platform app around its API: health, metrics, page assets, errors and the dashboard's controls."""

from __future__ import annotations

import re

import httpx
import pytest

from buttress.demo.app import from_env
from buttress.demo.errors import CorrelationIdMiddleware
from buttress.demo.serve import BackgroundServer
from buttress.demo.settings import ENV, Settings


def test_health_page_assets_and_metrics(sqlite_app):
    c = sqlite_app.client()
    assert c.get("/health").json() == {"status": "ok", "worker": "0"}
    assert c.get("/favicon.ico").status_code == 204
    placeholder = c.get("/placeholder.svg")
    assert placeholder.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in placeholder.text
    page = c.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "/_vitals/vitals.js" in page.text
    c.get("/api/v1/events/batbern3")
    metrics = c.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    # The request above was timed under its route template; /health and /metrics themselves are not.
    assert re.search(
        r'buttress_http_request_duration_seconds_count\{[^}]*route="/api/v1/events/\{code\}"', metrics.text
    )
    assert 'route="/health"' not in metrics.text


def test_a_wrong_method_is_405_in_the_error_format(sqlite_app):
    r = sqlite_app.client().delete("/api/v1/events/batbern3")
    assert r.status_code == 405
    error = r.json()["error"]
    assert (error["status"], error["code"]) == (405, "method_not_allowed")
    assert error["correlation_id"] == r.headers["x-correlation-id"]


@pytest.mark.parametrize("given", ["has spaces", "x" * 200, "semi;colon"])
def test_an_unusable_correlation_id_is_replaced_by_a_fresh_one(sqlite_app, given):
    r = sqlite_app.client().get("/api/v1/events/nope", headers={"X-Correlation-ID": given})
    cid = r.headers["x-correlation-id"]
    assert cid != given
    assert re.fullmatch(r"[0-9a-f]{32}", cid)
    assert r.json()["error"]["correlation_id"] == cid


def test_the_dashboard_breaks_and_heals_a_provider(sqlite_app, providers):
    c = sqlite_app.client()
    try:
        broken = c.post("/_buttress/api/controls/storage/break")
        assert broken.status_code == 200
        assert broken.json()["state"]["down"] is True
        assert providers.chaos["storage"].down is True  # the provider itself, over its /_chaos
        healed = c.post("/_buttress/api/controls/storage/heal").json()
        assert healed["state"]["down"] is False
        assert providers.chaos["storage"].down is False
    finally:
        providers.heal()
    state = c.get("/_buttress/api/state").json()
    assert [row["name"] for row in state["controls"]] == ["email", "storage", "identity"]
    assert {row["name"] for row in state["slo"]} >= {"public-pages-latency", "public-pages-availability"}
    assert "registrations confirmed" in state["extras"]


def test_an_unexpected_error_is_a_500_carrying_the_correlation_id(caplog):
    async def fails(scope, receive, send):
        raise RuntimeError("bug")

    server = BackgroundServer(CorrelationIdMiddleware(fails)).start_thread()
    try:
        r = httpx.get(server.url, headers={"X-Correlation-ID": "trace-500"}, timeout=10)
    finally:
        server.stop_thread()
    assert r.status_code == 500
    assert r.headers["x-correlation-id"] == "trace-500"
    error = r.json()["error"]
    assert (error["code"], error["correlation_id"]) == ("internal_error", "trace-500")
    assert "quote the correlation id" in error["message"]
    assert "unhandled error (correlation id trace-500)" in caplog.text


def test_an_error_after_the_response_started_is_logged_not_answered_twice(caplog):
    async def fails_midway(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        raise RuntimeError("bug after start")

    server = BackgroundServer(CorrelationIdMiddleware(fails_midway)).start_thread()
    try:
        with pytest.raises(httpx.RemoteProtocolError):  # the body never comes; no second response
            httpx.get(server.url, timeout=10)
    finally:
        server.stop_thread()
    assert "unhandled error" in caplog.text


def test_workers_build_the_app_from_their_environment(monkeypatch, tmp_path):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/demo.db",
        state_dir=str(tmp_path),
        email_url="http://127.0.0.1:1",
        storage_url="http://127.0.0.1:2",
        identity_url="http://127.0.0.1:3",
        worker="7",
    )
    monkeypatch.setenv(ENV, settings.to_json())
    assert Settings.from_env() == settings
    app = from_env()
    assert app.state.platform.settings.worker == "7"
    monkeypatch.delenv(ENV)
    with pytest.raises(
        RuntimeError, match="BUTTRESS_DEMO_SETTINGS is not set; start workers with `buttress demo`"
    ):
        Settings.from_env()


def test_start_up_warms_the_events_cache_and_updates_still_evict(start_app, settings_for, tmp_path):
    app = start_app(settings_for(f"sqlite:///{tmp_path}/demo.db", tmp_path))
    platform = app.platform
    report = platform.warm_report
    assert report.loaded == {"current event": 1, "recent events": 20}
    cache = platform.wiring.caches["events"]
    store = cache.core.store
    warmed = sorted(k for k in store if k.startswith("event:"))
    assert len(warmed) == 20
    assert store.peek("current") is not None
    code = warmed[0].split(":")[1]
    hits = cache.core.metrics.hits.value
    c = app.client()
    title = c.get(f"/api/v1/events/{code}").json()["data"]["title"]
    assert cache.core.metrics.hits.value == hits + 1  # the first visitor's page came from the cache
    r = c.patch(f"/api/v1/events/{code}", json={"title": f"{title}, renamed"}, headers=app.auth())
    assert r.status_code == 200, r.text
    assert c.get(f"/api/v1/events/{code}").json()["data"]["title"] == f"{title}, renamed"
