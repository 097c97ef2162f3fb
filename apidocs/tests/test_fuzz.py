"""Contract fuzzing: schemathesis drives a real server, started as `make run` starts it, from its own
/openapi.json — every operation, with teacher and student tokens — through all its phases (the document's
examples, coverage of each constraint and each undeclared method, random fuzzing, stateful sequences along
inferred links) and every check: nothing answers 5xx, every status is documented, every response matches the
document (schemas, content types, headers), invalid input is refused, protected operations refuse missing and
bad tokens, a method a path does not serve is 405 with `Allow`, a missing Authorization header is 401.

Two built-in checks are replaced or left out, on purpose:
- positive_data_acceptance wants 2xx for schema-valid input, but the contract answers some valid requests 400
  ("Email already exists", "Invalid email or password"); fuzz_hooks' own check holds the part that matters:
  schema-valid input is never answered "Invalid request schema".
- ensure_resource_availability reads any 404 right after a create as "created resource not found", but
  add-student's 404 "Student not found" is about the student, not the class just created.

Ids in paths and bodies are sometimes real (a class the teacher owns and the student is enrolled in, another
teacher's class, the users, a persisted session, a real account's credentials): fuzz_hooks.map_case.

It runs the `schemathesis run` command (its pytest plugin does not run under this project's pytest 9.2) with
one worker and a fixed seed (FUZZ_SEED), FUZZ_EXAMPLES examples per operation, so that the whole test stays
well under 3 minutes. CI runs it once, in the PostgreSQL pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.servers import ROOT, DaphneServer
from tests.support import Person, create_class, enrol, mark, own_wire_server, start

pytestmark = [pytest.mark.wire, pytest.mark.fuzz]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
# The bound for the whole run (it takes about 35 s here): more means the examples per operation or a
# slow route grew, and CI would pay for it on every backend.
BUDGET_SECONDS = 180


@dataclass
class World:
    """The fuzzed server and the real things in it."""

    server: DaphneServer
    teacher: Person
    student: Person
    other_teacher: Person
    ids: dict[str, list[str]] = field(default_factory=dict)  # path/body parameter name → real values


def seed(api: httpx.Client) -> tuple[Person, Person, Person, dict[str, list[str]]]:
    teacher, student, other_teacher = Person(api, "teacher"), Person(api, "student"), Person(api, "teacher")
    class_id = create_class(api, teacher)
    enrol(api, teacher, class_id, student)
    others_class = create_class(api, other_teacher)
    # One persisted session (history), then a live one.
    start(api, teacher, class_id)
    with connect(f"ws://{api.base_url.netloc.decode()}/ws?token={teacher.token}") as ws:
        ws.send(mark(student.id, "present"))
        ws.recv(timeout=5)
        ws.send('{"event": "DONE"}')
        assert '"DONE"' in str(ws.recv(timeout=5))
    start(api, teacher, class_id)
    # Weighted: the teacher's own class and the enrolled student most often.
    ids = {
        "class_id": [class_id, class_id, others_class],
        "classId": [class_id, class_id, others_class],
        "studentId": [student.id, student.id, teacher.id],
        "session_id": [],
        # A real account sometimes, so that login succeeds (and signup meets "Email already exists").
        "email": [teacher.email],
        "password": [teacher.password],
    }
    sessions = api.get(f"/class/{class_id}/sessions", headers=teacher.headers)
    if sessions.status_code == 200:  # once the history routes are registered
        ids["session_id"] = [item["_id"] for item in sessions.json()["data"]]
    return teacher, student, other_teacher, ids


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp_dir = tmp_path_factory.mktemp("fuzz")
    with own_wire_server(tmp_dir) as server:
        with httpx.Client(base_url=server.http_url, timeout=10) as api:
            teacher, student, other_teacher, ids = seed(api)
        yield World(server, teacher, student, other_teacher, ids)
    log = server.log_path.read_text(errors="replace")  # once the server has stopped
    assert "Traceback" not in log, log[-5000:]


def roles() -> dict[str, str | None]:
    """"METHOD /path/{param}" → the role the operation requires (None: any user, or anyone)."""
    from common.api import iter_routes

    return {
        f"{method} {route.path}": getattr(operation.auth, "role", None)
        for route in iter_routes()
        for method, operation in route.operations.items()
    }


def test_the_server_keeps_its_documented_contract(world: World, tmp_path: Path) -> None:
    world_file = tmp_path / "world.json"
    world_file.write_text(
        json.dumps(
            {
                "tokens": {
                    "teacher": world.teacher.token,
                    "student": world.student.token,
                    "other": world.other_teacher.token,
                },
                "ids": world.ids,
                "roles": roles(),
            }
        )
    )
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", world.server.http_url + "/openapi.json",
        "--max-examples", str(EXAMPLES),
        "--phases", "examples,coverage,fuzzing,stateful",
        "--checks", "all",
        "--workers", "1",
        "--seed", os.environ.get("FUZZ_SEED", "20251"),
        "--suppress-health-check", "all",
        "--request-timeout", "10",
        "--exclude-checks", "positive_data_acceptance,ensure_resource_availability",
        # Every request and response, for a look after a failure (pytest keeps its last temporary directories).
        "--report", "ndjson", "--report-ndjson-path", str(tmp_path / "fuzz.ndjson"),
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "apidocs.tests.fuzz_hooks",
        "FUZZ_WORLD": str(world_file),
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
    try:
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=BUDGET_SECONDS)
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"schemathesis ran over its {BUDGET_SECONDS} s budget:\n{str(timeout.stdout or '')[-3000:]}")
    print(result.stdout[-3000:])  # the phases' timings and counts (pytest -s or -rP shows them)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
