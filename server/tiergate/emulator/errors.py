"""API errors as the Messages API reports them.

Every failure the emulator returns is an :class:`ApiError`; the HTTP layer turns it into the exact
body the API sends::

    {"type": "error", "error": {"type": "invalid_request_error", "message": "..."},
     "request_id": "req_emu_..."}

    >>> invalid_request("max_tokens: Field required").status
    400
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


# Not frozen: the interpreter and contextlib assign __traceback__ on exceptions.
@dataclass(eq=False)
class ApiError(Exception):
    """An error response: HTTP status, API ``error.type`` and a human-readable message."""

    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers (``retry-after`` on 429)."""
    details: dict[str, Any] | None = None
    """``error.details`` (e.g. ``{"error_code": "enforced_spend_limit_reached"}``), when set."""

    def __str__(self) -> str:
        return f"{self.status} {self.error_type}: {self.message}"

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON body the API returns for this error."""
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"type": "error", "error": error, "request_id": request_id}


def invalid_request(message: str) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, "invalid_request_error", message)


def not_found(message: str) -> ApiError:
    """A 404 ``not_found_error``."""
    return ApiError(404, "not_found_error", message)


def new_request_id() -> str:
    """A fresh request id; the prefix says it came from the emulator."""
    return f"req_emu_{uuid.uuid4().hex[:24]}"
