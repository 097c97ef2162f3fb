"""JSON Schema for the API documents, from the same pydantic types that validate and serialise the wire.

One `SchemaSet` per document: every body, query, response and event payload is added under a key, then
rendered in one pydantic pass, so that shared models become one named component (`$ref`) and a model whose
input and output differ gets both (`Model-Input`, `Model-Output`).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Literal

from pydantic import TypeAdapter

Mode = Literal["validation", "serialization"]


class SchemaSet:
    """Collect types under keys (`add`), then `render()` them against one components section."""

    def __init__(self, ref_prefix: str = "#/components/schemas/") -> None:
        self.ref_prefix = ref_prefix
        self._inputs: dict[tuple[Hashable, Mode], TypeAdapter[Any]] = {}
        self._schemas: dict[tuple[Hashable, Mode], dict[str, Any]] | None = None
        self.components: dict[str, Any] = {}

    def add(self, key: Hashable, type_: Any, mode: Mode) -> None:
        """`mode="validation"` for what clients send, `"serialization"` for what the server sends."""
        assert self._schemas is None, "add everything before render()"
        self._inputs[(key, mode)] = TypeAdapter(type_)

    def render(self) -> None:
        inputs = [(key, mode, adapter) for (key, mode), adapter in self._inputs.items()]
        schemas, definitions = TypeAdapter.json_schemas(
            inputs, by_alias=True, ref_template=self.ref_prefix + "{model}"
        )
        self._schemas = dict(schemas)
        self.components = dict(sorted(definitions.get("$defs", {}).items()))

    def schema(self, key: Hashable, mode: Mode) -> dict[str, Any]:
        """The schema of what was added under `key` (often just a `$ref` to a component)."""
        assert self._schemas is not None, "render() first"
        return self._schemas[(key, mode)]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Follow a top-level `$ref` into the components (e.g. to list a query model's fields)."""
        ref = schema.get("$ref")
        if ref is None:
            return schema
        target: dict[str, Any] = self.components[ref.removeprefix(self.ref_prefix)]
        return target
