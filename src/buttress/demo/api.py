"""The public API under ``/api/v1``: events, sessions, speakers, companies, registrations, updates.

Handlers are thin: parse and check parameters (bad ones are 400 before any query runs), read through the
platform's caches (:meth:`Platform.read`), or write and then tell the platform what changed
(:meth:`Platform.changed`) so the caches evict exactly the entries that hold it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Body, Header, Request, Response

from buttress.demo import repository as repo
from buttress.demo.bodies import EventPatch, RegistrationIn, SpeakerPatch
from buttress.demo.errors import ApiError
from buttress.demo.params import parse_filter, parse_include, parse_page, parse_sort

__all__ = ["build_router"]

_EVENT_INCLUDES = ("venue", "sessions", "speakers")


def _not_found(kind: str, key: str) -> ApiError:
    return ApiError(404, "not_found", f"No {kind} {key!r}.")


def _platform(request: Request) -> Any:
    return request.app.state.platform


def _no_nulls(changes: dict[str, Any], nullable: tuple[str, ...] = ()) -> None:
    """A PATCH may leave a field out but not set it to null (except the ``nullable`` ones): 422."""
    nulls = [k for k, v in changes.items() if v is None and k not in nullable]
    if nulls:
        raise ApiError(
            422,
            "validation_failed",
            "The request body is invalid; see fields.",
            fields=[{"field": k, "message": "must not be null"} for k in nulls],
        )


async def list_events(
    request: Request,
    filter: str | None = None,
    sort: str | None = None,
    page: str | None = None,
    limit: str | None = None,
) -> Any:
    """``GET /events``: one page of the archive, filtered and sorted (newest first by default)."""
    flt = parse_filter(filter, repo.EVENT_FIELDS)
    order = parse_sort(sort, repo.EVENT_SORTS, (("date", True),))
    pg = parse_page(page, limit)
    key = f"list:{flt!r}:{order!r}:{pg.page}:{pg.limit}"
    p = _platform(request)
    return await p.read("events", key, lambda c: repo.list_events(c, flt, order, pg), ["events-list"])


async def current_event(request: Request) -> Any:
    """``GET /events/current``: the event open for registration, or 404 between events."""
    p = _platform(request)
    data = await p.read("events", "current", repo.current_event, ["events-list"])
    if data is None:
        raise ApiError(404, "not_found", "No event is open for registration right now.")
    return {"data": await p.with_image(data)}


async def get_event(request: Request, code: str, include: str | None = None) -> Any:
    """``GET /events/{code}``: one event, with its venue, sessions or speakers embedded on request."""
    inc = parse_include(include, _EVENT_INCLUDES)
    p = _platform(request)
    key = f"event:{code}:{','.join(sorted(inc))}"

    async def load(conn: Any) -> Any:
        return await repo.event(conn, code, inc)

    data = await p.read("events", key, load, p.event_tags(code, inc))
    if data is None:
        raise _not_found("event", code)
    return {"data": await p.with_image(data)}


async def event_sessions(request: Request, code: str) -> Any:
    """``GET /events/{code}/sessions``: the programme of one event."""
    p = _platform(request)
    data = await p.read(
        "events", f"sessions:{code}", lambda c: repo.event_sessions(c, code), [f"sessions:{code}"]
    )
    if data is None:
        raise _not_found("event", code)
    return {"data": data}


async def register(request: Request, response: Response, code: str, body: RegistrationIn) -> Any:
    """``POST /events/{code}/registrations``: confirmed, or waitlisted once the event is full (201)."""
    result = await _platform(request).register(code, body.model_dump())
    response.headers["Location"] = f"/api/v1/events/{code}/registrations/{result['id']}"
    return {"data": result}


async def patch_event(
    request: Request,
    code: str,
    body: EventPatch = Body(...),
    authorization: str | None = Header(default=None),
) -> Any:
    """``PATCH /events/{code}`` (editors): change an event; the next read of it shows the change."""
    p = _platform(request)
    await p.authorize(authorization)
    changes = body.model_dump(exclude_unset=True)
    _no_nulls(changes)
    await p.update_event(code, changes)
    data = await p.read(
        "events", f"event:{code}:", lambda c: repo.event(c, code, frozenset()), [f"event:{code}"]
    )
    return {"data": data}


async def list_speakers(
    request: Request,
    filter: str | None = None,
    sort: str | None = None,
    page: str | None = None,
    limit: str | None = None,
) -> Any:
    """``GET /speakers``: one page of speakers, filtered and sorted (by last name by default)."""
    flt = parse_filter(filter, repo.SPEAKER_FIELDS)
    order = parse_sort(sort, repo.SPEAKER_SORTS, (("last_name", False),))
    pg = parse_page(page, limit)
    key = f"list:{flt!r}:{order!r}:{pg.page}:{pg.limit}"
    p = _platform(request)
    return await p.read("speakers", key, lambda c: repo.list_speakers(c, flt, order, pg), ["speakers-list"])


async def _speaker(p: Any, username: str) -> Any:
    return await p.read(
        "speakers", f"speaker:{username}", lambda c: repo.speaker(c, username), [f"speaker:{username}"]
    )


async def get_speaker(request: Request, username: str) -> Any:
    """``GET /speakers/{username}``: one speaker with their sessions."""
    data = await _speaker(_platform(request), username)
    if data is None:
        raise _not_found("speaker", username)
    return {"data": data}


async def patch_speaker(
    request: Request,
    username: str,
    body: SpeakerPatch = Body(...),
    authorization: str | None = Header(default=None),
) -> Any:
    """``PATCH /speakers/{username}`` (editors): change a profile; ``company: null`` clears the company."""
    p = _platform(request)
    await p.authorize(authorization)
    changes = body.model_dump(exclude_unset=True)
    _no_nulls(changes, nullable=("company",))
    await p.update_speaker(username, changes)
    return {"data": await _speaker(p, username)}


async def search_companies(request: Request, q: str | None = None) -> Any:
    """``GET /companies/search?q=``: companies whose name contains 2 to 50 characters, case-blind."""
    if q is None or not 2 <= len(q.strip()) <= 50:
        raise ApiError(400, "invalid_parameter", "q: give 2 to 50 characters to search for.")
    needle = q.strip().lower()
    p = _platform(request)
    data = await p.read(
        "search", f"companies:{needle}", lambda c: repo.search_companies(c, needle), ["companies"]
    )
    return {"data": data, "query": needle}


async def get_company(request: Request, name: str) -> Any:
    """``GET /companies/{name}``: one company with its speakers."""
    p = _platform(request)
    data = await p.read(
        "speakers", f"company:{name}", lambda c: repo.company(c, name), [f"company:{name}", "companies"]
    )
    if data is None:
        raise _not_found("company", name)
    return {"data": data}


# (method, path, handler, status) in matching order: a fixed path ("/events/current",
# "/companies/search") comes before the template it would otherwise match.
_ROUTES: tuple[tuple[str, str, Callable[..., Awaitable[Any]], int], ...] = (
    ("GET", "/events", list_events, 200),
    ("GET", "/events/current", current_event, 200),
    ("GET", "/events/{code}", get_event, 200),
    ("GET", "/events/{code}/sessions", event_sessions, 200),
    ("POST", "/events/{code}/registrations", register, 201),
    ("PATCH", "/events/{code}", patch_event, 200),
    ("GET", "/speakers", list_speakers, 200),
    ("GET", "/speakers/{username}", get_speaker, 200),
    ("PATCH", "/speakers/{username}", patch_speaker, 200),
    ("GET", "/companies/search", search_companies, 200),
    ("GET", "/companies/{name}", get_company, 200),
)


def build_router() -> Any:
    """The ``/api/v1`` router; handlers find the :class:`~buttress.demo.platform.Platform` on app state.

    FastAPI is imported at module level here (this module is only imported by :mod:`.app`, which checks
    for the ``demo`` extra first) because it reads the handlers' annotations at run time.
    """
    router = APIRouter(prefix="/api/v1")
    for method, path, handler, status in _ROUTES:
        router.add_api_route(path, handler, methods=[method], status_code=status)
    return router
