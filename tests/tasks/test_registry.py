"""Each task module states its own RPC and tier; the registry holds them all."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from tiergate import tasks
from tiergate.tasks import TASKS, classify, no_problems, reason
from tiergate.tasks.scoring import Scoring, field_set
from tiergate.tiers import Tier


class TestEachTaskStatesItsBinding:
    def test_every_task_module_is_registered(self) -> None:
        """Each module of the package (but the shapes: task, scoring) has a TASK, and it is what
        the registry serves for its RPC: a task module cannot be forgotten in the registry."""
        shapes = {"task", "scoring"}
        names = [m.name for m in pkgutil.iter_modules(tasks.__path__) if m.name not in shapes]
        served = [importlib.import_module(f"tiergate.tasks.{name}").TASK for name in names]
        assert all(TASKS[task.rpc] is task for task in served)
        assert len(served) == len(TASKS)

    def test_each_task_states_its_tier(self) -> None:
        """The tier is part of the task's definition: the module's TASK carries it."""
        assert classify.TASK.tier is Tier.FAST
        assert reason.TASK.tier is Tier.BALANCED

    def test_only_the_caller_schema_tasks_check_beyond_their_schema(self) -> None:
        """Extract and Read hold outputs to the caller's full schema; every other task's schema
        says everything: its check is the empty default."""
        with_check = {rpc for rpc, task in TASKS.items() if task.check is not no_problems}
        assert with_check == {"Extract", "Read"}

    def test_only_read_takes_files(self) -> None:
        """Read alone states ``admit``, so it alone takes messages past max_message_bytes."""
        assert {rpc for rpc, task in TASKS.items() if task.admit is not None} == {"Read"}


class TestEachTaskStatesItsFacts:
    def test_free_text_is_never_served_from_the_response_cache(self) -> None:
        """The tasks whose answer is a function of the request are cacheable; Summarize and
        Reason, free text a caller may ask again for afresh, are not."""
        for rpc in ("Classify", "Extract", "Answer", "Moderate", "Read"):
            assert TASKS[rpc].cacheable, rpc
        for rpc in ("Summarize", "Reason"):
            assert not TASKS[rpc].cacheable, rpc

    def test_free_text_is_judged_and_the_rest_scored_exactly(self) -> None:
        """Summarize and Reason are judged, each with a brief for the judge and the field the
        judge compares; the other tasks are scored exactly."""
        for rpc, field in (("Summarize", "summary"), ("Reason", "answer")):
            judged = TASKS[rpc].scoring.judged
            assert judged is not None
            assert judged.field == field
            assert judged.brief.strip()
        for rpc in ("Classify", "Extract", "Answer", "Moderate", "Read"):
            assert TASKS[rpc].scoring.score is not None, rpc

    def test_a_scoring_is_exact_or_judged(self) -> None:
        """A scoring with both an exact score and a judge, or neither, is refused."""
        with pytest.raises(ValueError, match="exact"):
            Scoring(name="x", unit="x", fields=field_set("x"), check=lambda r, e: [])

    def test_each_task_has_a_one_line_summary(self) -> None:
        """The CLI's list of commands takes each task's summary: one short line."""
        for task in TASKS.values():
            assert task.summary
            assert "\n" not in task.summary
            assert len(task.summary) < 60
