"""``tiergate.v1.BatchService``: create, get, list results, cancel, all from the store.

The handlers only read and write the store (and wake the worker): any replica answers for any
batch, so replicas stay stateless.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog
from google.protobuf import message_factory, timestamp_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

from tiergate import errors
from tiergate.config import Settings
from tiergate.ledger import NO_COST, Bill, Cost, PriceTable, TokenUsage
from tiergate.serving import status
from tiergate.serving.auth import Authenticator
from tiergate.tiers import Tier
from tiergate.v1 import batch_service_pb2, usage_pb2

from . import intake
from .store import BatchRecord, BatchStore
from .worker import BatchWorker

log = structlog.get_logger("tiergate.batches")

SERVICE = batch_service_pb2.DESCRIPTOR.services_by_name["BatchService"]
_PREFIX = "batches/"
_DEFAULT_PAGE = 100
_MAX_PAGE = 1000
_STATES = {
    "RUNNING": batch_service_pb2.Batch.STATE_RUNNING,
    "CANCELLING": batch_service_pb2.Batch.STATE_CANCELLING,
    "SUCCEEDED": batch_service_pb2.Batch.STATE_SUCCEEDED,
    "FAILED": batch_service_pb2.Batch.STATE_FAILED,
    "CANCELLED": batch_service_pb2.Batch.STATE_CANCELLED,
}


class BatchHandlers:
    """The four RPCs over one store."""

    def __init__(
        self,
        store: BatchStore,
        worker: BatchWorker,
        settings: Settings,
        prices: PriceTable,
        authenticator: Authenticator,
    ) -> None:
        self._store = store
        self._worker = worker
        self._settings = settings
        self._prices = prices
        self.authenticator = authenticator

    async def create(self, request: batch_service_pb2.CreateBatchRequest) -> Message:
        # Validation and rendering of many items is CPU work: off the event loop.
        taken = await asyncio.to_thread(intake.take, request, self._settings, self._prices)
        now = time.time()
        record = BatchRecord(taken.batch_id, "RUNNING", len(taken.items), now, now)
        await asyncio.to_thread(self._store.create, record, taken.items, taken.chunks)
        log.info("batch.created", batch=taken.batch_id, items=len(taken.items))
        self._worker.wake()
        return self._batch(record)

    async def get(self, request: batch_service_pb2.GetBatchRequest) -> Message:
        return self._batch(self._find(request.name, "name"))

    async def cancel(self, request: batch_service_pb2.CancelBatchRequest) -> Message:
        record = self._find(request.name, "name")
        cancelled = self._store.request_cancel(record.id, time.time()) or record
        self._worker.wake()
        return self._batch(cancelled)

    async def list_results(self, request: batch_service_pb2.ListBatchResultsRequest) -> Message:
        record = self._find(request.parent, "parent")
        if request.page_size < 0:
            raise errors.InvalidRequest([errors.FieldViolation("page_size", "0 or more")])
        size = min(request.page_size or _DEFAULT_PAGE, _MAX_PAGE)
        after = _after(request.page_token)
        rows = self._store.results(record.id, after, size + 1)
        page = batch_service_pb2.ListBatchResultsResponse()
        for _, raw in rows[:size]:
            page.results.append(batch_service_pb2.BatchResult.FromString(raw))
        if len(rows) > size:
            page.next_page_token = _token(rows[size - 1][0])
        return page

    def _find(self, name: str, field: str) -> BatchRecord:
        batch_id = name.removeprefix(_PREFIX)
        if not name.startswith(_PREFIX) or not batch_id.isalnum():
            raise errors.InvalidRequest(
                [errors.FieldViolation(field, "a batch name, batches/{batch}")]
            )
        record = self._store.get(batch_id)
        if record is None:
            raise NotFound(f"{name} does not exist (or its results were deleted)")
        return record

    def _batch(self, record: BatchRecord) -> batch_service_pb2.Batch:
        counts = self._store.counts(record.id)
        batch = batch_service_pb2.Batch(
            name=_PREFIX + record.id,
            state=_STATES[record.state],
            item_count=record.item_count,
            counts=batch_service_pb2.BatchCounts(
                pending=counts.get("pending", 0),
                succeeded=counts.get("succeeded", 0),
                failed=counts.get("failed", 0),
                cancelled=counts.get("cancelled", 0),
                expired=counts.get("expired", 0),
            ),
            usage=self._usage(record.id),
            create_time=_time(record.created),
            update_time=_time(record.updated),
        )
        if record.ended is not None:
            batch.end_time.CopyFrom(_time(record.ended))
            batch.expire_time.CopyFrom(_time(record.ended + self._settings.batch_retention_s))
        if record.error:
            batch.error.CopyFrom(status_pb2.Status.FromString(record.error))
        return batch

    def _usage(self, batch_id: str) -> usage_pb2.Usage:
        """Every item's billed tokens summed, priced per model and geo at the batch price:
        the same nanos as the items' own costs summed, since each price is per token."""
        billed = self._store.billed(batch_id)
        total = TokenUsage()
        cost: Cost = NO_COST
        calls = 0
        for part in billed:
            tokens = TokenUsage(*part.tokens, inference_geo=part.inference_geo)
            total = total + tokens
            cost = cost + self._prices.cost(part.model, tokens, batch=True)
            calls += part.billed_calls
        models = {part.model for part in billed}
        tiers = [t for t in Tier if self._settings.model_for(t) in models]
        return Bill(
            model=next(iter(models)) if len(models) == 1 else "",
            tier=tiers[0] if len(tiers) == 1 else None,
            tokens=total,
            cost=cost,
            billed_calls=calls,
            attempts=calls,
            request_id="",
            service_tier="batch",
        ).usage()


class NotFound(errors.TiergateError):
    code = errors.Code.NOT_FOUND
    reason = "NOT_FOUND"


def _time(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _token(index: int) -> str:
    return base64.urlsafe_b64encode(f"after:{index}".encode()).decode()


def _after(token: str) -> int:
    if not token:
        return -1
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        return int(text.removeprefix("after:")) if text.startswith("after:") else int("x")
    except ValueError:
        raise errors.InvalidRequest(
            [errors.FieldViolation("page_token", "not a token this service returned")]
        ) from None


Behaviour = Callable[[Any], Awaitable[Message]]


def add_batch_service(handlers: BatchHandlers, server: grpc.aio.Server) -> None:
    """Serve ``tiergate.v1.BatchService`` on ``server``."""
    table: dict[str, Behaviour] = {
        "CreateBatch": handlers.create,
        "GetBatch": handlers.get,
        "ListBatchResults": handlers.list_results,
        "CancelBatch": handlers.cancel,
    }
    rpc_handlers = {
        method.name: _handler(handlers, table[method.name], _message_class(method.input_type))
        for method in SERVICE.methods
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, rpc_handlers),)
    )
    server.add_registered_method_handlers(SERVICE.full_name, rpc_handlers)


def _message_class(descriptor: Any) -> type[Message]:
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls


def _handler(
    handlers: BatchHandlers, behaviour: Behaviour, request_type: type[Message]
) -> grpc.RpcMethodHandler[bytes, Message]:
    async def handle(raw: bytes, context: grpc.aio.ServicerContext[bytes, Message]) -> Message:
        try:
            caller = handlers.authenticator.identify(context)
            if handlers.authenticator.required and not caller.verified:
                raise errors.Unauthenticated("a valid bearer token is required")
            try:
                request = request_type.FromString(raw)
            except DecodeError:
                raise errors.InvalidRequest(
                    [errors.FieldViolation("", f"not a valid {request_type.DESCRIPTOR.full_name}")]
                ) from None
            return await behaviour(request)
        except errors.TiergateError as err:
            await context.abort_with_status(
                status.grpc_status(err, time_left_s=context.time_remaining())
            )
        except Exception:
            log.exception("batch.rpc_bug")
            bug = errors.TiergateError("internal error; the service logged it")
            await context.abort_with_status(status.grpc_status(bug))
        raise AssertionError("unreachable")  # pragma: no cover

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=None, response_serializer=lambda m: m.SerializeToString()
    )


BATCH_SETTING = "TIERGATE_BATCH_DIR"
"""The setting that turns BatchService on (``TIERGATE_BATCH_REDIS_URL`` for several replicas)."""


def add_batch_service_off(server: grpc.aio.Server) -> None:
    """Answer every ``BatchService`` call FAILED_PRECONDITION (SERVICE_DISABLED) naming the
    setting that turns it on: without a handler gRPC would say only "Method not found"."""

    async def refuse(raw: bytes, context: grpc.aio.ServicerContext[bytes, Message]) -> Message:
        off = errors.ServiceDisabled(
            f"{SERVICE.full_name} is off on this server: set {BATCH_SETTING} (a directory for"
            " the batch store) or TIERGATE_BATCH_REDIS_URL, and restart it",
            metadata={"setting": BATCH_SETTING},
        )
        await context.abort_with_status(status.grpc_status(off))
        raise AssertionError("unreachable")  # pragma: no cover

    refusal: grpc.RpcMethodHandler[bytes, Message] = grpc.unary_unary_rpc_method_handler(
        refuse, request_deserializer=None, response_serializer=lambda m: m.SerializeToString()
    )
    rpc_handlers = {method.name: refusal for method in SERVICE.methods}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, rpc_handlers),)
    )
    server.add_registered_method_handlers(SERVICE.full_name, rpc_handlers)
