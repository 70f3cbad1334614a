"""A FIFO of counted, optionally model-scoped entries: the shape faults and scripts share.

>>> queue: CountedQueue[Fault] = CountedQueue()  # doctest: +SKIP
>>> queue.push(Fault("overloaded", count=2))  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Generic, Protocol, TypeVar


class Counted(Protocol):
    """An entry that applies to ``count`` requests, optionally only for one ``model``."""

    @property
    def count(self) -> int: ...

    @property
    def model(self) -> str | None: ...

    def to_json(self) -> dict[str, Any]: ...


E = TypeVar("E", bound=Counted)


class CountedQueue(Generic[E]):
    """FIFO of entries with remaining uses; safe to fill from another thread than the server's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[tuple[E, int]] = deque()

    def push(self, *entries: E) -> None:
        """Queue entries after those already waiting."""
        with self._lock:
            self._queue.extend((entry, entry.count) for entry in entries)

    def peek(self, model: str) -> E | None:
        """The entry ``take`` would consume next for ``model``, without consuming it."""
        with self._lock:
            for entry, _ in self._queue:
                if entry.model is None or entry.model == model:
                    return entry
        return None

    def take(self, model: str) -> E | None:
        """Consume one use of the first queued entry that matches ``model``."""
        with self._lock:
            for index, (entry, remaining) in enumerate(self._queue):
                if entry.model is not None and entry.model != model:
                    continue
                if remaining > 1:
                    self._queue[index] = (entry, remaining - 1)
                else:
                    del self._queue[index]
                return entry
        return None

    def pending(self) -> list[dict[str, Any]]:
        """Queued entries with their remaining counts."""
        with self._lock:
            return [{**entry.to_json(), "count": left} for entry, left in self._queue]

    def clear(self) -> None:
        """Drop every queued entry."""
        with self._lock:
            self._queue.clear()
