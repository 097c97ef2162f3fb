"""One schema per request body and per WebSocket event."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from accounts.schemas import NonEmptyStr, RequestBody


class StartAttendanceBody(RequestBody):
    classId: NonEmptyStr


class Frame(BaseModel):
    """Any client frame: a string `event` and optional `data`."""

    model_config = ConfigDict(strict=True, extra="ignore")
    event: str
    data: Any = None


class AttendanceMarkedData(RequestBody):
    studentId: NonEmptyStr
    status: Literal["present", "absent"]


class TodaySummaryData(RequestBody):
    pass


class MyAttendanceData(RequestBody):
    classId: NonEmptyStr | None = None


class DoneData(RequestBody):
    pass
