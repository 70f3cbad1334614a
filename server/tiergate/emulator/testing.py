"""Helpers for running the emulator from synchronous code (tests, benchmarks, scripts).

:class:`ThreadedEmulator` serves an :class:`~tiergate.emulator.Emulator` from its own event loop in
a daemon thread, so blocking clients (``anthropic.Anthropic``, gRPC servers under test) can call it.
:class:`ManualClock` is a clock tests advance by hand to expire cache entries.

    >>> clock = ManualClock()
    >>> with ThreadedEmulator(EmulatorConfig(clock=clock)) as served:  # doctest: +SKIP
    ...     client = anthropic.Anthropic(base_url=served.base_url, api_key="any")
    ...     clock.advance(301)  # every 5-minute entry has now expired
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from .app import Emulator, EmulatorConfig


class ManualClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        with self._lock:
            self._now += seconds


class ThreadedEmulator:
    """An emulator served from a background thread; use as a context manager."""

    def __init__(
        self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.emulator = Emulator(config)
        self._host = host
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tiergate-emulator", daemon=True
        )

    @property
    def base_url(self) -> str:
        """The running emulator's base URL."""
        return self.emulator.base_url

    def start(self, timeout_s: float = 10.0) -> str:
        """Start the loop thread and the server; return the base URL."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            self.emulator.start(self._host, self._port), self._loop
        )
        return future.result(timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server and the loop thread."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.emulator.stop(), self._loop).result(timeout_s)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)
        self._loop.close()

    def __enter__(self) -> ThreadedEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
