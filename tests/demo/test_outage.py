"""An email provider outage: the breaker opens, registrations still succeed, their confirmations land in
buttress's dead-letter queue (SQLite under the state dir, or Redis Streams with a Redis URL), and after
recovery the replay sends each exactly once — counted at the email provider."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from importlib import resources

import pytest

from buttress.clock import VirtualClock
from buttress.demo.wiring import dead_letter_store, demo_config

# A small window so six registrations tell the whole story; one attempt per email, so every failure is
# one breaker call. The periodic replay is pushed out of the test's way: the breaker closing must start
# the replay on its own.
EMAIL_POLICY = """[resilience.policies.email]
retry = { attempts = 1 }
http = { connect = "5s", read = "5s" }
order = ["retry", "breaker"]

[resilience.policies.email.breaker]
window = "count:4"
minimum_calls = 4
failure_rate = 0.5
wait_open = "30s"
half_open_calls = 1

"""


def _config(tmp_path):
    text = resources.files("buttress.demo").joinpath("buttress.demo.toml").read_text(encoding="utf-8")
    text, found = re.subn(
        r"\[resilience\.policies\.email\]\n(?:[^\[\n][^\n]*\n|\n)*", EMAIL_POLICY, text, count=1
    )
    assert found == 1
    assert 'replay_interval = "5s"' in text
    text = text.replace('replay_interval = "5s"', 'replay_interval = "1h"')
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


def _dlq_list(store):
    """``buttress dlq list --store STORE --json``, run as a user would while the platform runs."""
    run = subprocess.run(
        [sys.executable, "-m", "buttress.cli.main", "dlq", "list", "--store", store, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store_kind(request):
    return request.param


def test_email_outage_dead_letters_then_replays_each_once(
    start_app, settings_for, providers, tmp_path, store_kind, request
):
    redis_url = request.getfixturevalue("redis_server").url if store_kind == "redis" else None
    clock = VirtualClock()
    config_path = _config(tmp_path)
    settings = settings_for(
        f"sqlite:///{tmp_path}/demo.db", tmp_path, config_path=config_path, redis_url=redis_url
    )
    store = dead_letter_store(demo_config(config_path), state_dir=str(tmp_path), redis_url=redis_url)
    assert store == (redis_url or f"sqlite:{tmp_path}/dlq.db")
    providers.outbox.clear()  # the provider is shared by the module; count only this test's deliveries
    running = start_app(settings, clock=clock)
    assert running.platform.wiring.dead_letters.store.url.startswith(store_kind)
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
        # The dashboard reads the queue's own depth gauge (buttress_dlq_depth), once for the store.
        (queue,) = now["dead_letters"]
        assert (queue["name"], queue["depth"], queue["dead_lettered"]) == ("email", 6, 6)
    finally:
        providers.chaos["email"].heal()

    # What an operator sees with `buttress dlq list` while the platform runs: one item per registration,
    # keyed by its id, with the error and the request's correlation id.
    items = _dlq_list(store)
    assert sorted(item["idempotency_key"] for item in items) == sorted(f"registration-{i}" for i in ids)
    assert {item["policy"] for item in items} == {"email"}
    assert all(item["error_type"] for item in items)
    assert all(item["correlation_id"] for item in items)
    assert sorted(item["payload"]["args"][0]["registration_id"] for item in items) == sorted(ids)
    assert providers.outbox.stats() == {"delivered": 0, "duplicates": 0}  # nothing reached the provider

    clock.advance(31)  # the breaker's open wait, on the policies' clock
    r = c.post(
        "/api/v1/events/batbern60/registrations",
        json={"first_name": "After", "last_name": "Recovery", "email": "after@example.com"},
    )
    assert r.status_code == 201
    # Its email is the half-open trial; success closes the breaker, whose transition starts the replay.
    _until(lambda: extra("emails replayed") == 6, "the replay of six dead letters")

    # Deliveries counted at the email provider: each dead-lettered confirmation arrived once, and no
    # request repeated a key (the provider would have counted it as a duplicate).
    delivered = [m["idempotency_key"] for m in providers.outbox.messages]
    for i in ids:
        assert delivered.count(f"registration-{i}") == 1
    assert len(delivered) == 7  # the six replayed, and the trial registration's own
    assert providers.outbox.duplicates == 0

    after = state()
    assert after["extras"]["emails sent"] == 1
    assert after["extras"]["email replays failed"] == 0
    assert next(b for b in after["breakers"] if b["name"] == "email")["state"] == "closed"
    assert [(t["from_state"], t["to_state"]) for t in after["transitions"] if t["name"] == "email"][-2:] == [
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert [(d["name"], d["depth"], d["replayed"]) for d in after["dead_letters"]] == [("email", 0, 6)]
    assert _dlq_list(store) == []
    # The replay recorded each confirmation as sent on its registration.
    with sqlite3.connect(tmp_path / "demo.db") as db:
        rows = db.execute(
            f"SELECT confirmation_sent FROM registrations WHERE id IN ({','.join('?' * len(ids))})", ids
        ).fetchall()
    assert rows == [(1,)] * 6
