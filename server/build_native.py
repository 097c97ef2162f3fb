"""Build the native broadcast fan-out, server._fanout (server/fanout.c), in place: `python -m server.build_native`.

`make run` and `make test` run this after installing the packages; it rebuilds only when the source is newer
than the built module. It is optional: without a C compiler or Python's headers the build fails, this prints
one warning and exits 0, and the server writes broadcasts from Python instead (server/fanout.py: the gate
then leaves the native fan-out out and names why) — slower, never wrong.
"""

from __future__ import annotations

import sys
import sysconfig
import tempfile
from pathlib import Path

from server.prepare import exclusive_lock

SERVER_DIR = Path(__file__).resolve().parent
SOURCE = SERVER_DIR / "fanout.c"
MODULE = "server._fanout"
LOCK_FILE = ".native.lock"


def built_path() -> Path:
    return SERVER_DIR / f"_fanout{sysconfig.get_config_var('EXT_SUFFIX')}"


def up_to_date() -> bool:
    built = built_path()
    newest_source = max(SOURCE.stat().st_mtime, Path(__file__).stat().st_mtime)  # the flags are here
    return built.exists() and built.stat().st_mtime >= newest_source


def build() -> Path:
    """Compile the module next to its source; raises on any failure (no compiler, a compile error)."""
    from setuptools import Distribution, Extension  # type: ignore[import-untyped]  # only to build

    extension = Extension(MODULE, [str(SOURCE)], extra_compile_args=["-O2", "-Wall", "-Werror"])
    distribution = Distribution({"name": "live-attendance-native", "ext_modules": [extension]})
    distribution.verbose = 0
    command = distribution.get_command_obj("build_ext")
    with tempfile.TemporaryDirectory() as scratch:
        command.build_temp = scratch
        command.build_lib = str(SERVER_DIR.parent)  # the package's directory: the module lands in server/
        command.force = True
        distribution.run_command("build_ext")
    return built_path()


def main() -> int:
    if up_to_date():
        return 0
    # Several `make run` started at once from one checkout: one builds, the others find it built.
    with exclusive_lock(SERVER_DIR.parent / LOCK_FILE):
        return 0 if up_to_date() else build_or_warn()


def build_or_warn() -> int:
    try:
        path = build()
    except (Exception, SystemExit) as error:  # setuptools exits on a compiler error
        built_path().unlink(missing_ok=True)  # never an older build of another source
        print(f"warning: the native fan-out ({SOURCE.name}) was not built ({error}); broadcasts are written from "
              "Python instead (server/fanout.py)", file=sys.stderr)
        return 0
    print(f"built {path.relative_to(SERVER_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
