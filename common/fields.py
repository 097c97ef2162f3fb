"""ObjectId identifiers on every backend (docs/api.md; docs/mongodb.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from bson import ObjectId
from bson.errors import InvalidId
from django.db import models


def new_object_id() -> str:
    return str(ObjectId())


def is_object_id(value: Any) -> bool:
    """True for a 24-char lowercase hex string — the only form ids take in JSON and URLs."""
    return isinstance(value, str) and len(value) == 24 and ObjectId.is_valid(value) and value == value.lower()


class ObjectIdField(models.CharField[str, str]):
    """An ObjectId kept as its 24-char hex string in Python.

    SQL databases store it as CHAR(24); MongoDB stores a native ObjectId. As a primary key it is
    generated on create and its column is `_id`, MongoDB's own primary key, on every backend so that one
    set of migrations serves them all.
    """

    description = "MongoDB ObjectId (24 hex characters)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["max_length"] = 24
        if kwargs.get("primary_key"):
            kwargs.setdefault("default", new_object_id)
            kwargs.setdefault("editable", False)
            kwargs.setdefault("db_column", "_id")
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_length", None)
        return name, path, args, kwargs

    def db_type(self, connection: Any) -> str | None:
        if connection.vendor == "mongodb":
            return "objectId"
        return super().db_type(connection)

    def rel_db_type(self, connection: Any) -> str | None:
        return self.db_type(connection)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, ObjectId):
            return str(value)
        return super().to_python(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        return None if value is None else str(value)

    def get_db_converters(self, connection: Any) -> list[Any]:
        # Only MongoDB hands back ObjectIds; a SQL column already reads as the string, so no call per value
        # (a report's or a grid's rows are mostly ids).
        converters: list[Any] = cast(Any, super()).get_db_converters(connection)  # (not in django-stubs)
        if connection.vendor != "mongodb":
            return [converter for converter in converters if converter != self.from_db_value]
        return converters

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        value = super().get_db_prep_value(value, connection, prepared)
        if value is None or connection.vendor != "mongodb":
            return value
        try:
            return ObjectId(value)
        except (InvalidId, TypeError):
            # Not an ObjectId: it can match nothing, and MongoDB compares across types without error.
            return str(value)
