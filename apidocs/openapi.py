"""The OpenAPI 3.1 document of the HTTP API, generated from the route registry (common.api).

Nothing here names a route: every operation registered with `route()`/`endpoint` appears with its method,
who may call it, its path and query parameters, its body (JSON Schema of the pydantic model that validates
it, `mode="validation"`), its success response (the model that serialises it, `mode="serialization"`,
inside the envelope) and every error it can answer, grouped by status with the contract's exact messages.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from django.apps import apps

from apidocs.jsonschema import SchemaSet
from common import messages
from common.api import Operation, Route, http_status, iter_routes
from common.downloads import content_disposition
from common.errors import DomainError, NotFound, TooManyRequests
from common.limits import RETRY_AFTER_MAX_SECONDS

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
TITLE = "Live Attendance"
SECURITY_SCHEME = "token"
ERROR_SCHEMA = "#/components/schemas/Error"
# Django path converters → the JSON Schema of the path segment they match.
CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string", "pattern": "^[^/]+$"},
    "slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"},
    "int": {"type": "integer", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
    "path": {"type": "string", "minLength": 1},
}
PATH_PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")

DESCRIPTION = f"""\
Live classroom attendance: accounts, classes and enrolment, attendance sessions. The live part (marking,
counts, DONE) is the WebSocket at `/ws`, described by the AsyncAPI document at
[`/asyncapi.json`](/asyncapi.json); both are rendered at [`/docs`](/docs).

**Envelope.** Every response is JSON: `{{"success": true, "data": ...}}` or
`{{"success": false, "error": "..."}}`, errors included. Each operation lists the statuses it can answer and,
for each, the exact messages.

**Auth.** Protected operations take the token from `POST /auth/login` as `Authorization: <JWT>`
(`Authorization: Bearer <JWT>` is accepted too). Checks run in this order: 401 auth → 403 role →
400 body or query → 404 existence → 403 ownership.

**Bodies** are parsed as JSON whatever their `Content-Type`; unknown keys are ignored, wrong types are
refused (no coercion); strings are trimmed before validation. A body over 1 MiB is 413.

**Ids** are MongoDB ObjectIds (24 lowercase hex characters); a malformed id is answered as not found.

**Any request** may also get: 404 "{messages.NOT_FOUND}" (a path that names no route; paths are exact,
no trailing slash), 405 "{messages.METHOD_NOT_ALLOWED}" (a method the path does not serve; `Allow` lists
those it does; before any auth check), 400 "{messages.BAD_REQUEST}" (a `Host` the server does not serve),
500 "{messages.INTERNAL_ERROR}" (an unexpected failure; details only in the server's log)."""

AUTH_DESCRIPTION = (
    "The JWT from `POST /auth/login`, sent as is: `Authorization: <JWT>`. `Authorization: Bearer <JWT>` is "
    "accepted too. Missing, malformed, expired or badly signed, or naming a user who no longer exists: "
    f'401 "{messages.UNAUTHORIZED}".'
)


def build_openapi() -> dict[str, Any]:
    """The OpenAPI document of every registered route."""
    routes = list(iter_routes())
    operations = [operation for route in routes for operation in route.operations.values()]
    schemas = SchemaSet()
    for operation in operations:
        if operation.body is not None:
            schemas.add((operation.name, "body"), operation.body, "validation")
        if operation.query is not None:
            schemas.add((operation.name, "query"), operation.query, "validation")
        if operation.response is not None:
            schemas.add((operation.name, "response"), operation.response, "serialization")
    schemas.render()

    ids = operation_ids(operations)
    paths: dict[str, Any] = {}
    for route in routes:
        item = paths.setdefault(route.path, {})
        for method, operation in route.operations.items():
            item[method.lower()] = operation_object(route, operation, ids[operation], schemas)

    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": TITLE, "version": API_VERSION, "description": DESCRIPTION},
        "tags": tags(operations),
        "paths": paths,
        "components": {
            "schemas": {**schemas.components, "Error": error_envelope_schema()},
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": AUTH_DESCRIPTION,
                }
            },
            "headers": {
                "Allow": {"description": "The methods the path serves.", "schema": {"type": "string"}},
                "Content-Disposition": {
                    "description": (
                        "`attachment` with the file's name twice: an ASCII `filename` for old clients and the "
                        "exact name as RFC 6266 `filename*` (UTF-8, percent-encoded)."
                    ),
                    "required": True,
                    "schema": {"type": "string", "pattern": ATTACHMENT_PATTERN},
                    "example": content_disposition("Physik für Anfänger", "-attendance.csv", "class"),
                },
                "Cache-Control": {
                    "description": "Never cached: the file holds somebody's records.",
                    "required": True,
                    "schema": {"const": "private, no-store"},
                },
                "Retry-After": {
                    "description": (
                        "Whole seconds to wait before trying again: the time left in the limit's window, at most "
                        "900 (a sign-up window is an hour: a retry within it may be refused again)."
                    ),
                    "schema": {"type": "integer", "minimum": 1, "maximum": RETRY_AFTER_MAX_SECONDS},
                },
            },
            "responses": any_request_responses(),
        },
    }


ATTACHMENT_PATTERN = "^attachment; filename=\"[^\"]+\"; filename\\*=UTF-8''[^\\s]+$"


# --- operations -------------------------------------------------------------------------------------------


def operation_ids(operations: Iterable[Operation]) -> dict[Operation, str]:
    """The view's name, qualified by its app where two apps use the same one."""
    operations = list(operations)
    names = [operation.view.__name__ for operation in operations]
    return {
        operation: name if names.count(name) == 1 else f"{app_label(operation)}_{name}"
        for operation, name in zip(operations, names, strict=True)
    }


def app_label(operation: Operation) -> str:
    config = apps.get_containing_app_config(operation.view.__module__)
    return config.label if config is not None else operation.view.__module__.split(".")[0]


def tags(operations: Iterable[Operation]) -> list[dict[str, str]]:
    """One tag per app, described by its views module's docstring (else the app's name)."""
    described: dict[str, str] = {}
    for operation in operations:
        label = app_label(operation)
        doc = inspect.getdoc(sys.modules[operation.view.__module__])
        described.setdefault(label, doc or str(apps.get_app_config(label).verbose_name))
    return [{"name": label, "description": description} for label, description in described.items()]


def who(operation: Operation) -> str:
    if operation.auth is None:
        return "anyone (no token)"
    role = getattr(operation.auth, "role", None)
    return "any signed-in user" if role is None else f"{role}s only"


def operation_object(route: Route, operation: Operation, operation_id: str, schemas: SchemaSet) -> dict[str, Any]:
    description = f"**Who:** {who(operation)}."
    if operation.description:
        description += "\n\n" + operation.description
    result: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [app_label(operation)],
        "summary": operation.summary,
        "description": description,
        "security": [] if operation.auth is None else [{SECURITY_SCHEME: []}],
    }
    parameters = path_parameters(route, operation)
    if operation.query is not None:
        parameters += query_parameters(schemas.resolve(schemas.schema((operation.name, "query"), "validation")))
    if parameters:
        result["parameters"] = parameters
    if operation.body is not None:
        result["requestBody"] = {
            "required": True,
            "description": "JSON (read as JSON whatever the `Content-Type`), at most 1 MiB.",
            "content": {"application/json": {"schema": schemas.schema((operation.name, "body"), "validation")}},
        }
    result["responses"] = {
        str(operation.status): success_response(operation, schemas),
        **error_responses(operation, has_path_parameters=bool(path_parameter_names(route))),
    }
    return result


def path_parameter_names(route: Route) -> list[tuple[str, str]]:
    """(name, converter) of each `<converter:name>` in the route's Django pattern."""
    return [(m["name"], m["converter"] or "str") for m in PATH_PARAMETER.finditer(route.pattern)]


def path_parameters(route: Route, operation: Operation) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": operation.params.get(name) or describe_parameter(name),
            "schema": CONVERTER_SCHEMAS.get(converter, {"type": "string"}),
            **({"example": "5f0c0ffee0ddba11deadbeef"} if name.endswith("_id") else {}),
        }
        for name, converter in path_parameter_names(route)
    ]


def describe_parameter(name: str) -> str:
    if name.endswith("_id"):
        thing = name.removesuffix("_id").replace("_", " ")
        return (
            f"The {thing}'s `_id` (24 lowercase hex characters). A malformed id is answered as not found, "
            "like an unknown one."
        )
    return name.replace("_", " ").capitalize() + "."


def query_parameters(model_schema: dict[str, Any]) -> list[dict[str, Any]]:
    """One query parameter per field of the query model (the last value of a repeated name counts)."""
    required = set(model_schema.get("required", ()))
    parameters = []
    for name, schema in model_schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": schema}
        if "description" in schema:
            parameter["description"] = schema["description"]
        parameters.append(parameter)
    return parameters


# --- responses ---------------------------------------------------------------------------------------------


def envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"success": {"const": True}, "data": data},
        "required": ["success", "data"],
        "additionalProperties": False,
    }


def error_envelope_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Every error: the contract's exact message in `error`.",
        "properties": {"success": {"const": False}, "error": {"type": "string"}},
        "required": ["success", "error"],
        "additionalProperties": False,
    }


def success_response(operation: Operation, schemas: SchemaSet) -> dict[str, Any]:
    description = HTTPStatus(operation.status).phrase
    if operation.media_type != "application/json":
        # A file of its own (e.g. CSV): not wrapped in the envelope; its errors still are.
        return {
            "description": description,
            "headers": {
                name: {"$ref": f"#/components/headers/{name}"} for name in ("Content-Disposition", "Cache-Control")
            },
            "content": {operation.media_type: {"schema": {"type": "string"}}},
        }
    data = schemas.schema((operation.name, "response"), "serialization") if operation.response is not None else {}
    return {"description": description, "content": {"application/json": {"schema": envelope(data)}}}


def error_responses(operation: Operation, *, has_path_parameters: bool) -> dict[str, Any]:
    """Each status the operation can answer with an error, its exact messages as the schema's enum and as
    examples, in check order."""
    errors = operation.all_errors()
    if has_path_parameters:
        # A parameter with a `/` in it (e.g. `%2F`) makes a path that names no route.
        errors.append(NotFound(messages.NOT_FOUND))
    by_status: dict[int, list[DomainError]] = {}
    for error in dict.fromkeys(errors):
        by_status.setdefault(http_status(error), []).append(error)
    return {str(status): error_response(status, by_status[status]) for status in sorted(by_status)}


def error_response(status: int, errors: list[DomainError]) -> dict[str, Any]:
    texts = [error.message for error in errors]
    response: dict[str, Any] = {
        "description": f"{HTTPStatus(status).phrase}: " + "; ".join(f'"{text}"' for text in texts),
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [{"$ref": ERROR_SCHEMA}, {"type": "object", "properties": {"error": {"enum": texts}}}]
                },
                "examples": {text: {"summary": text, "value": {"success": False, "error": text}} for text in texts},
            }
        },
    }
    if any(isinstance(error, TooManyRequests) for error in errors):
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    return response


def any_request_responses() -> dict[str, Any]:
    """What any request may get whatever its route (the info's description says when)."""

    def answer(text: str, when: str) -> dict[str, Any]:
        return {
            "description": f'{when}: "{text}"',
            "content": {
                "application/json": {
                    "schema": {"$ref": ERROR_SCHEMA},
                    "example": {"success": False, "error": text},
                }
            },
        }

    method_not_allowed = answer(messages.METHOD_NOT_ALLOWED, "A method the path does not serve")
    method_not_allowed["headers"] = {"Allow": {"$ref": "#/components/headers/Allow"}}
    return {
        "NotFound": answer(messages.NOT_FOUND, "A path that names no route"),
        "MethodNotAllowed": method_not_allowed,
        "BadHost": answer(messages.BAD_REQUEST, "A Host header the server does not serve"),
        "InternalError": answer(messages.INTERNAL_ERROR, "An unexpected failure"),
    }
