"""Failed calls as the caller sees them (status, ErrorInfo, RetryInfo and trailers), and as
the model client raises them against the emulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anthropic
import grpc
import pytest
from google.rpc import error_details_pb2

from harness import BackgroundLoop, Upstream, rich_status, trailers
from samples import CLASSIFY
from tiergate import errors
from tiergate.calls import sizing
from tiergate.config import Settings
from tiergate.ledger import ModelFacts, PriceTable
from tiergate.tasks import TASKS
from tiergate.upstream.model_client import ModelClient
from tiergate.upstream.output import OutputCheck
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub


@dataclass
class Failure:
    """A failed call as the caller sees it."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    retry_after_ms: int | None = None
    infos: int = 0
    trailers: dict[str, str] = field(default_factory=dict)


def failure(call: grpc.RpcError) -> Failure:
    status = rich_status(call)
    assert status is not None, "every error carries google.rpc.Status details"
    found = Failure(call.code(), call.details() or "")
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            assert info.domain == "tiergate"
            found.reason, found.metadata = info.reason, dict(info.metadata)
            found.infos += 1
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            found.retry_after_ms = retry.retry_delay.ToMilliseconds()
    found.trailers = {k: v for k, v in trailers(call) if isinstance(v, str)}
    return found


def classify_fails(stub: Stub, timeout: float = 10) -> Failure:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Classify(CLASSIFY, timeout=timeout)
    found = failure(caught.value)
    assert found.infos == 1, "exactly one ErrorInfo"
    assert found.code != grpc.StatusCode.UNKNOWN
    return found


def model_client_failure(
    background: BackgroundLoop,
    upstream: Upstream,
    request: Any,
    *,
    rpc: str = "Classify",
    facts: ModelFacts | None = None,
    check: OutputCheck | None = None,
) -> errors.TiergateError:
    """Run one completion of ``rpc``'s task through a real model client and the emulator, on
    ``facts`` (default Haiku 4.5) with ``check`` (default the task's); return the error it
    raised (the completion must fail)."""
    task = TASKS[rpc]
    model = facts or PriceTable.load().facts("claude-haiku-4-5")
    checks: OutputCheck = check or (lambda output: task.check(request, output))

    async def run() -> errors.TiergateError:
        sdk = anthropic.AsyncAnthropic(base_url=upstream.url, api_key="k")
        client = ModelClient(sdk, Settings())
        try:
            await client.complete(
                task.prompt(request),
                facts=model,
                check=checks,
                size_field=lambda: sizing.largest_field(request),
            )
        except errors.TiergateError as err:
            return err
        finally:
            await client.close()
        raise AssertionError("the completion was expected to fail")

    return background.run(run())
