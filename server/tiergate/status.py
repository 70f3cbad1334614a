"""How a service error travels: a ``google.rpc.Status`` with its details, as gRPC sends it."""

from __future__ import annotations

from typing import NamedTuple

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from tiergate.errors import DOMAIN, InvalidRequest, TiergateError


def to_status(err: TiergateError) -> status_pb2.Status:
    """The ``google.rpc.Status`` for ``err``: one ErrorInfo, plus BadRequest or RetryInfo."""
    details: list[any_pb2.Any] = []
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=err.metadata)
    details.append(_pack(info))
    if isinstance(err, InvalidRequest):
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in err.violations
            ]
        )
        details.append(_pack(bad))
    if err.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(round(err.retry_after_s * 1000))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=err.code.value[0], message=err.message, details=details)


class _Status(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


class GrpcStatus(_Status, grpc.Status):  # type: ignore[misc]
    """A ``grpc.Status`` for ``ServicerContext.abort_with_status``."""


# gRPC's built-in client retries read this trailer: with it they wait as long as we ask, and
# a negative value tells them not to retry at all (gRFC A6), whatever their status codes.
PUSHBACK_TRAILER = "grpc-retry-pushback-ms"
NO_RETRY_PUSHBACK = "-1"


def grpc_status(err: TiergateError) -> grpc.Status:
    """``err`` as gRPC sends it: rich details, plus the retry pushback: the delay when a
    client may retry it automatically, else "do not retry"."""
    status = rpc_status.to_status(to_status(err))
    trailers: tuple[tuple[str, str | bytes], ...] = tuple(status.trailing_metadata)
    if err.client_may_retry and err.retry_after_s is not None:
        trailers += ((PUSHBACK_TRAILER, str(round(err.retry_after_s * 1000))),)
    else:
        trailers += ((PUSHBACK_TRAILER, NO_RETRY_PUSHBACK),)
    return GrpcStatus(status.code, status.details, trailers)


def _pack(
    message: error_details_pb2.ErrorInfo
    | error_details_pb2.BadRequest
    | error_details_pb2.RetryInfo,
) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
