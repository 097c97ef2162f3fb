"""Request bodies and responses of the live routes, and every WebSocket message, client's and server's."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, StringConstraints, field_validator

from common import messages
from common.schemas import IsoDateTime, IsoTimestamp, NonEmptyStr, ObjectIdStr, RequestBody, ResponseModel
from live.checkin import (
    DEFAULT_MINUTES,
    DEFAULT_ROTATE_SECONDS,
    LATE_AFTER_RANGE,
    MINUTES_RANGE,
    ROTATE_SECONDS_RANGE,
)
from live.models import REMARK_MAX_LENGTH, MarkSource, Status

# Statuses arrive as JSON strings: lax for this field only, so "present" becomes Status.PRESENT.
StatusField = Annotated[Status, Field(strict=False)]
# A teacher's remark on a student's mark: trimmed, at most 500 characters; "" clears it.
Remark = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=REMARK_MAX_LENGTH),
    Field(description='Trimmed, at most 500 characters; "" clears the remark'),
]

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


class LiveMark(ResponseModel):
    """A student's current mark in a live session."""

    status: Status
    remark: str | None
    at: IsoTimestamp = Field(description="When it was made")
    by: ObjectIdStr = Field(description="The user id who made it")
    source: MarkSource


class CheckInWindow(ResponseModel):
    """An open check-in window (its secret and codes are never shown: the teacher's sockets get CHECKIN_CODE)."""

    openedAt: IsoTimestamp
    closesAt: IsoTimestamp
    rotateSeconds: int = Field(description="How often the code changes")
    lateAfterMinutes: int | None = Field(description="Check-ins this long after the opening are late; null: never")


class ActiveSession(ResponseModel):
    """The caller's live session, as the database holds it (GET /attendance/active)."""

    sessionId: ObjectIdStr = Field(description="the session's `_id`: its records reference it once DONE persists it")
    classId: ObjectIdStr
    startedAt: IsoTimestamp
    attendance: dict[ObjectIdStr, Status] = Field(description="studentId → status, for the students marked so far")
    marks: dict[ObjectIdStr, LiveMark] = Field(
        description="studentId → the mark with its remark and who made it when, for the students marked so far"
    )
    checkIn: CheckInWindow | None = Field(description="The open self check-in window, or null")


# A check-in code as typed: trimmed; anything but the current code (6 digits) is answered "Invalid or expired code".
CheckInCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    Field(description="The code the teacher's screen shows (6 digits)", examples=["042917"]),
]


class CheckInBody(RequestBody):
    """POST /attendance/check-in."""

    classId: NonEmptyStr
    code: CheckInCode


class CheckedIn(ResponseModel):
    """A student's own check-in: the status it gave them."""

    classId: ObjectIdStr
    status: Status = Field(description="present, or late once the window's lateAfterMinutes have passed")


class CheckInState(ResponseModel):
    """Whether the class's live session has an open check-in window (GET /class/:id/check-in)."""

    classId: ObjectIdStr
    open: bool
    closesAt: IsoTimestamp | None = Field(description="When the open window closes; null when none is open")


# --- HTTP: history and reports (persisted sessions only) -------------------------------------------------


_DECIMAL = re.compile(r"[0-9]{1,9}")
# A date and a time: what `before` must start with (pydantic parses the rest, offset included).
_ISO_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d")


def _iso_datetime(value: Any) -> Any:
    """An ISO 8601 date and time: not a bare date, nor a Unix timestamp (which pydantic would take)."""
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise ValueError("expected an ISO 8601 date and time")
    return value


def _in_utc(value: datetime | None) -> datetime | None:
    """In UTC (a moment without an offset is UTC: the API speaks UTC throughout). A moment that UTC cannot hold
    (year 1 east of Greenwich, 9999 west of it) is before, or after, every session."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == datetime.min.year else datetime.max).replace(tzinfo=UTC)


class PeriodQuery(BaseModel):
    """`?from=&to=`: only the persisted sessions started in [from, to) (either bound optional).

    Not strict: query values are strings."""

    model_config = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True)
    start: datetime | None = Field(
        default=None,
        alias="from",
        description="Only sessions started at or after this moment (ISO 8601; UTC without an offset)",
        examples=["2025-03-01T00:00:00Z"],
    )
    end: datetime | None = Field(
        default=None,
        alias="to",
        description="Only sessions started strictly before this moment (ISO 8601; UTC without an offset)",
        examples=["2025-04-01T00:00:00Z"],
    )

    iso_bounds = field_validator("start", "end", mode="before")(_iso_datetime)
    utc_bounds = field_validator("start", "end")(_in_utc)


class SessionsQuery(PeriodQuery):
    """GET /class/:id/sessions: one page of persisted sessions, newest first (within from/to)."""

    limit: int = Field(default=100, ge=1, le=500, description="How many sessions, 1–500")
    before: datetime | None = Field(
        default=None,
        description="Only sessions started strictly before this moment (ISO 8601; UTC without an offset): "
        "pass the last startedAt of a page to get the next one",
        examples=["2025-03-11T10:00:00.000Z"],
    )

    @field_validator("limit", mode="before")
    @classmethod
    def _decimal_digits(cls, value: Any) -> Any:
        """Plain decimal digits only: "50", not "5e1", "1_0", "+5" or " 50" (which int() would take)."""
        if isinstance(value, str) and not _DECIMAL.fullmatch(value):
            raise ValueError("expected a decimal integer")
        return value

    iso_before = field_validator("before", mode="before")(_iso_datetime)
    utc_before = field_validator("before")(_in_utc)


# The IANA zones this server knows (the system's database, or the tzdata package's): the API documents list them, so
# that a value the document allows is one the server takes.
ZONES = sorted(available_timezones())


def _known_zone(value: str) -> str:
    """An IANA time zone this server knows ("Europe/Paris"); anything else (a path, an offset) is refused."""
    if value not in _ZONE_SET:
        raise ValueError("unknown time zone")
    return value


_ZONE_SET = frozenset(ZONES)
_ZONE_ENUM: list[JsonValue] = [*ZONES]


class WorkbookQuery(PeriodQuery):
    """GET /class/:id/report.xlsx: the period, and the zone the sessions' starts are shown in."""

    tz: Annotated[str, AfterValidator(_known_zone)] = Field(
        default="UTC",
        json_schema_extra={"enum": _ZONE_ENUM},
        description="The IANA time zone of the session columns' headings and the Sessions sheet's times",
        examples=["Europe/Paris"],
    )


class SessionSummary(ResponseModel):
    """A persisted session and its counts."""

    id: ObjectIdStr = Field(alias="_id")
    startedAt: IsoDateTime
    endedAt: IsoDateTime = Field(description="When DONE persisted the session")
    present: int
    absent: int
    late: int
    excused: int
    total: int = Field(description="The students enrolled when the session was persisted (the four counts' sum)")


class SessionRecord(ResponseModel):
    """A student's record in a persisted session, with its last change (null only on records older than these
    fields)."""

    studentId: ObjectIdStr
    name: str
    email: str
    status: Status
    remark: str | None
    at: IsoDateTime | None = Field(description="When its status last changed")
    by: ObjectIdStr | None = Field(description="The user id who changed it")
    source: MarkSource | None = Field(description="How: teacher, check-in, done (made absent by DONE), correction")


class CorrectionBody(RequestBody):
    """PATCH /class/:id/sessions/:sessionId/records/:studentId: a correction after DONE."""

    status: StatusField
    remark: Remark | None = Field(
        default=None, description='Trimmed, at most 500 characters; "" clears it; without it the current one is kept'
    )


class ChangeEntry(ResponseModel):
    """One change of a session, in the order made (live ones included)."""

    studentId: ObjectIdStr
    status: Status | None = Field(description="null for a clear")
    remark: str | None
    at: IsoDateTime
    by: ObjectIdStr
    source: MarkSource


class SessionDetail(ResponseModel):
    """A persisted session with its records, by student name."""

    id: ObjectIdStr = Field(alias="_id")
    classId: ObjectIdStr
    startedAt: IsoDateTime
    endedAt: IsoDateTime = Field(description="When DONE persisted the session")
    present: int
    absent: int
    late: int
    excused: int
    total: int
    records: list[SessionRecord]


AT_RISK = "rate below the class's minRate, or consecutiveAbsences at maxConsecutiveAbsences or more"


class StudentReport(ResponseModel):
    """One student's attendance over the class's persisted sessions."""

    id: ObjectIdStr = Field(alias="_id")
    name: str
    email: str
    present: int
    absent: int
    late: int
    excused: int
    rate: float | None = Field(
        description="(present + late) / (present + late + absent), 4 decimal places (excused left out); "
        "null when that denominator is 0"
    )
    consecutiveAbsences: int = Field(
        description="Unexcused absences in a row, counted back from the most recent session (an excused "
        "session, or one without a record of the student, neither counts nor breaks the run)"
    )
    atRisk: bool = Field(description=AT_RISK)


class MySummary(ResponseModel):
    """The caller's attendance in the class over its persisted sessions, and whether they are at risk."""

    present: int
    absent: int
    late: int
    excused: int
    rate: float | None = Field(
        description="(present + late) / (present + late + absent), 4 decimal places; null when that is 0"
    )
    atRisk: bool = Field(description=AT_RISK)
    consecutiveAbsences: int = Field(
        description="Unexcused absences in a row, counted back from the most recent session"
    )


class ClassReport(ResponseModel):
    """Every enrolled student and every student with a record, by name."""

    classId: ObjectIdStr
    className: str
    sessions: int = Field(description="How many sessions of the class are persisted (within from/to)")
    students: list[StudentReport]


class HistoryEntry(ResponseModel):
    """The caller's status in one persisted session."""

    startedAt: IsoDateTime
    status: Status
    remark: str | None


# --- WebSocket: client → server -------------------------------------------------------------------------


class Frame(BaseModel):
    """Any client frame: a string `event` and optional `data`."""

    model_config = ConfigDict(strict=True, extra="ignore")
    event: str
    data: Any = None


class AttendanceMarkedData(RequestBody):
    studentId: NonEmptyStr
    status: StatusField
    remark: Remark | None = Field(
        default=None, description='Trimmed, at most 500 characters; "" clears it; without it the current one is kept'
    )


class MarkAllData(RequestBody):
    status: StatusField = Field(default=Status.PRESENT, description="For every enrolled student without a mark")


class ClearedData(RequestBody):
    studentId: NonEmptyStr


class NoData(RequestBody):
    """Events without a payload: `data` may be missing, null or an object (its keys are ignored)."""


class MyAttendanceData(RequestBody):
    classId: NonEmptyStr | None = Field(
        default=None, description="Which class, when several have live sessions; else the latest started"
    )


class CheckInOpenData(RequestBody):
    minutes: int = Field(
        default=DEFAULT_MINUTES, ge=MINUTES_RANGE[0], le=MINUTES_RANGE[1], description="How long it stays open"
    )
    rotateSeconds: int = Field(
        default=DEFAULT_ROTATE_SECONDS,
        ge=ROTATE_SECONDS_RANGE[0],
        le=ROTATE_SECONDS_RANGE[1],
        description="How often the code changes",
    )
    lateAfterMinutes: int | None = Field(
        default=None,
        ge=LATE_AFTER_RANGE[0],
        le=LATE_AFTER_RANGE[1],
        description="Check-ins this many minutes after the opening are late (0: all of them); left out: never late",
    )


class CheckInData(RequestBody):
    code: CheckInCode
    classId: NonEmptyStr | None = Field(
        default=None,
        description="Which class; else the most recently started live session of the student's classes that has "
        "an open window",
    )


# --- WebSocket: server → client -------------------------------------------------------------------------


class MarkedPayload(ResponseModel):
    studentId: ObjectIdStr
    status: Status


class MarkAllPayload(ResponseModel):
    status: Status
    studentIds: list[ObjectIdStr] = Field(description="The students it marked, in enrolment order (possibly none)")


class ClearedPayload(ResponseModel):
    studentId: ObjectIdStr


class SummaryPayload(ResponseModel):
    present: int
    absent: int
    late: int
    excused: int
    total: int = Field(description="present + absent + late + excused: the marks so far")


class MyStatusPayload(ResponseModel):
    status: Status | Literal["not yet updated"]


class DonePayload(ResponseModel):
    message: Literal["Attendance persisted"] = messages.ATTENDANCE_PERSISTED
    present: int
    absent: int
    late: int
    excused: int
    total: int = Field(description="the class's enrolled students")


class CheckInOpenedPayload(ResponseModel):
    """A check-in window opened (or reopened) in the class's live session."""

    closesAt: IsoTimestamp


class CheckInCodePayload(ResponseModel):
    """To the teacher's own sockets only, when a window opens (or the socket connects during one) and at every
    rotation: the code to show."""

    code: str = Field(pattern=r"^[0-9]{6}$", examples=["042917"])
    expiresAt: IsoTimestamp = Field(
        description="When the next code replaces it (it is still accepted for one more rotation)"
    )
    url: str = Field(
        description="The console address that checks in with this code: `<origin>/#/check-in/<classId>/<code>`",
        examples=["http://localhost:3000/#/check-in/5f0c0ffee0ddba11deadbeef/042917"],
    )


class CheckInClosedPayload(ResponseModel):
    """The class's check-in window closed: CHECKIN_CLOSE, its closesAt, or DONE (once)."""


class ErrorPayload(ResponseModel):
    message: str


# Every server message: event name → its `data` schema (the AsyncAPI document is built from this).
SERVER_EVENTS: dict[str, type[ResponseModel]] = {
    "ATTENDANCE_MARKED": MarkedPayload,
    "MARK_ALL": MarkAllPayload,
    "ATTENDANCE_CLEARED": ClearedPayload,
    "TODAY_SUMMARY": SummaryPayload,
    "MY_ATTENDANCE": MyStatusPayload,
    "DONE": DonePayload,
    "CHECKIN_OPENED": CheckInOpenedPayload,
    "CHECKIN_CODE": CheckInCodePayload,
    "CHECKIN_CLOSED": CheckInClosedPayload,
    "ERROR": ErrorPayload,
}


def encode(event: str, data: ResponseModel) -> str:
    """A server message as sent: `{"event": ..., "data": ...}`, exactly the schema's keys."""
    assert isinstance(data, SERVER_EVENTS[event]), (event, type(data))
    return '{"event":"' + event + '","data":' + data.model_dump_json() + "}"
