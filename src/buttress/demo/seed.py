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


def generate(scale: Scale = SCALE, *, seed: int = 2005) -> SeedData:
    """Build every row deterministically from ``seed`` (same input, same rows, on every machine)."""
    rng = random.Random(seed)
    data = SeedData()

    names: set[str] = set()
    while len(data.companies) < scale.companies:
        display = f"{rng.choice(_COMPANY_A)} {rng.choice(_COMPANY_B)} {rng.choice(_COMPANY_C)}".strip()
        name = _ascii(display).replace(" ", "-")
        if name in names:
            continue
        names.add(name)
        data.companies.append(
            {
                "id": len(data.companies) + 1,
                "name": name,
                "display_name": display,
                "industry": rng.choice(_INDUSTRIES),
                "city": rng.choice(_CITIES),
                "website": f"https://{name}.example",
                "logo_key": f"companies/{name}.png",
            }
        )

    for i, (vname, address, city, capacity) in enumerate(_VENUES, start=1):
        data.venues.append({"id": i, "name": vname, "address": address, "city": city, "capacity": capacity})

    usernames: set[str] = set()
    company_weights = _zipf_weights(scale.companies, 0.9)
    company_ids = [c["id"] for c in data.companies]
    while len(data.speakers) < scale.speakers:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        base = _ascii(f"{first}.{last}")
        username = base
        n = 2
        while username in usernames:
            username = f"{base}{n}"
            n += 1
        usernames.add(username)
        company = rng.choices(company_ids, company_weights)[0] if rng.random() < 0.93 else None
        data.speakers.append(
            {
                "id": len(data.speakers) + 1,
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

    last_event = scale.events
    for number in range(1, scale.events + 1):
        year = scale.first_year + (number - 1) // 3
        date = dt.date(year, _MONTHS[(number - 1) % 3], 10 + number % 15)
        venue = data.venues[rng.randrange(len(data.venues))]
        topic = _TOPICS[(number * 7) % len(_TOPICS)]
        is_current = number == last_event
        data.events.append(
            {
                "id": number,
                "code": f"batbern{number}",
                "number": number,
                "title": f"BATbern{number}: {topic}",
                "topic": topic,
                "description": f"The {number}th Berner Architekten Treffen, on {topic.lower()}.",
                "date": date,
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

    # Sessions: an even spread over events, the remainder to the most recent ones.
    per_event = [scale.sessions // scale.events] * scale.events
    for k in range(scale.sessions - sum(per_event)):
        per_event[-1 - k] += 1
    speaker_order = [s["id"] for s in data.speakers]
    rng.shuffle(speaker_order)
    speaker_weights = _zipf_weights(scale.speakers, 0.8)
    session_id = 0
    for event, count in zip(data.events, per_event, strict=True):
        start = dt.datetime.combine(event["date"], dt.time(16, 0), tzinfo=dt.UTC)
        for k in range(count):
            session_id += 1
            kind = "keynote" if k == 0 else rng.choice(_KINDS)
            title = f"{rng.choice(_WORDS).capitalize()} {rng.choice(_WORDS)} {rng.choice(_WORDS)}"
            data.sessions.append(
                {
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
            )
            # Every speaker gives at least one session; the rest are repeat speakers, Zipf-popular.
            if speaker_order:
                primary = speaker_order.pop()
            else:
                primary = rng.choices(range(1, scale.speakers + 1), speaker_weights)[0]
            chosen = {primary}
            if kind == "panel":
                while len(chosen) < 3:
                    chosen.add(rng.randint(1, scale.speakers))
            for speaker in sorted(chosen):
                data.session_speakers.append({"session_id": session_id, "speaker_id": speaker})
    if speaker_order:  # more speakers than sessions: give the rest a second seat on panels
        for i, speaker in enumerate(speaker_order):
            data.session_speakers.append({"session_id": i % scale.sessions + 1, "speaker_id": speaker})

    # Registrations: past events share the total, growing over the years; the open event has a few.
    past = data.events[:-1]
    remaining = scale.registrations - scale.current_confirmed
    weights = [1.0 + 0.04 * e["number"] for e in past]
    total_w = sum(weights)
    counts = [min(e["capacity"], round(remaining * w / total_w)) for e, w in zip(past, weights, strict=True)]
    # Events capped by their venue leave seats over; hand them to events with room, one at a time.
    shortfall = remaining - sum(counts)
    i = len(counts) - 1
    while shortfall > 0 and any(c < e["capacity"] for c, e in zip(counts, past, strict=True)):
        if counts[i] < past[i]["capacity"]:
            counts[i] += 1
            shortfall -= 1
        i = i - 1 if i > 0 else len(counts) - 1
    counts.append(scale.current_confirmed)
    reg_id = 0
    for event, count in zip(data.events, counts, strict=True):
        created = dt.datetime.combine(event["date"], dt.time(12, 0), tzinfo=dt.UTC) - dt.timedelta(days=30)
        for k in range(count):
            reg_id += 1
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            data.registrations.append(
                {
                    "id": reg_id,
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
