"""The provider services over real HTTP: what they answer, their chaos controls, and the platform's clients.

The demo's outage stories rest on these: a provider that is down answers 503 (counted), a healed one
answers again, a bad chaos setting is refused with the reason, and the platform's clients turn what a
provider answers into a result or a :class:`~buttress.demo.providers.clients.ProviderError`.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from buttress.demo.providers.chaos import Chaos
from buttress.demo.providers.clients import EmailClient, IdentityClient, ProviderError, StorageClient
from buttress.demo.providers.storage import create_storage_app
from buttress.demo.serve import BackgroundServer, bind


@pytest.fixture
def http(providers):
    with httpx.Client(timeout=10) as client:
        yield client
    providers.heal()


@pytest.mark.parametrize("name", ["email", "storage", "identity"])
def test_break_and_heal_over_http(providers, http, name):
    base = getattr(providers, name).url
    probe = {"email": ("GET", "/stats"), "storage": ("GET", "/sign/a.png"), "identity": ("POST", "/verify")}
    method, path = probe[name]
    before = http.get(f"{base}/_chaos").json()
    assert before["provider"] == name
    assert before["down"] is False
    broken = http.post(f"{base}/_chaos/break").json()
    assert broken["down"] is True
    failed = http.request(method, base + path, json={"token": "x"})
    assert failed.status_code == 503
    assert failed.json() == {"error": f"{name} is unavailable (injected fault)"}
    after = http.get(f"{base}/_chaos").json()
    assert (after["calls"], after["failed"]) == (before["calls"] + 1, before["failed"] + 1)
    assert http.post(f"{base}/_chaos/heal").json()["down"] is False
    assert http.request(method, base + path, json={"token": "x"}).status_code != 503


def test_chaos_settings_are_checked_and_applied(providers, http):
    base = providers.storage.url
    changed = http.put(f"{base}/_chaos", json={"latency_ms": 1, "error_rate": 0.5}).json()
    assert (changed["latency_ms"], changed["error_rate"], changed["down"]) == (1.0, 0.5, False)
    statuses = [http.get(f"{base}/sign/k{i}.png").status_code for i in range(40)]
    assert set(statuses) == {200, 503}  # half fail, at random (seeded)
    assert http.patch(f"{base}/_chaos", json={"error_rate": 0}).json()["error_rate"] == 0.0
    for body, words in [
        ({"latency_ms": -1}, "latency_ms must be a number of milliseconds from 0 to 60000"),
        ({"latency_ms": True}, "latency_ms must be"),
        ({"error_rate": 1.5}, "error_rate must be a number from 0 to 1"),
        ({"down": "yes"}, "down must be true or false"),
        ({"flaky": 1}, "unknown chaos setting(s) ['flaky']"),
        ([True], "expected a JSON object"),
    ]:
        r = http.put(f"{base}/_chaos", json=body)
        assert r.status_code == 422
        assert words in r.json()["error"]
    r = http.put(f"{base}/_chaos", content=b"{not json")
    assert r.status_code == 422
    assert http.put(f"{base}/_chaos").json()["latency_ms"] == 1.0  # an empty body changes nothing
    for method, path in [("GET", "/_chaos/heal"), ("DELETE", "/_chaos"), ("POST", "/_chaos/explode")]:
        r = http.request(method, base + path)
        assert r.status_code == 404
        assert "GET/PUT /_chaos" in r.json()["error"]


def test_chaos_checks_values_in_process_too():
    chaos = Chaos()
    with pytest.raises(ValueError, match="error_rate"):
        chaos.update({"error_rate": -0.1})
    chaos.update({"down": True})
    assert chaos.decide() == (0.0, True)
    chaos.heal()
    assert chaos.decide() == (0.0, False)
    assert chaos.snapshot() == {"latency_ms": 0.0, "error_rate": 0.0, "down": False, "calls": 2, "failed": 1}


def test_storage_signs_urls_and_serves_only_signed_unexpired_objects(providers, http):
    signed = http.get(f"{providers.storage.url}/sign/events/batbern7.jpg").json()
    assert signed["expires_at"] > time.time()
    image = http.get(signed["url"])
    assert image.status_code == 200
    assert image.headers["content-type"].startswith("image/svg+xml")
    assert ">batbern7</text>" in image.text
    url = urlsplit(signed["url"])
    query = parse_qs(url.query)
    objects = f"{providers.storage.url}{url.path}"
    for params in (
        {"expires": query["expires"][0], "sig": "0" * 32},  # tampered
        {"expires": "1", "sig": query["sig"][0]},  # expired (and no longer matching)
        {"expires": "soon", "sig": query["sig"][0]},
        {},
    ):
        r = http.get(objects, params=params)
        assert r.status_code == 403
        assert r.json() == {"error": "signature invalid or expired"}


def test_storage_signs_with_its_public_url_and_passes_lifespan_through():
    # lifespan="on" sends the ASGI lifespan scope through the chaos middleware to the app.
    server = BackgroundServer(
        create_storage_app(public_url="https://cdn.example", url_ttl=60), lifespan="on"
    ).start_thread()
    try:
        signed = httpx.get(f"{server.url}/sign/a/b.png", timeout=10).json()
    finally:
        server.stop_thread()
    assert signed["url"].startswith("https://cdn.example/objects/a/b.png?expires=")


def test_identity_verifies_known_tokens_and_issues_new_ones(providers, http):
    verify = f"{providers.identity.url}/verify"
    assert http.post(verify, json={"token": providers.token}).json() == {
        "valid": True,
        "subject": "editor",
        "roles": ["editor"],
    }
    for body in ({"token": "nope"}, {"token": 7}, ["token"]):
        r = http.post(verify, json=body)
        assert r.status_code == 401
        assert r.json()["valid"] is False
    assert http.post(verify, content=b"token=abc").status_code == 400
    issued = http.post(f"{providers.identity.url}/tokens", json={"subject": "ops", "roles": ["admin"]})
    assert issued.status_code == 201
    token = issued.json()["token"]
    assert http.post(verify, json={"token": token}).json()["roles"] == ["admin"]
    default = http.post(f"{providers.identity.url}/tokens", json={"subject": "ed"}).json()["token"]
    assert http.post(verify, json={"token": default}).json()["roles"] == ["editor"]
    for body in ({"roles": ["admin"]}, {"subject": ""}, ["ops"]):
        r = http.post(f"{providers.identity.url}/tokens", json=body)
        assert r.status_code == 422
        assert r.json() == {"error": "subject is required"}
    assert http.post(f"{providers.identity.url}/tokens", content=b"subject=ops").status_code == 400


def test_email_delivers_once_per_idempotency_key(providers, http):
    base = providers.email.url
    to = f"once-{time.monotonic_ns()}@example.org"
    message = {"to": to, "subject": "Hi", "body": "Welcome", "idempotency_key": f"k-{to}"}
    first = http.post(f"{base}/messages", json=message)
    again = http.post(f"{base}/messages", json=message)
    assert (first.status_code, first.json()["duplicate"]) == (202, False)
    assert (again.status_code, again.json()) == (200, {"id": first.json()["id"], "duplicate": True})
    listed = http.get(f"{base}/messages", params={"to": to}).json()
    assert listed["total"] == 1
    assert listed["data"][0]["subject"] == "Hi"
    assert http.get(f"{base}/stats").json()["duplicates"] >= 1
    r = http.post(f"{base}/messages", json={"to": to})
    assert (r.status_code, r.json()) == (422, {"error": "missing field(s): subject, body"})
    assert http.post(f"{base}/messages", content=b"<mail/>").status_code == 400


async def test_clients_turn_provider_answers_into_results_or_provider_errors(providers):
    async with httpx.AsyncClient(timeout=10) as http:
        email = EmailClient(http, providers.email.url)
        assert await email.send({"to": "a@example.org", "subject": "s", "body": "b"}) > 0
        with pytest.raises(ProviderError, match=r"email: rejected the message: .*missing field") as err:
            await email.send({"to": "a@example.org"})
        assert err.value.status == 422
        storage = StorageClient(http, providers.storage.url + "/")
        assert (await storage.sign("x.png")).startswith(providers.storage.url + "/objects/x.png?")
        with pytest.raises(ProviderError, match=r"storage: could not sign 'x\.png'") as err:
            await StorageClient(http, providers.email.url).sign("x.png")  # no /sign there
        assert err.value.status == 404
        identity = IdentityClient(http, providers.identity.url)
        assert await identity.verify(providers.token) == {"subject": "editor", "roles": ["editor"]}
        assert await identity.verify("nope") is None
        misrouted = IdentityClient(http, providers.email.url)  # a URL without /verify
        with pytest.raises(ProviderError, match="identity: could not check the token") as err:
            await misrouted.verify(providers.token)
        assert err.value.status in (404, 405)
        providers.chaos["identity"].update({"down": True})
        try:
            with pytest.raises(ProviderError, match="identity: answered 503") as err:
                await identity.verify(providers.token)
            assert err.value.provider == "identity"
        finally:
            providers.heal()
        # Nothing listening: no answer at all, so no status.
        with bind() as sock:
            gone = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(ProviderError, match="storage: ConnectError") as err:
            await StorageClient(http, gone).sign("x.png")
        assert err.value.status is None
