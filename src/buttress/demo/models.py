"""The event platform's tables, as SQLAlchemy 2 declarative models.

The shape follows the platform buttress was built for: an archive of events since 2005, each held at a
venue with a programme of sessions given by speakers who work for companies, and public registrations
(confirmed up to the event's capacity, then waitlisted).

``Event.confirmed`` is kept on the event row so that taking a seat is one atomic
``UPDATE … SET confirmed = confirmed + 1 WHERE confirmed < capacity``: two workers registering the last
seat at the same moment cannot both get it, on SQLite or PostgreSQL, without a table lock.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Company",
    "Event",
    "Registration",
    "SchemaVersion",
    "Session",
    "SessionSpeaker",
    "Speaker",
    "Venue",
    "table",
]


class Base(DeclarativeBase):
    """The declarative base of every demo table."""


def table(model: type[Base]) -> Table:
    """The Core :class:`~sqlalchemy.Table` of ``model`` (typed, for Core queries)."""
    return cast(Table, model.__table__)


class SchemaVersion(Base):
    """One applied schema migration: its number, what it did and when (see :mod:`.database`)."""

    __tablename__ = "demo_schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    description: Mapped[str] = mapped_column(String(200))
    applied_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Company(Base):
    """A company speakers work for; ``name`` is its URL slug (``/companies/{name}``)."""

    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), index=True)
    industry: Mapped[str] = mapped_column(String(60))
    city: Mapped[str] = mapped_column(String(60))
    website: Mapped[str] = mapped_column(String(200))
    logo_key: Mapped[str] = mapped_column(String(200))


class Venue(Base):
    """Where an event takes place."""

    __tablename__ = "venues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(60))
    capacity: Mapped[int] = mapped_column(Integer)


class Event(Base):
    """One event; ``code`` is its public identifier (``batbern57``)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(80), index=True)
    description: Mapped[str] = mapped_column(Text)
    date: Mapped[dt.date] = mapped_column(Date, index=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)  # archived | published | open
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id"))
    capacity: Mapped[int] = mapped_column(Integer)
    confirmed: Mapped[int] = mapped_column(Integer, default=0)
    waitlisted: Mapped[int] = mapped_column(Integer, default=0)
    image_key: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Speaker(Base):
    """A person who gave at least one session; ``username`` is the public identifier."""

    __tablename__ = "speakers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    first_name: Mapped[str] = mapped_column(String(60))
    last_name: Mapped[str] = mapped_column(String(60), index=True)
    title: Mapped[str] = mapped_column(String(120))
    bio: Mapped[str] = mapped_column(Text)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    photo_key: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Session(Base):
    """One talk, keynote or panel of an event's programme."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    slug: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(200))
    abstract: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))  # keynote | talk | panel
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    minutes: Mapped[int] = mapped_column(Integer)
    room: Mapped[str] = mapped_column(String(40))

    __table_args__ = (UniqueConstraint("event_id", "slug"),)


class SessionSpeaker(Base):
    """Who gives which session (a session may have several speakers)."""

    __tablename__ = "session_speakers"

    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speakers.id"), primary_key=True, index=True)


class Registration(Base):
    """A public registration for an event: ``confirmed`` within capacity, else ``waitlisted``."""

    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254))
    company: Mapped[str | None] = mapped_column(String(120), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # confirmed | waitlisted
    confirmation_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("event_id", "email", name="uq_registration_event_email"),
        Index("ix_registrations_event_status", "event_id", "status"),
    )
