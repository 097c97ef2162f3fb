"""One value per running event loop: the live hub, the upkeep task, the batched lookups, Redis clients.

Production serves from one loop per process, but tests and `async_to_sync` run others, and an asyncio object
(a future, a task, a connection) belongs to the loop it was made on: each loop gets its own value.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """The value of the running event loop, made by `factory` on first use (`get`), or set by the caller.

    Keyed weakly by the loop, so that a loop's value goes with it. A value that refers back to its loop (a
    task, a client) keeps a closed loop alive, though: the values of closed loops are dropped whenever a new
    one is made. A lock makes it safe from several threads, each running its own loop (`async_to_sync`).
    """

    def __init__(self, factory: Callable[[], T] | None = None) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        # The last value `get` returned, with its loop (weakly): production asks from one loop, every connect
        # several times, and a weak dictionary's lookup under the lock was ~3 % of a connect's CPU.
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], T] | None = None

    def get(self) -> T:
        """The running loop's value, made now if it has none."""
        loop = asyncio.get_running_loop()
        last = self._last  # (one read: another thread may replace it meanwhile, with its own loop's)
        if last is not None and last[0]() is loop:
            return last[1]
        with self._lock:
            value = self._values.get(loop)
            if value is None:
                if self._factory is None:
                    raise LookupError("this PerLoop has no factory: set() its value first")
                value = self._factory()
                self._store(loop, value)
            self._last = (weakref.ref(loop), value)
            return value

    def peek(self) -> T | None:
        """The running loop's value, or None if it has none yet."""
        loop = asyncio.get_running_loop()
        with self._lock:
            return self._values.get(loop)

    def set(self, value: T) -> None:
        """Make `value` the running loop's value."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._last = None
            self._store(loop, value)

    def pop(self) -> T | None:
        """Forget the running loop's value and return it (None if it had none)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._last = None
            return self._values.pop(loop, None)

    def __len__(self) -> int:
        return len(self._values)

    def _store(self, loop: asyncio.AbstractEventLoop, value: T) -> None:
        for closed in [other for other in self._values if other.is_closed()]:
            del self._values[closed]
        self._values[loop] = value
