"""The verdict: accuracy with its interval, cost per correct answer, and which tier to keep.

The rule is the article's: "If Haiku scores within 3-5% of Sonnet on your task, the savings
are justified; if the gap exceeds 10%, the cheaper model isn't actually cheaper." The gap is
measured in accuracy points between the cheapest tier and the most accurate one:

- gap <= 5 points: keep the cheapest tier within 5 points of the best;
- gap > 10 points: move up to the cheapest tier within 5 points of the best;
- in between: a judgement call; the cheapest tier stays, and the reason shows what the extra
  accuracy costs per correct answer.

Gaps are compared as exact fractions, so 5.0 points is 5.0 and not 5.000000000001.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from tiergate.evaluation import TIER_ORDER
from tiergate.ledger import dollars
from tiergate.tiers import Tier

Z95 = 1.959963984540054
"""The standard normal quantile for a two-sided 95% interval."""
KEEP_POINTS = Fraction(5)
MOVE_UP_POINTS = Fraction(10)


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``correct`` successes in ``n`` trials; (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def per(total: int, count: int) -> int | None:
    """``total / count`` rounded half up to a whole nano-dollar; None when count is 0."""
    if count == 0:
        return None
    return (2 * total + count) // (2 * count)


@dataclass(frozen=True)
class TierResult:
    """What one tier did over the dataset."""

    tier: Tier
    model: str
    scored: int
    """Items that got a response and were scored."""
    correct: int
    errors: dict[str, int] = field(default_factory=dict)
    """Items that got no response (or no judgement), by status."""
    cost_nanos: int = 0
    """Everything the tier's calls billed, failed calls included (never the judge's cost)."""
    latencies_ms: tuple[float, ...] = ()
    matched: int = 0
    predicted: int = 0
    expected: int = 0

    @property
    def calls(self) -> int:
        return self.scored + sum(self.errors.values())

    @property
    def accuracy(self) -> Fraction:
        """Correct answers over every item run: an error is an answer the caller did not get."""
        return Fraction(self.correct, self.calls) if self.calls else Fraction(0)

    @property
    def cost_per_1k_nanos(self) -> int | None:
        return per(self.cost_nanos * 1000, self.calls)

    @property
    def cost_per_correct_nanos(self) -> int | None:
        return per(self.cost_nanos, self.correct)

    def f1(self) -> float:
        if self.predicted == 0 and self.expected == 0:
            return 1.0
        return 2 * self.matched / (self.predicted + self.expected)

    def to_json(self) -> dict[str, Any]:
        lo, hi = wilson(self.correct, self.calls)
        return {
            "tier": self.tier.label,
            "model": self.model,
            "scored": self.scored,
            "correct": self.correct,
            "accuracy": round(float(self.accuracy), 6),
            "ci95": [round(lo, 6), round(hi, 6)],
            "errors": dict(sorted(self.errors.items())),
            "cost_nanos": self.cost_nanos,
            "cost_per_1k_nanos": self.cost_per_1k_nanos,
            "cost_per_correct_nanos": self.cost_per_correct_nanos,
            "latency_ms": {
                "p50": round(percentile(self.latencies_ms, 50), 3),
                "p95": round(percentile(self.latencies_ms, 95), 3),
            },
            "f1": round(self.f1(), 6),
        }


@dataclass(frozen=True)
class Recommendation:
    tier: Tier
    gap_points: Fraction
    """Accuracy points between the cheapest tier and the best one."""
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier.label,
            "gap_points": round(float(self.gap_points), 2),
            "reason": self.reason,
        }


def _cost_rank(result: TierResult) -> tuple[float, int]:
    per_call = result.cost_nanos / result.calls if result.calls else math.inf
    return per_call, TIER_ORDER.index(result.tier)


def recommend(results: Sequence[TierResult]) -> Recommendation:
    """The article's rule over ``results`` (at least one tier)."""
    if not results:
        raise ValueError("no tier to recommend")
    by_cost = sorted(results, key=_cost_rank)
    cheapest = by_cost[0]
    best = max(results, key=lambda r: (r.accuracy, -by_cost.index(r)))
    gap = (best.accuracy - cheapest.accuracy) * 100
    within = next(r for r in by_cost if (best.accuracy - r.accuracy) * 100 <= KEEP_POINTS)
    if len(results) == 1:
        return Recommendation(cheapest.tier, gap, "only one tier was evaluated")
    gap_text = f"{float(gap):.1f} points"
    if best is cheapest:
        return Recommendation(
            cheapest.tier,
            gap,
            f"{cheapest.tier.label} is the cheapest tier and none is more accurate: keep it",
        )
    if gap <= KEEP_POINTS:
        return Recommendation(
            within.tier,
            gap,
            f"{within.tier.label} is within {gap_text} of the most accurate tier"
            f" ({best.tier.label}): the savings are justified",
        )
    if gap > MOVE_UP_POINTS:
        return Recommendation(
            within.tier,
            gap,
            f"{cheapest.tier.label} trails {best.tier.label} by {gap_text} (more than"
            f" {MOVE_UP_POINTS}): the cheaper tier is not cheaper; move up to {within.tier.label}",
        )
    return Recommendation(
        cheapest.tier,
        gap,
        f"a judgement call: {cheapest.tier.label} trails {best.tier.label} by {gap_text}"
        f" (between {KEEP_POINTS} and {MOVE_UP_POINTS}); {_extra_cost(cheapest, best)}",
    )


def _extra_cost(cheap: TierResult, dear: TierResult) -> str:
    cheap_per, dear_per = cheap.cost_per_correct_nanos, dear.cost_per_correct_nanos
    if cheap_per is None or dear_per is None:
        return "one of them answered nothing correctly"
    return (
        f"a correct answer costs {dollars(cheap_per)} on {cheap.tier.label} and"
        f" {dollars(dear_per)} on {dear.tier.label} ({dollars(dear_per - cheap_per)} more for"
        f" {float((dear.accuracy - cheap.accuracy) * 100):.1f} points)"
    )


AVERAGE_DIGITS = 4
"""Significant digits of an average cost (per 1,000 calls, per correct answer)."""


def average_dollars(nanos: int) -> str:
    """An average cost in dollars to four significant digits: it is a quotient, not an amount
    billed, so printing it to the nano-dollar would claim an exactness it lacks.

    >>> average_dollars(780_083_333), average_dollars(222_882), average_dollars(501)
    ('$0.7801', '$0.0002229', '$0.000000501')
    """
    step = 10 ** max(len(str(abs(nanos))) - AVERAGE_DIGITS, 0)
    rounded = (abs(nanos) + step // 2) // step * step
    return dollars(-rounded if nanos < 0 else rounded)


@dataclass(frozen=True)
class Verdict:
    """The whole result of an evaluation."""

    task: str
    items: int
    tiers: list[TierResult]
    recommendation: Recommendation
    scorer: str
    judged: bool
    unit: str = "item"
    """What the per-tier ``f1`` counts (label, field, citation, verdict, ...)."""
    judge_model: str | None = None
    judge_cost_nanos: int = 0
    skipped_lines: int = 0

    def to_json(self) -> dict[str, Any]:
        """The documented shape, plus ``scorer`` (how items were scored, judged or not) and each
        tier's ``f1`` over the scorer's units."""
        scorer: dict[str, Any] = {"name": self.scorer, "f1_unit": self.unit, "judged": self.judged}
        if self.judged:
            scorer.update(judge_model=self.judge_model, judge_cost_nanos=self.judge_cost_nanos)
        return {
            "task": self.task,
            "items": self.items,
            "tiers": [result.to_json() for result in self.tiers],
            "recommendation": self.recommendation.to_json(),
            "scorer": scorer,
        }
