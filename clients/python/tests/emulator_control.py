"""The emulator's control routes, over plain HTTP as any client language would call them."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


class EmulatorControl:
    """The emulator's control routes: reset, inject faults, list what the server sent."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _post(self, route: str, body: Any) -> None:
        request = urllib.request.Request(
            f"{self.url}{route}",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            reply.read()

    def reset(self) -> None:
        self._post("/_emulator/reset", {})

    def inject(self, faults: list[dict[str, Any]]) -> None:
        self._post("/_emulator/faults", faults)

    def requests(self) -> list[Any]:
        with urllib.request.urlopen(f"{self.url}/_emulator/requests", timeout=10) as reply:
            recorded: list[Any] = json.load(reply)["requests"]
        return recorded
