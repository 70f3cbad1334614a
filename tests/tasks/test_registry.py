"""Each task module states its own RPC and tier; the registry holds them all."""

from __future__ import annotations

import importlib
import pkgutil

from tiergate import tasks
from tiergate.tasks import TASKS, classify, no_problems, reason
from tiergate.tiers import Tier


class TestEachTaskStatesItsBinding:
    def test_every_task_module_is_registered(self) -> None:
        """Each module of the package (but the task shape) has a TASK, and it is what the
        registry serves for its RPC: a task module cannot be forgotten in the registry."""
        names = [m.name for m in pkgutil.iter_modules(tasks.__path__) if m.name != "task"]
        served = [importlib.import_module(f"tiergate.tasks.{name}").TASK for name in names]
        assert all(TASKS[task.rpc] is task for task in served)
        assert len(served) == len(TASKS)

    def test_each_task_states_its_tier(self) -> None:
        """The tier is part of the task's definition: the module's TASK carries it."""
        assert classify.TASK.tier is Tier.FAST
        assert reason.TASK.tier is Tier.BALANCED

    def test_only_extract_checks_beyond_its_schema(self) -> None:
        """Every other task's schema says everything: its check is the empty default."""
        with_check = {rpc for rpc, task in TASKS.items() if task.check is not no_problems}
        assert with_check == {"Extract"}
