"""An upstream that answers, but wrongly (a broken proxy, a skewed clock, a buggy endpoint):
rate-limit readings are advice, impossible bills are refused, outages are not amplified. Real
gRPC against the emulator's scripted faults; real Redis for the replicas."""

from __future__ import annotations

import concurrent.futures
import datetime
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from failures import failure
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conftest import start_app
from harness import BackgroundLoop, Upstream, eventually, metric_points
from samples import TICKET_LABELS
from tiergate.emulator import Fault
from tiergate.ledger import PriceTable
from tiergate.serving.app import App
from tiergate.shared.gate import worst_case_nanos
from tiergate.shared.ratelimits import PROBE_EVERY_S
from tiergate.tasks import TASKS
from tiergate.telemetry import Telemetry
from tiergate.upstream.retry_budget import RetryBudget
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub
HAIKU = PriceTable.load().facts("claude-haiku-4-5")
MOST_TOKENS = HAIKU.context_window_tokens + HAIKU.max_output_tokens
_texts = itertools.count()


def classify(text: str | None = None) -> pb.ClassifyRequest:
    # A new text each time, so no answer comes from a cache of any kind.
    text = text or f"I was charged twice for my subscription, case {next(_texts)}."
    return pb.ClassifyRequest(text=text, labels=TICKET_LABELS, include_confidence=True)


@dataclass
class Served:
    """A tiergate server whose spans and metrics land in memory."""

    app: App
    stub: Stub
    channel: grpc.Channel
    metrics: InMemoryMetricReader
    spans: InMemorySpanExporter

    def points(self, name: str) -> list[Any]:
        return metric_points(self.metrics, name)

    def counted(self, name: str, key: str) -> dict[str, int]:
        return {str(p.attributes[key]): p.value for p in self.points(name)}


def serve(background: BackgroundLoop, upstream: Upstream, **settings: Any) -> Served:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = Telemetry(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    app = start_app(background, upstream, telemetry=telemetry, **settings)
    channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
    return Served(app, Stub(channel), channel, reader, spans)


@pytest.fixture
def served(background: BackgroundLoop, upstream: Upstream) -> Iterator[Served]:
    """A fresh server per test: the retry budget and the readings start clean."""
    server = serve(background, upstream)
    yield server
    server.channel.close()
    background.run(server.app.stop(grace=1))


def call(stub: Stub, request: pb.ClassifyRequest | None = None, timeout: float = 10) -> Any:
    """The reply, or the failure as the caller sees it; never UNKNOWN or INTERNAL."""
    try:
        return stub.Classify(request or classify(), timeout=timeout)
    except grpc.RpcError as err:
        found = failure(err)
        assert found.code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), found
        return found


def reset_in(seconds: float) -> str:
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def no_room(**override: str) -> dict[str, str]:
    """A requests bucket with nothing left for 60 s, with fields replaced by ``override``."""
    fields = {"limit": "50", "remaining": "0", "reset": reset_in(60)} | override
    return {f"anthropic-ratelimit-requests-{name}": value for name, value in fields.items()}


def assert_costs_sane(usage: Any) -> None:
    cost = usage.cost
    for name in ("input_nanos", "output_nanos", "cache_write_nanos", "cache_read_nanos"):
        assert getattr(cost, name) >= 0, name
    assert cost.total_nanos >= 0
    assert 0 <= usage.input_tokens + usage.output_tokens <= 2 * MOST_TOKENS


class TestRateLimitReadings:
    @pytest.mark.parametrize(
        ("override", "kind"),
        [
            ({"reset": "2099-01-01T00:00:00Z"}, "reset_beyond_horizon"),
            ({"reset": "2000-01-01T00:00:00Z"}, "reset_beyond_horizon"),
            ({"reset": "yesterday"}, "reset_unreadable"),
            ({"remaining": "-3"}, "not_a_count"),
            ({"remaining": "NaN"}, "not_a_count"),
            ({"limit": "1e400"}, "not_a_count"),
            ({"remaining": "0.5"}, "not_a_count"),
            ({"limit": "0"}, "limit_not_positive"),
            ({"remaining": "51"}, "remaining_over_limit"),
        ],
        ids=["2099", "2000", "yesterday", "negative", "nan", "1e400", "fraction", "zero", "over"],
    )
    def test_a_reading_that_breaks_a_rule_is_ignored_and_counted(
        self, served: Served, upstream: Upstream, override: dict[str, str], kind: str
    ) -> None:
        """One response's broken reading holds nothing back: every later call goes to the
        upstream at once and is served; the reading is counted by the rule it broke."""
        upstream.inject(Fault("headers", headers=no_room(**override)))
        assert call(served.stub).usage.billed_calls == 1
        for _ in range(3):
            assert call(served.stub, timeout=2).usage.billed_calls == 1
        assert len(upstream.requests) == 4
        assert served.counted("tiergate.rate_limit.invalid_readings", "tiergate.kind") == {kind: 1}

    @pytest.mark.parametrize("replicas", [1, 2], ids=["in-process", "redis"])
    def test_a_reading_without_room_lets_one_probe_through_a_second(
        self,
        background: BackgroundLoop,
        upstream: Upstream,
        redis_url: str,
        replicas: int,
    ) -> None:
        """While the upstream keeps saying "no room for 60 s", calls still reach it, one per
        second per model across the replicas (the others are refused before the upstream, or
        wait); as soon as it says otherwise, the next call is served."""
        store = {"redis_url": redis_url} if replicas == 2 else {}
        if replicas == 2:
            with redis.Redis.from_url(redis_url) as client:
                client.flushall()  # no reading or probe marker of an earlier test
        servers = [serve(background, upstream, **store) for _ in range(replicas)]
        try:
            upstream.inject(Fault("headers", headers=no_room(), count=1000))
            assert call(servers[0].stub).usage.billed_calls == 1
            before = len(upstream.requests)
            started = time.monotonic()
            stubs = [servers[i % replicas].stub for i in range(8)]
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                outcomes = list(pool.map(lambda stub: call(stub, timeout=1.5), stubs))
            elapsed = time.monotonic() - started
            probes = len(upstream.requests) - before
            assert 1 <= probes <= 1 + int(elapsed / PROBE_EVERY_S)
            served_now = [o for o in outcomes if hasattr(o, "usage")]
            assert len(served_now) == probes
            refused = [o for o in outcomes if not hasattr(o, "usage")]
            assert {(o.code, o.reason) for o in refused} == {
                (grpc.StatusCode.RESOURCE_EXHAUSTED, "UPSTREAM_RATE_LIMITED")
            }
            upstream.reset()  # the upstream answers with room again
            for server in servers:
                assert call(server.stub, timeout=5).usage.billed_calls == 1
        finally:
            for server in servers:
                server.channel.close()
                background.run(server.app.stop(grace=1))


_header_values = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["NaN", "inf", "-inf", "1e400", "0x10", "", " 7", "yesterday", "1.5"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12),
)
_resets = st.one_of(
    st.integers(-(10**9), 10**9).map(reset_in),
    st.sampled_from(["2099-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "soon", "", "NaN"]),
    _header_values,
)
_counts = st.one_of(
    st.integers(-(10**21), 10**21),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)


class TestAnyReading:
    # The service under test runs in this process, on another thread: OpenTelemetry's SDK draws
    # its span ids from the global random while Hypothesis draws the examples, and Hypothesis
    # takes that for a strategy using the global random.
    @pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
    def test_no_reading_or_bill_takes_the_service_down(
        self, served: Served, upstream: Upstream
    ) -> None:
        """Whatever a response's rate-limit headers and usage say: no call ends in INTERNAL or
        UNKNOWN, no cost is negative, and once the upstream answers normally again the next
        call is served (well within the horizon: at most one probe interval's wait)."""

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            limit=_header_values,
            remaining=_header_values,
            reset=_resets,
            usage=st.dictionaries(st.sampled_from(["input_tokens", "output_tokens"]), _counts),
            attempts=st.integers(1, 3),
        )
        def check(
            limit: str, remaining: str, reset: str, usage: dict[str, Any], attempts: int
        ) -> None:
            upstream.reset()
            headers = no_room(limit=limit, remaining=remaining, reset=reset)
            upstream.inject(Fault("rewritten", usage=usage, headers=headers, count=attempts))
            first = call(served.stub)
            if hasattr(first, "usage"):
                assert_costs_sane(first.usage)
            else:
                assert first.code == grpc.StatusCode.UNAVAILABLE
                assert first.reason == "UPSTREAM_INVALID_RESPONSE"
            upstream.reset()
            again = call(served.stub, timeout=5)
            assert hasattr(again, "usage"), again
            assert_costs_sane(again.usage)

        check()
        for point in served.points("gen_ai.client.token.usage"):
            assert 0 <= point.min <= point.max <= MOST_TOKENS
        for point in served.points("tiergate.cost"):
            assert point.value >= 0
        for span in served.spans.get_finished_spans():
            for key, value in (span.attributes or {}).items():
                if "token" in key or "cost" in key:
                    assert isinstance(value, int | float), key
                    assert value >= 0, (key, value)


# An answer that cannot be a bill, in each of the shapes the issue lists.
IMPOSSIBLE: dict[str, Fault] = {
    "html-200": Fault("raw_body", body="<html><body><h1>Welcome to nginx!</h1></body></html>"),
    "cut-json": Fault("cut_body"),
    "not-a-message": Fault("raw_body", body='{"type": "message"}', content_type="application/json"),
    "no-usage": Fault("rewritten", message_fields={"usage": None}),
    "wrong-type": Fault("rewritten", message_fields={"type": "error"}),
    # Half a surrogate pair, escaped in the JSON: a string no reply, log line or span can hold.
    "id-no-text": Fault("rewritten", message_fields={"id": "msg_\ud800"}),
    "model-no-text": Fault("rewritten", message_fields={"model": "claude-\udfff"}),
    "negative": Fault("rewritten", usage={"input_tokens": -5}),
    "fraction": Fault("rewritten", usage={"output_tokens": 1.5}),
    "text": Fault("rewritten", usage={"output_tokens": "many"}),
    "boolean": Fault("rewritten", usage={"input_tokens": True}),
    "impossible": Fault("rewritten", usage={"input_tokens": 10**20}),
    "just-beyond": Fault("rewritten", usage={"input_tokens": MOST_TOKENS}),
    "cache-split": Fault(
        "rewritten",
        usage={
            "cache_creation_input_tokens": 1,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 9},
        },
    ),
}


def _times(fault: Fault, count: int) -> Fault:
    return Fault.from_json({**fault.to_json(), "count": count})


class TestImpossibleBills:
    @pytest.mark.parametrize("shape", list(IMPOSSIBLE))
    def test_once_is_retried_and_billed_only_for_the_real_answer(
        self, served: Served, upstream: Upstream, shape: str
    ) -> None:
        """One impossible answer is retried like a 5xx; the caller's Usage is exactly that of
        the real answer that followed, and no metric or span saw the impossible one."""
        reference = call(served.stub, classify("I was charged twice this month."))
        upstream.inject(IMPOSSIBLE[shape])
        reply = call(served.stub, classify("I was charged twice this month."))
        assert reply.usage.attempts == 2
        assert reply.usage.billed_calls == 1
        assert reply.usage.cost == reference.usage.cost
        assert len(upstream.requests) == 3
        for point in served.points("gen_ai.client.token.usage"):
            assert 0 <= point.min <= point.max < MOST_TOKENS
        attempts = [s for s in served.spans.get_finished_spans() if s.name.startswith("chat ")]
        assert sorted(str((s.attributes or {}).get("error.type")) for s in attempts) == [
            "InvalidAnswer",
            "None",
            "None",
        ]

    @pytest.mark.parametrize("shape", ["html-200", "negative", "no-usage"])
    def test_every_attempt_is_unavailable_with_a_reason_of_its_own(
        self, served: Served, upstream: Upstream, shape: str
    ) -> None:
        """Impossible on every attempt: UNAVAILABLE / UPSTREAM_INVALID_RESPONSE with RetryInfo
        after the usual attempts, never INTERNAL, and nothing billed."""
        upstream.inject(_times(IMPOSSIBLE[shape], 3))
        found = call(served.stub)
        assert (found.code, found.reason) == (
            grpc.StatusCode.UNAVAILABLE,
            "UPSTREAM_INVALID_RESPONSE",
        )
        assert found.retry_after_ms == 1000
        assert len(upstream.requests) == 3
        assert not served.points("gen_ai.client.token.usage")
        assert not served.points("tiergate.cost")

    def test_a_reservation_settles_at_its_worst_case(
        self, background: BackgroundLoop, upstream: Upstream, tmp_path: Path
    ) -> None:
        """A budgeted call whose bills cannot be read settles its whole reservation: what the
        upstream charged is unknown, and a guess below the worst case could overspend."""
        (tmp_path / "tokens").write_text("billing-service=s3cret\n")
        (tmp_path / "budgets.toml").write_text('[callers.billing-service]\ndaily_usd = "5"\n')
        server = serve(
            background,
            upstream,
            auth_tokens_file=str(tmp_path / "tokens"),
            budgets_file=str(tmp_path / "budgets.toml"),
        )
        try:
            request = classify()
            upstream.inject(_times(IMPOSSIBLE["negative"], 3))
            with pytest.raises(grpc.RpcError) as failed:
                server.stub.Classify(
                    request, timeout=10, metadata=(("authorization", "Bearer s3cret"),)
                )
            assert failure(failed.value).reason == "UPSTREAM_INVALID_RESPONSE"
            s = server.app.settings
            worst = worst_case_nanos(
                TASKS["Classify"].prompt(request),
                HAIKU,
                max_reasks=s.max_reasks,
                ttl=s.cache_ttl,
            )
            budgets = server.app.shared.budgets
            assert budgets is not None

            def settled() -> tuple[int, int] | None:
                (row,) = background.run(budgets.spend("billing-service"))
                return (row.spent, row.reserved) if row.reserved == 0 else None

            assert eventually(settled, "the settlement") == (worst, 0)
        finally:
            server.channel.close()
            background.run(server.app.stop(grace=1))


class TestRetryBudget:
    def test_an_isolated_failure_is_retried_at_once(
        self, served: Served, upstream: Upstream
    ) -> None:
        """With calls succeeding, one 529 is retried within the same call."""
        for _ in range(3):
            call(served.stub)
        upstream.inject(Fault("overloaded"))
        reply = call(served.stub)
        assert (reply.usage.attempts, reply.usage.billed_calls) == (2, 1)

    def test_a_sustained_outage_is_not_amplified(self, served: Served, upstream: Upstream) -> None:
        """60 calls, 16 at a time, against a 529 on every request: at most 72 upstream
        requests (20% on top of the calls); the failures once the budget is spent tell clients
        not to retry automatically; the budget's state is exported; and the first call after
        the outage is answered."""
        upstream.inject(Fault("overloaded", count=100_000))
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(lambda _: call(served.stub, timeout=20), range(60)))
        assert len(upstream.requests) <= 72
        assert {(o.code, o.reason) for o in outcomes} == {
            (grpc.StatusCode.UNAVAILABLE, "UPSTREAM_UNAVAILABLE")
        }
        pushbacks = [o.trailers.get("grpc-retry-pushback-ms") for o in outcomes]
        assert pushbacks.count("-1") >= 60 - 16
        assert all(o.retry_after_ms for o in outcomes)  # the caller's code may still retry
        (tokens,) = served.points("tiergate.upstream.retry_budget.tokens")
        assert tokens.value <= RetryBudget().max_tokens / 2
        (throttled,) = served.points("tiergate.upstream.retry_budget.throttled")
        assert throttled.value >= 60 - 16
        upstream.reset()
        assert call(served.stub).usage.billed_calls == 1

    def test_rate_limits_do_not_spend_the_budget(self, served: Served, upstream: Upstream) -> None:
        """A 429 says when to come back: twenty calls each rate-limited once are all retried
        after the retry-after and answered, and the budget stays full."""
        for _ in range(20):
            upstream.inject(Fault("rate_limit", retry_after_s=0.01))
            reply = call(served.stub)
            assert (reply.usage.attempts, reply.usage.billed_calls) == (2, 1)
        (tokens,) = served.points("tiergate.upstream.retry_budget.tokens")
        assert tokens.value == RetryBudget().max_tokens

    def test_retries_resume_once_calls_mostly_succeed(self) -> None:
        """Spent by an outage, the budget allows retries again after about ten answers per
        failure it lost: an isolated failure then is retried at once again."""
        budget = RetryBudget()
        for _ in range(20):
            budget.failed()
        assert not budget.may_retry()
        for _ in range(50):
            budget.answered()
        assert not budget.may_retry()  # exactly half: not more than half
        budget.answered()
        budget.failed()
        assert not budget.may_retry()
        for _ in range(20):
            budget.answered()
        budget.failed()
        assert budget.may_retry()
        assert budget.throttled == 3
