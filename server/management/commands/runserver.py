"""`manage.py runserver`: Daphne's development server with the project's extensions installed through the
gate (server.gate), as `make run` has them — without the close-code extension Autobahn would refuse the
contract's 1008 and 1009 closes."""

from __future__ import annotations

from typing import Any

from daphne.management.commands.runserver import Command as DaphneRunserver

from server import gate


class Command(DaphneRunserver):
    def inner_run(self, *args: Any, **options: Any) -> None:
        gate.install()  # in the process that serves (with auto-reload, the reloader's child)
        super().inner_run(*args, **options)
