"""The typed tasks. Each module is the specification of one task: its tier, what a valid
request is, what the model is asked (laid out for caching), the output schema that holds every
invariant of a usable output, and how that output becomes the typed response.

:data:`TASKS` is the registry, RPC name -> task, and with it the one binding of RPC to tier:
a new task is one module and one line in :func:`_load`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from google.protobuf.message import Message

from tiergate.prompt import JsonObject, Prompt
from tiergate.tiers import Tier
from tiergate.v1 import usage_pb2

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


def no_problems(_request: Any, _output: JsonObject) -> list[str]:
    """For tasks whose output schema already says everything about a usable output."""
    return []


@dataclass(frozen=True)
class Task(Generic[Req, Resp]):
    """One task, as plain functions over its request type."""

    rpc: str
    """The RPC name in ``tiergate.v1.TaskService``."""
    tier: Tier
    """The tier that serves the task, fixed in code: callers choose a task, never a model."""
    validate: Callable[[Req], None]
    """Raise ``InvalidRequest`` with every field violation; bad input never reaches the model."""
    prompt: Callable[[Req], Prompt]
    """The cache-friendly prompt and output schema for a valid request."""
    respond: Callable[[Req, JsonObject, usage_pb2.Usage], Resp]
    """The typed response for a usable output."""
    size_field: str
    """The request field named when the prompt is too large for the model."""
    check: Callable[[Req, JsonObject], list[str]] = field(default=no_problems)
    """Problems with a schema-valid output that no schema can state and a re-ask may fix
    (empty when it is usable). By default none: the output schema says everything."""


def non_blank() -> JsonObject:
    """A string with at least one non-whitespace character (a pattern the API accepts)."""
    return {"type": "string", "pattern": r"\S"}


def clamp_unit(value: float) -> float:
    """``value`` within [0, 1]: the API's schemas cannot bound a number."""
    return min(1.0, max(0.0, float(value)))


def _load() -> Mapping[str, Task[Any, Any]]:
    from tiergate.tasks import answer, classify, extract, moderate, reason, summarize

    # One line per task; each task states its tier: five high-volume tasks on the fast tier,
    # Reason, which needs depth, on the balanced tier.
    tasks = (classify.TASK, summarize.TASK, extract.TASK, answer.TASK, moderate.TASK, reason.TASK)
    return {task.rpc: task for task in tasks}


TASKS: Final[Mapping[str, Task[Any, Any]]] = _load()
