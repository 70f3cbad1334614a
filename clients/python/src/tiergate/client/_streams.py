"""Generated from protos/tiergate/v1/stream_service.proto by make proto. Do not edit.

The streaming methods of ``TaskClient`` and ``AsyncTaskClient``, one per RPC of the
StreamService, each through the client's ``_stream`` (deadline, metadata, decoded
errors; leaving the loop early cancels the call).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from tiergate.v1 import stream_service_pb2 as spb
from tiergate.v1 import stream_service_pb2_grpc
from tiergate.v1 import task_service_pb2 as pb

STREAM_METHOD_NAMES: dict[str, str] = {
    "StreamSummarize": "stream_summarize",
    "StreamAnswer": "stream_answer",
    "StreamReason": "stream_reason",
}
"""The client method of each streaming RPC, by the RPC's name."""


class StreamMethods:
    """The synchronous client's method for every StreamService RPC."""

    _streams: stream_service_pb2_grpc.StreamServiceStub

    if TYPE_CHECKING:  # the client defines it

        def _stream(
            self, method: Callable[..., Any], request: object, timeout_s: float | None
        ) -> Iterator[Any]: ...

    def stream_summarize(
        self, request: pb.SummarizeRequest, *, timeout_s: float | None = None
    ) -> Iterator[spb.StreamSummarizeResponse]:
        """Streams Summarize: the summary grows by words, key points and action items by whole
        items. Runs on the fast tier."""
        return self._stream(self._streams.StreamSummarize, request, timeout_s)

    def stream_answer(
        self, request: pb.AnswerRequest, *, timeout_s: float | None = None
    ) -> Iterator[spb.StreamAnswerResponse]:
        """Streams Answer: the answer grows by words once it is known to be answerable; citations
        come one by one, each verified. Runs on the fast tier."""
        return self._stream(self._streams.StreamAnswer, request, timeout_s)

    def stream_reason(
        self, request: pb.ReasonRequest, *, timeout_s: float | None = None
    ) -> Iterator[spb.StreamReasonResponse]:
        """Streams Reason: steps come one by one, then the answer grows by words; `confidence`
        comes with the last message. Runs on the balanced tier."""
        return self._stream(self._streams.StreamReason, request, timeout_s)


class AsyncStreamMethods:
    """The asyncio client's method for every StreamService RPC."""

    _streams: stream_service_pb2_grpc.StreamServiceAsyncStub

    if TYPE_CHECKING:  # the client defines it

        def _stream(
            self, method: Any, request: object, timeout_s: float | None
        ) -> AsyncIterator[Any]: ...

    def stream_summarize(
        self, request: pb.SummarizeRequest, *, timeout_s: float | None = None
    ) -> AsyncIterator[spb.StreamSummarizeResponse]:
        """Streams Summarize: the summary grows by words, key points and action items by whole
        items. Runs on the fast tier."""
        return self._stream(self._streams.StreamSummarize, request, timeout_s)

    def stream_answer(
        self, request: pb.AnswerRequest, *, timeout_s: float | None = None
    ) -> AsyncIterator[spb.StreamAnswerResponse]:
        """Streams Answer: the answer grows by words once it is known to be answerable; citations
        come one by one, each verified. Runs on the fast tier."""
        return self._stream(self._streams.StreamAnswer, request, timeout_s)

    def stream_reason(
        self, request: pb.ReasonRequest, *, timeout_s: float | None = None
    ) -> AsyncIterator[spb.StreamReasonResponse]:
        """Streams Reason: steps come one by one, then the answer grows by words; `confidence`
        comes with the last message. Runs on the balanced tier."""
        return self._stream(self._streams.StreamReason, request, timeout_s)
