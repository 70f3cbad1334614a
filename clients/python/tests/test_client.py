"""The Python helper's own behaviour: dialing, retries and error decoding, sync and asyncio."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from emulator_control import EmulatorControl

from tiergate.client import AsyncTaskClient, TaskClient, TiergateError, dollars
from tiergate.client._channel import dial_target
from tiergate.v1 import task_service_pb2 as pb

MODERATE = pb.ModerateRequest(text="The export finished without errors.")
# Three client attempts, each of which the server tries upstream three times.
EXHAUSTING = [{"kind": "rate_limit", "count": 9, "retry_after_s": 0.05}]


class TestDollars:
    def test_nano_dollars_print_exactly_as_the_cli_prints_them(self) -> None:
        """Exact to the nano-dollar, trailing zeros trimmed down to cents, signed."""
        cases = {0: "$0.00", 1: "$0.000000001", 136_000: "$0.000136", 163_500: "$0.0001635",
                 25_000_000_000: "$25.00", 1_500_000_000: "$1.50", -5: "-$0.000000005"}  # fmt: skip
        assert {nanos: dollars(nanos) for nanos in cases} == cases


class TestDialTarget:
    def test_bare_name_resolves_through_dns(self) -> None:
        """A bare host:port gets dns:///, so round_robin sees every address of the name."""
        assert dial_target("tiergate.prod:50051") == "dns:///tiergate.prod:50051"

    @pytest.mark.parametrize("target", ["dns:///a:1", "unix:/run/tiergate.sock", "ipv4:1.2.3.4:5"])
    def test_explicit_scheme_is_kept(self, target: str) -> None:
        """A target that names its resolver is dialed as given."""
        assert dial_target(target) == target


class TestRetries:
    def test_sync_client_gives_up_after_three_attempts_with_retry_info(
        self, target: str, emulator: EmulatorControl
    ) -> None:
        """Rate limits that outlast the retry policy surface as RESOURCE_EXHAUSTED with the
        server's RetryInfo, after exactly three client attempts."""
        emulator.reset()
        emulator.inject(EXHAUSTING)
        with TaskClient(target) as client, pytest.raises(TiergateError) as raised:
            client.moderate(MODERATE)
        error = raised.value
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert (error.reason, error.domain) == ("UPSTREAM_RATE_LIMITED", "tiergate")
        assert error.retry_after_s == pytest.approx(0.05)
        assert len(emulator.requests()) == 9

    def test_async_client_decodes_the_same_error(
        self, target: str, emulator: EmulatorControl
    ) -> None:
        """The asyncio client retries and decodes exactly as the sync one does."""
        emulator.reset()
        emulator.inject(EXHAUSTING)

        async def call() -> TiergateError:
            async with AsyncTaskClient(target) as client:
                try:
                    await client.moderate(MODERATE)
                except TiergateError as error:
                    return error
            raise AssertionError("the call succeeded")

        error = asyncio.run(call())
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.reason == "UPSTREAM_RATE_LIMITED"
        assert error.retry_after_s == pytest.approx(0.05)
        assert len(emulator.requests()) == 9


class TestErrors:
    def test_violations_carry_descriptions(self, target: str) -> None:
        """BadRequest field violations arrive with the field path and a description."""
        with TaskClient(target) as client, pytest.raises(TiergateError) as raised:
            client.summarize(pb.SummarizeRequest(text="hi", max_words=-1))
        [violation] = raised.value.violations
        assert violation.field == "max_words"
        assert "positive" in violation.description
