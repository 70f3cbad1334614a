"""Test harness: a background event loop and the emulator as tests drive it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from tiergate.emulator import Emulator, Fault

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio loop on its own thread, so sync tests can drive async servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


class Upstream:
    """The emulator as the tests see it: faults to inject, requests it received."""

    def __init__(self, emulator: Emulator, loop: BackgroundLoop) -> None:
        self.emulator = emulator
        self._loop = loop

    @property
    def url(self) -> str:
        return self.emulator.base_url

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self.emulator.requests)

    def inject(self, *faults: Fault) -> None:
        async def inject() -> None:
            self.emulator.inject(*faults)

        self._loop.run(inject())

    def reset(self) -> None:
        async def reset() -> None:
            self.emulator.reset()

        self._loop.run(reset())
