"""The metrics the dashboard and the alerts are built on, recorded by real RPCs in memory:
calls by status and reason, prompt-cache savings, budget limits, running batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from test_telemetry import Traced, start_traced

from harness import BackgroundLoop, Upstream, eventually
from samples import CLASSIFY, TICKET_LABELS, long_policy
from tiergate.emulator import Emulator, EmulatorConfig, Fault
from tiergate.telemetry.instruments import DURATION_BUCKETS_S
from tiergate.v1 import batch_service_pb2 as bpb
from tiergate.v1 import batch_service_pb2_grpc
from tiergate.v1 import task_service_pb2 as pb

TOKEN = "s3cret-billing"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture
def traced(background: BackgroundLoop, upstream: Upstream, tmp_path: Path) -> Iterator[Traced]:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"billing-service={TOKEN}\n")
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(
        '[callers.billing-service]\ndaily_usd = "5"\n'
        '[callers.billing-service.tasks.Classify]\nmonthly_usd = "0.75"\n'
    )
    server = start_traced(
        background,
        upstream,
        max_attempts=2,
        auth_tokens_file=str(tokens),
        budgets_file=str(budgets),
        response_cache_ttl_s=0,
    )
    yield server
    server.channel.close()
    background.run(server.app.stop(grace=1))


def outcomes(traced: Traced) -> dict[tuple[str, str, str], HistogramDataPoint]:
    points = traced.points("tiergate.rpc.duration")
    return {
        (
            p.attributes["tiergate.task"],
            p.attributes["tiergate.status"],
            p.attributes.get("tiergate.reason", ""),
        ): p
        for p in points
    }


class TestRpcDuration:
    def test_calls_are_counted_by_status_and_reason(
        self, traced: Traced, upstream: Upstream
    ) -> None:
        """An answered call, an invalid one and one the upstream kept failing are each one
        count, labelled with the gRPC status and the ErrorInfo reason (none when OK)."""
        traced.stub.Classify(CLASSIFY, metadata=AUTH)
        with pytest.raises(grpc.RpcError):
            traced.stub.Classify(pb.ClassifyRequest(), metadata=AUTH)
        upstream.inject(Fault(kind="overloaded", count=2))
        with pytest.raises(grpc.RpcError):
            traced.stub.Classify(CLASSIFY, metadata=AUTH)
        traced.server_spans(3)
        found = eventually(lambda: outcomes(traced) if len(outcomes(traced)) == 3 else None, "3")
        assert set(found) == {
            ("Classify", "OK", ""),
            ("Classify", "INVALID_ARGUMENT", "INVALID_REQUEST"),
            ("Classify", "UNAVAILABLE", "UPSTREAM_UNAVAILABLE"),
        }
        for point in found.values():
            assert point.count == 1
            assert point.sum > 0
            assert tuple(point.explicit_bounds) == DURATION_BUCKETS_S
            attributes = dict(point.attributes or {})
            assert attributes["tiergate.caller"] == "billing-service"
            assert attributes["tiergate.tier"] == "fast"


class TestPromptCacheSavings:
    def test_saved_and_premium_are_the_ledgers_figures_in_dollars(self, traced: Traced) -> None:
        """The first call writes the cache (a premium), the second reads it (a saving): the
        counters hold exactly the two RPCs' ``Usage.cost`` figures."""
        first, second = (
            traced.stub.Classify(
                pb.ClassifyRequest(text=text, labels=TICKET_LABELS, instructions=long_policy()),
                metadata=AUTH,
            ).usage.cost
            for text in ("I was charged twice this month.", "My reset link never arrives.")
        )
        traced.server_spans(2)
        assert second.cache_savings_nanos > 0
        assert first.cache_write_premium_nanos > 0
        [saved] = traced.points("tiergate.cache.saved")
        [premium] = traced.points("tiergate.cache.write_premium")
        assert saved.value == (first.cache_savings_nanos + second.cache_savings_nanos) / 1e9
        assert (
            premium.value
            == (first.cache_write_premium_nanos + second.cache_write_premium_nanos) / 1e9
        )
        assert saved.attributes["tiergate.caller"] == "billing-service"
        assert saved.attributes["gen_ai.request.model"] == "claude-haiku-4-5"


class TestBudgetLimit:
    def test_each_budget_reports_its_limit_beside_spent_and_left(
        self, traced: Traced, background: BackgroundLoop
    ) -> None:
        """The limit of every budget of the file, by caller, task scope and period; spent +
        left make the limit once nothing is reserved."""
        traced.stub.Classify(CLASSIFY, metadata=AUTH)
        traced.server_spans(1)
        assert traced.app.shared is not None
        background.run(traced.app.shared.refresh_metrics())

        def by_scope(name: str) -> dict[tuple[str, str, str], float]:
            return {
                (
                    p.attributes["tiergate.caller"],
                    p.attributes.get("tiergate.task", ""),
                    p.attributes["tiergate.period"],
                ): p.value
                for p in traced.points(name)
            }

        limits = by_scope("tiergate.budget.limit")
        assert limits[("billing-service", "", "daily")] == 5.0
        assert limits[("billing-service", "Classify", "monthly")] == 0.75
        spent, left = by_scope("tiergate.budget.spent"), by_scope("tiergate.budget.left")
        for scope, limit in limits.items():
            assert spent[scope] + left[scope] == pytest.approx(limit)
        assert spent[("billing-service", "Classify", "monthly")] > 0


class TestBatchesInFlight:
    def test_a_running_batch_counts_until_it_ends(
        self, background: BackgroundLoop, tmp_path: Path
    ) -> None:
        """With the upstream batch held, the replica's gauge shows it running; once the
        upstream answers and the results are collected, it drops back to zero."""
        emulator = Emulator(EmulatorConfig(batch_delay_s=1.0))
        background.run(emulator.start())
        upstream = Upstream(emulator, background)
        server = start_traced(
            background, upstream, batch_dir=str(tmp_path / "batches"), batch_poll_s=0.05
        )
        try:
            batches = batch_service_pb2_grpc.BatchServiceStub(server.channel)
            item = bpb.BatchItem(custom_id="one")
            item.classify.CopyFrom(CLASSIFY)
            batches.CreateBatch(bpb.CreateBatchRequest(items=[item]), timeout=10)

            def running(count: int) -> bool | None:
                [point] = server.points("tiergate.batches.in_flight") or [None]
                return True if point is not None and point.value == count else None

            eventually(lambda: running(1), "the batch running")
            eventually(lambda: running(0), "the batch ended")
        finally:
            server.channel.close()
            background.run(server.app.stop(grace=1))
            background.run(emulator.stop())
