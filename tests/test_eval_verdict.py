"""The verdict: Wilson intervals, exact cost arithmetic, the article's rule at its boundaries."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tiergate.evaluation.verdict import (
    TierResult,
    Verdict,
    per,
    percentile,
    recommend,
    wilson,
)
from tiergate.tiers import Tier


def result(
    tier: Tier,
    correct: int,
    n: int = 1000,
    cost: int = 0,
    errors: dict[str, int] | None = None,
    latencies_ms: tuple[float, ...] = (),
) -> TierResult:
    return TierResult(
        tier, f"m-{tier.label}", n, correct, errors or {}, cost, latencies_ms=latencies_ms
    )


class TestWilson:
    def test_known_values(self) -> None:
        """8 of 10 gives (0.4902, 0.9433); 0 of 10 starts at 0; n = 0 says nothing (0, 1)."""
        lo, hi = wilson(8, 10)
        assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
        lo, hi = wilson(0, 10)
        assert lo == 0.0
        assert round(hi, 4) == 0.2775
        assert wilson(0, 0) == (0.0, 1.0)

    def test_interval_holds_the_rate_and_narrows_with_n(self) -> None:
        """The observed rate lies inside, and 100x the data gives a narrower interval."""
        small, large = wilson(7, 10), wilson(700, 1000)
        assert small[0] < 0.7 < small[1]
        assert large[1] - large[0] < small[1] - small[0]


class TestArithmetic:
    def test_cost_per_correct_and_per_1k_are_exact_integers(self) -> None:
        """Nano-dollars stay integers, rounded half up; none when nothing is correct."""
        r = TierResult(Tier.FAST, "m", scored=3, correct=2, cost_nanos=1001)
        assert r.cost_per_correct_nanos == 501  # 500.5 rounds up
        assert r.cost_per_1k_nanos == 333667  # 333666.67
        assert TierResult(Tier.FAST, "m", scored=3, correct=0).cost_per_correct_nanos is None
        assert per(10, 4) == 3

    def test_errors_count_as_wrong_answers(self) -> None:
        """An error is an answer the caller did not get: accuracy is over every item run."""
        r = TierResult(Tier.FAST, "m", scored=8, correct=8, errors={"UNAVAILABLE": 2})
        assert r.calls == 10
        assert r.accuracy == Fraction(8, 10)

    def test_percentile_nearest_rank(self) -> None:
        """p50 and p95 are values that occurred (nearest rank)."""
        values = [float(v) for v in range(1, 101)]
        assert percentile(values, 50) == 50.0
        assert percentile(values, 95) == 95.0
        assert percentile([3.0], 95) == 3.0
        assert percentile([], 50) == 0.0


class TestRule:
    """Best tier at 100%; the cheap tier's accuracy sets the gap in points (n = 1000)."""

    def pair(self, cheap_correct: int) -> tuple[TierResult, TierResult]:
        return result(Tier.FAST, cheap_correct, cost=1000), result(Tier.BALANCED, 1000, cost=3000)

    @pytest.mark.parametrize(
        ("cheap_correct", "points", "tier", "says"),
        [
            (951, "4.9", Tier.FAST, "savings are justified"),
            (950, "5.0", Tier.FAST, "savings are justified"),
            (900, "10.0", Tier.FAST, "judgement call"),
            (899, "10.1", Tier.BALANCED, "move up to balanced"),
        ],
    )
    def test_boundaries(self, cheap_correct: int, points: str, tier: Tier, says: str) -> None:
        """<= 5 keeps the cheap tier, 5 < gap <= 10 is a judgement call, > 10 moves up."""
        rec = recommend(self.pair(cheap_correct))
        assert rec.gap_points == Fraction(points)
        assert rec.tier is tier
        assert says in rec.reason

    def test_judgement_call_shows_what_extra_accuracy_costs(self) -> None:
        """Between the thresholds the reason prices a correct answer on both tiers."""
        rec = recommend(self.pair(920))
        # 1000 nanos / 920 correct = 1.087 -> 1; 3000 / 1000 = 3.
        assert "$0.000000001 on fast and $0.000000003 on balanced" in rec.reason
        assert "$0.000000002 more for 8.0 points" in rec.reason

    def test_move_up_goes_to_the_cheapest_tier_within_five_points(self) -> None:
        """With three tiers, a far-behind fast tier moves to balanced if it is close enough."""
        tiers = [
            result(Tier.FAST, 800, cost=1),
            result(Tier.BALANCED, 960, cost=3),
            result(Tier.FRONTIER, 990, cost=5),
        ]
        rec = recommend(tiers)
        assert rec.tier is Tier.BALANCED
        assert rec.gap_points == Fraction(19)

    def test_cheapest_is_by_measured_cost_not_by_name(self) -> None:
        """Configuration may put a dear model on the fast tier: cost per call decides."""
        tiers = [result(Tier.FAST, 990, cost=9000), result(Tier.BALANCED, 1000, cost=3000)]
        rec = recommend(tiers)
        assert rec.tier is Tier.BALANCED
        assert rec.gap_points == 0

    def test_equal_accuracy_keeps_the_cheaper(self) -> None:
        """A tie is no reason to pay more: the cheapest tier is (one of) the most accurate."""
        rec = recommend(self.pair(1000))
        assert rec.tier is Tier.FAST
        assert rec.reason == "fast is the cheapest tier and none is more accurate: keep it"


class TestJsonShape:
    def test_documented_keys_and_types(self) -> None:
        """The --json object: exactly the documented keys, accuracy a fraction, money integers."""
        tiers = [
            result(Tier.FAST, 9, n=10, cost=123, latencies_ms=(1.0, 2.0, 9.0)),
            result(Tier.BALANCED, 10, n=10, cost=456, errors={"UNAVAILABLE": 1}),
        ]
        verdict = Verdict("Classify", 11, tiers, recommend(tiers), "exact_label", False)
        data = verdict.to_json()
        assert set(data) == {"task", "items", "tiers", "recommendation", "scorer"}
        assert data["scorer"] == {"name": "exact_label", "f1_unit": "item", "judged": False}
        first = data["tiers"][0]
        assert set(first) == {
            "tier", "model", "scored", "correct", "accuracy", "ci95", "errors", "cost_nanos",
            "cost_per_1k_nanos", "cost_per_correct_nanos", "latency_ms", "f1",
        }  # fmt: skip
        assert first["accuracy"] == 0.9
        assert first["cost_nanos"] == 123
        assert first["cost_per_correct_nanos"] == 14  # 123 / 9 = 13.67
        assert first["latency_ms"] == {"p50": 2.0, "p95": 9.0}
        assert data["tiers"][1]["errors"] == {"UNAVAILABLE": 1}
        assert data["tiers"][1]["accuracy"] == round(10 / 11, 6)
        assert set(data["recommendation"]) == {"tier", "gap_points", "reason"}

    def test_judged_verdicts_say_so(self) -> None:
        """A judged task names its judge and the judge's cost, apart from the tiers'."""
        tiers = [result(Tier.FAST, 1, n=1)]
        verdict = Verdict(
            "Reason", 1, tiers, recommend(tiers), "judged_answer", True, "answer", "judge-m", 77
        )
        assert verdict.to_json()["scorer"] == {
            "name": "judged_answer",
            "f1_unit": "answer",
            "judged": True,
            "judge_model": "judge-m",
            "judge_cost_nanos": 77,
        }
