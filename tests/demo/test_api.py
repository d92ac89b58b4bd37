"""The /api/v1 contract over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest


def _error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["status"] == status
    assert body["code"] == code
    assert body["message"]
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    return body


def test_events_list_is_paginated_newest_first(api):
    r = api.client().get("/api/v1/events")
    assert r.status_code == 200
    body = r.json()
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 60, "pages": 3}
    assert [e["number"] for e in body["data"]] == list(range(60, 40, -1))
    assert r.headers["x-correlation-id"]


def test_events_filter_sort_and_pages_do_not_overlap(api):
    c = api.client()
    flt = json.dumps({"status": "archived", "year": {"gte": 2010, "lt": 2015}})
    first = c.get("/api/v1/events", params={"filter": flt, "sort": "title", "limit": 10}).json()
    second = c.get("/api/v1/events", params={"filter": flt, "sort": "title", "limit": 10, "page": 2}).json()
    assert first["pagination"]["total"] == 15
    titles = [e["title"] for e in first["data"] + second["data"]]
    assert titles == sorted(titles)
    assert len(set(titles)) == 15
    assert all(2010 <= e["year"] < 2015 and e["status"] == "archived" for e in first["data"] + second["data"])
    topic = c.get("/api/v1/events", params={"filter": json.dumps({"topic": {"contains": "CLOUD"}})}).json()
    assert topic["data"]
    assert all("cloud" in e["topic"].lower() for e in topic["data"])
    assert (
        c.get("/api/v1/events", params={"filter": '{"status": {"in": ["open"]}}'}).json()["pagination"][
            "total"
        ]
        == 1
    )


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"filter": "{status: archived"}, "invalid_filter", "not valid JSON"),
        ({"filter": "[1, 2]"}, "invalid_filter", "JSON object"),
        ({"filter": '{"colour": "red"}'}, "invalid_filter", "unknown field 'colour'"),
        ({"filter": '{"year": {"between": 1}}'}, "invalid_filter", "unknown operator 'between'"),
        ({"filter": '{"year": "2019"}'}, "invalid_filter", "whole number"),
        ({"filter": '{"status": "deleted"}'}, "invalid_filter", "not one of"),
        ({"filter": '{"status": {"in": []}}'}, "invalid_filter", "non-empty list"),
        ({"sort": "-colour"}, "invalid_sort", "unknown field '-colour'"),
        ({"sort": "date,date"}, "invalid_sort", "given twice"),
        ({"sort": "date,"}, "invalid_sort", "(empty)"),
        ({"page": "0"}, "invalid_page", "between 1"),
        ({"limit": "1000"}, "invalid_page", "between 1 and 100"),
        ({"limit": "ten"}, "invalid_page", "whole number"),
    ],
)
def test_malformed_list_parameters_are_400_with_the_reason(api, params, code, words):
    body = _error(api.client().get("/api/v1/events", params=params), 400, code)
    assert words in body["message"]


def test_current_event_is_the_open_one(api):
    r = api.client().get("/api/v1/events/current")
    data = r.json()["data"]
    assert data["code"] == "batbern60"
    assert data["registration"]["open"] is True
    assert data["sessions"]
    assert data["image_url"].startswith(api.settings.storage_url)


def test_event_details_with_includes(api):
    c = api.client()
    plain = c.get("/api/v1/events/batbern42").json()["data"]
    assert plain["code"] == "batbern42"
    assert "venue" not in plain
    assert "sessions" not in plain
    full = c.get("/api/v1/events/batbern42", params={"include": "venue,sessions,speakers"}).json()["data"]
    assert full["venue"]["city"]
    assert len(full["sessions"]) >= 5
    usernames = {u for s in full["sessions"] for u in s["speakers"]}
    assert {s["username"] for s in full["speakers"]} == usernames
    _error(c.get("/api/v1/events/batbern42", params={"include": "venue,tickets"}), 400, "invalid_include")


def test_unknown_codes_are_404_in_the_error_format(api):
    c = api.client()
    for path in (
        "/api/v1/events/nope",
        "/api/v1/events/nope/sessions",
        "/api/v1/speakers/no.one",
        "/api/v1/companies/no-such-company",
        "/api/v1/no-such-route",
    ):
        _error(c.get(path), 404, "not_found")
    body = _error(
        c.post(
            "/api/v1/events/nope/registrations", json={"first_name": "A", "last_name": "B", "email": "a@b.ch"}
        ),
        404,
        "not_found",
    )
    assert "nope" in body["message"]


def test_sessions_of_an_event(api):
    sessions = api.client().get("/api/v1/events/batbern10/sessions").json()["data"]
    assert len(sessions) == 5
    assert sessions[0]["kind"] == "keynote"
    assert all(s["speakers"] for s in sessions)


def test_speakers_list_detail_and_companies(api):
    c = api.client()
    page = c.get("/api/v1/speakers", params={"limit": 50}).json()
    assert page["pagination"]["total"] == 269
    names = [s["last_name"] for s in page["data"]]
    assert names == sorted(names)
    someone = page["data"][0]
    detail = c.get(f"/api/v1/speakers/{someone['username']}").json()["data"]
    assert detail["sessions"]
    assert detail["bio"]
    if someone["company"]:
        company = c.get(f"/api/v1/companies/{someone['company']}").json()["data"]
        assert someone["username"] in company["speakers"]
        by_company = c.get(
            "/api/v1/speakers", params={"filter": json.dumps({"company": someone["company"]})}
        ).json()
        assert someone["username"] in [s["username"] for s in by_company["data"]]


def test_company_search(api):
    c = api.client()
    found = c.get("/api/v1/companies/search", params={"q": "Alp"}).json()
    assert found["query"] == "alp"
    assert found["data"]
    assert all("alp" in (x["display_name"] + x["name"]).lower() for x in found["data"])
    assert c.get("/api/v1/companies/search", params={"q": "zzzz"}).json()["data"] == []
    _error(c.get("/api/v1/companies/search", params={"q": "a"}), 400, "invalid_parameter")
    _error(c.get("/api/v1/companies/search"), 400, "invalid_parameter")


def test_registration_validation_is_422_with_field_errors(api):
    c = api.client()
    body = _error(
        c.post(
            "/api/v1/events/batbern60/registrations",
            json={"first_name": "", "email": "not-an-email", "age": 3},
        ),
        422,
        "validation_failed",
    )
    fields = {f["field"]: f["message"] for f in body["fields"]}
    assert set(fields) == {"first_name", "last_name", "email", "age"}
    assert "email address" in fields["email"]
    _error(
        c.post(
            "/api/v1/events/batbern60/registrations",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        422,
        "validation_failed",
    )


def test_registration_confirms_then_waitlists_at_capacity(api):
    c = api.client()
    current = c.get("/api/v1/events/current").json()["data"]
    person = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "company": "Analytical AG",
    }
    r = c.post("/api/v1/events/batbern60/registrations", json=person)
    assert r.status_code == 201, r.text
    first = r.json()["data"]
    assert first["status"] == "confirmed"
    assert first["confirmation_email"] == "queued"
    assert r.headers["location"].endswith(f"/registrations/{first['id']}")
    _error(
        c.post("/api/v1/events/batbern60/registrations", json={**person, "email": "ADA@example.com"}),
        409,
        "already_registered",
    )
    # Fill the event: capacity down to what is confirmed, so the next two are waitlisted in order.
    assert current["registration"]["capacity"] == 300
    r = c.patch("/api/v1/events/batbern60", json={"capacity": 181}, headers=api.auth())  # 180 seeded + Ada
    assert r.status_code == 200, r.text
    waits = [
        c.post(
            "/api/v1/events/batbern60/registrations", json={**person, "email": f"w{i}@example.com"}
        ).json()["data"]
        for i in range(2)
    ]
    assert [w["status"] for w in waits] == ["waitlisted", "waitlisted"]
    assert [w["waitlist_position"] for w in waits] == [1, 2]


def test_registration_for_a_past_event_is_refused(api):
    person = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
    _error(
        api.client().post("/api/v1/events/batbern3/registrations", json=person), 409, "registration_closed"
    )


def test_patch_event_needs_a_valid_token_and_a_valid_body(api):
    c = api.client()
    _error(c.patch("/api/v1/events/batbern5", json={"title": "New title"}), 401, "unauthorized")
    _error(
        c.patch(
            "/api/v1/events/batbern5", json={"title": "New title"}, headers={"Authorization": "Bearer wrong"}
        ),
        401,
        "unauthorized",
    )
    body = _error(
        c.patch("/api/v1/events/batbern5", json={"capacity": -1, "colour": "red"}, headers=api.auth()),
        422,
        "validation_failed",
    )
    assert {f["field"] for f in body["fields"]} == {"capacity", "colour"}
    _error(c.patch("/api/v1/events/batbern5", json={}, headers=api.auth()), 422, "validation_failed")
    _error(
        c.patch("/api/v1/events/batbern5", json={"title": None}, headers=api.auth()), 422, "validation_failed"
    )
    _error(c.patch("/api/v1/events/nope", json={"title": "New title"}, headers=api.auth()), 404, "not_found")


def test_patch_event_is_visible_on_the_next_read(api):
    c = api.client()
    before = c.get("/api/v1/events/batbern7").json()["data"]
    listed = c.get("/api/v1/events", params={"filter": '{"number": 7}'}).json()["data"][0]
    assert listed["title"] == before["title"]
    r = c.patch("/api/v1/events/batbern7", json={"title": "BATbern7 renamed"}, headers=api.auth())
    assert r.json()["data"]["title"] == "BATbern7 renamed"
    assert c.get("/api/v1/events/batbern7").json()["data"]["title"] == "BATbern7 renamed"
    assert (
        c.get("/api/v1/events", params={"filter": '{"number": 7}'}).json()["data"][0]["title"]
        == "BATbern7 renamed"
    )


def test_patch_speaker_is_visible_everywhere_it_is_shown(api):
    c = api.client()
    event = c.get("/api/v1/events/batbern33", params={"include": "speakers"}).json()["data"]
    username = event["speakers"][0]["username"]
    assert c.get(f"/api/v1/speakers/{username}").json()["data"]["title"] != "Chief Resilience Officer"
    r = c.patch(
        f"/api/v1/speakers/{username}", json={"title": "Chief Resilience Officer"}, headers=api.auth()
    )
    assert r.status_code == 200, r.text
    assert c.get(f"/api/v1/speakers/{username}").json()["data"]["title"] == "Chief Resilience Officer"
    again = c.get("/api/v1/events/batbern33", params={"include": "speakers"}).json()["data"]
    assert {s["username"]: s["title"] for s in again["speakers"]}[username] == "Chief Resilience Officer"
    body = _error(
        c.patch(f"/api/v1/speakers/{username}", json={"company": "no-such-co"}, headers=api.auth()),
        422,
        "validation_failed",
    )
    assert body["fields"][0]["field"] == "company"
    _error(c.patch("/api/v1/speakers/no.one", json={"title": "x"}, headers=api.auth()), 404, "not_found")


def test_correlation_id_is_echoed_when_given(api):
    r = api.client().get("/api/v1/events/nope", headers={"X-Correlation-ID": "trace-123"})
    assert r.headers["x-correlation-id"] == "trace-123"
    assert r.json()["error"]["correlation_id"] == "trace-123"
    ok = api.client().get("/api/v1/events/current", headers={"X-Correlation-ID": "trace-124"})
    assert ok.headers["x-correlation-id"] == "trace-124"


def test_every_filter_operator_selects_what_it_says(api):
    c = api.client()

    def total(flt):
        r = c.get("/api/v1/events", params={"filter": json.dumps(flt), "limit": 100})
        assert r.status_code == 200, r.text
        return r.json()["pagination"]["total"]

    assert total({"year": {"gt": 2020, "lte": 2022}}) == 6  # three events a year since 2005
    assert total({"year": {"ne": 2005}}) == 57
    assert total({"number": {"in": [1, 2, 60, 99]}}) == 3
    assert total({"status": {"ne": "archived"}}) == total({"status": "open"}) == 1
    assert total({"topic": {"in": ["Security", "DevOps"]}}) == total({"topic": "Security"}) + total(
        {"topic": "DevOps"}
    )


def test_patching_an_event_date_moves_its_year(api):
    c = api.client()
    r = c.patch("/api/v1/events/batbern20", json={"date": "2031-05-04"}, headers=api.auth())
    assert r.status_code == 200, r.text
    assert (r.json()["data"]["date"], r.json()["data"]["year"]) == ("2031-05-04", 2031)
    moved = c.get("/api/v1/events", params={"filter": '{"year": 2031}'}).json()["data"]
    assert [e["code"] for e in moved] == ["batbern20"]


def test_moving_a_speaker_to_another_company_updates_both_company_pages(api):
    c = api.client()
    event = c.get("/api/v1/events/batbern25", params={"include": "speakers"}).json()["data"]
    speaker = next(s for s in event["speakers"] if s["company"])
    username, old = speaker["username"], speaker["company"]
    new = next(
        x["name"]
        for x in c.get("/api/v1/companies/search", params={"q": "ag"}).json()["data"]
        if x["name"] != old
    )
    assert username in c.get(f"/api/v1/companies/{old}").json()["data"]["speakers"]  # cached now
    r = c.patch(f"/api/v1/speakers/{username}", json={"company": new}, headers=api.auth())
    assert r.status_code == 200, r.text
    assert r.json()["data"]["company"] == new
    assert username not in c.get(f"/api/v1/companies/{old}").json()["data"]["speakers"]
    assert username in c.get(f"/api/v1/companies/{new}").json()["data"]["speakers"]
    cleared = c.patch(f"/api/v1/speakers/{username}", json={"company": None}, headers=api.auth())
    assert cleared.json()["data"]["company"] is None  # null clears the company, unlike other fields
    assert username not in c.get(f"/api/v1/companies/{new}").json()["data"]["speakers"]


def test_between_events_there_is_no_current_one(api):
    c = api.client()
    assert c.get("/api/v1/events/current").status_code == 200
    r = c.patch("/api/v1/events/batbern60", json={"status": "archived"}, headers=api.auth())
    assert r.status_code == 200, r.text
    try:
        body = _error(c.get("/api/v1/events/current"), 404, "not_found")
        assert "No event is open for registration" in body["message"]
    finally:
        c.patch("/api/v1/events/batbern60", json={"status": "open"}, headers=api.auth())
    assert c.get("/api/v1/events/current").json()["data"]["code"] == "batbern60"
