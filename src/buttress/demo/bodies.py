"""Request bodies of the write endpoints, validated by pydantic (a bad body is 422 with field errors).

Unknown fields are rejected rather than ignored, so a typo (``fist_name``) is an error the caller sees,
not a silently dropped change.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = ["EventPatch", "RegistrationIn", "SpeakerPatch"]

_EMAIL = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"  # noqa: E501
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
_EMAIL_RE = re.compile(_EMAIL)


def _email(value: str) -> str:
    if _EMAIL_RE.fullmatch(value) is None:
        raise ValueError("must be an email address such as name@example.com")
    return value


Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_email)]


class RegistrationIn(BaseModel):
    """``POST /events/{code}/registrations``: who registers."""

    model_config = ConfigDict(extra="forbid")

    first_name: Name
    last_name: Name
    email: Email
    company: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = None


class _Patch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _not_empty(self) -> _Patch:
        if not self.model_fields_set:
            raise ValueError("the body changes nothing; give at least one field")
        return self


class EventPatch(_Patch):
    """``PATCH /events/{code}``: the fields of an event an editor may change."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=200)] | None = (
        None
    )
    topic: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=80)] | None = None
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    status: Literal["archived", "published", "open"] | None = None
    capacity: Annotated[int, Field(ge=1, le=100_000)] | None = None
    date: dt.date | None = None


class SpeakerPatch(_Patch):
    """``PATCH /speakers/{username}``: the fields of a speaker's profile an editor may change."""

    first_name: Name | None = None
    last_name: Name | None = None
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = None
    bio: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    company: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)] | None = (
        None
    )
