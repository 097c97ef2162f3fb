"""The API's operations pass through api_middleware() (server/http_handler.py, attendance_site/settings.py): the same
answer, status, headers and body, as through the whole of MIDDLEWARE, route by route and method by method; pages,
the admin, static files and unknown paths keep the whole chain.

In-process: each request is answered by both chains of one OneHopHandler and the answers compared. The wire tests
serve through the short chain too (attendance_site/asgi.py), and CI's plain pass (LIVE_FAST_PATH=0) through Django's
own handler and the whole chain: both passes run the same contract tests.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest
from asgiref.sync import markcoroutinefunction
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponseBase
from django.test import RequestFactory

from accounts.schemas import PublicUser
from classes.models import Class
from common.api import iter_routes
from server.http_handler import OneHopHandler, Served, api_middleware
from tests.support import MISSING_ID, auth, make_class, make_user

pytestmark = pytest.mark.django_db

ORIGIN = "https://school.example"


@pytest.fixture
def handler(settings: Any) -> OneHopHandler:
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]
    return OneHopHandler(light_on_loop=False)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def answer(response: HttpResponseBase) -> tuple[int, list[tuple[str, str]], Any]:
    body = b"".join(response) if response.streaming else response.content  # type: ignore[attr-defined]
    headers = sorted(response.items())
    if response.get("Content-Type") == XLSX:
        # A workbook's file carries the second it was written (its zip entries, its properties): two made a
        # second apart differ in their bytes and size, not in what they hold.
        headers = [(name, value) for name, value in headers if name != "Content-Length"]
        workbook = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
        return response.status_code, headers, {ws.title: list(ws.values) for ws in workbook.worksheets}
    return response.status_code, headers, body


def both_answers(handler: OneHopHandler, make_request: Any) -> tuple[Any, Any]:
    """The answers of the whole chain and of the API's to two requests made alike."""
    whole = answer(handler.get_response(make_request()))
    short = answer(handler.api.get_response(make_request()))
    return whole, short


def requests_for(pattern: str, method: str, class_id: str, headers: dict[str, str]) -> Iterator[tuple[str, Any]]:
    """(what it is, a function making the request) for `method` on `pattern` with the path's ids filled in: as
    sent, with a cross-origin Origin, as a CORS preflight, with a malformed body, and an unknown method."""
    path = re.sub(r"<(?:\w+:)?class_id>", class_id, pattern)
    path = re.sub(r"<(?:\w+:)?\w+>", MISSING_ID, path)
    factory = RequestFactory()
    common = {"headers": headers, "HTTP_HOST": "localhost"}
    body = {"data": b"{}", "content_type": "application/json"} if method in ("POST", "PATCH") else {}

    def sent(**extra: Any) -> Any:
        return lambda: factory.generic(method, path, **body, **{**common, **extra})

    yield "as sent", sent()
    yield "from another origin", sent(HTTP_ORIGIN=ORIGIN)
    yield "from an origin not allowed", sent(HTTP_ORIGIN="https://elsewhere.example")
    yield "preflight", lambda: factory.options(
        path,
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
        **common,
    )
    if body:
        yield "a body that is not JSON", lambda: factory.generic(
            method, path, data=b"{nope", content_type="application/json", **common
        )
    yield "a method it does not take", lambda: factory.generic("PUT", path, **common)


def test_the_api_chain_is_the_whole_chain_without_the_page_only_middleware(settings: Any) -> None:
    assert settings.PAGE_ONLY_MIDDLEWARE <= set(settings.MIDDLEWARE)  # a misspelt name would leave one in
    chain = api_middleware()
    assert chain[0] == "common.api.BadHostMiddleware" and chain[-1] == "common.api.JsonErrorMiddleware"
    assert "django.middleware.security.SecurityMiddleware" in chain
    assert not set(chain) & settings.PAGE_ONLY_MIDDLEWARE
    # MIDDLEWARE as it is when the handler is made: one added later applies to the API too, in its place, an
    # async-only one adapted as Django adapts it.
    added = [f"{__name__}.Marking", f"{__name__}.AsyncMarking"]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE[:2], *added, *settings.MIDDLEWARE[2:]]
    assert api_middleware() == [*chain[:2], *added, *chain[2:]]
    handler = OneHopHandler(light_on_loop=False)
    response = handler.api.get_response(RequestFactory().get("/auth/me", HTTP_HOST="localhost"))
    assert response.status_code == 401
    assert (response["X-Marked"], response["X-Marked-Async"]) == ("yes", "yes")


class Marking:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        response = self.get_response(request)
        response["X-Marked"] = "yes"
        return response


class AsyncMarking:
    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)  # as Django's documentation has async middleware say what it is

    async def __call__(self, request: HttpRequest) -> Any:
        response = await self.get_response(request)
        response["X-Marked-Async"] = "yes"
        return response


@pytest.mark.parametrize("who", ["nobody", "teacher", "student"])
def test_every_api_operation_answers_alike_through_either_chain(handler: OneHopHandler, who: str) -> None:
    """Every route and method: anonymous (401), the teacher of a class with a student (a read answers, a write
    with an empty body is refused, nothing is changed), the student; from origins allowed and not, preflights,
    malformed bodies and methods the route does not take."""
    teacher, student = make_user("teacher"), make_user("student")
    klass = make_class(teacher, [student])
    headers = {"nobody": {}, "teacher": auth(teacher), "student": auth(student)}[who]
    compared = 0
    for route in iter_routes():
        for method in route.operations:
            for what, make_request in requests_for(route.pattern, method, str(klass.id), headers):
                whole, short = both_answers(handler, make_request)
                assert short == whole, f"{method} {route.pattern} {what}"
                compared += 1
    assert compared > 100
    assert Class.objects.get(pk=klass.pk).class_name == klass.class_name  # the writes were refused


def test_a_host_refused_and_an_error_escaping_a_view_answer_alike(
    handler: OneHopHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = RequestFactory()
    bad_host = both_answers(handler, lambda: factory.get("/auth/me", HTTP_HOST="evil.example"))
    assert bad_host[0] == bad_host[1]
    assert bad_host[0][0] == 400

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(PublicUser, "of", broken)
    teacher = make_user("teacher")
    failed = both_answers(handler, lambda: factory.get("/auth/me", headers=auth(teacher), HTTP_HOST="localhost"))
    assert failed[0] == failed[1]
    assert failed[0][0] == 500
    assert failed[0][2] == b'{"success":false,"error":"Internal server error"}'


@pytest.mark.django_db(transaction=True)  # served as a request is: its signals close the connection
def test_api_operations_take_the_short_chain_and_the_rest_the_whole(
    handler: OneHopHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served by the handler: a session is looked at for the admin, the console and unknown paths only."""
    seen: list[str] = []
    look = SessionMiddleware.process_request

    def looked(self: SessionMiddleware, request: HttpRequest) -> None:
        seen.append(request.path)
        look(self, request)

    monkeypatch.setattr(SessionMiddleware, "process_request", looked)
    token = auth(make_user("teacher"))["Authorization"].encode()
    for path in ("/auth/me", "/classes", f"/class/{MISSING_ID}", "/admin/login/", "/", "/nope"):
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": b"",
            "headers": [(b"host", b"localhost"), (b"authorization", token)],
        }
        served = Served()
        handler.serve(scope, io.BytesIO(), served)
        assert served.response is not None
        assert served.response.status_code in (200, 404), path
    assert seen == ["/admin/login/", "/", "/nope"]
