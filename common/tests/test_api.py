"""The JSON envelope, body parsing, the `endpoint` decorator and app-wide error handling (common/api.py)."""

import logging

import orjson
import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from common.api import (
    HTTP_STATUS,
    JsonErrorMiddleware,
    PayloadTooLarge,
    endpoint,
    error_response,
    fail,
    http_status,
    iter_routes,
    method_not_allowed,
    not_found,
    parse_body,
    parse_json_object,
    route,
    validate,
)
from common.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    NotNow,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
)
from tests.support import (
    INTERNAL_ERROR,
    INVALID_SCHEMA,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PASSWORD,
    PAYLOAD_TOO_LARGE,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
    auth,
    make_user,
    post_json,
)


# --- the envelope: success (Operation.render), fail, 405 ----------------------------------------------
@pytest.mark.parametrize(
    ("schema", "data"),
    [(dict[str, int], {"a": 1}), (list[int | str], [1, "two"]), (None | int, None), (str, "text"), (int, 0)],
)
def test_an_operation_wraps_its_data_in_the_envelope(schema, data):
    response = endpoint("GET", response=schema)(lambda request: data).render(data)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert orjson.loads(response.content) == {"success": True, "data": data}


def test_an_operation_answers_its_declared_status():
    assert endpoint("POST", response=dict, status=201)(lambda request: {})(post()).status_code == 201


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 500])
def test_fail_is_error_envelope(status):
    response = fail(status, "Something")
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert orjson.loads(response.content) == {"success": False, "error": "Something"}


def test_method_not_allowed_is_the_envelope_with_allow():
    response = method_not_allowed(("GET", "HEAD"))
    assert (response.status_code, response["Content-Type"]) == (405, "application/json")
    assert orjson.loads(response.content) == {"success": False, "error": METHOD_NOT_ALLOWED}
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Invalid("x"), 400),
        (Conflict("x"), 400),  # the contract: "Email already exists" is a 400
        (Unauthenticated("x"), 401),
        (Forbidden("x"), 403),
        (NotFound("x"), 404),
        (NotNow("x"), 409),  # self check-in: "Check-in is not open", "Already marked"
        (PayloadTooLarge("x"), 413),
        (TooManyRequests("x"), 429),
        (Unavailable("x"), 503),
    ],
)
def test_each_kind_of_domain_error_has_one_http_status(error, status):
    assert http_status(error) == status
    response = error_response(error)
    assert (response.status_code, orjson.loads(response.content)) == (status, {"success": False, "error": "x"})


def test_every_domain_error_kind_is_mapped():
    kinds = {
        Invalid, Conflict, Unauthenticated, Forbidden, NotFound, NotNow, TooManyRequests, Unavailable, PayloadTooLarge
    }
    assert set(HTTP_STATUS) == kinds
    assert {kind for kind in DomainError.__subclasses__()} <= kinds


def test_a_subclass_takes_its_parents_status():
    class SessionGone(NotFound):
        pass

    assert http_status(SessionGone("gone")) == 404


def test_too_many_requests_says_when_to_retry():
    response = error_response(TooManyRequests("Too many requests, try again later", retry_after=42))
    assert (response.status_code, response["Retry-After"]) == (429, "42")


def test_domain_errors_compare_by_kind_and_message():
    assert NotFound("Class not found") == NotFound("Class not found")
    assert NotFound("Class not found") != Forbidden("Class not found")
    assert NotFound("Class not found") != NotFound("Student not found")
    assert len({NotFound("a"), NotFound("a"), Forbidden("a")}) == 2


# --- parse_json_object / validate / parse_body -------------------------------------------------------
@pytest.mark.parametrize("raw", [b'{"a": [1, {"b": null}]}', '{"a": [1, {"b": null}]}'], ids=["bytes", "str"])
def test_parse_json_object_returns_the_object(raw):
    assert parse_json_object(raw) == {"a": [1, {"b": None}]}


def test_parse_json_object_accepts_moderate_nesting():
    assert parse_json_object(b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}")["a"] is not None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"nope",
        b'{"a": 1',
        b"{'a': 1}",
        b'{"a": NaN}',
        b"[]",
        b'[{"a": 1}]',
        b'"text"',
        b"null",
        b"1",
        b"true",
        b"\xff\xfe{}",
        b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=[
        "empty",
        "blank",
        "garbage",
        "truncated",
        "single-quotes",
        "nan",
        "empty-array",
        "array",
        "string",
        "null",
        "number",
        "bool",
        "not-utf8",
        "deep",
    ],
)
def test_parse_json_object_rejects_everything_else(raw):
    with pytest.raises(Invalid) as caught:
        parse_json_object(raw)
    assert caught.value.message == INVALID_SCHEMA


class Body(BaseModel):
    name: str


def test_validate_returns_model():
    assert validate(Body, {"name": "x"}) == Body(name="x")


def test_validate_turns_validation_error_into_400():
    with pytest.raises(Invalid) as caught:
        validate(Body, {"name": 5})
    assert caught.value.message == INVALID_SCHEMA


def test_parse_body_reads_json_whatever_content_type():
    request = RequestFactory().post("/x", '{"name": "x"}', content_type="text/plain")
    assert parse_body(request, Body) == Body(name="x")


def test_parse_body_over_limit_is_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    request = RequestFactory().post("/x", '{"name": "0123456789"}', content_type="application/json")
    with pytest.raises(PayloadTooLarge) as caught:
        parse_body(request, Body)
    assert caught.value.message == PAYLOAD_TOO_LARGE


# --- endpoint and route ------------------------------------------------------------------------------
class Echo(BaseModel):
    name: str
    extra: str | None
    user: str | None


class Query(BaseModel):
    limit: int = 10


def deny(request):
    raise Unauthenticated(UNAUTHORIZED)


deny.errors = (Unauthenticated(UNAUTHORIZED),)


def allow(request):
    return "the-user"


allow.errors = ()


def make_operation(calls, auth_check=None):
    @endpoint("POST", auth=auth_check, body=Body, response=Echo, status=201)
    def view(request, body, extra=None, user=None):
        """Echo the body."""
        calls.append((user, body, extra))
        return Echo(name=body.name, extra=extra, user=user)

    return view


def post(path="/x", body=b'{"name": "n"}', content_type="application/json"):
    return RequestFactory().post(path, body, content_type=content_type)


def test_operation_passes_user_body_and_url_params_and_serialises_by_its_schema():
    calls = []
    response = make_operation(calls, auth_check=allow)(post(), extra="e")
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    assert orjson.loads(response.content) == {
        "success": True,
        "data": {"name": "n", "extra": "e", "user": "the-user"},
    }
    assert calls == [("the-user", Body(name="n"), "e")]


def test_operation_checks_auth_before_body():
    calls = []
    response = make_operation(calls, auth_check=deny)(post(body=b"nope", content_type="text/plain"))
    assert (response.status_code, orjson.loads(response.content)["error"]) == (401, UNAUTHORIZED)
    assert calls == []


def test_operation_turns_body_errors_into_400():
    calls = []
    response = make_operation(calls)(post(body=b'{"name": 1}'))
    assert (response.status_code, orjson.loads(response.content)["error"]) == (400, INVALID_SCHEMA)
    assert calls == []


def test_operation_turns_domain_errors_from_the_view_into_envelope():
    @endpoint("GET", errors=(NotFound("Class not found"),))
    def view(request):
        raise NotFound("Class not found")

    response = view(RequestFactory().get("/x"))
    assert response.status_code == 404
    assert orjson.loads(response.content) == {"success": False, "error": "Class not found"}


def test_operation_refuses_data_that_does_not_match_its_response_schema():
    @endpoint("GET", response=Echo)
    def view(request):
        return {"name": "n"}  # not an Echo: the document would lie

    with pytest.raises(PydanticSerializationError):  # JsonErrorMiddleware makes it a logged 500
        view(RequestFactory().get("/x"))


def test_operation_passes_its_own_http_response_through():
    @endpoint("GET", media_type="text/csv")
    def view(request):
        return HttpResponse(b"a,b\n", content_type="text/csv")

    response = view(RequestFactory().get("/x"))
    assert (response.content, response["Content-Type"]) == (b"a,b\n", "text/csv")


def test_operation_validates_its_query():
    @endpoint("GET", query=Query, response=int)
    def view(request, query):
        return query.limit

    assert orjson.loads(view(RequestFactory().get("/x", {"limit": "5"})).content)["data"] == 5
    assert orjson.loads(view(RequestFactory().get("/x")).content)["data"] == 10
    response = view(RequestFactory().get("/x", {"limit": "many"}))
    assert (response.status_code, orjson.loads(response.content)["error"]) == (400, INVALID_SCHEMA)


def test_operation_lists_every_error_it_can_answer_in_check_order():
    operation = make_operation([], auth_check=deny)
    assert operation.all_errors() == [
        Unauthenticated(UNAUTHORIZED),
        Invalid(INVALID_SCHEMA),
        PayloadTooLarge(PAYLOAD_TOO_LARGE),
    ]
    assert operation.summary == "Echo the body."


def test_route_dispatches_by_method_and_answers_405_before_auth():
    calls = []

    @endpoint("GET", auth=deny, response=str)
    def read(request, user):
        return "read"

    pattern = route("x", read, make_operation(calls))
    view = pattern.callback
    assert view.csrf_exempt is True
    assert set(view.operations) == {"GET", "POST"}
    assert view(post()).status_code == 201
    assert view(RequestFactory().get("/x")).status_code == 401
    for method in ("put", "delete", "patch"):
        response = getattr(RequestFactory(), method)("/x")
        response = view(response)
        assert (response.status_code, orjson.loads(response.content)["error"]) == (405, METHOD_NOT_ALLOWED)
        assert response["Allow"] == "GET, POST"  # RFC 9110: what the resource supports


def test_operation_summary_and_description_come_from_the_docstring():
    @endpoint("GET", response=str, params={"class_id": "The class."})
    def view(request, class_id):
        """Read a thing
        in two lines.

        More about it,
        over two lines.

        And a last paragraph."""

    assert view.summary == "Read a thing in two lines."
    assert view.description == "More about it, over two lines.\n\nAnd a last paragraph."
    assert view.params == {"class_id": "The class."}
    assert (make_operation([]).description, make_operation([]).params) == ("", {})


def test_route_refuses_two_operations_for_one_method():
    with pytest.raises(ValueError):
        route("x", make_operation([]), make_operation([]))


def test_every_api_route_is_registered_with_its_operations():
    routes = {(r.path, method) for r in iter_routes() for method in r.operations}
    assert {
        ("/auth/signup", "POST"),
        ("/auth/login", "POST"),
        ("/auth/me", "GET"),
        ("/students", "GET"),
        ("/class", "POST"),
        ("/class/{class_id}", "GET"),
        ("/class/{class_id}/add-student", "POST"),
        ("/attendance/start", "POST"),
        ("/class/{class_id}/my-attendance", "GET"),
    } <= routes


def test_not_found_view():
    response = not_found(RequestFactory().get("/anything"))
    assert (response.status_code, orjson.loads(response.content)) == (404, {"success": False, "error": NOT_FOUND})


# --- JsonErrorMiddleware -----------------------------------------------------------------------------
def test_middleware_turns_exception_into_500_and_logs_it(caplog):
    middleware = JsonErrorMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/class/x")
    try:
        raise RuntimeError("secret detail")
    except RuntimeError as error:
        with caplog.at_level(logging.ERROR, logger="common.api"):
            response = middleware.process_exception(request, error)
    assert (response.status_code, orjson.loads(response.content)) == (500, {"success": False, "error": INTERNAL_ERROR})
    assert b"secret detail" not in response.content
    assert "secret detail" in caplog.text and "GET /class/x" in caplog.text


def test_middleware_leaves_admin_errors_to_django():
    middleware = JsonErrorMiddleware(lambda request: HttpResponse())
    assert middleware.process_exception(RequestFactory().get("/admin/x"), RuntimeError("x")) is None


# --- the whole stack, in-process (unknown routes over the wire too) -------------------------------------
@pytest.mark.parametrize(
    "path",
    # "/" is the web console (console/tests); "/index.html" is not.
    [
        "/index.html", "/nope", "/auth", "/auth/me/", "/auth/signup/", "/students/", "/class/", "/class/x/",
        "/CLASS/x", "/admin",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_route_is_json_404(site, method, path):
    """In-process and over the wire (the `site` fixture); an unsafe method with a JSON body, as a client sends it."""
    body = ... if method == "GET" else {}
    assert_error(site.request(method, path, body=body), 404, NOT_FOUND)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unknown_route_is_json_404_for_client_without_csrf_token(method):
    """API clients never send CSRF tokens; the test client skips the check unless told to enforce it."""
    assert_error(getattr(Client(enforce_csrf_checks=True), method)("/nope"), 404, NOT_FOUND)


def test_unknown_route_is_json_404_with_debug_on(client, settings):
    settings.DEBUG = True
    assert_error(client.get("/does/not/exist"), 404, NOT_FOUND)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", "/auth/signup", "POST"),
        ("get", "/auth/login", "POST"),
        ("post", "/auth/me", "GET"),
        ("post", "/students", "GET"),
        ("get", "/class", "POST"),
        ("delete", "/class/x", "GET, PATCH"),
        ("put", "/class/x", "GET, PATCH"),
        ("get", "/class/x/add-student", "POST"),
    ],
)
def test_wrong_method_is_405_without_auth(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert_error(response, 405, METHOD_NOT_ALLOWED)
    assert response["Allow"] == allowed


@pytest.mark.django_db
def test_api_post_needs_no_csrf_token(client):
    strict = Client(enforce_csrf_checks=True)
    body = {"name": "Csrf", "email": "csrf@example.com", "password": PASSWORD, "role": "student"}
    assert_ok(post_json(strict, "/auth/signup", body), 201)


@pytest.mark.django_db
def test_unexpected_exception_is_json_500_without_details(client, monkeypatch, caplog):
    def explode(*args):
        raise RuntimeError("database exploded: secret detail")

    monkeypatch.setattr("accounts.services.signup", explode)
    body = {"name": "Boom", "email": "boom@example.com", "password": PASSWORD, "role": "student"}
    with caplog.at_level(logging.ERROR, logger="common.api"):
        response = post_json(client, "/auth/signup", body)
    assert_error(response, 500, INTERNAL_ERROR)
    assert b"secret detail" not in response.content
    assert "database exploded: secret detail" in caplog.text


@pytest.mark.django_db
def test_unexpected_exception_in_protected_route_is_json_500(client, monkeypatch):
    def explode(class_id, user):
        raise KeyError("boom")

    monkeypatch.setattr("classes.services.class_detail", explode)
    assert_error(client.get("/class/5f0c0ffee0ddba11deadbeef", headers=auth(make_user("teacher"))), 500, INTERNAL_ERROR)


# --- what Django answers itself is JSON too (DEBUG off, as in production) --------------------------------
def test_a_host_that_is_not_allowed_is_a_json_400(client):
    assert_error(client.get("/auth/me", HTTP_HOST="evil.example"), 400, "Bad request")


@pytest.mark.django_db
def test_a_csrf_failure_is_a_json_403():
    """The API's own routes need no CSRF token; Django's pages that do (the admin's log-in) answer in JSON."""
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "x", "password": "y"})
    assert_error(response, 403, "Forbidden")


def test_django_handlers_answer_json(rf):
    from common import api

    for handler, status, message in [
        (api.bad_request, 400, "Bad request"),
        (api.forbidden, 403, "Forbidden"),
        (api.not_found, 404, NOT_FOUND),
    ]:
        response = handler(rf.get("/x"), Exception("detail"))
        assert (response.status_code, orjson.loads(response.content)) == (status, {"success": False, "error": message})
    response = api.server_error(rf.get("/x"))
    assert (response.status_code, orjson.loads(response.content)) == (500, {"success": False, "error": INTERNAL_ERROR})


@pytest.mark.wire
def test_a_host_that_is_not_allowed_is_a_json_400_over_the_wire(api):
    assert_error(api.get("/auth/me", headers={"Host": "evil.example"}), 400, "Bad request")
