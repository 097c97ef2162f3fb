"""The JSON envelope, body parsing, the `endpoint` decorator and app-wide error handling (attendance_site/api.py)."""

import logging

import orjson
import pytest
from django.test import Client, RequestFactory
from pydantic import BaseModel

from accounts.tests.helpers import (
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
from attendance_site.api import (
    ApiError,
    JsonErrorMiddleware,
    endpoint,
    fail,
    not_found,
    ok,
    parse_body,
    parse_json_object,
    validate,
)


# --- ok / fail -------------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [{"a": 1}, [1, "two"], None, "text", 0])
def test_ok_wraps_data(data):
    response = ok(data)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert orjson.loads(response.content) == {"success": True, "data": data}


def test_ok_with_status():
    assert ok({}, status=201).status_code == 201


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 500])
def test_fail_is_error_envelope(status):
    response = fail(status, "Something")
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert orjson.loads(response.content) == {"success": False, "error": "Something"}


def test_api_error_carries_status_and_message():
    error = ApiError(404, "Class not found")
    assert (error.status, error.message, str(error)) == (404, "Class not found", "Class not found")


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
    with pytest.raises(ApiError) as caught:
        parse_json_object(raw)
    assert (caught.value.status, caught.value.message) == (400, INVALID_SCHEMA)


class Body(BaseModel):
    name: str


def test_validate_returns_model():
    assert validate(Body, {"name": "x"}) == Body(name="x")


def test_validate_turns_validation_error_into_400():
    with pytest.raises(ApiError) as caught:
        validate(Body, {"name": 5})
    assert (caught.value.status, caught.value.message) == (400, INVALID_SCHEMA)


def test_parse_body_reads_json_whatever_content_type():
    request = RequestFactory().post("/x", '{"name": "x"}', content_type="text/plain")
    assert parse_body(request, Body) == Body(name="x")


def test_parse_body_over_limit_is_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    request = RequestFactory().post("/x", '{"name": "0123456789"}', content_type="application/json")
    with pytest.raises(ApiError) as caught:
        parse_body(request, Body)
    assert (caught.value.status, caught.value.message) == (413, PAYLOAD_TOO_LARGE)


# --- endpoint decorator ------------------------------------------------------------------------------
def make_view(calls, auth_check=None):
    @endpoint("POST", auth=auth_check, body=Body)
    def view(request, body, extra=None):
        calls.append((request.api_user if auth_check else None, body, extra))
        return ok({"name": body.name, "extra": extra})

    return view


def deny(request):
    raise ApiError(401, UNAUTHORIZED)


def test_endpoint_passes_user_body_and_url_kwargs():
    calls = []
    view = make_view(calls, auth_check=lambda request: "the-user")
    response = view(RequestFactory().post("/x", {"name": "n"}, content_type="application/json"), extra="e")
    assert orjson.loads(response.content) == {"success": True, "data": {"name": "n", "extra": "e"}}
    assert calls == [("the-user", Body(name="n"), "e")]


def test_endpoint_checks_method_before_auth():
    calls = []
    response = make_view(calls, auth_check=deny)(RequestFactory().get("/x"))
    assert (response.status_code, orjson.loads(response.content)["error"]) == (405, METHOD_NOT_ALLOWED)
    assert calls == []


def test_endpoint_checks_auth_before_body():
    calls = []
    response = make_view(calls, auth_check=deny)(RequestFactory().post("/x", b"nope", content_type="text/plain"))
    assert (response.status_code, orjson.loads(response.content)["error"]) == (401, UNAUTHORIZED)
    assert calls == []


def test_endpoint_turns_body_errors_into_400():
    calls = []
    response = make_view(calls)(RequestFactory().post("/x", {"name": 1}, content_type="application/json"))
    assert (response.status_code, orjson.loads(response.content)["error"]) == (400, INVALID_SCHEMA)
    assert calls == []


def test_endpoint_turns_api_errors_from_the_view_into_envelope():
    @endpoint("GET")
    def view(request):
        raise ApiError(404, "Class not found")

    response = view(RequestFactory().get("/x"))
    assert response.status_code == 404
    assert orjson.loads(response.content) == {"success": False, "error": "Class not found"}


def test_endpoint_views_are_csrf_exempt():
    assert make_view([]).csrf_exempt is True


def test_not_found_view():
    response = not_found(RequestFactory().get("/anything"))
    assert (response.status_code, orjson.loads(response.content)) == (404, {"success": False, "error": NOT_FOUND})


# --- JsonErrorMiddleware -----------------------------------------------------------------------------
def test_middleware_turns_exception_into_500_and_logs_it(caplog):
    middleware = JsonErrorMiddleware(lambda request: ok(None))
    request = RequestFactory().get("/class/x")
    try:
        raise RuntimeError("secret detail")
    except RuntimeError as error:
        with caplog.at_level(logging.ERROR, logger="attendance_site.api"):
            response = middleware.process_exception(request, error)
    assert (response.status_code, orjson.loads(response.content)) == (500, {"success": False, "error": INTERNAL_ERROR})
    assert b"secret detail" not in response.content
    assert "secret detail" in caplog.text and "GET /class/x" in caplog.text


def test_middleware_leaves_admin_errors_to_django():
    middleware = JsonErrorMiddleware(lambda request: ok(None))
    assert middleware.process_exception(RequestFactory().get("/admin/x"), RuntimeError("x")) is None


# --- the whole stack, in-process -------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/", "/nope", "/auth", "/auth/me/", "/auth/signup/", "/students/", "/class/", "/class/x/", "/CLASS/x", "/admin"],
)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_route_is_json_404(client, method, path):
    assert_error(getattr(client, method)(path), 404, NOT_FOUND)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unknown_route_is_json_404_for_client_without_csrf_token(method):
    """API clients never send CSRF tokens; the test client skips the check unless told to enforce it."""
    assert_error(getattr(Client(enforce_csrf_checks=True), method)("/nope"), 404, NOT_FOUND)


def test_unknown_route_is_json_404_with_debug_on(client, settings):
    settings.DEBUG = True
    assert_error(client.get("/does/not/exist"), 404, NOT_FOUND)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/auth/signup"),
        ("get", "/auth/login"),
        ("post", "/auth/me"),
        ("post", "/students"),
        ("get", "/class"),
        ("delete", "/class/x"),
        ("put", "/class/x"),
        ("get", "/class/x/add-student"),
    ],
)
def test_wrong_method_is_405_without_auth(client, method, path):
    assert_error(getattr(client, method)(path), 405, METHOD_NOT_ALLOWED)


@pytest.mark.django_db
def test_api_post_needs_no_csrf_token(client):
    strict = Client(enforce_csrf_checks=True)
    body = {"name": "Csrf", "email": "csrf@example.com", "password": PASSWORD, "role": "student"}
    assert_ok(post_json(strict, "/auth/signup", body), 201)


@pytest.mark.django_db
def test_unexpected_exception_is_json_500_without_details(client, monkeypatch, caplog):
    def explode(body):
        raise RuntimeError("database exploded: secret detail")

    monkeypatch.setattr("accounts.services.signup", explode)
    body = {"name": "Boom", "email": "boom@example.com", "password": PASSWORD, "role": "student"}
    with caplog.at_level(logging.ERROR, logger="attendance_site.api"):
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
