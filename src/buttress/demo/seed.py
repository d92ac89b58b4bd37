"""Deterministic seed data at the real platform's scale.

60 events since 2005 (three a year, the last one open for registration), 302 sessions, 269 speakers,
143 companies and about 20 000 registrations, generated from a fixed random seed so every run, every
worker and every test sees the same codes, usernames and company names.

Rows are built in memory and written with one multi-row insert per table inside a single transaction:
about a second on SQLite, a little more on PostgreSQL. :func:`seed` does nothing when the database already
holds events, so restarting the demo keeps what earlier runs registered and changed.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SCALE", "Scale", "SeedData", "generate", "seed"]


@dataclass(frozen=True)
class Scale:
    """How much data to generate; the default is the real platform's size."""

    events: int = 60
    sessions: int = 302
    speakers: int = 269
    companies: int = 143
    registrations: int = 20_000
    first_year: int = 2005
    current_capacity: int = 300
    current_confirmed: int = 180


#: The real platform's size.
SCALE = Scale()

_FIRST = [
    "Anna",
    "Beat",
    "Claudia",
    "Daniel",
    "Eva",
    "Fabian",
    "Gabriela",
    "Hans",
    "Irene",
    "Jonas",
    "Karin",
    "Lukas",
    "Marta",
    "Nico",
    "Olivia",
    "Patrick",
    "Regula",
    "Stefan",
    "Tanja",
    "Urs",
    "Vera",
    "Werner",
    "Yvonne",
    "Zoe",
    "Andreas",
    "Bettina",
    "Christian",
    "Doris",
    "Elias",
    "Franziska",
    "Georg",
    "Heidi",
    "Ivan",
    "Julia",
    "Kevin",
    "Laura",
    "Martin",
    "Nadine",
    "Oliver",
    "Petra",
    "Reto",
    "Sandra",
    "Thomas",
    "Ursula",
    "Viktor",
    "Simone",
    "Adrian",
    "Barbara",
    "Cedric",
    "Denise",
    "Emil",
    "Flurina",
    "Gian",
    "Helen",
    "Ines",
    "Jan",
    "Lea",
    "Marco",
    "Nina",
    "Pascal",
    "Rahel",
    "Samuel",
    "Tina",
]
_LAST = [
    "Ammann",
    "Baumann",
    "Brunner",
    "Frei",
    "Gerber",
    "Graf",
    "Hofmann",
    "Huber",
    "Keller",
    "Kaufmann",
    "Kunz",
    "Lehmann",
    "Meier",
    "Moser",
    "Muller",
    "Schmid",
    "Schneider",
    "Steiner",
    "Suter",
    "Weber",
    "Widmer",
    "Wyss",
    "Zimmermann",
    "Bachmann",
    "Buhler",
    "Fischer",
    "Furrer",
    "Gasser",
    "Hess",
    "Kessler",
    "Koch",
    "Locher",
    "Marti",
    "Meyer",
    "Roth",
    "Schaller",
    "Sommer",
    "Studer",
    "Vogel",
    "Wenger",
    "Zbinden",
    "Aebi",
    "Bieri",
    "Egli",
    "Frey",
    "Gisler",
    "Hug",
    "Imhof",
    "Jost",
    "Kohler",
    "Luthi",
    "Maurer",
    "Notz",
    "Probst",
    "Rohner",
    "Stucki",
    "Tanner",
    "Ulrich",
    "Vetter",
]
_COMPANY_A = [
    "Alp",
    "Berna",
    "Cloud",
    "Data",
    "Edel",
    "Fels",
    "Grat",
    "Helvet",
    "Iris",
    "Jura",
    "Kern",
    "Linde",
    "Matt",
    "Nord",
    "Ober",
    "Pilatus",
    "Quell",
    "Rhein",
    "Saane",
    "Tell",
    "Uri",
    "Vals",
    "Wetter",
    "Zug",
    "Aare",
    "Blau",
    "Chur",
    "Davos",
    "Emme",
    "Firn",
]
_COMPANY_B = [
    "Soft",
    "Systems",
    "Labs",
    "Consulting",
    "Digital",
    "Networks",
    "Bank",
    "Insurance",
    "Works",
    "Data",
    "Logic",
    "Cloud",
    "IT",
]
_COMPANY_C = ("AG", "GmbH", "SA", "")
_INDUSTRIES = [
    "banking",
    "insurance",
    "software",
    "consulting",
    "public-sector",
    "telecom",
    "retail",
    "logistics",
    "health",
    "energy",
    "manufacturing",
    "media",
]
_CITIES = [
    "Bern",
    "Zurich",
    "Basel",
    "Luzern",
    "Thun",
    "Biel",
    "Fribourg",
    "Solothurn",
    "Olten",
    "Geneva",
    "Lausanne",
    "Winterthur",
]
_TOPICS = (
    "Software Architecture",
    "Microservices",
    "Cloud Native",
    "Security",
    "DevOps",
    "Data Engineering",
    "Machine Learning",
    "API Design",
    "Testing",
    "Mobile",
    "Domain-Driven Design",
    "Observability",
    "Platform Engineering",
    "Resilience",
    "Performance",
    "Event Sourcing",
    "Legacy Modernisation",
    "Frontend Architecture",
    "Agile Architecture",
    "Sustainability in IT",
)
_WORDS = [
    "scaling",
    "resilient",
    "systems",
    "lessons",
    "from",
    "production",
    "event-driven",
    "integration",
    "patterns",
    "migrating",
    "monoliths",
    "observability",
    "in",
    "practice",
    "caching",
    "strategies",
    "zero-downtime",
    "deployments",
    "contract",
    "testing",
    "platform",
    "teams",
    "data",
    "mesh",
    "securing",
    "APIs",
    "chaos",
    "experiments",
    "cost",
    "of",
    "latency",
    "designing",
    "for",
    "failure",
    "evolutionary",
    "architecture",
    "modular",
    "monoliths",
    "serverless",
    "reality",
    "check",
    "streaming",
    "pipelines",
]
_KINDS = ("talk", "talk", "talk", "talk", "keynote", "panel")
_VENUES = (
    ("Kursaal Bern", "Kornhausstrasse 3", "Bern", 450),
    ("Zentrum Paul Klee", "Monument im Fruchtland 3", "Bern", 350),
    ("Eventforum Bern", "Fabrikstrasse 12", "Bern", 400),
    ("Welle 7", "Schanzenstrasse 5", "Bern", 300),
    ("Stade de Suisse", "Papiermühlestrasse 71", "Bern", 500),
    ("Bierhübeli", "Neubrückstrasse 43", "Bern", 380),
)
_FIXED_NOW = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)
_MONTHS = (3, 6, 11)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


@dataclass
class SeedData:
    """The rows of every table, as lists of dictionaries ready for a multi-row insert."""

    companies: list[dict[str, Any]] = field(default_factory=list)
    venues: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    speakers: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    session_speakers: list[dict[str, Any]] = field(default_factory=list)
    registrations: list[dict[str, Any]] = field(default_factory=list)


def _zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1.0 / (rank**s) for rank in range(1, n + 1)]


def _unique(base: str, taken: set[str]) -> str:
    """``base``, or ``base2``, ``base3``… whichever is not in ``taken`` yet (then added to it)."""
    name, n = base, 2
    while name in taken:
        name = f"{base}{n}"
        n += 1
    taken.add(name)
    return name


def _companies(rng: random.Random, count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    names: set[str] = set()
    while len(rows) < count:
        display = f"{rng.choice(_COMPANY_A)} {rng.choice(_COMPANY_B)} {rng.choice(_COMPANY_C)}".strip()
        name = _ascii(display).replace(" ", "-")
        if name in names:
            continue  # a repeated draw is dropped, not renamed: names stay the real kind of name
        names.add(name)
        rows.append(
            {
                "id": len(rows) + 1,
                "name": name,
                "display_name": display,
                "industry": rng.choice(_INDUSTRIES),
                "city": rng.choice(_CITIES),
                "website": f"https://{name}.example",
                "logo_key": f"companies/{name}.png",
            }
        )
    return rows


def _venues() -> list[dict[str, Any]]:
    return [
        {"id": i, "name": name, "address": address, "city": city, "capacity": capacity}
        for i, (name, address, city, capacity) in enumerate(_VENUES, start=1)
    ]


def _speakers(rng: random.Random, count: int, companies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    usernames: set[str] = set()
    company_weights = _zipf_weights(len(companies), 0.9)
    company_ids = [c["id"] for c in companies]
    while len(rows) < count:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        username = _unique(_ascii(f"{first}.{last}"), usernames)
        company = rng.choices(company_ids, company_weights)[0] if rng.random() < 0.93 else None
        rows.append(
            {
                "id": len(rows) + 1,
                "username": username,
                "first_name": first,
                "last_name": last,
                "title": rng.choice(("Architect", "Engineer", "CTO", "Consultant", "Researcher", "Lead")),
                "bio": f"{first} {last} works on {rng.choice(_TOPICS).lower()} and {rng.choice(_WORDS)}.",
                "company_id": company,
                "photo_key": f"speakers/{username}.jpg",
                "updated_at": _FIXED_NOW,
            }
        )
    return rows


def _events(rng: random.Random, scale: Scale, venues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number in range(1, scale.events + 1):
        year = scale.first_year + (number - 1) // 3
        venue = venues[rng.randrange(len(venues))]
        topic = _TOPICS[(number * 7) % len(_TOPICS)]
        is_current = number == scale.events  # the last event is the one open for registration
        rows.append(
            {
                "id": number,
                "code": f"batbern{number}",
                "number": number,
                "title": f"BATbern{number}: {topic}",
                "topic": topic,
                "description": f"The {number}th Berner Architekten Treffen, on {topic.lower()}.",
                "date": dt.date(year, _MONTHS[(number - 1) % 3], 10 + number % 15),
                "year": year,
                "status": "open" if is_current else "archived",
                "venue_id": venue["id"],
                "capacity": scale.current_capacity if is_current else venue["capacity"],
                "confirmed": 0,
                "waitlisted": 0,
                "image_key": f"events/batbern{number}.jpg",
                "updated_at": _FIXED_NOW,
            }
        )
    return rows


def _sessions_per_event(scale: Scale) -> list[int]:
    """An even spread of the sessions over the events, the remainder to the most recent ones."""
    per_event = [scale.sessions // scale.events] * scale.events
    for k in range(scale.sessions - sum(per_event)):
        per_event[-1 - k] += 1
    return per_event


def _session(rng: random.Random, event: dict[str, Any], k: int, session_id: int) -> dict[str, Any]:
    """The ``k``-th session of ``event`` (the first is its keynote), 45 minutes after the one before."""
    start = dt.datetime.combine(event["date"], dt.time(16, 0), tzinfo=dt.UTC)
    kind = "keynote" if k == 0 else rng.choice(_KINDS)
    title = f"{rng.choice(_WORDS).capitalize()} {rng.choice(_WORDS)} {rng.choice(_WORDS)}"
    return {
        "id": session_id,
        "event_id": event["id"],
        "slug": f"s{k + 1}-{_ascii(title).replace(' ', '-')}"[:110],
        "title": title,
        "abstract": f"{title}: {event['topic']} in practice, from the speakers' own projects.",
        "kind": kind,
        "starts_at": start + dt.timedelta(minutes=45 * k),
        "minutes": 40,
        "room": rng.choice(("Hall A", "Hall B", "Studio")),
    }


class _SpeakerDraw:
    """Who speaks at each session: every speaker once first (in shuffled order), then Zipf-popular repeats."""

    def __init__(self, rng: random.Random, speakers: list[dict[str, Any]]) -> None:
        self.rng = rng
        self.count = len(speakers)
        self.unused = [s["id"] for s in speakers]
        rng.shuffle(self.unused)
        self.weights = _zipf_weights(self.count, 0.8)

    def for_session(self, kind: str) -> list[int]:
        """The speaker ids of one session; a panel has three."""
        if self.unused:
            primary = self.unused.pop()
        else:
            primary = self.rng.choices(range(1, self.count + 1), self.weights)[0]
        chosen = {primary}
        if kind == "panel":
            while len(chosen) < 3:
                chosen.add(self.rng.randint(1, self.count))
        return sorted(chosen)


def _sessions(
    rng: random.Random, scale: Scale, events: list[dict[str, Any]], speakers: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The sessions and their ``session_speakers`` rows."""
    sessions: list[dict[str, Any]] = []
    seats: list[dict[str, Any]] = []
    draw = _SpeakerDraw(rng, speakers)
    for event, count in zip(events, _sessions_per_event(scale), strict=True):
        for k in range(count):
            session = _session(rng, event, k, len(sessions) + 1)
            sessions.append(session)
            seats.extend(
                {"session_id": session["id"], "speaker_id": s} for s in draw.for_session(session["kind"])
            )
    # More speakers than sessions: the rest get a second seat, spread over the sessions in order.
    seats.extend(
        {"session_id": i % scale.sessions + 1, "speaker_id": speaker} for i, speaker in enumerate(draw.unused)
    )
    return sessions, seats


def _registration_counts(scale: Scale, events: list[dict[str, Any]]) -> list[int]:
    """Confirmed registrations per event: past events share the total, growing over the years."""
    past = events[:-1]
    remaining = scale.registrations - scale.current_confirmed
    weights = [1.0 + 0.04 * e["number"] for e in past]
    total_w = sum(weights)
    capacities = [e["capacity"] for e in past]
    counts = [min(cap, round(remaining * w / total_w)) for cap, w in zip(capacities, weights, strict=True)]
    _hand_out(counts, capacities, remaining - sum(counts))
    return [*counts, scale.current_confirmed]  # the open event has a few


def _hand_out(counts: list[int], capacities: list[int], shortfall: int) -> None:
    """Give the ``shortfall`` that venue-capped events left over to events with room, one seat at a time.

    Walks from the most recent event backwards, and round again, until every seat is placed or every
    event is full.
    """
    i = len(counts) - 1
    while shortfall > 0 and any(c < cap for c, cap in zip(counts, capacities, strict=True)):
        if counts[i] < capacities[i]:
            counts[i] += 1
            shortfall -= 1
        i = i - 1 if i > 0 else len(counts) - 1


def _registrations(
    rng: random.Random, events: list[dict[str, Any]], counts: list[int]
) -> list[dict[str, Any]]:
    """The registrations (all confirmed, a month before each event); sets each event's ``confirmed``."""
    rows: list[dict[str, Any]] = []
    for event, count in zip(events, counts, strict=True):
        created = dt.datetime.combine(event["date"], dt.time(12, 0), tzinfo=dt.UTC) - dt.timedelta(days=30)
        for k in range(count):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            rows.append(
                {
                    "id": len(rows) + 1,
                    "event_id": event["id"],
                    "first_name": first,
                    "last_name": last,
                    "email": f"{_ascii(first)}.{_ascii(last)}.{k}@attendee.example",
                    "company": None,
                    "status": "confirmed",
                    "confirmation_sent": True,
                    "created_at": created + dt.timedelta(minutes=k),
                }
            )
        event["confirmed"] = count
    return rows


def generate(scale: Scale = SCALE, *, seed: int = 2005) -> SeedData:
    """Build every row deterministically from ``seed`` (same input, same rows, on every machine).

    One random generator feeds every table in a fixed order — companies, speakers, events, sessions,
    registrations — so adding a table at the end never changes the rows of the ones before it.
    """
    rng = random.Random(seed)
    data = SeedData(companies=_companies(rng, scale.companies), venues=_venues())
    data.speakers = _speakers(rng, scale.speakers, data.companies)
    data.events = _events(rng, scale, data.venues)
    data.sessions, data.session_speakers = _sessions(rng, scale, data.events, data.speakers)
    data.registrations = _registrations(rng, data.events, _registration_counts(scale, data.events))
    return data


def _write(connection: Any, data: SeedData) -> None:
    from sqlalchemy import insert

    from buttress.demo import models

    for model, rows in (
        (models.Company, data.companies),
        (models.Venue, data.venues),
        (models.Event, data.events),
        (models.Speaker, data.speakers),
        (models.Session, data.sessions),
        (models.SessionSpeaker, data.session_speakers),
        (models.Registration, data.registrations),
    ):
        if rows:
            connection.execute(insert(model), rows)


def _reset_sequences(connection: Any) -> None:
    # Rows were inserted with explicit ids; PostgreSQL's serial sequences must move past them.
    from sqlalchemy import text

    for table in ("companies", "venues", "events", "speakers", "sessions", "registrations"):
        connection.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        )


async def seed(engine: Any, scale: Scale = SCALE) -> bool:
    """Write the seed data unless the database already has events; returns whether it wrote.

    Call :func:`buttress.demo.database.migrate` first.
    """
    from sqlalchemy import func, select

    from buttress.demo import models

    async with engine.begin() as conn:
        existing = await conn.scalar(select(func.count()).select_from(models.Event))
        if existing:
            return False
        data = generate(scale)
        await conn.run_sync(_write, data)
        if conn.dialect.name == "postgresql":
            await conn.run_sync(_reset_sequences)
    return True
