"""GET /openapi.json: a valid OpenAPI 3.1 document of every registered route, generated from the registry."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import pytest
from django.http import HttpResponse
from django.test import override_settings
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from pydantic import Field

from accounts import auth
from accounts.models import Role
from accounts.schemas import PublicUser, SignupBody
from apidocs.openapi import build_openapi
from common import api
from common.api import endpoint, http_status, iter_routes, route
from common.downloads import attachment
from common.errors import NotFound
from common.schemas import RequestBody, ResponseModel
from tests.support import NOT_FOUND, UNAUTHORIZED

REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi()


def operations() -> list[tuple[str, str, api.Operation]]:
    return [(r.path, method, op) for r in iter_routes() for method, op in r.operations.items()]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].removeprefix(REF)]
    return schema


def test_served_public_unwrapped_and_valid_openapi_3_1(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["openapi"] == "3.1.0" and "success" not in body  # not wrapped in the envelope
    validate(body)


def test_the_validator_can_fail(document):
    broken = json.loads(json.dumps(document))
    broken["paths"]["/auth/me"]["get"]["responses"] = {"200": {"content": {}}}  # a response needs a description
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_every_registered_operation_and_nothing_else(document):
    registered = {(path, method.lower()) for path, method, _ in operations()}
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == registered
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(set(ids)) == len(ids) == len(registered)


@pytest.mark.parametrize(("path", "method", "operation"), operations(), ids=lambda v: str(v)[:40])
def test_each_operation_says_what_its_declaration_says(document, path, method, operation):
    documented = document["paths"][path][method.lower()]
    assert documented["summary"] == operation.summary and documented["summary"]
    assert documented["security"] == ([] if operation.auth is None else [{"token": []}])
    assert ("requestBody" in documented) == (operation.body is not None)
    query = {p["name"] for p in documented.get("parameters", []) if p["in"] == "query"}
    fields = operation.query.model_fields.items() if operation.query else ()
    assert query == {field.alias or name for name, field in fields}  # `from`, a Python keyword, by its alias
    responses = documented["responses"]
    assert str(operation.status) in responses
    for error in operation.all_errors():
        content = responses[str(http_status(error))]["content"]["application/json"]
        assert error.message in content["schema"]["allOf"][1]["properties"]["error"]["enum"]
        assert content["examples"][error.message]["value"] == {"success": False, "error": error.message}
    statuses = {int(status) for status in responses} - {operation.status}
    expected = {http_status(error) for error in operation.all_errors()} | ({404} if "{" in path else set())
    assert statuses == expected


def test_path_parameters_are_documented(document):
    parameters = document["paths"]["/class/{class_id}/add-student"]["post"]["parameters"]
    assert parameters == [
        {
            "name": "class_id",
            "in": "path",
            "required": True,
            "description": parameters[0]["description"],
            "schema": {"type": "string", "pattern": "^[^/]+$"},
            "example": "5f0c0ffee0ddba11deadbeef",
        }
    ]
    assert "class's `_id`" in parameters[0]["description"]
    # A `/` inside a parameter makes a path of no route: "Not found" beside "Class not found".
    not_found = document["paths"]["/class/{class_id}"]["get"]["responses"]["404"]["content"]
    assert not_found["application/json"]["schema"]["allOf"][1]["properties"]["error"]["enum"] == [
        "Class not found",
        NOT_FOUND,
    ]


def test_bodies_are_the_validation_schema_and_responses_the_serialisation_schema(document):
    signup = document["paths"]["/auth/signup"]["post"]
    assert signup["requestBody"]["content"]["application/json"]["schema"] == {"$ref": REF + "SignupBody"}
    body = document["components"]["schemas"]["SignupBody"]
    assert body == {k: v for k, v in SignupBody.model_json_schema(ref_template=REF + "{model}").items() if k != "$defs"}
    assert body["properties"]["email"]["format"] == "email"
    success = signup["responses"]["201"]["content"]["application/json"]["schema"]
    assert success == {
        "type": "object",
        "properties": {"success": {"const": True}, "data": {"$ref": REF + "PublicUser"}},
        "required": ["success", "data"],
        "additionalProperties": False,
    }
    user = document["components"]["schemas"]["PublicUser"]
    assert user == {
        k: v
        for k, v in PublicUser.model_json_schema(mode="serialization", ref_template=REF + "{model}").items()
        if k != "$defs"
    }
    # On the wire: `_id`, every field required, nothing else.
    assert set(user["required"]) == {"_id", "name", "email", "role"} and user["additionalProperties"] is False
    students = document["paths"]["/students"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert students["properties"]["data"] == {"type": "array", "items": {"$ref": REF + "Member"}}


def test_auth_is_an_api_key_in_the_authorization_header(document):
    scheme = document["components"]["securitySchemes"]["token"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "Bearer" in scheme["description"] and UNAUTHORIZED in scheme["description"]


def test_login_documents_its_rate_limit_with_retry_after(document):
    too_many = document["paths"]["/auth/login"]["post"]["responses"]["429"]
    assert too_many["headers"] == {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    assert too_many["content"]["application/json"]["examples"].keys() == {"Too many requests, try again later"}


def test_file_downloads_document_the_headers_they_send(document):
    csv = document["paths"]["/class/{class_id}/report.csv"]["get"]["responses"]["200"]
    assert csv["headers"] == {
        "Content-Disposition": {"$ref": "#/components/headers/Content-Disposition"},
        "Cache-Control": {"$ref": "#/components/headers/Cache-Control"},
    }
    headers = document["components"]["headers"]
    pattern = headers["Content-Disposition"]["schema"]["pattern"]
    for class_name in ("Physics", 'Ünïcode "quoted"; name,\r\n', "数学 101", ""):
        sent = attachment(b"", "text/csv", stem=class_name, suffix="-attendance.csv", fallback="class")
        assert re.search(pattern, sent["Content-Disposition"]), sent["Content-Disposition"]
        assert sent["Cache-Control"] == headers["Cache-Control"]["schema"]["const"]
    assert not re.search(pattern, 'inline; filename="x.csv"')


def test_answers_of_any_request_are_documented(document):
    answers = document["components"]["responses"]
    assert answers["MethodNotAllowed"]["headers"] == {"Allow": {"$ref": "#/components/headers/Allow"}}
    examples = {name: a["content"]["application/json"]["example"]["error"] for name, a in answers.items()}
    assert examples == {
        "NotFound": "Not found",
        "MethodNotAllowed": "Method not allowed",
        "BadHost": "Bad request",
        "InternalError": "Internal server error",
    }


def test_tags_group_operations_by_app(document):
    assert [tag["name"] for tag in document["tags"]] == ["accounts", "classes", "live", "console"]
    assert document["paths"]["/class"]["post"]["tags"] == ["classes"]


# --- a route appears by being registered, and nothing else -------------------------------------------------
class ThingQuery(RequestBody):
    limit: Annotated[int, Field(ge=1, le=500, strict=False, description="How many")] = 100


class Thing(ResponseModel):
    id: str = Field(alias="_id")


@endpoint(
    "GET",
    auth=auth.teacher,
    query=ThingQuery,
    response=list[Thing],
    errors=(NotFound("Thing not found"),),
    params={"thing_id": "Which thing."},
)
def things(request, user, thing_id, query):
    """List things.

    In detail."""


@endpoint("GET", auth=auth.student, media_type="text/csv")
def things_csv(request, user, thing_id):
    """Things as CSV."""
    return HttpResponse("a,b\n", content_type="text/csv")


urlpatterns = [route("things/<str:thing_id>", things), route("things/<str:thing_id>/report.csv", things_csv)]


@override_settings(ROOT_URLCONF=__name__)
def test_a_registered_route_appears_with_nothing_else_to_edit():
    document = build_openapi()
    validate(document)
    assert set(document["paths"]) == {"/things/{thing_id}", "/things/{thing_id}/report.csv"}
    listing = document["paths"]["/things/{thing_id}"]["get"]
    assert listing["summary"] == "List things." and listing["description"] == "**Who:** teachers only.\n\nIn detail."
    assert [(p["name"], p["in"], p["required"]) for p in listing["parameters"]] == [
        ("thing_id", "path", True),
        ("limit", "query", False),
    ]
    assert listing["parameters"][0]["description"] == "Which thing."
    assert listing["parameters"][1]["schema"]["maximum"] == 500 and listing["parameters"][1]["description"]
    assert set(listing["responses"]) == {"200", "400", "401", "403", "404"}
    data = listing["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]
    assert data == {"type": "array", "items": {"$ref": REF + "Thing"}}
    assert document["components"]["schemas"]["Thing"]["required"] == ["_id"]
    csv = document["paths"]["/things/{thing_id}/report.csv"]["get"]
    assert csv["responses"]["200"]["content"] == {"text/csv": {"schema": {"type": "string"}}}
    assert "Forbidden, student access required" in json.dumps(csv["responses"]["403"])
    assert Role.STUDENT in csv["description"]
