"""The six typed tasks. Each module is the specification of one task: what a valid request
is, what the model is asked (laid out for caching), what output it must give, and how that
output becomes the typed response. :data:`TASKS` maps RPC names to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from google.protobuf.message import Message

from tiergate.prompt import JsonObject, Prompt
from tiergate.v1 import usage_pb2

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


@dataclass(frozen=True)
class Task(Generic[Req, Resp]):
    """One task, as plain functions over its request type."""

    rpc: str
    """The RPC name in ``tiergate.v1.TaskService``."""
    validate: Callable[[Req], None]
    """Raise ``InvalidRequest`` with every field violation; bad input never reaches the model."""
    prompt: Callable[[Req], Prompt]
    """The cache-friendly prompt and output schema for a valid request."""
    check: Callable[[Req, JsonObject], list[str]]
    """Problems with a schema-valid output that a re-ask may fix (empty when it is usable)."""
    respond: Callable[[Req, JsonObject, usage_pb2.Usage], Resp]
    """The typed response for a usable output."""
    size_field: str
    """The request field named when the prompt is too large for the model."""


def no_problems(_request: Any, _output: JsonObject) -> list[str]:
    """For tasks whose schema already says everything about a usable output."""
    return []


def _load() -> Mapping[str, Task[Any, Any]]:
    from tiergate.tasks import answer, classify, extract, moderate, reason, summarize

    tasks = (classify.TASK, summarize.TASK, extract.TASK, answer.TASK, moderate.TASK, reason.TASK)
    return {task.rpc: task for task in tasks}


TASKS: Final[Mapping[str, Task[Any, Any]]] = _load()
