"""Errors from tiergate, with the ``google.rpc.Status`` details decoded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import grpc
from google.rpc import error_details_pb2, status_pb2

DOMAIN = "tiergate"
_DETAILS_TRAILER = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid request field (dotted path) and why."""

    field: str
    description: str


class TiergateError(Exception):
    """A failed call: its status, ``ErrorInfo`` reason and metadata, field violations and the
    suggested retry delay, when the service sent them.

    A deadline that passes in the client, or a connection that fails, has a status but no
    details: ``reason`` is then empty.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: dict[str, str] | None = None,
        violations: tuple[FieldViolation, ...] = (),
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = metadata or {}
        self.violations = violations
        self.retry_after_s = retry_after_s

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> TiergateError:
        """Decode a failed call of the sync or the asyncio API."""
        code: grpc.StatusCode = error.code()
        message: str = error.details() or ""
        # The stubs type the entries as objects with .key and .value; grpc returns 2-tuples.
        trailers = cast(Iterable[tuple[str, str | bytes]], error.trailing_metadata() or ())
        raw = next((v for k, v in trailers if k == _DETAILS_TRAILER), None)
        if not isinstance(raw, bytes):
            return cls(code, message)
        return cls.from_status(code, status_pb2.Status.FromString(raw))

    @classmethod
    def from_status(cls, code: grpc.StatusCode, status: status_pb2.Status) -> TiergateError:
        """Decode a ``google.rpc.Status``: its ErrorInfo, BadRequest and RetryInfo details."""
        reason, domain, metadata, retry_after = "", "", {}, None
        violations: tuple[FieldViolation, ...] = ()
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = tuple(
                    FieldViolation(v.field, v.description) for v in bad.field_violations
                )
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.ToMilliseconds() / 1000
        return cls(
            code,
            status.message,
            reason=reason,
            domain=domain,
            metadata=metadata,
            violations=violations,
            retry_after_s=retry_after,
        )
