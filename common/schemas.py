"""The bases and field types every app's pydantic schemas share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints


def iso_z(moment: datetime) -> str:
    """Like JavaScript's Date.toISOString(): UTC, milliseconds, "Z"."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# A name as stored: non-empty after trimming, fits its column, no NUL (PostgreSQL refuses it in text).
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
# An id as the API shows it (common.fields): 24 lowercase hex characters.
ObjectIdStr = Annotated[str, Field(pattern=r"^[0-9a-f]{24}$", examples=["5f0c0ffee0ddba11deadbeef"])]
# A moment as the API shows it: "2025-03-11T10:00:00.000Z".
IsoDateTime = Annotated[
    datetime,
    PlainSerializer(iso_z, return_type=str, when_used="always"),
    Field(examples=["2025-03-11T10:00:00.000Z"]),
]

# The same, already formatted (a live session keeps its startedAt as the string it was announced with).
IsoTimestamp = Annotated[
    str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", examples=["2025-03-11T10:00:00.000Z"])
]


class RequestBody(BaseModel):
    """Base of every request body and client event payload: exact types (no coercion), unknown keys ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


class ResponseModel(BaseModel):
    """Base of every response and server event payload: `_id` and the other spec names on the wire.

    Its JSON Schema (the API documents') says what is sent: every field, defaults included, and nothing else."""

    model_config = ConfigDict(
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        json_schema_serialization_defaults_required=True,
        json_schema_extra={"additionalProperties": False},
    )
