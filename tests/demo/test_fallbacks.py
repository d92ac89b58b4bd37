"""Storage and identity outages answered by ``buttress.resilience.Fallback``: a placeholder image that is
never cached, and an editor's token accepted again within the grace period — then refused after it."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from buttress.clock import VirtualClock
from buttress.demo.wiring import PLACEHOLDER_IMAGE


def _config(tmp_path):
    """The embedded configuration with one attempt per storage and identity call (no retry sleeps)."""
    text = resources.files("buttress.demo").joinpath("buttress.demo.toml").read_text(encoding="utf-8")
    for name in ("storage", "identity"):
        text, found = re.subn(
            rf"(\[resilience\.policies\.{name}\]\n)retry = [^\n]*\n",
            r"\1retry = { attempts = 1 }\n",
            text,
            count=1,
        )
        assert found == 1
    path = tmp_path / "buttress.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def running(start_app, settings_for, providers, tmp_path):
    clock = VirtualClock()
    settings = settings_for(f"sqlite:///{tmp_path}/demo.db", tmp_path, config_path=_config(tmp_path))
    app = start_app(settings, clock=clock)
    yield app, clock
    providers.heal()


def _fallbacks(app, name):
    return app.registry.value("buttress_fallback_calls", {"name": name, "kind": "fallback"})


def test_a_storage_outage_serves_the_placeholder_and_never_caches_it(running, providers):
    app, _ = running
    c = app.client()
    providers.chaos["storage"].update({"down": True})
    r = c.get("/api/v1/events/batbern40")
    assert r.status_code == 200  # the page is served
    assert r.json()["data"]["image_url"] == PLACEHOLDER_IMAGE
    assert _fallbacks(app, "storage") == 1
    providers.chaos["storage"].heal()
    again = c.get("/api/v1/events/batbern40").json()["data"]["image_url"]
    assert again != PLACEHOLDER_IMAGE  # signed now: the placeholder was not cached
    assert _fallbacks(app, "storage") == 1


def test_an_identity_outage_accepts_a_recent_token_until_its_grace_ends(running, providers):
    app, clock = running
    c = app.client()
    assert (
        c.patch(
            "/api/v1/events/batbern41", json={"title": "BATbern41 while up"}, headers=app.auth()
        ).status_code
        == 200
    )
    providers.chaos["identity"].update({"down": True})

    r = c.patch("/api/v1/events/batbern41", json={"title": "BATbern41 while down"}, headers=app.auth())
    assert r.status_code == 200, r.text  # accepted again: the provider said yes moments ago
    assert _fallbacks(app, "identity") == 1

    stranger = c.patch(
        "/api/v1/events/batbern41",
        json={"title": "BATbern41 by a stranger"},
        headers={"Authorization": "Bearer never-seen"},
    )
    assert stranger.status_code == 503
    assert stranger.json()["error"]["code"] == "identity_unavailable"
    assert int(stranger.headers["Retry-After"]) >= 1

    clock.advance(301)  # past [demo] token_grace (5 min) on the platform's clock
    late = c.patch("/api/v1/events/batbern41", json={"title": "BATbern41 too late"}, headers=app.auth())
    assert late.status_code == 503
    assert _fallbacks(app, "identity") == 1
