"""Backpressure and size limits: bounded waits, clear errors, nothing queued without bound."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from conftest import start_app
from harness import BackgroundLoop, Upstream, rich_status
from samples import CLASSIFY, REASON, TICKET_LABELS
from tiergate.emulator import Fault
from tiergate.errors import DeadlineExceeded, Overloaded
from tiergate.serving.admission import RETRY_AFTER_S, Admission
from tiergate.serving.app import App
from tiergate.tiers import Tier
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


def wait_for_upstream(upstream: Upstream, count: int, held: Future[Any]) -> None:
    """Until the emulator has received ``count`` requests (the calls hold their slots); fails
    at once if the ``held`` call ends first, since it then never reached the model."""
    while len(upstream.requests) < count:
        if held.done():
            pytest.fail(f"the held call ended before reaching the model: {held.exception()!r}")
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
                wait_for_upstream(upstream, 1, slow)
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
                wait_for_upstream(upstream, 1, first)
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
                wait_for_upstream(upstream, 1, slow)
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
                wait_for_upstream(upstream, 1, slow)
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


async def _hold(gate: Admission, tier: Tier, release: asyncio.Event) -> None:
    async with gate.slot(tier):
        await release.wait()


async def _queue_behind_one(
    gate: Admission, attempt: Callable[[], Awaitable[None]]
) -> BaseException | None:
    """Run ``attempt`` (a coroutine function) while one fast-tier call holds the only slot."""
    release = asyncio.Event()
    holder = asyncio.create_task(_hold(gate, Tier.FAST, release))
    await asyncio.sleep(0)
    try:
        await attempt()
    except (Overloaded, DeadlineExceeded) as exc:
        return exc
    finally:
        release.set()
        await holder
    return None


class TestAdmissionInProcess:
    """The gate itself, without a server: who waits, who is refused, and what they are told."""

    def test_a_full_queue_refuses_at_once(self) -> None:
        """With the slot taken and max_queue callers waiting, the next is OVERLOADED at once."""
        gate = Admission(limit=1, max_queue=1, max_wait_s=30.0)

        async def attempt() -> None:
            waiter = asyncio.create_task(_hold(gate, Tier.FAST, asyncio.Event()))
            await asyncio.sleep(0)
            try:
                async with gate.slot(Tier.FAST):
                    pass
            finally:
                waiter.cancel()

        err = asyncio.run(_queue_behind_one(gate, attempt))
        assert type(err) is Overloaded
        assert err.message == (
            "too many fast-tier calls in flight and queued on this replica; retry shortly"
        )
        assert err.retry_after_s == RETRY_AFTER_S == 1.0

    def test_no_queue_refuses_the_second_call(self) -> None:
        """max_queue 0: a call finding the slot taken is refused without waiting."""
        gate = Admission(limit=1, max_queue=0, max_wait_s=30.0)

        async def attempt() -> None:
            async with gate.slot(Tier.FAST):
                pass

        assert type(asyncio.run(_queue_behind_one(gate, attempt))) is Overloaded

    def test_the_deadline_ends_the_wait(self) -> None:
        """A caller deadline shorter than max_wait_s ends the wait in DEADLINE_EXCEEDED."""
        gate = Admission(limit=1, max_queue=4, max_wait_s=30.0)

        async def attempt() -> None:
            async with gate.slot(Tier.FAST, deadline=time.monotonic() + 0.05):
                pass

        err = asyncio.run(_queue_behind_one(gate, attempt))
        assert type(err) is DeadlineExceeded
        assert err.message == "the deadline passed while waiting for a fast-tier slot"

    @pytest.mark.parametrize("deadline_in_s", [None, 30.0])
    def test_max_wait_ends_the_wait(self, deadline_in_s: float | None) -> None:
        """A wait cut by max_wait_s, not by the caller's later deadline, is OVERLOADED."""
        gate = Admission(limit=1, max_queue=4, max_wait_s=0.05)

        async def attempt() -> None:
            deadline = None if deadline_in_s is None else time.monotonic() + deadline_in_s
            async with gate.slot(Tier.FAST, deadline=deadline):
                pass

        err = asyncio.run(_queue_behind_one(gate, attempt))
        assert type(err) is Overloaded
        assert err.message == "no fast-tier slot came free within 0.05 s; retry shortly"
        assert err.retry_after_s == RETRY_AFTER_S

    def test_a_timed_out_waiter_leaves_the_queue(self) -> None:
        """A waiter that gave up no longer counts against max_queue: the next one may wait."""
        gate = Admission(limit=1, max_queue=1, max_wait_s=0.05)

        async def attempt() -> None:
            for _ in range(2):
                with pytest.raises(Overloaded) as raised:
                    async with gate.slot(Tier.FAST):
                        pass
                assert raised.value.message.startswith("no fast-tier slot came free")

        assert asyncio.run(_queue_behind_one(gate, attempt)) is None

    def test_a_released_slot_serves_the_next_call(self) -> None:
        """Leaving the slot frees it: a limit-1 gate serves calls one after another."""
        gate = Admission(limit=1, max_queue=0, max_wait_s=0.05)

        async def serve() -> int:
            served = 0
            for _ in range(3):
                async with gate.slot(Tier.FAST):
                    served += 1
            return served

        assert asyncio.run(serve()) == 3

    def test_tiers_do_not_share_slots(self) -> None:
        """The balanced tier has its own slot while the fast tier's is taken."""
        gate = Admission(limit=1, max_queue=0, max_wait_s=30.0)

        async def attempt() -> None:
            async with gate.slot(Tier.BALANCED):
                pass

        assert asyncio.run(_queue_behind_one(gate, attempt)) is None
