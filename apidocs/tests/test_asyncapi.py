"""GET /asyncapi.json: a valid AsyncAPI 3.0 document of the socket, generated from its event tables."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from apidocs.asyncapi import build_asyncapi
from live.consumers import EVENTS
from live.schemas import SERVER_EVENTS
from tests.support import (
    ALREADY_MARKED,
    CHECKIN_NOT_OPEN,
    INTERNAL_ERROR,
    INVALID_CODE,
    INVALID_FORMAT,
    NO_SESSION,
    NOT_YET_UPDATED,
    PERSISTED,
    STUDENT_NOT_FOUND,
    STUDENT_ONLY,
    TEACHER_ONLY,
    TOO_MANY_ATTEMPTS,
    UNKNOWN_EVENT,
    WS_UNAUTHORIZED,
)

SPEC = Path(__file__).parent / "asyncapi-specs" / "3.0.0.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SPEC.read_text()))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_asyncapi("example.test:3000")


def problems(validator: jsonschema.Draft7Validator, document: dict[str, Any]) -> list[str]:
    return [f"{list(error.absolute_path)}: {error.message[:200]}" for error in validator.iter_errors(document)]


def test_served_public_unwrapped_and_valid_asyncapi_3_0(client, settings, validator):
    settings.ALLOWED_HOSTS = ["attendance.example.com"]
    response = client.get("/asyncapi.json", HTTP_HOST="attendance.example.com")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["asyncapi"] == "3.0.0" and "success" not in body
    assert body["servers"]["this"] == {
        "host": "attendance.example.com",
        "protocol": "ws",
        "description": "The server that served this document.",
        "security": [{"$ref": "#/components/securitySchemes/token"}],
    }
    assert problems(validator, body) == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("info"),
        lambda d: d["operations"]["receive.DONE"].update(action="publish"),  # AsyncAPI 2's word, not 3's
        lambda d: d["channels"]["live"]["bindings"]["ws"].update(method="PUT"),
        lambda d: d["components"]["messages"]["server.DONE"].update(payload=42),
    ],
)
def test_the_validator_can_fail(validator, document, breakage):
    broken = copy.deepcopy(document)
    breakage(broken)
    assert problems(validator, broken)


def test_the_ws_channel_and_its_token_query_parameter(document):
    channel = document["channels"]["live"]
    assert channel["address"] == "/ws"
    binding = channel["bindings"]["ws"]
    assert binding["method"] == "GET" and binding["bindingVersion"] == "0.1.0"
    assert binding["query"]["required"] == ["token"] and binding["query"]["properties"]["token"]["type"] == "string"
    assert WS_UNAUTHORIZED in binding["query"]["properties"]["token"]["description"]
    assert document["components"]["securitySchemes"]["token"] == {
        "type": "httpApiKey",
        "in": "query",
        "name": "token",
        "description": document["components"]["securitySchemes"]["token"]["description"],
    }


def test_every_client_event_is_received_with_its_schema_role_and_errors(document):
    operations = document["operations"]
    for name, event in EVENTS.items():
        operation = operations[f"receive.{name}"]
        assert operation["action"] == "receive" and operation["summary"] == event.description
        assert f"{event.role}s" in operation["description"]
        message = document["components"]["messages"][f"client.{name}"]
        assert message["payload"]["properties"]["event"] == {"const": name}
        for error in event.all_errors():
            assert f'"{error.message}"' in operation["description"]
        replies = [ref["$ref"].rsplit("/", 1)[1] for ref in operation["reply"]["messages"]]
        answers = event.replies or (name,)
        assert replies == [*(f"server.{answer}" for answer in answers), "server.ERROR"]
    # The check-in events are answered by events of other names (docs/api.md, self check-in).
    assert EVENTS["CHECK_IN"].replies == ("ATTENDANCE_MARKED",)
    assert EVENTS["CHECKIN_OPEN"].replies == ("CHECKIN_OPENED", "CHECKIN_CODE")
    assert EVENTS["CHECKIN_CLOSE"].replies == ("CHECKIN_CLOSED",)
    schemas = document["components"]["schemas"]
    marked = schemas["AttendanceMarkedData"]
    assert marked["required"] == ["studentId", "status"]
    assert marked["properties"]["status"] == {"$ref": "#/components/schemas/Status"}
    assert schemas["Status"]["enum"] == ["present", "absent", "late", "excused"]
    assert marked["properties"]["remark"]["anyOf"][0]["maxLength"] == 500
    assert schemas["MarkAllData"].get("required", []) == [] and schemas["ClearedData"]["required"] == ["studentId"]
    # DONE's data may be left out or null; ATTENDANCE_MARKED's may not.
    done = document["components"]["messages"]["client.DONE"]["payload"]
    assert done["required"] == ["event"] and {"type": "null"} in done["properties"]["data"]["anyOf"]
    assert document["components"]["messages"]["client.ATTENDANCE_MARKED"]["payload"]["required"] == ["event", "data"]


def test_every_server_event_is_sent_with_its_exact_shape(document):
    for name in SERVER_EVENTS:
        assert document["operations"][f"send.{name}"]["action"] == "send"
        payload = document["components"]["messages"][f"server.{name}"]["payload"]
        assert payload["required"] == ["event", "data"] and payload["additionalProperties"] is False
    schemas = document["components"]["schemas"]
    done = schemas["DonePayload"]
    assert done["properties"]["message"]["const"] == PERSISTED
    counts = {"present", "absent", "late", "excused", "total"}
    assert set(done["required"]) == {"message", *counts} and done["additionalProperties"] is False
    assert set(schemas["SummaryPayload"]["required"]) == counts
    assert set(schemas["MarkAllPayload"]["required"]) == {"status", "studentIds"}
    assert schemas["ClearedPayload"]["required"] == ["studentId"]
    assert "remark" not in schemas["MarkedPayload"]["properties"]  # remarks are never broadcast
    assert {"const": NOT_YET_UPDATED, "type": "string"} in schemas["MyStatusPayload"]["properties"]["status"]["anyOf"]


def test_error_messages_are_listed_with_their_exact_texts(document):
    error = document["components"]["messages"]["server.ERROR"]
    enum = error["payload"]["properties"]["data"]["allOf"][1]["properties"]["message"]["enum"]
    expected = {
        WS_UNAUTHORIZED,
        INVALID_FORMAT,
        UNKNOWN_EVENT,
        TEACHER_ONLY,
        STUDENT_ONLY,
        NO_SESSION,
        STUDENT_NOT_FOUND,
        INTERNAL_ERROR,
        "Could not persist attendance, please try again",
        "Could not persist attendance; the marks are kept for recovery",
        "Too many messages",
        "Too many connections",
        CHECKIN_NOT_OPEN,
        INVALID_CODE,
        ALREADY_MARKED,
        TOO_MANY_ATTEMPTS,
    }
    assert set(enum) == expected
    assert [example["payload"] for example in error["examples"]] == [
        {"event": "ERROR", "data": {"message": text}} for text in enum
    ]
