"""Request bodies of the accounts routes, and the field types the other apps share."""

from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _normalise_email(value: str) -> str:
    try:
        # test_environment: accept *.test addresses that client test suites like to use.
        checked = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None
    return checked.normalized.lower()


NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# A name as stored: non-empty after trimming, fits its column, no NUL (PostgreSQL refuses it in text).
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_normalise_email)]


class RequestBody(BaseModel):
    """Base of every request body: exact types (no coercion), unknown keys ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


class SignupBody(RequestBody):
    name: Name
    email: Email
    # Passwords are taken as typed: no trimming. bcrypt-sha256 has no 72-byte limit, 1024 is a sanity cap.
    password: Annotated[str, Field(min_length=6, max_length=1024)]
    role: Literal["teacher", "student"]


class LoginBody(RequestBody):
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=1024)]
