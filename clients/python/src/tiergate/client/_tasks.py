"""Generated from protos/tiergate/v1/task_service.proto by make proto. Do not edit.

The typed methods of ``TaskClient`` and ``AsyncTaskClient``, one per RPC of the
TaskService, each through the client's ``_call`` (deadline, metadata, decoded errors).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

METHOD_NAMES: dict[str, str] = {
    "Classify": "classify",
    "Summarize": "summarize",
    "Extract": "extract",
    "Answer": "answer",
    "Moderate": "moderate",
    "Reason": "reason",
    "Read": "read",
}
"""The client method of each RPC, by the RPC's name."""


class TaskMethods:
    """The synchronous client's method for every TaskService RPC."""

    _stub: task_service_pb2_grpc.TaskServiceStub

    if TYPE_CHECKING:  # the client defines it

        def _call(
            self, method: Callable[..., Any], request: object, timeout_s: float | None
        ) -> Any: ...

    def classify(
        self, request: pb.ClassifyRequest, *, timeout_s: float | None = None
    ) -> pb.ClassifyResponse:
        """Assigns the text one of the caller's labels (or several, with `multi_label`). Runs on
        the fast tier."""
        reply: pb.ClassifyResponse = self._call(self._stub.Classify, request, timeout_s)
        return reply

    def summarize(
        self, request: pb.SummarizeRequest, *, timeout_s: float | None = None
    ) -> pb.SummarizeResponse:
        """Summarizes the text as a paragraph or bullets, with key points and action items. Runs
        on the fast tier."""
        reply: pb.SummarizeResponse = self._call(self._stub.Summarize, request, timeout_s)
        return reply

    def extract(
        self, request: pb.ExtractRequest, *, timeout_s: float | None = None
    ) -> pb.ExtractResponse:
        """Extracts data matching the caller's JSON Schema from the text. Runs on the fast tier."""
        reply: pb.ExtractResponse = self._call(self._stub.Extract, request, timeout_s)
        return reply

    def answer(
        self, request: pb.AnswerRequest, *, timeout_s: float | None = None
    ) -> pb.AnswerResponse:
        """Answers a question from the caller's documents only, with verbatim citations. Runs on
        the fast tier."""
        reply: pb.AnswerResponse = self._call(self._stub.Answer, request, timeout_s)
        return reply

    def moderate(
        self, request: pb.ModerateRequest, *, timeout_s: float | None = None
    ) -> pb.ModerateResponse:
        """Checks the text against a moderation policy (the caller's categories or the built-in
        policy). Runs on the fast tier."""
        reply: pb.ModerateResponse = self._call(self._stub.Moderate, request, timeout_s)
        return reply

    def reason(
        self, request: pb.ReasonRequest, *, timeout_s: float | None = None
    ) -> pb.ReasonResponse:
        """Reasons step by step to an answer. Runs on the balanced tier."""
        reply: pb.ReasonResponse = self._call(self._stub.Reason, request, timeout_s)
        return reply

    def read(self, request: pb.ReadRequest, *, timeout_s: float | None = None) -> pb.ReadResponse:
        """Reads documents and images (PDF, PNG, JPEG, GIF, WebP) into data matching the caller's
        JSON Schema. Runs on the frontier tier. Takes messages up to the provider's request-size
        limit (32 MB on the Claude API)."""
        reply: pb.ReadResponse = self._call(self._stub.Read, request, timeout_s)
        return reply


class AsyncTaskMethods:
    """The asyncio client's method for every TaskService RPC."""

    _stub: task_service_pb2_grpc.TaskServiceAsyncStub

    if TYPE_CHECKING:  # the client defines it

        async def _call(self, method: Any, request: object, timeout_s: float | None) -> Any: ...

    async def classify(
        self, request: pb.ClassifyRequest, *, timeout_s: float | None = None
    ) -> pb.ClassifyResponse:
        """Assigns the text one of the caller's labels (or several, with `multi_label`). Runs on
        the fast tier."""
        reply: pb.ClassifyResponse = await self._call(self._stub.Classify, request, timeout_s)
        return reply

    async def summarize(
        self, request: pb.SummarizeRequest, *, timeout_s: float | None = None
    ) -> pb.SummarizeResponse:
        """Summarizes the text as a paragraph or bullets, with key points and action items. Runs
        on the fast tier."""
        reply: pb.SummarizeResponse = await self._call(self._stub.Summarize, request, timeout_s)
        return reply

    async def extract(
        self, request: pb.ExtractRequest, *, timeout_s: float | None = None
    ) -> pb.ExtractResponse:
        """Extracts data matching the caller's JSON Schema from the text. Runs on the fast tier."""
        reply: pb.ExtractResponse = await self._call(self._stub.Extract, request, timeout_s)
        return reply

    async def answer(
        self, request: pb.AnswerRequest, *, timeout_s: float | None = None
    ) -> pb.AnswerResponse:
        """Answers a question from the caller's documents only, with verbatim citations. Runs on
        the fast tier."""
        reply: pb.AnswerResponse = await self._call(self._stub.Answer, request, timeout_s)
        return reply

    async def moderate(
        self, request: pb.ModerateRequest, *, timeout_s: float | None = None
    ) -> pb.ModerateResponse:
        """Checks the text against a moderation policy (the caller's categories or the built-in
        policy). Runs on the fast tier."""
        reply: pb.ModerateResponse = await self._call(self._stub.Moderate, request, timeout_s)
        return reply

    async def reason(
        self, request: pb.ReasonRequest, *, timeout_s: float | None = None
    ) -> pb.ReasonResponse:
        """Reasons step by step to an answer. Runs on the balanced tier."""
        reply: pb.ReasonResponse = await self._call(self._stub.Reason, request, timeout_s)
        return reply

    async def read(
        self, request: pb.ReadRequest, *, timeout_s: float | None = None
    ) -> pb.ReadResponse:
        """Reads documents and images (PDF, PNG, JPEG, GIF, WebP) into data matching the caller's
        JSON Schema. Runs on the frontier tier. Takes messages up to the provider's request-size
        limit (32 MB on the Claude API)."""
        reply: pb.ReadResponse = await self._call(self._stub.Read, request, timeout_s)
        return reply
