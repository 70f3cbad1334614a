"""The asyncio client: the same typed methods as ``TaskClient``, awaited (generated from the
service descriptor: ``_tasks.AsyncTaskMethods``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from types import TracebackType
from typing import Any

import grpc
import grpc.aio

from tiergate.client._channel import CHANNEL_OPTIONS, DEFAULT_TIMEOUT_S, dial_target
from tiergate.client._errors import TiergateError
from tiergate.client._streams import AsyncStreamMethods
from tiergate.client._tasks import AsyncTaskMethods
from tiergate.v1 import batch_service_pb2 as bpb
from tiergate.v1 import batch_service_pb2_grpc, stream_service_pb2_grpc, task_service_pb2_grpc


class AsyncTaskClient(AsyncTaskMethods, AsyncStreamMethods):
    """Calls a tiergate server from asyncio; every call has a deadline unless told otherwise.

    async with AsyncTaskClient("localhost:50051") as client:
        reply = await client.reason(pb.ReasonRequest(question="..."))
    """

    def __init__(
        self,
        target: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        metadata: Sequence[tuple[str, str]] = (),
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._channel = channel or grpc.aio.insecure_channel(
            dial_target(target), options=CHANNEL_OPTIONS
        )
        self._stub = task_service_pb2_grpc.TaskServiceStub(self._channel)
        self._streams = stream_service_pb2_grpc.StreamServiceStub(self._channel)
        self._batches = batch_service_pb2_grpc.BatchServiceStub(self._channel)
        self._timeout_s = timeout_s
        self._metadata = tuple(metadata)

    async def __aenter__(self) -> AsyncTaskClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: Any, request: object, timeout_s: float | None) -> Any:
        try:
            return await method(
                request,
                timeout=self._timeout_s if timeout_s is None else timeout_s,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as error:
            raise TiergateError.from_rpc_error(error) from None

    async def _stream(
        self, method: Any, request: object, timeout_s: float | None
    ) -> AsyncIterator[Any]:
        call = method(
            request,
            timeout=self._timeout_s if timeout_s is None else timeout_s,
            metadata=self._metadata,
        )
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as error:
            raise TiergateError.from_rpc_error(error) from None
        finally:
            call.cancel()  # a caller that stops reading ends the call (no-op once it ended)

    # -- BatchService -------------------------------------------------------------------------

    async def create_batch(
        self, items: Iterable[bpb.BatchItem], *, timeout_s: float | None = None
    ) -> bpb.Batch:
        """Start a batch (see :func:`batch_item`); every item is validated first."""
        request = bpb.CreateBatchRequest(items=items)
        reply: bpb.Batch = await self._call(self._batches.CreateBatch, request, timeout_s)
        return reply

    async def get_batch(self, name: str, *, timeout_s: float | None = None) -> bpb.Batch:
        reply: bpb.Batch = await self._call(
            self._batches.GetBatch, bpb.GetBatchRequest(name=name), timeout_s
        )
        return reply

    async def cancel_batch(self, name: str, *, timeout_s: float | None = None) -> bpb.Batch:
        reply: bpb.Batch = await self._call(
            self._batches.CancelBatch, bpb.CancelBatchRequest(name=name), timeout_s
        )
        return reply

    async def list_batch_results(
        self,
        name: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        timeout_s: float | None = None,
    ) -> bpb.ListBatchResultsResponse:
        request = bpb.ListBatchResultsRequest(
            parent=name, page_size=page_size, page_token=page_token
        )
        reply: bpb.ListBatchResultsResponse = await self._call(
            self._batches.ListBatchResults, request, timeout_s
        )
        return reply

    async def batch_results(
        self, name: str, *, page_size: int = 1000
    ) -> AsyncIterator[bpb.BatchResult]:
        """Every finished item's result, in item order, page after page."""
        token = ""
        while True:
            page = await self.list_batch_results(name, page_size=page_size, page_token=token)
            for result in page.results:
                yield result
            token = page.next_page_token
            if not token:
                return
