"""Sign-up, log-in, the signed-in user and the student list."""

from django.http import HttpRequest

from accounts import auth, services
from accounts.models import User
from accounts.schemas import LoginBody, Member, PublicUser, SignupBody, Token
from common import messages
from common.api import endpoint
from common.errors import Conflict, Invalid, TooManyRequests
from common.limits import client_ip


@endpoint(
    "POST",
    body=SignupBody,
    response=PublicUser,
    status=201,
    errors=(Conflict(messages.EMAIL_EXISTS), TooManyRequests(messages.TOO_MANY_REQUESTS)),
)
def signup(request: HttpRequest, body: SignupBody) -> PublicUser:
    """Create a teacher or student account.

    Too many sign-ups from one client address are refused for a while (429, with `Retry-After` in seconds)."""
    return PublicUser.of(services.signup(body, client_ip(request)))


@endpoint(
    "POST",
    body=LoginBody,
    response=Token,
    errors=(Invalid(messages.BAD_CREDENTIALS), TooManyRequests(messages.TOO_MANY_REQUESTS)),
)
def login(request: HttpRequest, body: LoginBody) -> Token:
    """Exchange an email and password for a token.

    An unknown email and a wrong password get the same answer. Too many failed logins for one email, or from
    one client address, are refused for a while (429, with `Retry-After` in seconds)."""
    return Token(token=services.login(body, client_ip(request)))


@endpoint("GET", auth=auth.any_user, response=PublicUser, light=True)
def me(request: HttpRequest, user: User) -> PublicUser:
    """The signed-in user."""
    return PublicUser.of(user)


@endpoint("GET", auth=auth.teacher, response=list[Member])
def students(request: HttpRequest, user: User) -> list[Member]:
    """Every student, to pick from when enrolling."""
    return services.list_students()
