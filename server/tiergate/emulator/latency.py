"""Simulated response latency.

Mode ``"none"`` answers at once; mode ``"seed"`` follows the seed article's table per model family
(time to first token, then output tokens at a steady rate), times a scale factor. A fixed delay
applies to every request on top of either mode (benchmarks use "answers after 2 s").

    >>> LatencyModel("seed").plan("claude-haiku-4-5", 85)
    LatencyPlan(first_token_s=0.12, generation_s=1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LatencyMode = Literal["none", "seed"]


@dataclass(frozen=True)
class FamilyLatency:
    """One model family's figures from the seed article."""

    first_token_s: float
    output_tokens_per_s: float


SEED_LATENCY: dict[str, FamilyLatency] = {
    "haiku": FamilyLatency(0.120, 85.0),
    "sonnet": FamilyLatency(0.280, 52.0),
    "opus": FamilyLatency(0.450, 28.0),
}
_DEFAULT_FAMILY = "sonnet"


@dataclass(frozen=True)
class LatencyPlan:
    """How long to wait before the response begins, then before it completes."""

    first_token_s: float
    generation_s: float


def model_family(model: str) -> str:
    """The seed-table family of ``model`` (sonnet when the name says nothing)."""
    for family in SEED_LATENCY:
        if family in model:
            return family
    return _DEFAULT_FAMILY


@dataclass(frozen=True)
class LatencyModel:
    """Computes simulated delays; pure, so the server decides when to sleep."""

    mode: LatencyMode = "none"
    scale: float = 1.0
    fixed_delay_s: float = 0.0

    def plan(self, model: str, output_tokens: int) -> LatencyPlan:
        """Delays for a response of ``output_tokens`` tokens from ``model``."""
        if self.mode == "none":
            return LatencyPlan(self.fixed_delay_s, 0.0)
        figures = SEED_LATENCY[model_family(model)]
        first_token = figures.first_token_s * self.scale
        generation = output_tokens / figures.output_tokens_per_s * self.scale
        return LatencyPlan(self.fixed_delay_s + first_token, generation)
