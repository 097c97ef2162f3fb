"""The AsyncAPI 3.0 document of the live WebSocket, generated from its tables.

Client events come from `live.consumers.EVENTS` (who may send each, its payload model — JSON Schema in
`mode="validation"` — its description and errors), server events from `live.schemas.SERVER_EVENTS` (their
payload models, `mode="serialization"`). The document describes the server: it *receives* the client's
events and *sends* its own.
"""

from __future__ import annotations

from typing import Any

from apidocs.jsonschema import SchemaSet
from apidocs.openapi import API_VERSION, TITLE
from common import messages
from live.consumers import CONNECT_ERRORS, EVENTS, FRAME_ERRORS, SocketEvent
from live.schemas import SERVER_EVENTS

ASYNCAPI_VERSION = "3.0.0"
CHANNEL = "live"
CHANNEL_REF = f"#/channels/{CHANNEL}"
WS_BINDING_VERSION = "0.1.0"

DESCRIPTION = f"""\
The live part of Live Attendance: a teacher marks attendance in their active session (started with
`POST /attendance/start`, see [`/openapi.json`](/openapi.json)); the session's participants — its teacher and
the class's enrolled students, on all their open sockets — see each mark and summary as it happens; `DONE`
persists the results.

Every frame, both ways, is a JSON text frame `{{"event": "...", "data": {{...}}}}`. The server sends nothing
unprompted on connect, but CHECKIN_CODE to a teacher whose live session has an open check-in window. A bad
frame gets an ERROR and the socket stays open — after any ERROR but the connection's
("{messages.WS_UNAUTHORIZED}", "{messages.TOO_MANY_CONNECTIONS}": then close 1008). A frame over 64 KiB is
refused with close 1009; a binary frame gets "{messages.INVALID_FORMAT}". Each client event is checked in this
order: role → session → payload → the rest. A broadcast caused by a socket reaches that socket first."""


def client_key(event: str) -> str:
    return f"client.{event}"


def server_key(event: str) -> str:
    return f"server.{event}"


def who(event: SocketEvent) -> str:
    return f"{event.role}s"


def build_asyncapi(host: str = "127.0.0.1:3000", secure: bool = False) -> dict[str, Any]:
    """The AsyncAPI document; `host` is where the socket is served (the server that answers the request)."""
    schemas = SchemaSet()
    for name, event in EVENTS.items():
        schemas.add(client_key(name), event.schema, "validation")
    for name, payload in SERVER_EVENTS.items():
        schemas.add(server_key(name), payload, "serialization")
    schemas.render()

    component_messages = {
        **{client_key(name): client_message(name, event, schemas) for name, event in EVENTS.items()},
        **{server_key(name): server_message(name, schemas) for name in SERVER_EVENTS},
    }
    channel_messages = {key: {"$ref": f"#/components/messages/{key}"} for key in component_messages}

    def message_ref(key: str) -> dict[str, str]:
        return {"$ref": f"{CHANNEL_REF}/messages/{key}"}

    operations: dict[str, Any] = {}
    for name, event in EVENTS.items():
        answers = event.replies or ((name,) if name in SERVER_EVENTS else ())
        replies = [message_ref(server_key(answer)) for answer in answers]
        operations[f"receive.{name}"] = {
            "action": "receive",
            "channel": {"$ref": CHANNEL_REF},
            "title": name,
            "summary": event.description,
            "description": f"Sent by {who(event)}. ERRORs: " + ", ".join(f'"{e.message}"' for e in event.all_errors()),
            "messages": [message_ref(client_key(name))],
            "reply": {
                "channel": {"$ref": CHANNEL_REF},
                "messages": [*replies, message_ref(server_key("ERROR"))],
            },
        }
    for name in SERVER_EVENTS:
        operations[f"send.{name}"] = {
            "action": "send",
            "channel": {"$ref": CHANNEL_REF},
            "title": name,
            "summary": component_messages[server_key(name)]["summary"],
            "messages": [message_ref(server_key(name))],
        }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": f"{TITLE} WebSocket", "version": API_VERSION, "description": DESCRIPTION},
        "servers": {
            "this": {
                "host": host,
                "protocol": "wss" if secure else "ws",
                "description": "The server that served this document.",
                "security": [{"$ref": "#/components/securitySchemes/token"}],
            }
        },
        "defaultContentType": "application/json",
        "channels": {
            CHANNEL: {
                "address": "/ws",
                "title": "Live attendance",
                "description": "One socket per browser tab; `/ws?token=<JWT>`.",
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "token": {
                                    "type": "string",
                                    "description": "The JWT from `POST /auth/login`. Bad, expired or missing, or "
                                    "naming a user who no longer exists: the socket is accepted, gets "
                                    f'ERROR "{messages.WS_UNAUTHORIZED}" and is closed (1008).',
                                }
                            },
                            "required": ["token"],
                        },
                        "bindingVersion": WS_BINDING_VERSION,
                    }
                },
            }
        },
        "operations": operations,
        "components": {
            "schemas": schemas.components,
            "messages": component_messages,
            "securitySchemes": {
                "token": {
                    "type": "httpApiKey",
                    "in": "query",
                    "name": "token",
                    "description": "The JWT from `POST /auth/login`, as the `token` query parameter.",
                }
            },
        },
    }


def client_message(name: str, event: SocketEvent, schemas: SchemaSet) -> dict[str, Any]:
    data = schemas.schema(client_key(name), "validation")
    # `data` may be left out (or null) when the payload has no required field (parse_data reads it as {}).
    optional = not schemas.resolve(data).get("required")
    payload = {
        "type": "object",
        "properties": {
            "event": {"const": name},
            "data": {"anyOf": [data, {"type": "null"}]} if optional else data,
        },
        "required": ["event"] if optional else ["event", "data"],
    }
    return {
        "name": name,
        "title": name,
        "summary": event.description,
        "description": f"Sent by {who(event)}. Unknown keys in `data` are ignored.",
        "payload": payload,
    }


def server_message(name: str, schemas: SchemaSet) -> dict[str, Any]:
    data = schemas.schema(server_key(name), "serialization")
    message: dict[str, Any] = {"name": name, "title": name}
    if name == "ERROR":
        texts = error_texts()
        data = {"allOf": [data, {"type": "object", "properties": {"message": {"enum": list(texts)}}}]}
        message["summary"] = "Something the socket sent was refused, or the connection is."
        message["description"] = "\n".join(f'- "{text}": {when}' for text, when in texts.items())
        message["examples"] = [
            {"name": f"error{index}", "summary": text, "payload": {"event": "ERROR", "data": {"message": text}}}
            for index, text in enumerate(texts, 1)
        ]
    else:
        doc = SERVER_EVENTS[name].__doc__
        answers = f"In answer to {name}" if name in EVENTS else name
        message["summary"] = " ".join(doc.split()) if doc else answers + "."
        if name in EVENTS:
            message["description"] = f"{answers}: {EVENTS[name].description}"
    message["payload"] = {
        "type": "object",
        "properties": {"event": {"const": name}, "data": data},
        "required": ["event", "data"],
        "additionalProperties": False,
    }
    return message


def error_texts() -> dict[str, str]:
    """Every ERROR message the socket can send → when."""
    whens: dict[str, list[str]] = {}
    for text in CONNECT_ERRORS:
        whens.setdefault(text, []).append("the connection is refused or ended (then close 1008)")
    for text in FRAME_ERRORS:
        whens.setdefault(text, []).append("any frame")
    for name, event in EVENTS.items():
        for error in event.all_errors():
            whens.setdefault(error.message, []).append(name)
    return {text: ", ".join(dict.fromkeys(when)) for text, when in whens.items()}
