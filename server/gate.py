"""The gate: which of the project's extensions of Daphne/Autobahn/Twisted this process installs.

The extensions (server.daphne_limits, server.daphne_ext, server.write_now) reach into those packages'
internals, and Autobahn and Twisted are not even pinned by Daphne. So, as sentry-python does with its
integrations (`Integration.setup_once`, `DidNotEnable`), each extension declares the package versions it was
written for and the attributes it relies on, and installs itself only when all of them match. The launcher
(server.serve) calls `install()` once, before Daphne builds its server: every extension whose checks pass is
installed, and ONE warning names everything left out, which then runs on Daphne's own, public paths —
slower, never wrong. `LIVE_FAST_PATH=0` leaves out the fast-path extensions (the broadcast and memory
optimisations) whatever the versions; the ones the contract needs (close codes, request deadline, last
X-Forwarded-For hop) use public hooks and stay on both paths.

Every patch goes through `Patches`, which remembers what it replaced: an extension that fails half-way is
rolled back, and tests restore the packages with `reset()`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any, ClassVar

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# In installation order: an extension comes after those it requires.
EXTENSIONS = (
    "server.daphne_limits.RequestLimits",
    "server.daphne_ext.CloseCodes",
    "server.daphne_ext.FastSockets",
    "server.write_now.WriteNow",
    "server.fanout.NativeFanOut",
    "server.daphne_ext.LazyDebugLogs",
    "server.daphne_ext.PlainHttpModule",
    "server.daphne_limits.FastHTTPChannels",
)


class DidNotEnable(Exception):
    """An extension cannot be installed in this process; the message says what did not match."""


class Patches:
    """Attribute assignments on other packages' modules and classes, each undoable (last first)."""

    _missing = object()

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        self._undo.append((owner, name, owner.__dict__.get(name, self._missing)))
        setattr(owner, name, value)

    def __len__(self) -> int:
        return len(self._undo)

    def restore(self, keep: int = 0) -> None:
        """Undo every assignment after the first `keep`, last first."""
        while len(self._undo) > keep:
            owner, name, original = self._undo.pop()
            if original is self._missing:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


class Extension:
    """One extension: what it was written for, and how it installs itself (subclasses fill these in)."""

    name: ClassVar[str]
    # Distribution name → the version it was written for: "4.2.3" (exactly) or "4.2.*" (that release line).
    versions: ClassVar[Mapping[str, str]] = {}
    # A fast-path optimisation (left out with LIVE_FAST_PATH=0), not something the contract needs.
    fast_path: ClassVar[bool] = False
    # Names of extensions this one builds on: it is left out unless they are installed.
    requires: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def missing(cls) -> list[str]:
        """What the extension relies on that is not there ("module.Class.attribute"); [] when all is."""
        return []

    @classmethod
    def setup_once(cls, patches: Patches) -> None:
        """Install, through `patches` only; may raise DidNotEnable (what it patched is then undone)."""
        raise NotImplementedError


def missing_attributes(owner: Any, names: Iterable[str], label: str | None = None) -> list[str]:
    """The `names` that `owner` (a module, a class or an instance) lacks, as "label.name"."""
    label = label or getattr(owner, "__qualname__", None) or getattr(owner, "__name__", None) or repr(owner)
    if getattr(owner, "__module__", None) and isinstance(owner, type):
        label = f"{owner.__module__}.{label}"
    return [f"{label}.{name}" for name in names if not hasattr(owner, name)]


def version_matches(installed: str, written_for: str) -> bool:
    if written_for.endswith(".*"):
        line = written_for[:-2]
        return installed == line or installed.startswith(line + ".")
    return installed == written_for


def version_mismatches(versions: Mapping[str, str]) -> list[str]:
    """Each package whose installed version is not the one written for, e.g. "twisted 27.1.0 (written for 26.10.*)"."""
    found = []
    for package, written_for in versions.items():
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            found.append(f"{package} not installed (written for {written_for})")
            continue
        if not version_matches(installed, written_for):
            found.append(f"{package} {installed} (written for {written_for})")
    return found


# What this process has done: each extension is considered once (installed or left out), as sentry's
# setup_integrations does, so installing again changes nothing and warns no more.
_patches = Patches()
_considered: set[str] = set()
_installed: list[str] = []


def install(extensions: Sequence[str | type[Extension]] = EXTENSIONS, fast_path: bool | None = None) -> list[str]:
    """Install each extension whose checks pass (once per process) and log one warning naming those left
    out and why. `fast_path` defaults to settings.LIVE_FAST_PATH. Returns the names of the installed ones."""
    if fast_path is None:
        fast_path = settings.LIVE_FAST_PATH
    left_out: list[str] = []
    for path in extensions:
        try:
            extension: type[Extension] = import_string(path) if isinstance(path, str) else path
        except ImportError as error:
            if path not in _considered:  # (only a dotted path can fail to import)
                _considered.add(str(path))
                left_out.append(f"{path}: cannot import ({error})")
            continue
        if extension.name in _considered:
            continue
        _considered.add(extension.name)
        reason = _why_not(extension, fast_path)
        if reason is None:
            keep = len(_patches)
            try:
                extension.setup_once(_patches)
            except DidNotEnable as error:
                _patches.restore(keep)
                reason = str(error)
        if reason is None:
            _installed.append(extension.name)
        else:
            left_out.append(f"{extension.name}: {reason}")
    if left_out:
        logger.warning("Server extensions not installed, running on Daphne's plain paths for them — %s",
                       "; ".join(left_out))
    return list(_installed)


def _why_not(extension: type[Extension], fast_path: bool) -> str | None:
    if extension.fast_path and not fast_path:
        return "LIVE_FAST_PATH=0"
    absent = [name for name in extension.requires if name not in _installed]
    if absent:
        return "needs " + ", ".join(absent)
    mismatches = version_mismatches(extension.versions)
    if mismatches:
        return ", ".join(mismatches)
    try:
        missing = extension.missing()
    except Exception as error:  # a check that cannot even run is a mismatch too
        missing = [f"the check failed ({error!r})"]
    if missing:
        return "missing " + ", ".join(missing)
    return None


def installed() -> list[str]:
    """The names of the extensions installed in this process."""
    return list(_installed)


def reset() -> None:
    """Undo every installation (for tests): the packages are as they were, and `install` starts afresh."""
    _patches.restore()
    _considered.clear()
    _installed.clear()
