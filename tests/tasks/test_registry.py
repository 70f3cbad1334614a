"""Each task module states its own RPC, tier and size field; the registry holds them all."""

from __future__ import annotations

from types import ModuleType

import pytest

from tiergate.tasks import (
    TASKS,
    answer,
    classify,
    extract,
    moderate,
    no_problems,
    reason,
    summarize,
)
from tiergate.tiers import Tier


class TestEachTaskStatesItsBinding:
    @pytest.mark.parametrize(
        ("module", "rpc", "tier", "size_field"),
        [
            (classify, "Classify", Tier.FAST, "text"),
            (summarize, "Summarize", Tier.FAST, "text"),
            (extract, "Extract", Tier.FAST, "text"),
            (answer, "Answer", Tier.FAST, "documents"),
            (moderate, "Moderate", Tier.FAST, "text"),
            (reason, "Reason", Tier.BALANCED, "question"),
        ],
    )
    def test_module_task_is_the_registered_one(
        self, module: ModuleType, rpc: str, tier: Tier, size_field: str
    ) -> None:
        """The module's TASK is what the registry serves for its RPC, on its stated tier."""
        assert TASKS[rpc] is module.TASK
        assert (module.TASK.rpc, module.TASK.tier, module.TASK.size_field) == (
            rpc,
            tier,
            size_field,
        )

    def test_only_extract_checks_beyond_its_schema(self) -> None:
        """Every other task's schema says everything: its check is the empty default."""
        with_check = {rpc for rpc, task in TASKS.items() if task.check is not no_problems}
        assert with_check == {"Extract"}
