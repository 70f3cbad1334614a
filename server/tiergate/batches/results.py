"""One upstream batch result made into the item's ``BatchResult``, as the unary RPC would
answer: the task's own output parsing and checks, then its typed response priced at the batch
price. An unusable output is not re-asked: the item ends with OUTPUT_INVALID (its billed call
still counted), so a batch never spends at the interactive price behind the caller's back;
resubmit such items, in a batch or interactively.
"""

from __future__ import annotations

import functools
from typing import Any

import grpc
from anthropic.types.messages import (
    MessageBatchIndividualResponse,
    MessageBatchSucceededResult,
)
from google.protobuf.message import Message
from google.rpc import status_pb2

from tiergate import errors
from tiergate.calls import sizing
from tiergate.calls.runner import TaskRunner
from tiergate.client import METHOD_NAMES
from tiergate.serving import status
from tiergate.tasks import TASKS
from tiergate.upstream.answers import InvalidAnswer, checked_bill
from tiergate.upstream.model_client import Completion
from tiergate.upstream.output import usable_output
from tiergate.v1 import batch_service_pb2

from .store import ItemOutcome, ItemRecord


def request_of(item: ItemRecord) -> Message:
    """The item's original task request, from the store."""
    request: Message = TASKS[item.task].request_type.FromString(item.request)
    return request


def outcome_of(
    item: ItemRecord, answer: MessageBatchIndividualResponse, runner: TaskRunner
) -> ItemOutcome:
    """What the item's upstream result means for the caller."""
    kind = answer.result.type
    if isinstance(answer.result, MessageBatchSucceededResult):
        return _answered(item, answer.result.message, runner)
    if kind == "expired":
        err: errors.TiergateError = errors.DeadlineExceeded(
            "the upstream batch expired (24 hours) before the item was answered"
        )
        return failed(item, "expired", status.to_status(err))
    if kind == "canceled":
        return cancelled(item)
    error = getattr(getattr(answer.result, "error", None), "error", None)
    kind_name = str(getattr(error, "type", "") or "api_error")
    if kind_name in ("api_error", "overloaded_error"):
        err = errors.UpstreamUnavailable(
            f"the model API failed the item ({kind_name})",
            retry_after_s=errors.DEFAULT_RETRY_AFTER_S,
        )
    else:
        err = errors.UpstreamRejected(f"the model API rejected the item ({kind_name})")
    return failed(item, "failed", status.to_status(err))


def cancelled(item: ItemRecord) -> ItemOutcome:
    """The outcome of an item cancelled before it was answered."""
    return failed(
        item,
        "cancelled",
        status_pb2.Status(
            code=grpc.StatusCode.CANCELLED.value[0],
            message="the batch was cancelled before the item was answered",
        ),
    )


def failed(item: ItemRecord, outcome: Any, error: status_pb2.Status) -> ItemOutcome:
    result = batch_service_pb2.BatchResult(custom_id=item.custom_id, index=item.index, error=error)
    return ItemOutcome(item.index, outcome, result.SerializeToString())


def _answered(item: ItemRecord, message: Any, runner: TaskRunner) -> ItemOutcome:
    task = TASKS[item.task]
    tier = task.tier
    request = request_of(item)
    try:
        message, tokens = checked_bill(message, runner.facts(tier))
    except InvalidAnswer as bad:
        # Nothing of an impossible bill reaches the item's Usage; the item can be resubmitted.
        err = errors.UpstreamInvalidResponse(
            f"the model API answered the item with an invalid message: {bad}",
            retry_after_s=errors.DEFAULT_RETRY_AFTER_S,
        )
        return failed(item, "failed", status.to_status(err))
    completion = Completion(
        output={},
        model=message.model,
        usage=tokens,
        billed_calls=1,
        attempts=1,
        request_id=message.id,
    )
    usage = runner.bill(tier, completion, batch=True).usage()
    result = batch_service_pb2.BatchResult(custom_id=item.custom_id, index=item.index)
    outcome: Any = "succeeded"
    try:
        output = usable_output(
            message,
            task.prompt(request),
            functools.partial(task.check, request),
            functools.partial(sizing.largest_field, request),
        )
        response = task.respond(request, output, usage)
        # The result's field is named as the client method (``count_words``).
        getattr(result, METHOD_NAMES[item.task]).CopyFrom(response)
    except errors.TiergateError as err:
        result.error.CopyFrom(status.to_status(err))
        outcome = "failed"
    result.usage.CopyFrom(usage)
    return ItemOutcome(
        item.index,
        outcome,
        result.SerializeToString(),
        model=message.model,
        inference_geo=tokens.inference_geo,
        tokens=(
            tokens.input_tokens,
            tokens.cache_write_5m_tokens,
            tokens.cache_write_1h_tokens,
            tokens.cache_read_tokens,
            tokens.output_tokens,
        ),
        billed_calls=1,
    )
