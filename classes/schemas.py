"""Request bodies and responses of the classes routes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from accounts.schemas import Member
from common.schemas import Name, NonEmptyStr, ObjectIdStr, RequestBody, ResponseModel

MAX_ROSTER_EMAILS = 1000
MinRate = Annotated[
    float,
    Field(
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="A student whose rate is below this is at risk (0–1; default 0.8)",
        examples=[0.8],
    ),
]
MaxConsecutiveAbsences = Annotated[
    int,
    Field(
        ge=1,
        le=100,
        description="A student with this many unexcused absences in a row, or more, is at risk (1–100; default 3)",
        examples=[3],
    ),
]


class CreateClassBody(RequestBody):
    className: Name


class AddStudentBody(RequestBody):
    studentId: NonEmptyStr


class UpdateClassBody(RequestBody):
    """PATCH /class/:id: any of the class's name and settings; a field left out (or null) stays as it is."""

    className: Name | None = None
    minRate: MinRate | None = None
    maxConsecutiveAbsences: MaxConsecutiveAbsences | None = None


# An address as a roster lists it: compared as sign-up and log-in do (trimmed, lower-cased); one that is not an
# address at all is simply not found.
RosterEmail = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=320)]


class RosterBody(RequestBody):
    """POST /class/:id/students: enrol existing student accounts by email."""

    emails: list[RosterEmail] = Field(max_length=MAX_ROSTER_EMAILS, description="At most 1,000 addresses")


class RosterResult(ResponseModel):
    """What became of each address (in the order given; repeats once)."""

    added: list[ObjectIdStr] = Field(description="The students enrolled now")
    alreadyEnrolled: list[ObjectIdStr] = Field(description="The students who were enrolled already")
    notFound: list[str] = Field(description="The addresses of no account")
    notStudents: list[str] = Field(description="The addresses of accounts that are not students (teachers)")


class ClassSummary(ResponseModel):
    """A class with its students' ids, in enrolment order (the spec's Class document), and its settings."""

    id: ObjectIdStr = Field(alias="_id")
    className: str
    teacherId: ObjectIdStr
    studentIds: list[ObjectIdStr]
    minRate: float = Field(description="At risk below this rate")
    maxConsecutiveAbsences: int = Field(description="At risk at this many unexcused absences in a row")


class ClassDetail(ResponseModel):
    """A class with its students populated, in enrolment order, and its settings."""

    id: ObjectIdStr = Field(alias="_id")
    className: str
    teacherId: ObjectIdStr
    students: list[Member]
    minRate: float = Field(description="At risk below this rate")
    maxConsecutiveAbsences: int = Field(description="At risk at this many unexcused absences in a row")


class ClassListItem(ResponseModel):
    """One of the caller's classes (GET /classes)."""

    id: ObjectIdStr = Field(alias="_id")
    className: str
    teacherId: ObjectIdStr
    studentCount: int
