"""The synchronous client: one channel, errors decoded; the typed method of every RPC is
generated from the service descriptor (``_tasks.TaskMethods``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

import grpc

from tiergate.client._channel import CHANNEL_OPTIONS, DEFAULT_TIMEOUT_S, dial_target
from tiergate.client._errors import TiergateError
from tiergate.client._streams import StreamMethods
from tiergate.client._tasks import TaskMethods
from tiergate.v1 import batch_service_pb2 as bpb
from tiergate.v1 import batch_service_pb2_grpc, stream_service_pb2_grpc, task_service_pb2_grpc


class TaskClient(TaskMethods, StreamMethods):
    """Calls a tiergate server; every call has a deadline (``timeout_s``) unless told otherwise.

    The channel balances round robin over every address ``target`` resolves to, retries
    ``UNAVAILABLE`` and ``RESOURCE_EXHAUSTED`` after the server's pushback, and keeps the
    connection alive during calls (see ``_channel``).
    """

    def __init__(
        self,
        target: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        metadata: Sequence[tuple[str, str]] = (),
        channel: grpc.Channel | None = None,
    ) -> None:
        self._channel = channel or grpc.insecure_channel(
            dial_target(target), options=CHANNEL_OPTIONS
        )
        self._stub = task_service_pb2_grpc.TaskServiceStub(self._channel)
        self._streams = stream_service_pb2_grpc.StreamServiceStub(self._channel)
        self._batches = batch_service_pb2_grpc.BatchServiceStub(self._channel)
        self._timeout_s = timeout_s
        self._metadata = tuple(metadata)

    def __enter__(self) -> TaskClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Callable[..., Any], request: object, timeout_s: float | None) -> Any:
        try:
            return method(
                request,
                timeout=self._timeout_s if timeout_s is None else timeout_s,
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            raise TiergateError.from_rpc_error(error) from None

    def _stream(
        self, method: Callable[..., Any], request: object, timeout_s: float | None
    ) -> Iterator[Any]:
        call = method(
            request,
            timeout=self._timeout_s if timeout_s is None else timeout_s,
            metadata=self._metadata,
        )
        try:
            yield from call
        except grpc.RpcError as error:
            raise TiergateError.from_rpc_error(error) from None
        finally:
            call.cancel()  # a caller that stops reading ends the call (no-op once it ended)

    # -- BatchService -------------------------------------------------------------------------

    def create_batch(
        self, items: Iterable[bpb.BatchItem], *, timeout_s: float | None = None
    ) -> bpb.Batch:
        """Start a batch (see :func:`batch_item`); every item is validated first."""
        request = bpb.CreateBatchRequest(items=items)
        reply: bpb.Batch = self._call(self._batches.CreateBatch, request, timeout_s)
        return reply

    def get_batch(self, name: str, *, timeout_s: float | None = None) -> bpb.Batch:
        reply: bpb.Batch = self._call(
            self._batches.GetBatch, bpb.GetBatchRequest(name=name), timeout_s
        )
        return reply

    def cancel_batch(self, name: str, *, timeout_s: float | None = None) -> bpb.Batch:
        reply: bpb.Batch = self._call(
            self._batches.CancelBatch, bpb.CancelBatchRequest(name=name), timeout_s
        )
        return reply

    def list_batch_results(
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
        reply: bpb.ListBatchResultsResponse = self._call(
            self._batches.ListBatchResults, request, timeout_s
        )
        return reply

    def batch_results(self, name: str, *, page_size: int = 1000) -> Iterator[bpb.BatchResult]:
        """Every finished item's result, in item order, page after page."""
        token = ""
        while True:
            page = self.list_batch_results(name, page_size=page_size, page_token=token)
            yield from page.results
            token = page.next_page_token
            if not token:
                return
