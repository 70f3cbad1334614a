"""Scripted replies: tests say exactly what the emulator answers to the next matching call.

A :class:`Script` replaces the heuristic answer, not the API around it: the request is validated
as any other (a script never rescues an invalid request), recorded, and billed from the prompt
and the prefix cache as a normal call, unless the script overrides usage fields. Scripts are
consumed FIFO, one use per matching request.

Precedence for one request: validation first; then a queued fault for that request, which
answers in the script's place (an error, a dropped connection or a broken output) and leaves the
script queued for the next matching request; a ``slow`` fault only delays the scripted reply.

    >>> Script(text='{"label": "billing"}').output_tokens()
    11
    >>> Script(content=[]).blocks()  # no content at all
    []
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast

from .errors import invalid_request
from .tokens import canonical_json, count_tokens

STOP_REASONS = (
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
)
"""The documented ``stop_reason`` values."""

USAGE_FIELDS = frozenset(
    {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "service_tier",
        "inference_geo",
        "server_tool_use",
        "speed",
        "output_tokens_details",
    }
)
"""Usage fields a script may override."""

INPUT_USAGE_FIELDS = frozenset(
    {"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation"}
)
"""Overriding any of these takes the call out of the prefix cache (no read, no write)."""


@dataclass(frozen=True)
class Script:
    """The reply to the next ``count`` matching calls.

    Give exactly one of ``text`` (one text block) or ``content`` (raw content blocks, e.g. a
    ``thinking`` block before the text; ``content=[]`` answers with no content).
    """

    text: str | None = None
    content: Sequence[Mapping[str, Any]] | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    """Usage fields to report instead of the computed ones; the others are computed."""
    stop_reason: str = "end_turn"
    stop_details: Mapping[str, Any] | None = None
    stop_sequence: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra response headers."""
    model: str | None = None
    """Only requests for this model (as sent) match; None matches all."""
    count: int = 1
    """How many calls get this reply."""

    def __post_init__(self) -> None:
        if (self.text is None) == (self.content is None):
            raise ValueError("give exactly one of text or content (content=[] for no content)")
        if self.content is not None:
            blocks = tuple(dict(block) for block in self.content)
            for i, block in enumerate(blocks):
                if not isinstance(block.get("type"), str):
                    raise ValueError(f"content[{i}] needs a string 'type'")
                if block["type"] == "text" and not isinstance(block.get("text"), str):
                    raise ValueError(f"content[{i}] is a text block without a string 'text'")
            object.__setattr__(self, "content", blocks)
        unknown = set(self.usage) - USAGE_FIELDS
        if unknown:
            raise ValueError(
                f"unknown usage fields {sorted(unknown)}; known: {sorted(USAGE_FIELDS)}"
            )
        object.__setattr__(self, "usage", dict(self.usage))
        if self.stop_reason not in STOP_REASONS:
            raise ValueError(f"unknown stop_reason {self.stop_reason!r}; expected {STOP_REASONS}")
        if self.stop_details is not None:
            object.__setattr__(self, "stop_details", dict(self.stop_details))
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()):
            raise ValueError("headers must map strings to strings")
        object.__setattr__(self, "headers", dict(self.headers))
        if self.count < 1:
            raise ValueError("count must be at least 1")

    def blocks(self) -> list[dict[str, Any]]:
        """The response's ``content``."""
        if self.text is not None:
            return [{"type": "text", "text": self.text}]
        return [dict(block) for block in self.content or ()]

    def output_tokens(self) -> int:
        """Billed output tokens: every block's text, thinking included, as the API bills it."""
        return sum(_block_output_tokens(block) for block in self.blocks())

    @property
    def overrides_input_usage(self) -> bool:
        """Whether the script reports its own input-side usage (then the cache is left alone)."""
        return bool(INPUT_USAGE_FIELDS & set(self.usage))

    @classmethod
    def from_json(cls, data: Any) -> Script:
        """Parse one script from the control route's JSON; 400 ``ApiError`` when invalid."""
        if not isinstance(data, dict):
            raise invalid_request("each script must be an object")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise invalid_request(f"unknown script fields: {sorted(unknown)}")
        try:
            return cls(**cast(dict[str, Any], data))
        except (TypeError, ValueError, AttributeError) as exc:
            raise invalid_request(f"invalid script: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        """The script as the control route accepts it."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.content is not None:
            data["content"] = self.blocks()
        return data


def _block_output_tokens(block: Mapping[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return count_tokens(str(block.get("text", "")))
    if kind == "thinking":
        return count_tokens(str(block.get("thinking", "")))
    if kind == "tool_use":
        return count_tokens(str(block.get("name", ""))) + count_tokens(
            canonical_json(block.get("input", {}))
        )
    # Other blocks (redacted thinking, server tool results) bill their serialised form.
    return count_tokens(canonical_json(dict(block)))
