"""A failed call as the caller sees it: status, ErrorInfo, RetryInfo and trailers."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from samples import SAMPLES
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
    status = rpc_status.from_call(call)
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
    found.trailers = {k: v for k, v in call.trailing_metadata() or () if isinstance(v, str)}
    return found


def classify_fails(stub: Stub, timeout: float = 10) -> Failure:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Classify(SAMPLES["Classify"], timeout=timeout)
    found = failure(caught.value)
    assert found.infos == 1, "exactly one ErrorInfo"
    assert found.code != grpc.StatusCode.UNKNOWN
    return found
