"""Validated task outputs, served again to identical requests at no cost.

A key names everything the answer depends on: the task, the model, the request's canonical
bytes (deterministic protobuf serialization) and the version of the task's prompt, a digest of
the instructions, output schema and ``max_tokens`` the task builds for that request, so a
changed prompt or schema never serves an old answer. Entries are per caller (its metric label:
a verified name, else the one shared label of unverified callers): a hit would otherwise tell
one caller what another asked, and let it ride on the other's budget. Only the tasks whose
answer is a function of the request are cached (``Task.cacheable``); Summarize and Reason
write free text where a caller asking again may want a fresh answer.

A caller turns it off for one request with the metadata header ``x-tiergate-cache: off``: the
call neither reads, writes nor joins an identical call in flight.

    cache = ResponseCache(store, ttl_s=3600, max_entries=100_000)
    key = cache_key("Classify", "claude-haiku-4-5", request, prompt, scope="billing-service")
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import structlog
from google.protobuf.message import Message

from tiergate.calls.prompt import JsonObject, Prompt, canonical_json
from tiergate.shared.backends import Store, StoreUnavailable

log = structlog.get_logger("tiergate.response_cache")

CACHE_HEADER = "x-tiergate-cache"
"""Request metadata: ``off`` skips the response cache and coalescing for that call."""


def prompt_version(prompt: Prompt) -> str:
    """A digest of what the task tells the model for this request, beyond the request itself."""
    digest = hashlib.sha256()
    for part in (prompt.instructions, canonical_json(prompt.output_schema), str(prompt.max_tokens)):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def cache_key(task: str, model: str, request: Message, prompt: Prompt, *, scope: str) -> str:
    """The entry of ``request``'s answer, within one caller's ``scope``."""
    digest = hashlib.sha256()
    for part in (scope.encode(), task.encode(), model.encode(), prompt_version(prompt).encode()):
        digest.update(part)
        digest.update(b"\0")
    digest.update(request.SerializeToString(deterministic=True))
    return f"{task}:{digest.hexdigest()}"


def wants_cache(metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
    """False when the caller sent ``x-tiergate-cache: off``."""
    for key, value in metadata or ():
        if key.lower() == CACHE_HEADER:
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            return text.strip().lower() != "off"
    return True


class ResponseCache:
    """Outputs by key in the shared store; a store failure is a miss, never an error."""

    def __init__(self, store: Store, *, ttl_s: float, max_entries: int) -> None:
        self._store = store
        self.ttl_s = ttl_s
        self.max_entries = max_entries

    async def get(self, key: str) -> JsonObject | None:
        try:
            raw = await self._store.cache_get(key)
        except StoreUnavailable as exc:
            log.warning("response_cache.unavailable", error=str(exc))
            return None
        return decode(raw) if raw is not None else None

    async def put(self, key: str, output: JsonObject) -> None:
        try:
            await self._store.cache_put(
                key, encode(output), ttl_s=self.ttl_s, max_entries=self.max_entries
            )
        except StoreUnavailable as exc:
            log.warning("response_cache.unavailable", error=str(exc))


def encode(output: JsonObject) -> bytes:
    return canonical_json(output).encode()


def decode(raw: bytes) -> JsonObject | None:
    try:
        value: Any = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
