from django.http import HttpRequest, HttpResponse

from accounts import auth, services
from accounts.schemas import LoginBody, SignupBody
from attendance_site.api import endpoint, ok


@endpoint("POST", body=SignupBody)
def signup(request: HttpRequest, body: SignupBody) -> HttpResponse:
    return ok(services.signup(body).as_public(), status=201)


@endpoint("POST", body=LoginBody)
def login(request: HttpRequest, body: LoginBody) -> HttpResponse:
    return ok({"token": services.login(body)})


@endpoint("GET", auth=auth.any_user)
def me(request: HttpRequest) -> HttpResponse:
    return ok(request.api_user.as_public())


@endpoint("GET", auth=auth.teacher)
def students(request: HttpRequest) -> HttpResponse:
    return ok(services.list_students())
