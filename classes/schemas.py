"""Request bodies and responses of the classes routes."""

from __future__ import annotations

from pydantic import Field

from accounts.schemas import Member
from common.schemas import Name, NonEmptyStr, ObjectIdStr, RequestBody, ResponseModel


class CreateClassBody(RequestBody):
    className: Name


class AddStudentBody(RequestBody):
    studentId: NonEmptyStr


class ClassSummary(ResponseModel):
    """A class with its students' ids, in enrolment order (the spec's Class document)."""

    id: ObjectIdStr = Field(alias="_id")
    className: str
    teacherId: ObjectIdStr
    studentIds: list[ObjectIdStr]


class ClassDetail(ResponseModel):
    """A class with its students populated, in enrolment order."""

    id: ObjectIdStr = Field(alias="_id")
    className: str
    teacherId: ObjectIdStr
    students: list[Member]


class ClassListItem(ResponseModel):
    """One of the caller's classes (GET /classes)."""

    id: ObjectIdStr = Field(alias="_id")
    className: str
    teacherId: ObjectIdStr
    studentCount: int
