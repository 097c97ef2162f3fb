"""The one place for the JSON envelope, request-body parsing and error translation.

Every HTTP response of the API goes through `ok` or `fail`; views raise `ApiError` for expected
failures and the `endpoint` decorator (plus `JsonErrorMiddleware` for anything unexpected) turns it
into the contract's envelope.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

logger = logging.getLogger(__name__)

INVALID_SCHEMA = "Invalid request schema"
NOT_FOUND = "Not found"
METHOD_NOT_ALLOWED = "Method not allowed"
PAYLOAD_TOO_LARGE = "Payload too large"
INTERNAL_ERROR = "Internal server error"

Schema = TypeVar("Schema", bound=BaseModel)


class ApiError(Exception):
    """An expected failure with its HTTP status and the contract's exact message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(payload: dict[str, Any], status: int) -> HttpResponse:
    return HttpResponse(orjson.dumps(payload), status=status, content_type="application/json")


def ok(data: Any, status: int = 200) -> HttpResponse:
    return _json({"success": True, "data": data}, status)


def fail(status: int, message: str) -> HttpResponse:
    return _json({"success": False, "error": message}, status)


def parse_json_object(raw: bytes | str) -> dict[str, Any]:
    """Parse a JSON object; anything else (bad JSON, too deep, not an object) is a schema error."""
    try:
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError):
        raise ApiError(400, INVALID_SCHEMA) from None
    if not isinstance(value, dict):
        raise ApiError(400, INVALID_SCHEMA)
    return value


def validate(schema: type[Schema], value: Any) -> Schema:
    try:
        return schema.model_validate(value)
    except ValidationError:
        raise ApiError(400, INVALID_SCHEMA) from None


def parse_body(request: HttpRequest, schema: type[Schema]) -> Schema:
    """Read the body as JSON whatever its Content-Type and validate it against `schema`."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(413, PAYLOAD_TOO_LARGE) from None
    return validate(schema, parse_json_object(raw))


Authenticator = Callable[[HttpRequest], Any]


def endpoint(
    method: str,
    *,
    auth: Authenticator | None = None,
    body: type[BaseModel] | None = None,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Declare an API view: its one method, who may call it, and its body schema.

    Checks run in the contract's order: 405 method → `auth` (401, then 403 role) → 400 body.
    The view receives the authenticated user as `request.api_user` and the parsed body as `body`;
    existence (404) and ownership (403) checks are the view's, in that order.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method != method:
                return fail(405, METHOD_NOT_ALLOWED)
            try:
                if auth is not None:
                    request.api_user = auth(request)
                if body is not None:
                    kwargs["body"] = parse_body(request, body)
                return view(request, *args, **kwargs)
            except ApiError as error:
                return fail(error.status, error.message)

        return csrf_exempt(wrapper)

    return decorator


@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Catch-all route: unknown paths are a JSON 404 in every mode, DEBUG included."""
    return fail(404, NOT_FOUND)


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
        return fail(500, INTERNAL_ERROR)
