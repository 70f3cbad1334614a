"""Shadow comparisons: a mirror never touches the caller's call, is bounded, and is scored."""

from __future__ import annotations

import datetime
import io
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import structlog
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from harness import BackgroundLoop, Upstream, eventually, metric_points
from samples import READ
from tiergate import logs
from tiergate.config import Settings
from tiergate.emulator import Fault
from tiergate.evaluation.scorers import scorer_for
from tiergate.serving.app import App
from tiergate.shadow import DailyBudget, Shadow, parse
from tiergate.telemetry import Telemetry
from tiergate.tiers import Tier
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc, usage_pb2

HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"
SECRET = "charged twice for order 7781-SECRET"
REQUEST = pb.ClassifyRequest(
    text=SECRET,
    labels=[pb.Label(name="billing"), pb.Label(name="technical"), pb.Label(name="account")],
)


@dataclass
class Shadowed:
    app: App
    shadow: Shadow
    stub: task_service_pb2_grpc.TaskServiceStub
    metrics: InMemoryMetricReader
    background: BackgroundLoop

    def idle(self) -> None:
        self.background.run(self.shadow.wait_idle())

    def points(self, name: str) -> list[Any]:
        return metric_points(self.metrics, name)


@pytest.fixture
def start(background: BackgroundLoop, upstream: Upstream) -> Iterator[Callable[..., Shadowed]]:
    started: list[tuple[Shadowed, grpc.Channel]] = []

    def start(**settings: Any) -> Shadowed:
        config: dict[str, Any] = {
            "shadow": "Classify=balanced:1",
            "shadow_budget_usd": "1",
            "max_attempts": 1,
            # The tests repeat requests and count the upstream calls of each (as conftest).
            "response_cache_ttl_s": 0.0,
            **settings,
        }
        reader = InMemoryMetricReader()
        app = App(
            Settings(host="127.0.0.1", port=0, upstream="emulator", **config),
            emulator_url=upstream.url,
            telemetry=Telemetry(meter_provider=MeterProvider(metric_readers=[reader])),
        )
        background.run(app.start())
        assert app.shadow is not None
        channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
        stub = task_service_pb2_grpc.TaskServiceStub(channel)
        shadowed = Shadowed(app, app.shadow, stub, reader, background)
        started.append((shadowed, channel))
        return shadowed

    yield start
    for shadowed, channel in started:
        channel.close()
        background.run(shadowed.app.stop(grace=1))


def baseline(
    stub: task_service_pb2_grpc.TaskServiceStub, upstream: Upstream
) -> pb.ClassifyResponse:
    """The reply of a server without shadowing, then a clean emulator."""
    response: pb.ClassifyResponse = stub.Classify(REQUEST, timeout=10)
    upstream.reset()
    return response


def same_reply(got: pb.ClassifyResponse, want: pb.ClassifyResponse) -> None:
    """Identical but for the upstream's request id, which is per call."""
    got.usage.request_id = want.usage.request_id = ""
    assert got == want


def models(upstream: Upstream, count: int) -> list[str]:
    found = eventually(
        lambda: upstream.requests if len(upstream.requests) >= count else None,
        f"{count} upstream requests",
    )
    return [request["model"] for request in found]


class TestPrimaryUntouched:
    def test_reply_arrives_while_the_mirror_is_still_waiting_upstream(
        self,
        start: Callable[..., Shadowed],
        stub: task_service_pb2_grpc.TaskServiceStub,
        upstream: Upstream,
    ) -> None:
        """With the balanced model held for 60 s, the caller has its unchanged reply at once:
        the emulator saw the primary request first, the mirror second, and the mirror is still
        in flight when the reply is in hand. Stopping the server cancels it."""
        want = baseline(stub, upstream)
        server = start()
        upstream.inject(Fault("slow", delay_s=60, model=SONNET))
        got = server.stub.Classify(REQUEST, timeout=10)
        same_reply(got, want)
        assert models(upstream, 2) == [HAIKU, SONNET]
        assert server.shadow.in_flight == 1
        assert server.shadow.outcomes == {}
        server.background.run(server.app.stop(grace=1))
        assert server.shadow.in_flight == 0
        eventually(lambda: upstream.emulator.abandoned or None, "the mirror's request abandoned")

    def test_callers_usage_and_cost_metric_exclude_the_shadow_call(
        self,
        start: Callable[..., Shadowed],
        stub: task_service_pb2_grpc.TaskServiceStub,
        upstream: Upstream,
    ) -> None:
        """The caller's Usage is one Haiku call; the service's cost metric holds only that;
        the mirror's cost goes to the shadow's own metric and budget, and its agreement is
        recorded by task and tier pair."""
        want = baseline(stub, upstream)
        server = start()
        got = server.stub.Classify(REQUEST, timeout=10)
        server.idle()
        same_reply(got, want)
        assert (got.usage.model, got.usage.billed_calls) == (HAIKU, 1)
        assert got.usage.tier == usage_pb2.TIER_FAST
        assert server.shadow.outcomes == {"agreed": 1}
        spent = server.shadow.budget.spent_nanos
        assert spent > got.usage.cost.total_nanos  # Sonnet costs more for the same prompt
        [rpc_cost] = server.points("tiergate.cost")
        assert round(rpc_cost.value * 1e9) == got.usage.cost.total_nanos
        [shadow_cost] = server.points("tiergate.shadow.cost")
        assert round(shadow_cost.value * 1e9) == spent
        assert shadow_cost.attributes["gen_ai.request.model"] == SONNET
        [agreement] = server.points("tiergate.shadow.agreement")
        assert dict(agreement.attributes) == {
            "tiergate.task": "Classify",
            "tiergate.tier": "fast",
            "tiergate.shadow_tier": "balanced",
        }
        assert (agreement.count, agreement.sum) == (1, 1.0)

    def test_failing_mirror_leaves_the_primary_ok(
        self,
        start: Callable[..., Shadowed],
        stub: task_service_pb2_grpc.TaskServiceStub,
        upstream: Upstream,
    ) -> None:
        """A 500 for the mirror is counted as failed; the caller's reply is the usual one."""
        want = baseline(stub, upstream)
        server = start()
        upstream.inject(Fault("server_error", model=SONNET))
        got = server.stub.Classify(REQUEST, timeout=10)
        server.idle()
        same_reply(got, want)
        assert server.shadow.outcomes == {"failed": 1}
        [failed] = server.points("tiergate.shadow.calls")
        assert failed.attributes["tiergate.outcome"] == "failed"

    def test_unrouted_tasks_and_failed_calls_are_not_mirrored(
        self, start: Callable[..., Shadowed], upstream: Upstream
    ) -> None:
        """Only the routed task's successful calls are mirrored."""
        server = start()
        server.stub.Moderate(pb.ModerateRequest(text="hello"), timeout=10)
        upstream.inject(Fault("server_error", model=HAIKU))
        with pytest.raises(grpc.RpcError):
            server.stub.Classify(REQUEST, timeout=10)
        server.idle()
        assert server.shadow.outcomes == {}
        assert SONNET not in [request["model"] for request in upstream.requests]


def test_a_read_is_mirrored_on_another_tier_and_scored_as_extract(
    start: Callable[..., Shadowed], upstream: Upstream
) -> None:
    """Read shadowed on the balanced tier: the mirror sends the same files to Sonnet, and the
    two answers, drawn from the same text layer, agree field by field."""
    server = start(shadow="Read=balanced:1")
    reply = server.stub.Read(READ, timeout=30)
    assert reply.usage.model == "claude-opus-4-7"
    server.idle()
    assert server.shadow.outcomes == {"agreed": 1}
    sent = [request for request in upstream.requests if request["model"] == SONNET]
    assert sent[0]["messages"][0]["content"][0]["type"] == "document"


class TestBounds:
    def test_a_full_shadow_drops_and_counts(
        self, start: Callable[..., Shadowed], upstream: Upstream
    ) -> None:
        """With one mirror held upstream and room for one, the next call's mirror is dropped."""
        server = start(shadow_concurrency=1)
        upstream.inject(Fault("slow", delay_s=60, model=SONNET))
        server.stub.Classify(REQUEST, timeout=10)
        models(upstream, 2)
        server.stub.Classify(REQUEST, timeout=10)
        assert server.shadow.outcomes == {"dropped_full": 1}
        assert Counter(models(upstream, 3)) == {HAIKU: 2, SONNET: 1}

    def test_the_daily_budget_stops_mirrors(
        self, start: Callable[..., Shadowed], upstream: Upstream
    ) -> None:
        """Once a day's spend reaches the budget (here one nano-dollar), mirrors stop."""
        server = start(shadow_budget_usd="0.000000001")
        server.stub.Classify(REQUEST, timeout=10)
        server.idle()
        server.stub.Classify(REQUEST, timeout=10)
        server.idle()
        assert server.shadow.outcomes == {"agreed": 1, "dropped_budget": 1}
        assert Counter(r["model"] for r in upstream.requests) == {HAIKU: 2, SONNET: 1}

    def test_only_the_routed_fraction_is_mirrored(
        self, start: Callable[..., Shadowed], upstream: Upstream
    ) -> None:
        """At fraction 0.5, draws of 0.2 and 0.49 are mirrored and 0.5 and 0.7 are not."""
        server = start(shadow="Classify=balanced:0.5")
        server.shadow.sample = iter([0.2, 0.7, 0.49, 0.5]).__next__
        for _ in range(4):
            server.stub.Classify(REQUEST, timeout=10)
        server.idle()
        assert server.shadow.outcomes == {"agreed": 2}
        assert Counter(r["model"] for r in upstream.requests) == {HAIKU: 4, SONNET: 2}

    def test_a_new_utc_day_starts_from_zero(self) -> None:
        """Spend is per UTC day: the budget opens again the next day."""
        day = [datetime.date(2026, 11, 25)]
        budget = DailyBudget(100, lambda: day[0])
        budget.spend(60)
        assert budget.open()
        budget.spend(40)
        assert not budget.open()
        day[0] = datetime.date(2026, 11, 26)
        assert budget.open()
        assert budget.spent_nanos == 0


class TestDisagreement:
    @pytest.fixture
    def log_lines(self) -> Iterator[io.StringIO]:
        stream = io.StringIO()
        logs.configure(json=True, stream=stream)
        structlog.configure(cache_logger_on_first_use=False)
        yield stream
        structlog.reset_defaults()

    def test_one_log_line_with_ids_and_no_text(
        self, start: Callable[..., Shadowed], log_lines: io.StringIO
    ) -> None:
        """Two different labels are a disagreement: agreement 0 is recorded and one log line
        names task, tiers, models and request ids, never the request or answer text."""
        server = start()
        usage = usage_pb2.Usage(model=HAIKU, request_id="req_primary")
        primary = pb.ClassifyResponse(label="billing", usage=usage)
        mirror = pb.ClassifyResponse(
            label="account", usage=usage_pb2.Usage(model=SONNET, request_id="req_shadow")
        )
        labels = {"task": "Classify", "tier": "fast", "shadow_tier": "balanced"}
        server.background.run(
            server.shadow.compare(scorer_for("Classify"), REQUEST, primary, mirror, labels)
        )
        assert server.shadow.outcomes == {"disagreed": 1}
        [agreement] = server.points("tiergate.shadow.agreement")
        assert (agreement.count, agreement.sum) == (1, 0.0)
        lines = [json.loads(x) for x in log_lines.getvalue().splitlines()]
        [line] = [x for x in lines if x["event"].startswith("shadow.")]
        assert line["event"] == "shadow.disagreement"
        assert line["primary_request_id"] == "req_primary"
        assert line["shadow_request_id"] == "req_shadow"
        assert (line["tier"], line["shadow_tier"]) == ("fast", "balanced")
        for text in ("SECRET", "billing", "account"):
            assert text not in log_lines.getvalue()


class TestPlan:
    def test_routes_fractions_and_an_exact_budget(self) -> None:
        """``Task=tier:fraction`` per route; the budget becomes exact nano-dollars."""
        plan = parse("Classify=balanced:0.05, Reason=frontier:1", "12.345678901", 4)
        assert plan is not None
        assert plan.routes["Classify"].tier is Tier.BALANCED
        assert plan.routes["Classify"].fraction == 0.05
        assert plan.routes["Reason"].tier is Tier.FRONTIER
        assert plan.budget_nanos == 12_345_678_901
        assert parse("", "", 4) is None

    @pytest.mark.parametrize(
        ("spec", "budget", "message"),
        [
            ("Classify=fast:0.1", "1", "Classify already runs on fast"),
            ("Classify=balanced:0", "1", "fraction must be above 0"),
            ("Classify=balanced:1.5", "1", "fraction must be above 0"),
            ("Classify=balanced:x", "1", "could not convert"),
            ("classify=balanced:0.1", "1", "is not TASK=TIER:FRACTION"),
            ("Classify=huge:0.1", "1", "unknown tier 'huge'"),
            ("Classify=balanced:0.1,Classify=frontier:0.1", "1", "listed twice"),
            ("Classify=balanced:0.1", "", "TIERGATE_SHADOW_BUDGET_USD is required"),
            ("Classify=balanced:0.1", "-1", "must be a positive amount"),
            ("Classify=balanced:0.1", "0.0000000001", "nano-dollar exact"),
        ],
    )
    def test_invalid_plans_name_the_variable(self, spec: str, budget: str, message: str) -> None:
        """Every mistake is one ValueError that names the setting and the problem."""
        with pytest.raises(ValueError, match="TIERGATE_SHADOW") as raised:
            parse(spec, budget, 4)
        assert message in str(raised.value)

    def test_serve_refuses_to_start_on_a_bad_plan(self) -> None:
        """Fail closed: ``tiergate serve`` exits 2 with one line before serving anything."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "TIERGATE_"))}
        env.update(
            TIERGATE_UPSTREAM="emulator",
            TIERGATE_SHADOW="Classify=fast:0.5",
            TIERGATE_SHADOW_BUDGET_USD="1",
        )
        done = subprocess.run(
            [sys.executable, "-m", "tiergate.cli", "serve", "--port", "0"],
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )  # fmt: skip
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            "tiergate: TIERGATE_SHADOW: Classify already runs on fast; shadow another tier"
        ]
