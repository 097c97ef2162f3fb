from django.http import HttpRequest

from accounts import auth, services
from accounts.models import User
from accounts.schemas import LoginBody, Member, PublicUser, SignupBody, Token
from attendance_site import messages
from attendance_site.api import endpoint
from attendance_site.errors import Conflict, Invalid


@endpoint("POST", body=SignupBody, response=PublicUser, status=201, errors=(Conflict(messages.EMAIL_EXISTS),))
def signup(request: HttpRequest, body: SignupBody) -> PublicUser:
    """Create a teacher or student account."""
    return PublicUser.of(services.signup(body))


@endpoint("POST", body=LoginBody, response=Token, errors=(Invalid(messages.BAD_CREDENTIALS),))
def login(request: HttpRequest, body: LoginBody) -> Token:
    """Exchange an email and password for a token."""
    return Token(token=services.login(body))


@endpoint("GET", auth=auth.any_user, response=PublicUser)
def me(request: HttpRequest, user: User) -> PublicUser:
    """The signed-in user."""
    return PublicUser.of(user)


@endpoint("GET", auth=auth.teacher, response=list[Member])
def students(request: HttpRequest, user: User) -> list[Member]:
    """Every student, to pick from when enrolling."""
    return services.list_students()
