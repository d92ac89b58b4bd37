"""An email provider outage: the breaker opens, registrations still succeed, their confirmations are
dead-lettered, and after recovery the replay sends each exactly once."""

from __future__ import annotations

import re
import time
from importlib import resources

from buttress.clock import VirtualClock

EMAIL_POLICY = """[demo.policies.email]
timeout = "5s"
retry = { attempts = 1 }
breaker = { window = 4, minimum_calls = 4, failure_rate = 0.5, wait_open = "30s", half_open_calls = 1 }
"""


def _config(tmp_path):
    text = resources.files("buttress.demo").joinpath("buttress.demo.toml").read_text(encoding="utf-8")
    text = re.sub(r"\[demo\.policies\.email\]\n(?:[^\[\n][^\n]*\n|\n)*", EMAIL_POLICY + "\n", text, count=1)
    path = tmp_path / "buttress.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _until(check, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling a condition with a deadline, not sleeping instead of waiting


def test_email_outage_dead_letters_then_replays_each_once(start_app, settings_for, providers, tmp_path):
    clock = VirtualClock()
    settings = settings_for(f"sqlite:///{tmp_path}/demo.db", tmp_path, config_path=_config(tmp_path))
    running = start_app(settings, clock=clock)
    c = running.client()

    def state():
        return c.get("/_buttress/api/state").json()

    def extra(name):
        return state()["extras"][name]

    providers.chaos["email"].update({"down": True})
    try:
        ids = []
        for i in range(6):
            r = c.post(
                "/api/v1/events/batbern60/registrations",
                json={"first_name": "Out", "last_name": f"Age{i}", "email": f"outage{i}@example.com"},
            )
            assert r.status_code == 201, r.text  # registrations succeed during the outage
            assert r.json()["data"]["confirmation_email"] == "queued"
            ids.append(r.json()["data"]["id"])
        _until(lambda: extra("emails dead-lettered") == 6, "six dead letters")
        now = state()
        email = next(b for b in now["breakers"] if b["name"] == "email")
        assert email["state"] == "open"
        assert email["calls"]["failed"] == 4
        assert email["calls"]["not_permitted"] == 2
        assert [(t["from_state"], t["to_state"]) for t in now["transitions"] if t["name"] == "email"][-1] == (
            "closed",
            "open",
        )
        assert extra("emails sent") == 0
    finally:
        providers.chaos["email"].heal()
    delivered_keys = {m["idempotency_key"] for m in providers.outbox.messages}
    assert not {f"registration-{i}" for i in ids} & delivered_keys

    clock.advance(31)  # the breaker's open wait, on the policies' clock
    r = c.post(
        "/api/v1/events/batbern60/registrations",
        json={"first_name": "After", "last_name": "Recovery", "email": "after@example.com"},
    )
    assert r.status_code == 201
    # Its email is the half-open trial; success closes the breaker, which triggers the replay.
    _until(lambda: extra("emails replayed") == 6, "the replay of six dead letters")
    keys = [m["idempotency_key"] for m in providers.outbox.messages]
    for i in ids:
        assert keys.count(f"registration-{i}") == 1
    assert providers.outbox.duplicates == 0
    after = state()
    assert next(b for b in after["breakers"] if b["name"] == "email")["state"] == "closed"
    assert [(t["from_state"], t["to_state"]) for t in after["transitions"] if t["name"] == "email"][-2:] == [
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert sum(d["depth"] for d in after["dead_letters"]) == 0
