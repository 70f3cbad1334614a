"""What a task is: plain functions over its request type, its tier and its other facts.

The shapes every task module fills in, apart from the registry in :mod:`tiergate.tasks` so a
task module never imports the package that lists it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from tiergate.calls.prompt import JsonObject, Prompt
from tiergate.ledger import ModelFacts
from tiergate.tasks.scoring import Scoring
from tiergate.tiers import Tier
from tiergate.v1 import usage_pb2

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


def no_problems(_request: Any, _output: JsonObject) -> list[str]:
    """For tasks whose output schema already says everything about a usable output."""
    return []


@dataclass(frozen=True, kw_only=True)
class Task(Generic[Req, Resp]):
    """One task: plain functions over its request type, and the facts every layer reads from
    here rather than from a table of its own."""

    rpc: str
    """The RPC name in ``tiergate.v1.TaskService``."""
    tier: Tier
    """The tier that serves the task, fixed in code: callers choose a task, never a model."""
    request_type: type[Req]
    """The RPC's request message (the contract test holds it to the service descriptor)."""
    response_type: type[Resp]
    """The RPC's response message."""
    summary: str
    """One line saying what the task does, for ``tiergate --help`` (``assign one of your
    labels to a text``)."""
    cacheable: bool
    """Whether the response cache may serve an identical request again: true when the answer
    is a function of the request; free text a caller may ask again for a fresh answer is not."""
    scoring: Scoring
    """How ``tiergate eval`` and the shadow score a response against the expected one."""
    validate: Callable[[Req], None]
    """Raise ``InvalidRequest`` with every field violation; bad input never reaches the model."""
    prompt: Callable[[Req], Prompt]
    """The cache-friendly prompt and output schema for a valid request."""
    respond: Callable[[Req, JsonObject, usage_pb2.Usage], Resp]
    """The typed response for a usable output."""
    admit: Callable[[Req, Serving], None] | None = None
    """For tasks that send files: the checks that depend on the model serving the task and on
    the provider (page limit, request-size limit), raising ``InvalidRequest``. A task with it
    takes gRPC messages up to the provider's request-size limit (``TIERGATE_UPLOAD_MAX_BYTES``);
    the others keep ``TIERGATE_MAX_MESSAGE_BYTES``."""
    check: Callable[[Req, JsonObject], list[str]] = field(default=no_problems)
    """Problems with a schema-valid output that no schema can state and a re-ask may fix
    (empty when it is usable). By default none: the output schema says everything."""


@dataclass(frozen=True)
class Serving:
    """What a task's ``admit`` checks a request against."""

    facts: ModelFacts
    """The model that will read the request."""
    max_request_bytes: int
    """The provider's request-size limit, as the API receives the body (base64 included)."""


def non_blank() -> JsonObject:
    """A string with at least one non-whitespace character (a pattern the API accepts)."""
    return {"type": "string", "pattern": r"\S"}


def clamp_unit(value: float) -> float:
    """``value`` within [0, 1]: the API's schemas cannot bound a number."""
    return min(1.0, max(0.0, float(value)))
