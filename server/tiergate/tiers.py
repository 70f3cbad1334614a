"""Model tiers and the one place that binds each RPC to its tier.

A tier names a role (fast, balanced, frontier); configuration says which model serves it.
The binding below is fixed in code on purpose: callers choose a task, never a model.
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

# RPC name -> tier. The five high-volume tasks run on the cheapest tier; only Reason, which
# needs depth, pays for the balanced one.
RPC_TIERS: Final[Mapping[str, Tier]] = {
    "Classify": Tier.FAST,
    "Summarize": Tier.FAST,
    "Extract": Tier.FAST,
    "Answer": Tier.FAST,
    "Moderate": Tier.FAST,
    "Reason": Tier.BALANCED,
}
