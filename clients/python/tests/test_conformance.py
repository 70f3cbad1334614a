"""The shared conformance cases (``clients/conformance/cases.json``), through the sync and the
asyncio client, against the live server."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from emulator_control import EmulatorControl
from google.protobuf import json_format
from google.protobuf.message import Message

from tiergate.client import ENDED_STATES, AsyncTaskClient, TaskClient, TiergateError
from tiergate.v1 import batch_service_pb2 as bpb
from tiergate.v1 import task_service_pb2 as pb

CASES_FILE = Path(__file__).resolve().parents[2] / "conformance" / "cases.json"
CASES: list[dict[str, Any]] = json.loads(CASES_FILE.read_text())["cases"]


def method_name(rpc: str) -> str:
    """The client method of an RPC: its name in snake_case (``CountWords``: ``count_words``)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", rpc).lower()


def call_sync(target: str, case: dict[str, Any], request: Message) -> Message:
    timeout_s = case["timeout_ms"] / 1000 if "timeout_ms" in case else None
    with TaskClient(target) as client:
        reply: Message = getattr(client, method_name(case["rpc"]))(request, timeout_s=timeout_s)
        return reply


def call_async(target: str, case: dict[str, Any], request: Message) -> Message:
    timeout_s = case["timeout_ms"] / 1000 if "timeout_ms" in case else None

    async def call() -> Message:
        async with AsyncTaskClient(target) as client:
            reply: Message = await getattr(client, method_name(case["rpc"]))(
                request, timeout_s=timeout_s
            )
            return reply

    return asyncio.run(call())


def stream_sync(target: str, case: dict[str, Any], request: Message) -> list[Message]:
    timeout_s = case["timeout_ms"] / 1000 if "timeout_ms" in case else None
    with TaskClient(target) as client:
        return list(getattr(client, method_name(case["rpc"]))(request, timeout_s=timeout_s))


def stream_async(target: str, case: dict[str, Any], request: Message) -> list[Message]:
    timeout_s = case["timeout_ms"] / 1000 if "timeout_ms" in case else None

    async def read() -> list[Message]:
        async with AsyncTaskClient(target) as client:
            method = getattr(client, method_name(case["rpc"]))
            return [message async for message in method(request, timeout_s=timeout_s)]

    return asyncio.run(read())


def check_stream(messages: list[Any], expect: dict[str, Any]) -> None:
    """At least ``min_messages``; only the last is complete and carries usage; the last's
    response is checked as a unary one."""
    assert len(messages) >= expect["stream"]["min_messages"], messages
    *partials, last = messages
    assert last.complete
    assert not any(m.complete or m.response.HasField("usage") for m in partials)
    check_success(last.response, expect)


_POLL_S = 0.05
_BATCH_BOUND_S = 30.0


def batch_sync(
    target: str, case: dict[str, Any], request: Message
) -> tuple[bpb.Batch, list[bpb.BatchResult]]:
    assert isinstance(request, bpb.CreateBatchRequest)
    with TaskClient(target) as client:
        batch = client.create_batch(request.items)
        give_up = time.monotonic() + _BATCH_BOUND_S
        while batch.state not in ENDED_STATES:
            assert time.monotonic() < give_up, "the batch never ended"
            time.sleep(_POLL_S)
            batch = client.get_batch(batch.name)
        return batch, list(client.batch_results(batch.name))


def batch_async(
    target: str, case: dict[str, Any], request: Message
) -> tuple[bpb.Batch, list[bpb.BatchResult]]:
    assert isinstance(request, bpb.CreateBatchRequest)

    async def run() -> tuple[bpb.Batch, list[bpb.BatchResult]]:
        async with AsyncTaskClient(target) as client:
            batch = await client.create_batch(request.items)
            give_up = time.monotonic() + _BATCH_BOUND_S
            while batch.state not in ENDED_STATES:
                assert time.monotonic() < give_up, "the batch never ended"
                await asyncio.sleep(_POLL_S)
                batch = await client.get_batch(batch.name)
            return batch, [result async for result in client.batch_results(batch.name)]

    return asyncio.run(run())


def check_batch(found: tuple[bpb.Batch, list[bpb.BatchResult]], expect: dict[str, Any]) -> None:
    batch, results = found
    assert bpb.Batch.State.Name(batch.state) == expect["batch"]["state"]
    assert [r.custom_id for r in results] == expect["batch"]["results"]
    for result in results:
        kind = result.WhichOneof("result")
        assert kind not in (None, "error"), result
        usage = getattr(result, kind).usage
        assert usage.service_tier == "batch"
        assert usage.cost.total_nanos > 0
    total = sum(getattr(r, r.WhichOneof("result") or "").usage.cost.total_nanos for r in results)
    assert batch.usage.cost.total_nanos == total


def at(document: Any, path: str) -> Any:
    """The value at a dotted path; a number indexes a list."""
    for part in path.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def check_field(value: Any, check: dict[str, Any], path: str) -> None:
    if "equals" in check:
        assert value == check["equals"], f"{path}: {value!r} != {check['equals']!r}"
    if "one_of" in check:
        assert value in check["one_of"], f"{path}: {value!r} not in {check['one_of']!r}"
    if check.get("non_empty"):
        assert isinstance(value, str | list | dict), f"{path}: {value!r} has no length"
        assert value, f"{path} is empty"
    if "between" in check:
        low, high = check["between"]
        assert low <= float(value) <= high, f"{path}: {value!r} not in [{low}, {high}]"


def check_success(reply: Message, expect: dict[str, Any]) -> None:
    document = json_format.MessageToDict(
        reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    usage, cost = document["usage"], document["usage"]["cost"]
    assert usage["tier"] == expect["tier"]
    assert usage["model"]
    assert int(usage["input_tokens"]) > 0
    assert int(usage["output_tokens"]) > 0
    parts = ("input_nanos", "cache_write_nanos", "cache_read_nanos", "output_nanos")
    assert int(cost["total_nanos"]) > 0
    assert int(cost["total_nanos"]) == sum(int(cost[p]) for p in parts)
    for path, check in expect.get("fields", {}).items():
        check_field(at(document, path), check, path)


def check_failure(error: TiergateError, expect: dict[str, Any]) -> None:
    assert error.code.name == expect["code"], error
    if "reason" in expect:
        assert (error.reason, error.domain) == (expect["reason"], "tiergate")
    if "violations" in expect:
        assert sorted(v.field for v in error.violations) == expect["violations"]


@pytest.mark.parametrize("call", [call_sync, call_async], ids=["sync", "asyncio"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any], call: Any, target: str, emulator: EmulatorControl) -> None:
    """Each shared case behaves as cases.json says, through both Python clients."""
    if "faults" in case:
        emulator.reset()
        emulator.inject(case["faults"])
    batch = case["rpc"] == "Batch"
    streamed = case["rpc"].startswith("Stream")
    task = case["rpc"].removeprefix("Stream")
    kind = bpb.CreateBatchRequest if batch else getattr(pb, f"{task}Request")
    request = json_format.ParseDict(case["request"], kind())
    if batch:
        call = batch_sync if call is call_sync else batch_async
    if streamed:
        call = stream_sync if call is call_sync else stream_async
    expect = case["expect"]
    if expect["code"] == grpc.StatusCode.OK.name:
        reply = call(target, case, request)
        if batch:
            check_batch(reply, expect)
        elif streamed:
            check_stream(reply, expect)
        else:
            check_success(reply, expect)
    else:
        with pytest.raises(TiergateError) as raised:
            call(target, case, request)
        check_failure(raised.value, expect)
    if "upstream_requests" in expect:
        assert len(emulator.requests()) == expect["upstream_requests"]
