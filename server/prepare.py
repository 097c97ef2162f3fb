"""Prepare the checkout to serve: migrate the database and collect the static files, once, however many
servers start at the same moment.

`make run` runs `python -m server.prepare`, then `python -m server.serve`. When several `make run` start at
once from one checkout (e.g. two workers sharing REDIS_URL), an exclusive lock on a file in the project
(`.prepare.lock`) lets one through at a time: migrations are applied once, and two collectstatic never write
the same files (WhiteNoise's compression in one would open a file that the other is replacing).

Static files: STATIC_ROOT is a symbolic link to a complete build, `<STATIC_ROOT>.builds/<fingerprint>-<id>`.
The fingerprint covers every source file (as the finders list them, by content) and what turns them into
the build (the storage and its code, Django's and WhiteNoise's versions). An unchanged fingerprint skips
collectstatic; a changed one collects into a fresh directory, then replaces the link with one rename, so a
server never sees a half-written build. Older builds are removed, except the one just replaced: a server
started on it keeps serving it until it restarts (settings resolves the link once, at start).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from importlib.metadata import version
from pathlib import Path

LOCK_FILE = ".prepare.lock"
BUILDS_SUFFIX = ".builds"
# What collectstatic leaves out by default (its --ignore patterns; the staticfiles app's own).
IGNORE_PATTERNS = ["CVS", ".*", "*~"]


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing): other holders wait. The kernel releases it
    when the process dies, so a crashed run never leaves the next one waiting."""
    with open(path, "a") as handle:  # "a": create, never truncate
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def static_sources() -> dict[str, str]:
    """Every file collectstatic would copy: its path under STATIC_ROOT → its source file. The first finder
    that lists a path wins, as in collectstatic."""
    from django.contrib.staticfiles.finders import get_finders

    sources: dict[str, str] = {}
    for finder in get_finders():
        for path, storage in finder.list(IGNORE_PATTERNS):
            prefix = getattr(storage, "prefix", None)
            sources.setdefault(os.path.join(prefix, path) if prefix else path, storage.path(path))
    return sources


def static_fingerprint() -> str:
    """A digest of what a collectstatic would produce: the sources' names and contents, and what turns
    them into the build."""
    from django.conf import settings

    from attendance_site import static_storage

    digest = hashlib.sha256()
    for package in ("django", "whitenoise"):
        digest.update(f"{package}=={version(package)}\n".encode())
    digest.update(f"{settings.STATIC_URL}\n{settings.STORAGES['staticfiles']!r}\n".encode())
    digest.update(Path(static_storage.__file__).read_bytes())
    for name, source in sorted(static_sources().items()):
        digest.update(f"\n{name}\n".encode())
        digest.update(hashlib.sha256(Path(source).read_bytes()).digest())
    return digest.hexdigest()[:32]


def builds_dir(link: Path) -> Path:
    return link.with_name(link.name + BUILDS_SUFFIX)


def current_build(link: Path) -> Path | None:
    """The complete build `link` names (the link only ever names complete ones), or None."""
    if not link.is_symlink():
        return None
    target = link.parent / os.readlink(link)
    return target if target.is_dir() else None


def switch_link(link: Path, build: Path) -> None:
    """Point `link` at `build` in one rename: a reader sees the old build or the new one, never neither."""
    staging = link.with_name(f".{link.name}.{os.getpid()}.link")
    with suppress(FileNotFoundError):
        staging.unlink()
    staging.symlink_to(os.path.relpath(build, link.parent))
    os.replace(staging, link)


def prepare_static(link: Path, fingerprint: str, collect: Callable[[Path], None], force: bool = False) -> bool:
    """Make `link` name a complete build of the current sources: unless `force`, nothing to do when it
    already names one with `fingerprint`. Returns whether it collected. Call it under exclusive_lock."""
    current = current_build(link)
    if current is not None and current.name.startswith(fingerprint + "-") and not force:
        return False
    builds = builds_dir(link)
    builds.mkdir(parents=True, exist_ok=True)
    if link.is_dir() and not link.is_symlink():
        # A directory from before these builds (a plain collectstatic): set it aside as the replaced build,
        # so that the link can take its place.
        current = Path(tempfile.mkdtemp(prefix="unlinked-", dir=builds))
        os.replace(link, current)
    build = Path(tempfile.mkdtemp(prefix=fingerprint + "-", dir=builds))
    build.chmod(0o755)  # as a plain directory (mkdtemp's is private): a web server may serve it (deploy/)
    try:
        collect(build)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    switch_link(link, build)
    # Everything else goes: older builds, and any a crashed run left half-written.
    for old in builds.iterdir():
        if old != build and old != current:
            shutil.rmtree(old, ignore_errors=True)
    return True


def collect_static(build: Path) -> None:
    """collectstatic into `build` (a fresh, empty directory), in a process of its own: settings read
    STATIC_ROOT once, at start."""
    from django.conf import settings

    subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "collectstatic", "--noinput", "--verbosity", "0"],
        env={**os.environ, "STATIC_ROOT": str(build)}, check=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server.prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("migrate", "static"), help="do only this step")
    parser.add_argument("--force", action="store_true", help="collect the static files even when unchanged")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attendance_site.settings")
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    with exclusive_lock(Path(settings.BASE_DIR) / LOCK_FILE):
        if args.only != "static":
            call_command("migrate", interactive=False)
        if args.only != "migrate":
            prepare_static(Path(settings.STATIC_LINK), static_fingerprint(), collect_static, force=args.force)


if __name__ == "__main__":
    main()
