"""Request bodies and responses of the live routes, and every WebSocket message, client's and server's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from attendance_site import messages
from attendance_site.schemas import IsoTimestamp, NonEmptyStr, ObjectIdStr, RequestBody, ResponseModel
from live.models import Status

# Statuses arrive as JSON strings: lax for this field only, so "present" becomes Status.PRESENT.
StatusField = Annotated[Status, Field(strict=False)]

# --- HTTP ---------------------------------------------------------------------------------------------


class StartAttendanceBody(RequestBody):
    classId: NonEmptyStr


class StartedSession(ResponseModel):
    classId: ObjectIdStr
    startedAt: IsoTimestamp


class PersistedStatus(ResponseModel):
    """A student's status in the class's most recent persisted session; null before any."""

    classId: ObjectIdStr
    status: Status | None


# --- WebSocket: client → server -------------------------------------------------------------------------


class Frame(BaseModel):
    """Any client frame: a string `event` and optional `data`."""

    model_config = ConfigDict(strict=True, extra="ignore")
    event: str
    data: Any = None


class AttendanceMarkedData(RequestBody):
    studentId: NonEmptyStr
    status: StatusField


class NoData(RequestBody):
    """Events without a payload: `data` may be missing, null or an object (its keys are ignored)."""


class MyAttendanceData(RequestBody):
    classId: NonEmptyStr | None = Field(
        default=None, description="Which class, when several have live sessions; else the latest started"
    )


# --- WebSocket: server → client -------------------------------------------------------------------------


class MarkedPayload(ResponseModel):
    studentId: ObjectIdStr
    status: Status


class SummaryPayload(ResponseModel):
    present: int
    absent: int
    total: int = Field(description="present + absent: the marks so far")


class MyStatusPayload(ResponseModel):
    status: Status | Literal["not yet updated"]


class DonePayload(ResponseModel):
    message: Literal["Attendance persisted"] = messages.ATTENDANCE_PERSISTED
    present: int
    absent: int
    total: int = Field(description="the class's enrolled students")


class ErrorPayload(ResponseModel):
    message: str


# Every server message: event name → its `data` schema (the AsyncAPI document is built from this).
SERVER_EVENTS: dict[str, type[ResponseModel]] = {
    "ATTENDANCE_MARKED": MarkedPayload,
    "TODAY_SUMMARY": SummaryPayload,
    "MY_ATTENDANCE": MyStatusPayload,
    "DONE": DonePayload,
    "ERROR": ErrorPayload,
}


def encode(event: str, data: ResponseModel) -> str:
    """A server message as sent: `{"event": ..., "data": ...}`, exactly the schema's keys."""
    assert isinstance(data, SERVER_EVENTS[event]), (event, type(data))
    return '{"event":"' + event + '","data":' + data.model_dump_json() + "}"
