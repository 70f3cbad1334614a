"""Backpressure and size limits: bounded waits, clear errors, nothing queued without bound."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from conftest import start_app
from harness import BackgroundLoop, Upstream
from samples import SAMPLES, TICKET_LABELS
from tiergate.app import App
from tiergate.emulator import Fault
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub


@pytest.fixture
def narrow(background: BackgroundLoop, upstream: Upstream) -> Iterator[App]:
    """A server with one model call in flight per tier and a short queue wait."""
    app = start_app(
        background, upstream, max_concurrency=1, queue_timeout_s=0.2, max_message_bytes=4096
    )
    yield app
    background.run(app.stop(grace=1))


def details(error: grpc.RpcError) -> tuple[str, int | None]:
    status = rpc_status.from_call(error)
    assert status is not None
    reason, retry_ms = "", None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_ms = retry.retry_delay.ToMilliseconds()
    return reason, retry_ms


class TestBackpressure:
    def test_calls_beyond_the_tier_limit_are_refused_with_retry_info(
        self, narrow: App, upstream: Upstream
    ) -> None:
        """With one slot and a slow upstream, a second concurrent call waits briefly, then
        gets RESOURCE_EXHAUSTED / OVERLOADED with RetryInfo; the first completes."""
        upstream.inject(Fault("slow", delay_s=2))
        with grpc.insecure_channel(f"127.0.0.1:{narrow.port}") as channel:
            stub = Stub(channel)
            with ThreadPoolExecutor(2) as pool:
                slow = pool.submit(stub.Classify, SAMPLES["Classify"], timeout=20)
                while not upstream.requests:
                    time.sleep(0.01)  # the first call holds the only slot once upstream has it
                with pytest.raises(grpc.RpcError) as caught:
                    stub.Classify(SAMPLES["Classify"], timeout=20)
                assert slow.result().label == "billing"
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert details(caught.value) == ("OVERLOADED", 200)
        assert len(upstream.requests) == 1

    def test_tiers_have_separate_limits(self, narrow: App, upstream: Upstream) -> None:
        """A slow fast-tier call does not block Reason on the balanced tier."""
        upstream.inject(Fault("slow", delay_s=2, model="claude-haiku-4-5"))
        with grpc.insecure_channel(f"127.0.0.1:{narrow.port}") as channel:
            stub = Stub(channel)
            with ThreadPoolExecutor(1) as pool:
                slow = pool.submit(stub.Classify, SAMPLES["Classify"], timeout=20)
                while not upstream.requests:
                    time.sleep(0.01)
                assert stub.Reason(SAMPLES["Reason"], timeout=20).answer
                assert slow.result().label


class TestMessageSize:
    def test_oversized_request_gets_a_clear_error(self, narrow: App, upstream: Upstream) -> None:
        """A request over max_message_bytes: INVALID_ARGUMENT / REQUEST_TOO_LARGE, no model call."""
        request = pb.ClassifyRequest(text="x" * 5000, labels=TICKET_LABELS)
        with (
            grpc.insecure_channel(f"127.0.0.1:{narrow.port}") as channel,
            pytest.raises(grpc.RpcError) as caught,
        ):
            Stub(channel).Classify(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(caught.value)[0] == "REQUEST_TOO_LARGE"
        assert "4096 bytes" in (caught.value.details() or "")
        assert upstream.requests == []
