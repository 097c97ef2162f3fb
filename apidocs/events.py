"""The socket's events as the /docs page lists them, read from the AsyncAPI document (not from the tables:
the page shows what the document says)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Field:
    name: str
    type: str
    required: bool
    description: str = ""


@dataclass
class Event:
    name: str
    direction: str  # "client → server" or "server → client"
    summary: str
    description: str
    fields: list[Field] = field(default_factory=list)
    data_optional: bool = False
    replies: list[str] = field(default_factory=list)


@dataclass
class SocketEvents:
    address: str
    query: list[Field]
    client: list[Event]
    server: list[Event]
    errors: list[tuple[str, str]]  # (message, when)


def socket_events(document: dict[str, Any]) -> SocketEvents:
    channel = next(iter(document["channels"].values()))
    components = document["components"]
    query = channel["bindings"]["ws"]["query"]

    def message(ref: str) -> dict[str, Any]:
        return resolve(document, resolve(document, {"$ref": ref}))

    client, server = [], []
    for operation in document["operations"].values():
        body = message(operation["messages"][0]["$ref"])
        data = body["payload"]["properties"]["data"]
        event = Event(
            name=body["name"],
            direction="client → server" if operation["action"] == "receive" else "server → client",
            summary=operation.get("summary", ""),
            description=operation.get("description", body.get("description", "")),
            fields=fields(document, data),
            data_optional="data" not in body["payload"].get("required", []),
        )
        if body["name"] == "ERROR":
            event.description = "Its messages are listed below."
        if operation["action"] == "receive":
            event.replies = [message(ref["$ref"])["name"] for ref in operation.get("reply", {}).get("messages", [])]
            client.append(event)
        else:
            server.append(event)
    error = next(m for m in components["messages"].values() if m["name"] == "ERROR")
    errors = []
    for line in error["description"].splitlines():
        text, _, when = line.removeprefix("- ").partition(": ")
        errors.append((text.strip('"'), when))
    return SocketEvents(channel["address"], fields(document, query), client, server, errors)


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s (local, `#/...`) until a schema that is not one."""
    while "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def fields(document: dict[str, Any], schema: dict[str, Any]) -> list[Field]:
    """The properties of an object schema (through anyOf-null, allOf and `$ref`)."""
    schema = object_schema(document, schema)
    required = set(schema.get("required", ()))
    return [
        Field(name, type_text(document, prop), name in required, prop.get("description", ""))
        for name, prop in schema.get("properties", {}).items()
    ]


def object_schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    schema = resolve(document, schema)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return object_schema(document, options[0]) if options else {}
    if "allOf" in schema:
        merged: dict[str, Any] = {"properties": {}, "required": []}
        for part in schema["allOf"]:
            part = object_schema(document, part)
            merged["required"] += part.get("required", [])
            for name, prop in part.get("properties", {}).items():
                merged["properties"][name] = {**merged["properties"].get(name, {}), **prop}
        return merged
    return schema


def type_text(document: dict[str, Any], schema: dict[str, Any]) -> str:
    """A short human reading of a property's schema: `"present" | "absent"`, `string`, `integer`…"""
    schema = resolve(document, schema)
    if "const" in schema:
        return f'"{schema["const"]}"'
    if "enum" in schema and len(schema["enum"]) > 5:
        return f"one of {len(schema['enum'])} strings"
    if "enum" in schema:
        return " | ".join(f'"{value}"' if isinstance(value, str) else str(value) for value in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(type_text(document, option) for option in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {type_text(document, schema.get('items', {}))}"
    return str(schema.get("type", "any"))
