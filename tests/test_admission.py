"""Backpressure and size limits: bounded waits, clear errors, nothing queued without bound."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2

from conftest import start_app
from harness import BackgroundLoop, Upstream, rich_status
from samples import CLASSIFY, REASON, TICKET_LABELS
from tiergate.app import App
from tiergate.emulator import Fault
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub


@pytest.fixture
def narrow(background: BackgroundLoop, upstream: Upstream) -> Iterator[App]:
    """A server with one model call in flight per tier and no queue."""
    app = start_app(background, upstream, max_concurrency=1, max_queue=0, max_message_bytes=4096)
    yield app
    background.run(app.stop(grace=1))


@pytest.fixture
def queued(background: BackgroundLoop, upstream: Upstream) -> Iterator[App]:
    """A server with one model call in flight per tier and room for four to wait."""
    app = start_app(background, upstream, max_concurrency=1, max_queue=4)
    yield app
    background.run(app.stop(grace=1))


def wait_for_upstream(upstream: Upstream, count: int) -> None:
    """Until the emulator has received ``count`` requests (the calls hold their slots)."""
    while len(upstream.requests) < count:
        time.sleep(0.01)


def details(error: grpc.RpcError) -> tuple[str, int | None]:
    status = rich_status(error)
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
    def test_a_full_queue_is_refused_at_once_with_retry_info(
        self, narrow: App, upstream: Upstream
    ) -> None:
        """With the one slot taken and no queue room, a second call is refused at once with
        RESOURCE_EXHAUSTED / OVERLOADED and a RetryInfo; the first completes."""
        upstream.inject(Fault("slow", delay_s=2))
        with grpc.insecure_channel(f"127.0.0.1:{narrow.port}") as channel:
            stub = Stub(channel)
            with ThreadPoolExecutor(2) as pool:
                slow = pool.submit(stub.Classify, CLASSIFY, timeout=20)
                wait_for_upstream(upstream, 1)
                with pytest.raises(grpc.RpcError) as caught:
                    stub.Classify(CLASSIFY, timeout=20)
                assert slow.result().label == "billing"
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert details(caught.value) == ("OVERLOADED", 1000)
        assert len(upstream.requests) == 1

    def test_a_queued_call_waits_for_a_slot_and_is_served(
        self, queued: App, upstream: Upstream
    ) -> None:
        """Beyond the limit a call with room in the queue waits (longer than the old fixed
        0.5 s) and is served once the slot frees: no error."""
        upstream.inject(Fault("slow", delay_s=1.5))
        with grpc.insecure_channel(f"127.0.0.1:{queued.port}") as channel:
            stub = Stub(channel)
            with ThreadPoolExecutor(2) as pool:
                first = pool.submit(stub.Classify, CLASSIFY, timeout=30)
                wait_for_upstream(upstream, 1)
                second = pool.submit(stub.Classify, CLASSIFY, timeout=30)
                assert [first.result().label, second.result().label] == ["billing", "billing"]
        assert len(upstream.requests) == 2

    def test_the_callers_deadline_bounds_its_wait(self, queued: App, upstream: Upstream) -> None:
        """A queued call whose deadline passes before a slot frees ends DEADLINE_EXCEEDED and
        never reaches the model."""
        upstream.inject(Fault("slow", delay_s=3))
        with grpc.insecure_channel(f"127.0.0.1:{queued.port}") as channel:
            stub = Stub(channel)
            with ThreadPoolExecutor(1) as pool:
                slow = pool.submit(stub.Classify, CLASSIFY, timeout=30)
                wait_for_upstream(upstream, 1)
                with pytest.raises(grpc.RpcError) as caught:
                    stub.Classify(CLASSIFY, timeout=0.5)
                assert slow.result().label == "billing"
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert len(upstream.requests) == 1

    def test_a_limit_one_server_serves_a_hundred_calls_in_a_row(
        self, queued: App, upstream: Upstream
    ) -> None:
        """Every way a call can end (success, upstream errors, unusable output, a caller that
        gives up mid-call) gives its slot back: with one slot, 100 calls in a row all get in
        (a leaked slot would hold every later call in the queue until its deadline)."""
        with grpc.insecure_channel(f"127.0.0.1:{queued.port}") as channel:
            stub = Stub(channel)
            upstream.inject(Fault("slow", delay_s=2))
            with pytest.raises(grpc.RpcError) as gave_up:
                stub.Classify(CLASSIFY, timeout=0.3)
            assert gave_up.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            codes = []
            for i in range(100):
                if i % 10 == 0:
                    upstream.inject(Fault("unauthorized"), Fault("malformed", count=2))
                try:
                    stub.Classify(CLASSIFY, timeout=20)
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as error:
                    codes.append(error.code())
                    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                        break
        assert Counter(codes) == {
            grpc.StatusCode.OK: 80,
            grpc.StatusCode.INTERNAL: 10,  # the upstream refused our key
            grpc.StatusCode.UNAVAILABLE: 10,  # unusable output, twice
        }

    def test_tiers_have_separate_limits(self, narrow: App, upstream: Upstream) -> None:
        """A slow fast-tier call does not block Reason on the balanced tier."""
        upstream.inject(Fault("slow", delay_s=2, model="claude-haiku-4-5"))
        with grpc.insecure_channel(f"127.0.0.1:{narrow.port}") as channel:
            stub = Stub(channel)
            with ThreadPoolExecutor(1) as pool:
                slow = pool.submit(stub.Classify, CLASSIFY, timeout=20)
                wait_for_upstream(upstream, 1)
                assert stub.Reason(REASON, timeout=20).answer
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

    @pytest.mark.parametrize(
        ("request_", "field"),
        [
            (pb.ClassifyRequest(text="x" * 5000, labels=TICKET_LABELS), "text"),
            (
                pb.ClassifyRequest(
                    text="short",
                    labels=[pb.Label(name=f"l{i}", description="d" * 90) for i in range(60)],
                ),
                "labels",
            ),
        ],
    )
    def test_the_violation_names_the_largest_field(
        self, narrow: App, request_: pb.ClassifyRequest, field: str
    ) -> None:
        """An oversized request's violation names the field that makes it large, a real path."""
        with (
            grpc.insecure_channel(f"127.0.0.1:{narrow.port}") as channel,
            pytest.raises(grpc.RpcError) as caught,
        ):
            Stub(channel).Classify(request_, timeout=10)
        found = rich_status(caught.value)
        assert found is not None
        bad = error_details_pb2.BadRequest()
        assert found.details[1].Unpack(bad)
        assert [v.field for v in bad.field_violations] == [field]
