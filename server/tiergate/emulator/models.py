"""The emulator's own table of model limits, as the API documents them.

Deliberately independent of the service's ``models.toml``: the emulator plays the API, so its
facts come from the API's documentation, not from our reading of it. A test compares the two
tables on every model both list, so a drift fails loudly.

Source: Anthropic's models overview (context windows, max output) and prompt-caching
(minimum cacheable prefix) documentation, retrieved 2026-11-24, as summarised in the project's
API reference notes.

    >>> MODELS["claude-sonnet-4-6"].context_window_tokens
    1000000
    >>> resolve_model("claude-haiku-4-5-20251001", MODELS)
    'claude-haiku-4-5'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import not_found

# Source: the models overview and prompt-caching documentation, retrieved 2026-11-24
# (https://docs.anthropic.com/en/docs/about-claude/models/overview,
# https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching).


@dataclass(frozen=True)
class ModelLimits:
    """What one model accepts."""

    context_window_tokens: int
    """Longest prompt; a prompt that fits but leaves less than ``max_tokens`` stops early with
    ``model_context_window_exceeded``."""
    max_output_tokens: int
    """Largest ``max_tokens``."""
    min_cacheable_tokens: int
    """Shortest prefix the prompt cache stores."""


MODELS: Mapping[str, ModelLimits] = MappingProxyType(
    {
        "claude-haiku-4-5": ModelLimits(200_000, 64_000, 4096),
        "claude-sonnet-4-5": ModelLimits(200_000, 64_000, 1024),
        "claude-sonnet-4-6": ModelLimits(1_000_000, 128_000, 1024),
        "claude-opus-4-5": ModelLimits(200_000, 64_000, 4096),
        "claude-opus-4-6": ModelLimits(1_000_000, 128_000, 4096),
        "claude-opus-4-7": ModelLimits(1_000_000, 128_000, 2048),
    }
)
"""The models the emulator knows (others get 404), by alias."""

_DATE_SUFFIX = re.compile(r"-\d{8}$")


def resolve_model(model: str, known: Mapping[str, Any]) -> str:
    """Map ``model`` (alias or dated id such as ``claude-haiku-4-5-20251001``) to a known alias.

    Raises a 404 ``ApiError`` for models the emulator does not know.
    """
    if model in known:
        return model
    undated = _DATE_SUFFIX.sub("", model)
    if undated in known:
        return undated
    raise not_found(f"model: {model}")
