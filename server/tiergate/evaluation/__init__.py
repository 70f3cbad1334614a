"""Proof per tier: run a task on several tiers over labelled data and say which tier to keep.

    tiergate eval classify --data examples/eval/tickets.jsonl --tiers fast,balanced

:mod:`.dataset` loads the labelled lines, :mod:`.scorers` scores a response against its
expected fields (:mod:`.judge` for free text), :mod:`.runner` runs every item on every tier
through the server's own task code, :mod:`.verdict` turns the scores into accuracy, cost and
the keep-or-upgrade recommendation, and :mod:`.report` draws it.
"""

from __future__ import annotations

from typing import Any

from tiergate.tasks import Task
from tiergate.tiers import Tier

TIER_ORDER = (Tier.FAST, Tier.BALANCED, Tier.FRONTIER)
"""Tiers from cheapest to dearest role."""


def home_tier(task: Task[Any, Any]) -> Tier:
    """The tier the server binds ``task`` to."""
    return task.tier


def default_tiers(task: Task[Any, Any]) -> tuple[Tier, ...]:
    """The task's own tier and the next one up (just its own on the frontier tier)."""
    index = TIER_ORDER.index(home_tier(task))
    return TIER_ORDER[index : index + 2]


def parse_tier(label: str) -> Tier:
    """``fast`` -> ``Tier.FAST``; ValueError naming the known labels otherwise."""
    for tier in Tier:
        if tier.label == label.strip().lower():
            return tier
    known = ", ".join(t.label for t in TIER_ORDER)
    raise ValueError(f"unknown tier {label!r} (known: {known})")
