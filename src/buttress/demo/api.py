"""The public API under ``/api/v1``: events, sessions, speakers, companies, registrations, updates.

Handlers are thin: parse and check parameters (bad ones are 400 before any query runs), read through the
platform's caches (:meth:`Platform.read`), or write and then tell the platform what changed
(:meth:`Platform.changed`) so the caches evict exactly the entries that hold it.
"""

from __future__ import annotations

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


def build_router() -> Any:
    """The ``/api/v1`` router; handlers find the :class:`~buttress.demo.platform.Platform` on app state.

    FastAPI is imported at module level here (this module is only imported by :mod:`.app`, which checks
    for the ``demo`` extra first) because it reads the handlers' annotations at run time.
    """
    router = APIRouter(prefix="/api/v1")

    def platform(request: Request) -> Any:
        return request.app.state.platform

    @router.get("/events")
    async def list_events(
        request: Request,
        filter: str | None = None,
        sort: str | None = None,
        page: str | None = None,
        limit: str | None = None,
    ) -> Any:
        flt = parse_filter(filter, repo.EVENT_FIELDS)
        order = parse_sort(sort, repo.EVENT_SORTS, (("date", True),))
        pg = parse_page(page, limit)
        key = f"list:{flt!r}:{order!r}:{pg.page}:{pg.limit}"
        p = platform(request)
        return await p.read("events", key, lambda c: repo.list_events(c, flt, order, pg), ["events-list"])

    @router.get("/events/current")
    async def current_event(request: Request) -> Any:
        p = platform(request)
        data = await p.read("events", "current", repo.current_event, ["events-list"])
        if data is None:
            raise ApiError(404, "not_found", "No event is open for registration right now.")
        return {"data": await p.with_image(data)}

    @router.get("/events/{code}")
    async def get_event(request: Request, code: str, include: str | None = None) -> Any:
        inc = parse_include(include, _EVENT_INCLUDES)
        p = platform(request)
        key = f"event:{code}:{','.join(sorted(inc))}"

        async def load(conn: Any) -> Any:
            return await repo.event(conn, code, inc)

        data = await p.read("events", key, load, p.event_tags(code, inc))
        if data is None:
            raise _not_found("event", code)
        return {"data": await p.with_image(data)}

    @router.get("/events/{code}/sessions")
    async def event_sessions(request: Request, code: str) -> Any:
        p = platform(request)
        data = await p.read(
            "events", f"sessions:{code}", lambda c: repo.event_sessions(c, code), [f"sessions:{code}"]
        )
        if data is None:
            raise _not_found("event", code)
        return {"data": data}

    @router.post("/events/{code}/registrations", status_code=201)
    async def register(request: Request, response: Response, code: str, body: RegistrationIn) -> Any:
        p = platform(request)
        result = await p.register(code, body.model_dump())
        response.headers["Location"] = f"/api/v1/events/{code}/registrations/{result['id']}"
        return {"data": result}

    @router.patch("/events/{code}")
    async def patch_event(
        request: Request,
        code: str,
        body: EventPatch = Body(...),
        authorization: str | None = Header(default=None),
    ) -> Any:
        p = platform(request)
        await p.authorize(authorization)
        changes = body.model_dump(exclude_unset=True)
        if None in changes.values():
            nulls = [k for k, v in changes.items() if v is None]
            raise ApiError(
                422,
                "validation_failed",
                "The request body is invalid; see fields.",
                fields=[{"field": k, "message": "must not be null"} for k in nulls],
            )
        await p.update_event(code, changes)
        data = await p.read(
            "events", f"event:{code}:", lambda c: repo.event(c, code, frozenset()), [f"event:{code}"]
        )
        return {"data": data}

    @router.get("/speakers")
    async def list_speakers(
        request: Request,
        filter: str | None = None,
        sort: str | None = None,
        page: str | None = None,
        limit: str | None = None,
    ) -> Any:
        flt = parse_filter(filter, repo.SPEAKER_FIELDS)
        order = parse_sort(sort, repo.SPEAKER_SORTS, (("last_name", False),))
        pg = parse_page(page, limit)
        key = f"list:{flt!r}:{order!r}:{pg.page}:{pg.limit}"
        p = platform(request)
        return await p.read(
            "speakers", key, lambda c: repo.list_speakers(c, flt, order, pg), ["speakers-list"]
        )

    @router.get("/speakers/{username}")
    async def get_speaker(request: Request, username: str) -> Any:
        p = platform(request)
        data = await p.read(
            "speakers", f"speaker:{username}", lambda c: repo.speaker(c, username), [f"speaker:{username}"]
        )
        if data is None:
            raise _not_found("speaker", username)
        return {"data": data}

    @router.patch("/speakers/{username}")
    async def patch_speaker(
        request: Request,
        username: str,
        body: SpeakerPatch = Body(...),
        authorization: str | None = Header(default=None),
    ) -> Any:
        p = platform(request)
        await p.authorize(authorization)
        changes = body.model_dump(exclude_unset=True)
        nulls = [k for k, v in changes.items() if v is None and k != "company"]
        if nulls:
            raise ApiError(
                422,
                "validation_failed",
                "The request body is invalid; see fields.",
                fields=[{"field": k, "message": "must not be null"} for k in nulls],
            )
        await p.update_speaker(username, changes)
        data = await p.read(
            "speakers", f"speaker:{username}", lambda c: repo.speaker(c, username), [f"speaker:{username}"]
        )
        return {"data": data}

    @router.get("/companies/search")
    async def search_companies(request: Request, q: str | None = None) -> Any:
        if q is None or not 2 <= len(q.strip()) <= 50:
            raise ApiError(400, "invalid_parameter", "q: give 2 to 50 characters to search for.")
        needle = q.strip().lower()
        p = platform(request)
        data = await p.read(
            "search", f"companies:{needle}", lambda c: repo.search_companies(c, needle), ["companies"]
        )
        return {"data": data, "query": needle}

    @router.get("/companies/{name}")
    async def get_company(request: Request, name: str) -> Any:
        p = platform(request)
        data = await p.read(
            "speakers", f"company:{name}", lambda c: repo.company(c, name), [f"company:{name}", "companies"]
        )
        if data is None:
            raise _not_found("company", name)
        return {"data": data}

    return router
