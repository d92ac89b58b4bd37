"""The platform's database reads and writes, as SQLAlchemy Core queries returning JSON-ready dicts.

Reads return plain dictionaries (dates as ISO strings) because that is what the cache stores and the API
returns; the cache never holds ORM objects bound to a session. Every function takes an open async
connection so a request uses one connection for all its queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from buttress.demo import models
from buttress.demo.params import FieldSpec, Filter, Page, Sort

__all__ = [
    "COMPANY_FIELDS",
    "EVENT_FIELDS",
    "EVENT_SORTS",
    "SPEAKER_FIELDS",
    "SPEAKER_SORTS",
    "RegistrationResult",
    "company",
    "current_event",
    "event",
    "event_sessions",
    "list_events",
    "list_speakers",
    "register",
    "search_companies",
    "speaker",
    "update_event",
    "update_speaker",
]

E = models.table(models.Event)
V = models.table(models.Venue)
S = models.table(models.Session)
SS = models.table(models.SessionSpeaker)
SP = models.table(models.Speaker)
C = models.table(models.Company)
R = models.table(models.Registration)

#: Filterable fields of ``GET /events``.
EVENT_FIELDS: Mapping[str, FieldSpec] = {
    "status": FieldSpec("str", ("archived", "published", "open")),
    "year": FieldSpec("int"),
    "number": FieldSpec("int"),
    "topic": FieldSpec("str"),
    "city": FieldSpec("str"),
}
#: Sortable fields of ``GET /events``.
EVENT_SORTS = ("date", "number", "title", "topic", "year")
#: Filterable fields of ``GET /speakers``.
SPEAKER_FIELDS: Mapping[str, FieldSpec] = {
    "company": FieldSpec("str"),
    "last_name": FieldSpec("str"),
    "title": FieldSpec("str"),
}
SPEAKER_SORTS = ("username", "last_name", "first_name")
COMPANY_FIELDS: Mapping[str, FieldSpec] = {"industry": FieldSpec("str"), "city": FieldSpec("str")}


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # SQLite returns naive datetimes; every stored time is UTC
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _condition(column: Any, op: str, value: Any) -> Any:
    if op == "eq":
        return column == value
    if op == "ne":
        return column != value
    if op == "gt":
        return column > value
    if op == "gte":
        return column >= value
    if op == "lt":
        return column < value
    if op == "lte":
        return column <= value
    if op == "in":
        return column.in_(value)
    # contains: case-insensitive on both databases
    from sqlalchemy import func

    return func.lower(column).contains(str(value).lower(), autoescape=True)


def _event_summary(row: Any) -> dict[str, Any]:
    return {
        "code": row.code,
        "number": row.number,
        "title": row.title,
        "topic": row.topic,
        "date": _iso(row.date),
        "year": row.year,
        "status": row.status,
        "city": row.city,
    }


def _event_select() -> Any:
    from sqlalchemy import select

    return select(
        E.c.id,
        E.c.code,
        E.c.number,
        E.c.title,
        E.c.topic,
        E.c.date,
        E.c.year,
        E.c.status,
        V.c.city,
    ).join(V, V.c.id == E.c.venue_id)


async def list_events(conn: Any, flt: Filter, sort: Sort, page: Page) -> dict[str, Any]:
    """``{data, pagination}`` of event summaries matching ``flt``, ordered by ``sort``."""
    from sqlalchemy import func, select

    columns = {"city": V.c.city}
    where = [_condition(columns[name] if name in columns else E.c[name], op, v) for name, op, v in flt]
    order = [(E.c[name].desc() if desc else E.c[name].asc()) for name, desc in sort]
    order.append(E.c.id.asc())  # a total order, so pages never overlap
    query = _event_select().where(*where).order_by(*order).offset(page.offset).limit(page.limit)
    count = select(func.count()).select_from(E.join(V, V.c.id == E.c.venue_id)).where(*where)
    total = int(await conn.scalar(count) or 0)
    rows = (await conn.execute(query)).all()
    return {"data": [_event_summary(r) for r in rows], "pagination": _pagination(page, total)}


def _pagination(page: Page, total: int) -> dict[str, int]:
    return {
        "page": page.page,
        "limit": page.limit,
        "total": total,
        "pages": (total + page.limit - 1) // page.limit,
    }


async def current_event(conn: Any) -> dict[str, Any] | None:
    """The event open for registration (the most recent one if several are), with its capacity."""
    row = (
        await conn.execute(
            _event_select()
            .add_columns(E.c.capacity, E.c.description)
            .where(E.c.status == "open")
            .order_by(E.c.date.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    out = _event_summary(row)
    out["description"] = row.description
    out["registration"] = {"open": True, "capacity": row.capacity}
    out["sessions"] = await _sessions_of(conn, [row.id])
    return out


async def _event_row(conn: Any, code: str) -> Any:
    from sqlalchemy import select

    return (
        await conn.execute(
            select(
                E, V.c.name.label("venue_name"), V.c.address, V.c.city, V.c.capacity.label("venue_capacity")
            )
            .join(V, V.c.id == E.c.venue_id)
            .where(E.c.code == code)
        )
    ).first()


async def _sessions_of(conn: Any, event_ids: list[int]) -> list[dict[str, Any]]:
    from sqlalchemy import select

    rows = (
        await conn.execute(
            select(S, SP.c.username)
            .outerjoin(SS, SS.c.session_id == S.c.id)
            .outerjoin(SP, SP.c.id == SS.c.speaker_id)
            .where(S.c.event_id.in_(event_ids))
            .order_by(S.c.starts_at, S.c.id, SP.c.username)
        )
    ).all()
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        item = out.get(r.id)
        if item is None:
            item = out[r.id] = {
                "slug": r.slug,
                "title": r.title,
                "abstract": r.abstract,
                "kind": r.kind,
                "starts_at": _iso(r.starts_at),
                "minutes": r.minutes,
                "room": r.room,
                "speakers": [],
            }
        if r.username is not None:
            item["speakers"].append(r.username)
    return list(out.values())


def _speaker_summary(r: Any) -> dict[str, Any]:
    return {
        "username": r.username,
        "first_name": r.first_name,
        "last_name": r.last_name,
        "title": r.title,
        "company": r.company,
    }


def _speaker_select() -> Any:
    from sqlalchemy import select

    return select(
        SP.c.id,
        SP.c.username,
        SP.c.first_name,
        SP.c.last_name,
        SP.c.title,
        SP.c.bio,
        SP.c.photo_key,
        SP.c.updated_at,
        C.c.name.label("company"),
    ).outerjoin(C, C.c.id == SP.c.company_id)


async def recent_event_details(conn: Any, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` most recent events as :func:`event` returns them without includes (cache warming)."""
    rows = (await conn.execute(_event_select().order_by(E.c.date.desc()).limit(limit))).all()
    out = []
    for row in rows:
        detail = await event(conn, row.code, frozenset())
        if detail is not None:
            out.append(detail)
    return out


async def event(conn: Any, code: str, include: frozenset[str]) -> dict[str, Any] | None:
    """The event ``code`` with what ``include`` asks for (``venue``, ``sessions``, ``speakers``)."""
    row = await _event_row(conn, code)
    if row is None:
        return None
    out = _event_summary(row)
    out.update(
        description=row.description,
        capacity=row.capacity,
        image_key=row.image_key,
        updated_at=_iso(row.updated_at),
    )
    if "venue" in include:
        out["venue"] = {
            "name": row.venue_name,
            "address": row.address,
            "city": row.city,
            "capacity": row.venue_capacity,
        }
    sessions = None
    if "sessions" in include or "speakers" in include:
        sessions = await _sessions_of(conn, [row.id])
    if "sessions" in include:
        out["sessions"] = sessions
    if "speakers" in include:
        names = sorted({u for s in sessions or () for u in s["speakers"]})
        rows = (await conn.execute(_speaker_select().where(SP.c.username.in_(names)))).all() if names else []
        out["speakers"] = sorted((_speaker_summary(r) for r in rows), key=lambda s: s["username"])
    return out


async def event_exists(conn: Any, code: str) -> bool:
    """Whether an event with ``code`` exists."""
    from sqlalchemy import select

    return (await conn.scalar(select(E.c.id).where(E.c.code == code))) is not None


async def event_sessions(conn: Any, code: str) -> list[dict[str, Any]] | None:
    """The programme of event ``code``, ``None`` when there is no such event."""
    from sqlalchemy import select

    event_id = await conn.scalar(select(E.c.id).where(E.c.code == code))
    if event_id is None:
        return None
    return await _sessions_of(conn, [event_id])


async def list_speakers(conn: Any, flt: Filter, sort: Sort, page: Page) -> dict[str, Any]:
    """``{data, pagination}`` of speaker summaries."""
    from sqlalchemy import func, select

    columns = {"company": C.c.name, "last_name": SP.c.last_name, "title": SP.c.title}
    where = [_condition(columns[name], op, v) for name, op, v in flt]
    order = [(SP.c[name].desc() if desc else SP.c[name].asc()) for name, desc in sort]
    order.append(SP.c.id.asc())
    query = _speaker_select().where(*where).order_by(*order).offset(page.offset).limit(page.limit)
    count = select(func.count()).select_from(SP.outerjoin(C, C.c.id == SP.c.company_id)).where(*where)
    total = int(await conn.scalar(count) or 0)
    rows = (await conn.execute(query)).all()
    return {"data": [_speaker_summary(r) for r in rows], "pagination": _pagination(page, total)}


async def speaker(conn: Any, username: str) -> dict[str, Any] | None:
    """The speaker ``username`` with bio and the sessions they gave, newest first."""
    from sqlalchemy import select

    row = (await conn.execute(_speaker_select().where(SP.c.username == username))).first()
    if row is None:
        return None
    out = _speaker_summary(row)
    out.update(bio=row.bio, photo_key=row.photo_key, updated_at=_iso(row.updated_at))
    sessions = (
        await conn.execute(
            select(S.c.slug, S.c.title, S.c.kind, E.c.code, E.c.date)
            .join(SS, SS.c.session_id == S.c.id)
            .join(E, E.c.id == S.c.event_id)
            .where(SS.c.speaker_id == row.id)
            .order_by(E.c.date.desc(), S.c.id)
        )
    ).all()
    out["sessions"] = [
        {"event": s.code, "date": _iso(s.date), "slug": s.slug, "title": s.title, "kind": s.kind}
        for s in sessions
    ]
    return out


async def speaker_events(conn: Any, username: str) -> list[str]:
    """Codes of the events ``username`` spoke at (whose cached details embed the speaker)."""
    from sqlalchemy import select

    rows = await conn.execute(
        select(E.c.code)
        .distinct()
        .join(S, S.c.event_id == E.c.id)
        .join(SS, SS.c.session_id == S.c.id)
        .join(SP, SP.c.id == SS.c.speaker_id)
        .where(SP.c.username == username)
    )
    return sorted(rows.scalars())


def _company_dict(r: Any) -> dict[str, Any]:
    return {
        "name": r.name,
        "display_name": r.display_name,
        "industry": r.industry,
        "city": r.city,
        "website": r.website,
        "logo_key": r.logo_key,
    }


async def company(conn: Any, name: str) -> dict[str, Any] | None:
    """The company ``name`` with its speakers' usernames."""
    from sqlalchemy import select

    row = (await conn.execute(select(C).where(C.c.name == name))).first()
    if row is None:
        return None
    out = _company_dict(row)
    speakers = await conn.execute(
        select(SP.c.username).where(SP.c.company_id == row.id).order_by(SP.c.username)
    )
    out["speakers"] = list(speakers.scalars())
    return out


async def search_companies(conn: Any, q: str, limit: int = 20) -> list[dict[str, Any]]:
    """Companies whose name or display name contains ``q`` (case-insensitive), prefix matches first."""
    from sqlalchemy import case, func, select

    needle = q.lower()
    display = func.lower(C.c.display_name)
    rank = case((display.startswith(needle, autoescape=True), 0), else_=1)
    rows = await conn.execute(
        select(C)
        .where(display.contains(needle, autoescape=True) | C.c.name.contains(needle, autoescape=True))
        .order_by(rank, C.c.display_name)
        .limit(limit)
    )
    return [_company_dict(r) for r in rows]


class RegistrationResult:
    """What :func:`register` did: the new row's id and whether it was confirmed or waitlisted."""

    __slots__ = ("email", "event_code", "event_title", "id", "position", "status")

    def __init__(
        self, id: int, status: str, position: int | None, email: str, event_code: str, event_title: str
    ) -> None:
        self.id = id
        self.status = status
        self.position = position
        self.email = email
        self.event_code = event_code
        self.event_title = event_title


class RegistrationRefused(Exception):
    """Why a registration was not taken: ``closed`` or ``duplicate``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def register(conn: Any, code: str, person: Mapping[str, Any]) -> RegistrationResult | None:
    """Register ``person`` for event ``code`` in the caller's transaction; ``None`` for no such event.

    A seat is taken with one conditional ``UPDATE`` (``confirmed < capacity``), so concurrent workers
    never overbook; when it updates nothing the registration joins the waitlist.

    Raises:
        RegistrationRefused: the event is not open, or this email is already registered for it.
    """
    from sqlalchemy import insert, select, update

    ev = (await conn.execute(select(E.c.id, E.c.status, E.c.title).where(E.c.code == code))).first()
    if ev is None:
        return None
    if ev.status != "open":
        raise RegistrationRefused("closed")
    email = str(person["email"]).lower()
    exists = await conn.scalar(select(R.c.id).where(R.c.event_id == ev.id, R.c.email == email))
    if exists is not None:
        raise RegistrationRefused("duplicate")
    took = await conn.execute(
        update(E).where(E.c.id == ev.id, E.c.confirmed < E.c.capacity).values(confirmed=E.c.confirmed + 1)
    )
    position: int | None = None
    if took.rowcount == 1:
        status = "confirmed"
    else:
        status = "waitlisted"
        position = int(
            await conn.scalar(
                update(E)
                .where(E.c.id == ev.id)
                .values(waitlisted=E.c.waitlisted + 1)
                .returning(E.c.waitlisted)
            )
        )
    new_id = await conn.scalar(
        insert(R)
        .values(
            event_id=ev.id,
            first_name=person["first_name"],
            last_name=person["last_name"],
            email=email,
            company=person.get("company"),
            status=status,
            confirmation_sent=False,
            created_at=dt.datetime.now(dt.UTC),
        )
        .returning(R.c.id)
    )
    return RegistrationResult(int(new_id), status, position, email, code, ev.title)


async def mark_confirmation_sent(conn: Any, registration_id: int) -> None:
    """Record that the confirmation email of ``registration_id`` went out."""
    from sqlalchemy import update

    await conn.execute(update(R).where(R.c.id == registration_id).values(confirmation_sent=True))


async def update_event(conn: Any, code: str, changes: Mapping[str, Any]) -> bool:
    """Apply ``changes`` to event ``code``; ``False`` when there is no such event."""
    from sqlalchemy import update

    values = dict(changes)
    if "date" in values:
        values["year"] = values["date"].year
    values["updated_at"] = dt.datetime.now(dt.UTC)
    result = await conn.execute(update(E).where(E.c.code == code).values(**values))
    return bool(result.rowcount)


async def update_speaker(conn: Any, username: str, changes: Mapping[str, Any]) -> bool:
    """Apply ``changes`` to speaker ``username``; ``company`` is a company name (``None`` to clear)."""
    from sqlalchemy import select, update

    values = dict(changes)
    if "company" in values:
        name = values.pop("company")
        if name is None:
            values["company_id"] = None
        else:
            company_id = await conn.scalar(select(C.c.id).where(C.c.name == name))
            if company_id is None:
                raise LookupError(name)
            values["company_id"] = company_id
    values["updated_at"] = dt.datetime.now(dt.UTC)
    result = await conn.execute(update(SP).where(SP.c.username == username).values(**values))
    return bool(result.rowcount)


async def speaker_company(conn: Any, username: str) -> str | None:
    """The company name of ``username`` (to invalidate the company page when it changes)."""
    from sqlalchemy import select

    name = await conn.scalar(
        select(C.c.name).join(SP, SP.c.company_id == C.c.id).where(SP.c.username == username)
    )
    return None if name is None else str(name)
