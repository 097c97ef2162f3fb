"""What the benchmarks that compare the project with a reference server share: the reference's process and
the command line's common options (the project's server is tests/servers.py's DaphneServer)."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

from tests.servers import LoopbackServer, free_port


class ReferenceProcess(LoopbackServer):
    """A reference server in a process of its own on a free port: `program port *args`, ready once it prints
    `ready` (bench/reference-node/server.js, bench/reference_server.py)."""

    def __init__(self, program: list[str], *args: str, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.process = subprocess.Popen([*program, str(self.port), *args], cwd=cwd, env=env, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the reference server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def argument_parser(doc: str | None, students_help: str) -> argparse.ArgumentParser:
    """The options every such benchmark takes: N, the alternating batches, where to save the results."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=1000, help=students_help)
    parser.add_argument("--repeat", type=int, default=3, help="alternating batches (project, reference)")
    parser.add_argument("--save", type=Path, help="write the results as JSON")
    return parser


def add_access_log_option(parser: argparse.ArgumentParser) -> None:
    """--access-log: the project is measured as in production behind nginx, without Daphne's access log
    (ACCESS_LOG=0), unless asked; the references write none."""
    parser.add_argument("--access-log", action="store_true",
                        help="keep Daphne's access log on (off by default, as in production behind nginx; the "
                             "references write none)")


def access_log_env(args: argparse.Namespace) -> dict[str, str]:
    """The server's ACCESS_LOG for --access-log."""
    return {"ACCESS_LOG": "1" if args.access_log else "0"}


def save(results: dict[str, Any], path: Path | None) -> None:
    """The results as JSON in `path` (--save), when one is given."""
    if path:
        path.write_text(json.dumps(results, indent=2))
