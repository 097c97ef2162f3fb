"""Request bodies and responses of the accounts routes."""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints

from accounts.models import Role, User
from common.schemas import Name, ObjectIdStr, RequestBody, ResponseModel


def _normalise_email(value: str) -> str:
    try:
        # test_environment: accept *.test addresses that client test suites like to use.
        checked = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None
    return checked.normalized.lower()


def comparable_email(value: str) -> str:
    """An address as sign-up stores it and log-in compares it (trimmed, normalised, lower-cased); one that is not
    a valid address, trimmed and lower-cased (it matches no account)."""
    value = value.strip()
    try:
        return _normalise_email(value)
    except ValueError:
        return value.lower()


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254),
    AfterValidator(_normalise_email),
    Field(json_schema_extra={"format": "email"}),
]
# Passwords are taken as typed: no trimming. bcrypt-sha256 has no 72-byte limit; 1024 is a sanity cap.
Password = Annotated[str, Field(max_length=1024)]


class SignupBody(RequestBody):
    name: Name
    email: Email
    password: Annotated[Password, Field(min_length=6)]
    # Roles arrive as JSON strings: lax for this field only, so "teacher" becomes Role.TEACHER (and 1 stays an error).
    role: Annotated[Role, Field(strict=False)]


class LoginBody(RequestBody):
    email: Email
    password: Annotated[Password, Field(min_length=1)]


class PublicUser(ResponseModel):
    """A user as the API shows it: never the password."""

    id: ObjectIdStr = Field(alias="_id")
    name: str
    email: str
    role: Role

    @classmethod
    def of(cls, user: User) -> PublicUser:
        return cls(id=user.id, name=user.name, email=user.email, role=Role(user.role))


class Member(ResponseModel):
    """A student as a class or the student list shows them."""

    id: ObjectIdStr = Field(alias="_id")
    name: str
    email: str


class Token(ResponseModel):
    token: str = Field(description="HS256 JWT; send it as `Authorization: <token>` and as `/ws?token=<token>`")
