"""The HTTP transport: the JSON envelope, request parsing, the route table and error translation.

Routes are declared in each app's `urls.py` with `route(path, operation, ...)`; an operation is a view
declared with `endpoint` — its method, who may call it, its body/query schema and its response schema.
That one declaration drives the check order, the response's serialisation and the API documents.

Domain errors (common.errors) are mapped to HTTP statuses here and nowhere else; anything
unexpected becomes the contract's 500 (`JsonErrorMiddleware`), and the responses Django makes itself
(bad Host, CSRF failure, 404/500 handlers) are JSON too.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import orjson
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver, path
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, TypeAdapter, ValidationError

from common import messages
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

logger = logging.getLogger(__name__)

Schema = TypeVar("Schema", bound=BaseModel)


class PayloadTooLarge(DomainError):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE: a transport limit, so it lives with the transport."""


# The contract answers conflicts with 400 (the spec's "Email already exists"), not 409.
HTTP_STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    Conflict: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    NotNow: 409,
    PayloadTooLarge: 413,
    TooManyRequests: 429,
    Unavailable: 503,
}


def http_status(error: DomainError) -> int:
    for kind in type(error).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    raise TypeError(f"no HTTP status for {type(error).__name__}")


# --- the envelope ---------------------------------------------------------------------------------------


def _json(body: bytes, status: int) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="application/json")


def fail(status: int, message: str) -> HttpResponse:
    return _json(orjson.dumps({"success": False, "error": message}), status)


def method_not_allowed(allowed_methods: Iterable[str]) -> HttpResponse:
    """The 405 of every path (API routes, the console, the API documents): the envelope, and `Allow`."""
    response = fail(405, messages.METHOD_NOT_ALLOWED)
    response["Allow"] = ", ".join(allowed_methods)  # RFC 9110: a 405 lists the methods the resource supports
    return response


def error_response(error: DomainError) -> HttpResponse:
    response = fail(http_status(error), error.message)
    if isinstance(error, TooManyRequests):
        response["Retry-After"] = str(error.retry_after)
    return response


# --- parsing ----------------------------------------------------------------------------------------------


def parse_json_object(raw: bytes | str) -> dict[str, Any]:
    """Parse a JSON object; anything else (bad JSON, too deep, not an object) is a schema error."""
    try:
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError):
        raise Invalid(messages.INVALID_SCHEMA) from None
    if not isinstance(value, dict):
        raise Invalid(messages.INVALID_SCHEMA)
    return value


def validate(schema: type[Schema], value: Any) -> Schema:
    try:
        return schema.model_validate(value)
    except ValidationError:
        raise Invalid(messages.INVALID_SCHEMA) from None


def parse_body(request: HttpRequest, schema: type[Schema]) -> Schema:
    """Read the body as JSON whatever its Content-Type and validate it against `schema`."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(messages.PAYLOAD_TOO_LARGE) from None
    return validate(schema, parse_json_object(raw))


def parse_query(request: HttpRequest, schema: type[Schema]) -> Schema:
    """Validate the query string (last value of each name) against `schema`."""
    return validate(schema, request.GET.dict())


# --- operations and routes ---------------------------------------------------------------------------------


class Authenticator(Protocol):
    """Who may call an operation: returns the caller, or raises the domain error it names in `errors`."""

    @property
    def errors(self) -> tuple[DomainError, ...]: ...

    def __call__(self, request: HttpRequest) -> Any: ...


@dataclass(frozen=True)
class WhileQuick:
    """`light=WhileQuick()`: a read whose cost grows with what it reads (a class's report: its students times
    its sessions) — served on the event loop, where the database is embedded, while the same request's last
    answer took at most `seconds` of CPU, and on a thread otherwise (its first time, and once it has grown):
    a small class's report costs what a light read costs, a large one's does not hold up the loop's sockets
    (server/http_handler.py, QuickRequests)."""

    seconds: float = 0.010


@dataclass(frozen=True, eq=False)
class Operation:
    """One method of one route: what `endpoint` declared, and the view it wraps.

    Checks run in the contract's order: `auth` (401, then 403 role) → body or query (400) → the view, which
    raises its own errors (404 existence, then 403 ownership). The view gets the path's parameters and,
    as declared, `user`, `body` and `query`; it returns the response's data — an instance of `response`,
    serialised by that same schema — or an HttpResponse of its own (e.g. a file).
    """

    method: str
    view: Callable[..., Any]
    auth: Authenticator | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    media_type: str = "application/json"
    errors: tuple[DomainError, ...] = ()
    # Path parameter → what it names, for the API documents (a default is derived from the name).
    params: dict[str, str] = field(default_factory=dict)
    # A read of a few rows and nothing else — no password hashing, no write, no event, no other service: where
    # the database is embedded it is served on the event loop, without a thread (server/http_handler.py);
    # WhileQuick: on the loop while its last answer was quick.
    light: bool | WhileQuick = False
    _adapter: TypeAdapter[Any] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.response is not None:
            object.__setattr__(self, "_adapter", TypeAdapter(self.response))

    @property
    def name(self) -> str:
        return f"{self.view.__module__}.{self.view.__name__}"

    @property
    def summary(self) -> str:
        """The first paragraph of the view's docstring."""
        return self._doc_paragraphs[0] if self._doc_paragraphs else ""

    @property
    def description(self) -> str:
        """The rest of the view's docstring (the API documents show it below the summary)."""
        return "\n\n".join(self._doc_paragraphs[1:])

    @property
    def _doc_paragraphs(self) -> list[str]:
        doc = inspect.cleandoc(self.view.__doc__ or "")
        return [" ".join(paragraph.split()) for paragraph in doc.split("\n\n") if paragraph.strip()]

    def all_errors(self) -> list[DomainError]:
        """Every error this operation can answer, in check order (the API documents list them)."""
        found = list(self.auth.errors) if self.auth is not None else []
        if self.body is not None:
            found += [Invalid(messages.INVALID_SCHEMA), PayloadTooLarge(messages.PAYLOAD_TOO_LARGE)]
        if self.query is not None:
            found.append(Invalid(messages.INVALID_SCHEMA))
        found += self.errors
        return list(dict.fromkeys(found))

    def __call__(self, request: HttpRequest, **params: Any) -> HttpResponse:
        try:
            if self.auth is not None:
                params["user"] = self.auth(request)
            if self.body is not None:
                params["body"] = parse_body(request, self.body)
            if self.query is not None:
                params["query"] = parse_query(request, self.query)
            result = self.view(request, **params)
        except DomainError as error:
            return error_response(error)
        if isinstance(result, HttpResponse):
            return result
        return self.render(result)

    def render(self, data: Any) -> HttpResponse:
        assert self._adapter is not None, f"{self.name} declares no response schema"
        # Serialised by the declared schema: the response cannot drift from the API documents.
        payload = self._adapter.dump_json(data, by_alias=True, warnings="error")
        return _json(b'{"success":true,"data":' + payload + b"}", self.status)


def endpoint(
    method: str,
    *,
    auth: Authenticator | None = None,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    media_type: str = "application/json",
    errors: tuple[DomainError, ...] = (),
    params: dict[str, str] | None = None,
    light: bool | WhileQuick = False,
) -> Callable[[Callable[..., Any]], Operation]:
    """Declare a view as an operation (see Operation); `errors` are those the view itself raises, `params`
    optional descriptions of its path parameters, `light` a read cheap enough to serve on the event loop
    (WhileQuick: while it stays cheap)."""

    def decorator(view: Callable[..., Any]) -> Operation:
        return Operation(
            method, view, auth, body, query, response, status, media_type, errors, dict(params or {}), light
        )

    return decorator


def route(pattern: str, *operations: Operation) -> URLPattern:
    """A path and its operations, one per method; any other method is 405, before any auth check."""
    by_method = {operation.method: operation for operation in operations}
    if len(by_method) != len(operations):
        raise ValueError(f"{pattern}: one operation per method")

    def dispatch(request: HttpRequest, **params: Any) -> HttpResponse:
        operation = by_method.get(request.method or "")
        if operation is None:
            return method_not_allowed(by_method)
        return operation(request, **params)

    dispatch.operations = by_method  # type: ignore[attr-defined]
    return path(pattern, csrf_exempt(dispatch), name=operations[0].name)


@dataclass(frozen=True)
class Route:
    """A registered route as the API documents see it: `/class/{class_id}` and its operations."""

    path: str
    pattern: str
    operations: dict[str, Operation]


def iter_routes() -> Iterator[Route]:
    """Every route declared with `route`, in URLconf order."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[Route]:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern) and hasattr(entry.callback, "operations"):
                pattern = prefix + str(entry.pattern)
                yield Route(_openapi_path(pattern), pattern, entry.callback.operations)

    yield from walk(get_resolver().url_patterns, "/")


def _openapi_path(pattern: str) -> str:
    """`/class/<str:class_id>` → `/class/{class_id}`."""
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", pattern)


# --- what Django answers itself ----------------------------------------------------------------------------


@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Catch-all route and handler404: unknown paths are a JSON 404 in every mode, DEBUG included."""
    return fail(404, messages.NOT_FOUND)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400 (and BadHostMiddleware's answer)."""
    return fail(400, messages.BAD_REQUEST)


class BadHostMiddleware:
    """A Host Django refuses (not in ALLOWED_HOSTS, or not a host name at all) is the JSON 400 in every mode.
    Left to Django, DEBUG answers it with the HTML debug page instead of handler400. First in MIDDLEWARE, so
    the Host is checked before anything else reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost as error:
            # Django's logger for it, without the traceback Django would add: a client's mistake, not ours.
            logging.getLogger("django.security.DisallowedHost").warning("%s", error)
            return bad_request(request, error)
        return self.get_response(request)


def forbidden(request: HttpRequest, exception: Exception | None = None, reason: str = "") -> HttpResponse:
    """handler403 and the CSRF failure view (the API's own routes need no CSRF token)."""
    return fail(403, messages.FORBIDDEN)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500."""
    return fail(500, messages.INTERNAL_ERROR)


class JsonErrorMiddleware:
    """Turn any exception that escapes an API view into the contract's 500, details only in the log."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if request.path.startswith("/admin/"):
            return None  # Django's own error pages for the admin site
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return fail(500, messages.INTERNAL_ERROR)
