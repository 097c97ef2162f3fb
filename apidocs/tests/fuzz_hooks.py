"""Schemathesis hooks for the contract fuzzing (test_fuzz.py), loaded by `schemathesis run` through
SCHEMATHESIS_HOOKS. The test writes the fuzzed server's world to the JSON file FUZZ_WORLD names: the tokens,
real ids by parameter name, and the role each operation requires."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import schemathesis

WORLD: dict[str, Any] = json.loads(Path(os.environ["FUZZ_WORLD"]).read_text())
INVALID_SCHEMA = "Invalid request schema"


def token_choices(role: str | None) -> list[str]:
    """Mostly the right role's token, sometimes the other role's (403); no token and bad tokens are the
    ignored_auth and missing-header checks' job."""
    teacher, student, other = WORLD["tokens"]["teacher"], WORLD["tokens"]["student"], WORLD["tokens"]["other"]
    if role == "teacher":
        return [teacher, teacher, other, student]
    if role == "student":
        return [student, student, student, teacher]
    return [teacher, student, other]


@schemathesis.auth(refresh_interval=None)
class Tokens:
    """The tokens take turns per operation, independently of the generated ids (a run with the same seed, on
    one worker, replays the same turns)."""

    turns: dict[str, itertools.count] = {}

    def get(self, case: Any, ctx: Any) -> str | None:
        operation = f"{case.method.upper()} {case.path}"
        choices = token_choices(WORLD["roles"].get(operation))
        return choices[next(self.turns.setdefault(operation, itertools.count())) % len(choices)]

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": data}


REAL_TURNS: dict[tuple[str, str], itertools.count] = {}


@schemathesis.hook
def map_case(ctx: Any, case: Any) -> Any:
    """Ids in paths and bodies (`class_id`, `classId`, `studentId`…, and a real account's email and password)
    are sometimes real, in turns, so requests reach past "not found". Only in positive cases, and only over
    a value that is already valid (a string): a negative case keeps what makes it invalid."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    operation = f"{case.method.upper()} {case.path}"
    for container in (case.path_parameters, case.body):
        if not isinstance(container, dict):
            continue
        for name, value in container.items():
            real = WORLD["ids"].get(name)
            if real and isinstance(value, str):
                pick = next(REAL_TURNS.setdefault((operation, name), itertools.count())) % (len(real) + 1)
                if pick:
                    container[name] = real[pick - 1]
    return case


@schemathesis.check
def schema_valid_input_is_not_a_schema_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """Input the document calls valid is never refused as invalid: the document and the validators agree.

    (Schemathesis' positive_data_acceptance wants 2xx, but the contract answers some valid requests 400 on
    purpose: "Email already exists", "Invalid email or password".)"""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    if response.json().get("error") == INVALID_SCHEMA:
        raise AssertionError(f"The document accepts this input; the server answers 400 {INVALID_SCHEMA!r}")
    return None
