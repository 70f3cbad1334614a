"""Model tiers: a tier names a role (fast, balanced, frontier); configuration says which model
serves it. Each task states its own tier, fixed in code (see :mod:`tiergate.tasks`): callers
choose a task, never a model.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from tiergate.v1 import usage_pb2


class Tier(enum.Enum):
    """A price/quality role, with its proto enum value."""

    FAST = usage_pb2.TIER_FAST
    BALANCED = usage_pb2.TIER_BALANCED
    FRONTIER = usage_pb2.TIER_FRONTIER

    @property
    def label(self) -> str:
        return self.name.lower()


DEFAULT_MODELS: Final[Mapping[Tier, str]] = {
    Tier.FAST: "claude-haiku-4-5",
    Tier.BALANCED: "claude-sonnet-4-6",
    Tier.FRONTIER: "claude-opus-4-7",
}
