"""Shared state across replicas: two real services on one real redis-server, real gRPC, the
emulator upstream. Budgets, the response cache, in-flight coalescing, rate-limit pacing, and
what happens when Redis goes away."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from redis_server import RedisServer

from conftest import start_app
from harness import BackgroundLoop, Upstream, eventually, metric_points, rich_status
from samples import TICKET_LABELS
from tiergate.calls import sizing
from tiergate.calls.prompt import Prompt
from tiergate.cli import main as cli
from tiergate.config import Settings
from tiergate.emulator import Fault, Script
from tiergate.ledger import PriceTable
from tiergate.serving.app import App
from tiergate.shared.budgets import BudgetPolicy, Budgets, parse_usd, usd
from tiergate.shared.gate import worst_case_nanos
from tiergate.shared.ratelimits import parse_reading
from tiergate.shared.response_cache import cache_key, prompt_version
from tiergate.telemetry import Telemetry
from tiergate.v1 import spend_service_pb2, spend_service_pb2_grpc, task_service_pb2_grpc
from tiergate.v1 import task_service_pb2 as pb

TOKEN = "s3cret-billing"
AUTH: tuple[tuple[str, str | bytes], ...] = (("authorization", f"Bearer {TOKEN}"),)
ANSWER = json.dumps({"label": "billing", "confidence": 0.9})


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The module's redis-server, running (a test may have killed it) and empty."""
    if not _alive(redis_server):
        redis_server.start()
    redis_server.flush()
    return redis_server.url


def _alive(server: RedisServer) -> bool:
    try:
        server.flush()
    except OSError:
        return False
    return True


def replicas(
    background: BackgroundLoop,
    upstream: Upstream,
    tmp_path: Path,
    budgets: str = "",
    **settings: Any,
) -> list[App]:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"billing-service={TOKEN}\nsearch=s3cret-search\n")
    if budgets:
        (tmp_path / "budgets.toml").write_text(budgets)
        settings["budgets_file"] = str(tmp_path / "budgets.toml")
    return [
        start_app(background, upstream, auth_tokens_file=str(tokens), **settings) for _ in range(2)
    ]


def stubs(apps: list[App]) -> list[task_service_pb2_grpc.TaskServiceStub]:
    return [
        task_service_pb2_grpc.TaskServiceStub(grpc.insecure_channel(f"127.0.0.1:{a.port}"))
        for a in apps
    ]


def stop(background: BackgroundLoop, apps: list[App]) -> None:
    for app in apps:
        background.run(app.stop(grace=1))


def error_info(err: grpc.RpcError) -> tuple[str, list[Any]]:
    status = rich_status(err)
    assert status is not None
    reason, details = "", []
    for detail in status.details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.QuotaFailure,
            error_details_pb2.RetryInfo,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                if isinstance(message, error_details_pb2.ErrorInfo):
                    reason = message.reason
                details.append(message)
    return reason, details


def classify(text: str) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(text=text, labels=TICKET_LABELS, include_confidence=True)


class TestBudgetFile:
    def test_dollars_become_exact_nanos(self) -> None:
        """Decimal strings convert exactly; floats, negatives and >9 decimals are refused."""
        assert parse_usd("25.00", where="x") == 25_000_000_000
        assert parse_usd("0.000000001", where="x") == 1
        assert parse_usd("500", where="x") == 500_000_000_000
        for bad in ("-1", "1e3", "0.0000000001", "", "12,5"):
            with pytest.raises(ValueError, match="decimal string"):
                parse_usd(bad, where="x")

    def test_a_float_in_the_file_is_refused_at_start(self, tmp_path: Path) -> None:
        """A budget written as a TOML float (inexact) stops start-up, naming the entry."""
        path = tmp_path / "b.toml"
        path.write_text("[callers.a]\ndaily_usd = 25.0\n")
        with pytest.raises(ValueError, match=r"callers\.a\.daily_usd"):
            BudgetPolicy.load(path)

    def test_task_limits_nest_under_their_caller(self, tmp_path: Path) -> None:
        """A task table adds its own scope after the caller's."""
        path = tmp_path / "b.toml"
        path.write_text(
            '[callers.a]\nmonthly_usd = "5"\n[callers.a.tasks.Reason]\ndaily_usd = "1.5"\n'
        )
        policy = BudgetPolicy.load(path)
        scopes = policy.scopes("a", "Reason")
        assert [s for s, _ in scopes] == ["a", "a/Reason"]
        assert scopes[1][1].daily == 1_500_000_000
        assert policy.scopes("a", "Classify")[0][1].monthly == 5_000_000_000
        assert policy.scopes("b", "Classify") == []

    def test_the_service_refuses_to_start_on_a_bad_budgets_file(self, tmp_path: Path) -> None:
        """Fail closed: an unreadable or invalid budgets file stops start-up, naming it."""
        path = tmp_path / "b.toml"
        path.write_text('[callers.a]\ndaily_usd = "lots"\n')
        with pytest.raises(ValueError, match=r"b\.toml: callers\.a\.daily_usd"):
            App(Settings(upstream="emulator", budgets_file=str(path)))
        with pytest.raises(ValueError, match="missing"):
            App(Settings(upstream="emulator", budgets_file=str(tmp_path / "missing.toml")))


class TestWorstCase:
    def test_reasks_and_doubled_max_tokens_are_reserved(self) -> None:
        """Each allowed re-ask adds a call with the previous answer in its prompt and twice
        the room to answer; a prompt that can reach the cache minimum is priced at the
        dearest input rate (a cache write), 1h for the automatic lifetime."""
        facts = PriceTable.load().facts("claude-haiku-4-5")
        policy = "refunds take fourteen days " * 2000
        prompt = Prompt("i", (policy,), "r", {"type": "object"}, 100)
        one = worst_case_nanos(prompt, facts, max_reasks=0, ttl="5m")
        two = worst_case_nanos(prompt, facts, max_reasks=1, ttl="5m")
        assert one >= 100 * facts.output
        assert two - one >= 200 * facts.output + (100 + 256) * facts.cache_write_5m
        assert worst_case_nanos(prompt, facts, max_reasks=0, ttl="1h") > one
        assert worst_case_nanos(prompt, facts, max_reasks=0, ttl="auto") == worst_case_nanos(
            prompt, facts, max_reasks=0, ttl="1h"
        )

    def test_a_prompt_below_the_cache_minimum_is_priced_as_plain_input(self) -> None:
        """No breakpoint is placed below the model's cache minimum, so nothing is written:
        a short prompt's worst case is the plain input price, whatever the lifetime."""
        facts = PriceTable.load().facts("claude-haiku-4-5")
        prompt = Prompt("i", (), "r", {"type": "object"}, 100)
        five = worst_case_nanos(prompt, facts, max_reasks=0, ttl="5m")
        assert five == worst_case_nanos(prompt, facts, max_reasks=0, ttl="1h")
        high = sizing.prompt_bounds(prompt, facts).high
        assert five == high * facts.input + 100 * facts.output


class TestBudgetsAcrossReplicas:
    def test_two_hundred_calls_never_overspend_a_budget_for_fifty(
        self,
        background: BackgroundLoop,
        upstream: Upstream,
        tmp_path: Path,
        redis_url: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """200 concurrent distinct calls over two replicas on one Redis, against a daily budget
        that fits 50 calls: spend stays within it, at least 45 are served, the rest get
        BUDGET_EXCEEDED with a QuotaFailure and never reach the upstream; GetSpend and
        ``tiergate spend`` show the exact spend with nothing left reserved."""
        probe = start_app(background, upstream, max_reasks=0)
        try:
            upstream.script(Script(text=ANSWER))
            one = stubs([probe])[0].Classify(classify("order 0000 refund"), timeout=10)
        finally:
            stop(background, [probe])
        cost = one.usage.cost.total_nanos
        assert cost > 0
        budget = 50 * cost
        dollars = f"{budget // 10**9}.{budget % 10**9:09d}"
        apps = replicas(
            background,
            upstream,
            tmp_path,
            f'[callers.billing-service]\ndaily_usd = "{dollars}"\n',
            redis_url=redis_url,
            max_reasks=0,
        )
        upstream.reset()
        upstream.script(Script(text=ANSWER, count=200))
        try:
            calls = stubs(apps)
            futures = [
                calls[i % 2].Classify.future(
                    classify(f"order {i:04d} refund"), timeout=60, metadata=AUTH
                )
                for i in range(200)
            ]
            served, refused = [], []
            for future in futures:
                try:
                    served.append(future.result())
                except grpc.RpcError as err:
                    refused.append(err)
            spent = sum(r.usage.cost.total_nanos for r in served)
            with capsys.disabled():
                print(f"budget={budget} spent={spent} served={len(served)} refused={len(refused)}")
            assert spent <= budget
            assert len(served) >= 45
            assert len(upstream.requests) == len(served)
            for failure in refused:
                assert failure.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                reason, details = error_info(failure)
                assert reason == "BUDGET_EXCEEDED"
                quota = [d for d in details if isinstance(d, error_details_pb2.QuotaFailure)]
                assert quota
                assert quota[0].violations[0].subject == "caller:billing-service"
            spend = spend_service_pb2_grpc.SpendServiceStub(
                grpc.insecure_channel(f"127.0.0.1:{apps[1].port}")
            ).GetSpend(spend_service_pb2.GetSpendRequest(), metadata=AUTH, timeout=10)
            (row,) = spend.periods
            today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
            assert row.period == f"daily {today}"
            assert (row.spent_nanos, row.reserved_nanos) == (spent, 0)
            assert row.left_nanos == budget - spent
            shown = _spend_cli(apps[0].port, monkeypatch, capsys)
            assert shown["budgets"][0]["spent_usd"] == usd(spent)
            assert shown["budgets"][0]["limit_usd"] == dollars
        finally:
            stop(background, apps)


class TestOneReplicaInProcess:
    def test_budget_and_cache_without_redis_with_their_metrics(
        self, background: BackgroundLoop, upstream: Upstream, tmp_path: Path
    ) -> None:
        """Without TIERGATE_REDIS_URL the same rules hold in the process: distinct calls are
        served until the budget cannot hold the next worst case, then BUDGET_EXCEEDED before
        any upstream request; a repeat is a cache hit. The gauges show spend and what is left
        per caller, the hit ratio and lookups are counted."""
        reader = InMemoryMetricReader()
        telemetry = Telemetry(meter_provider=MeterProvider(metric_readers=[reader]))
        tokens = tmp_path / "tokens"
        tokens.write_text(f"billing-service={TOKEN}\n")
        budgets = tmp_path / "budgets.toml"
        budgets.write_text('[callers.billing-service]\nmonthly_usd = "0.01"\n')
        app = start_app(
            background,
            upstream,
            telemetry=telemetry,
            auth_tokens_file=str(tokens),
            budgets_file=str(budgets),
            response_cache_ttl_s=60,
        )
        try:
            (call,) = stubs([app])
            upstream.script(Script(text=ANSWER, count=100))
            served, refused = [], []
            for i in range(100):
                try:
                    request = classify(f"order {i:03d}")
                    served.append(call.Classify(request, timeout=10, metadata=AUTH))
                except grpc.RpcError as err:
                    refused.append(err)
                    break
            assert [error_info(err)[0] for err in refused] == ["BUDGET_EXCEEDED"]
            assert len(upstream.requests) == len(served) >= 1
            spent = sum(r.usage.cost.total_nanos for r in served)
            assert spent <= 10_000_000
            hit = call.Classify(classify("order 000"), timeout=10, metadata=AUTH)
            assert hit.usage.from_cache
            background.run(app.shared.refresh_metrics())
            (spent_point,) = metric_points(reader, "tiergate.budget.spent")
            assert spent_point.value == spent / 10**9
            assert spent_point.attributes == {
                "tiergate.caller": "billing-service",
                "tiergate.period": "monthly",
            }
            (left_point,) = metric_points(reader, "tiergate.budget.left")
            assert left_point.value == (10_000_000 - spent) / 10**9
            (ratio,) = metric_points(reader, "tiergate.response_cache.hit_ratio")
            assert ratio.value == 1 / (len(served) + 2)
            lookups = {
                p.attributes["tiergate.result"]: p.value
                for p in metric_points(reader, "tiergate.response_cache.lookups")
            }
            assert lookups == {"hit": 1, "miss": len(served) + 1}
            spend = spend_service_pb2_grpc.SpendServiceStub(
                grpc.insecure_channel(f"127.0.0.1:{app.port}")
            )
            with pytest.raises(grpc.RpcError) as other:
                spend.GetSpend(
                    spend_service_pb2.GetSpendRequest(caller="search"), metadata=AUTH, timeout=10
                )
            assert other.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.RpcError) as anonymous:
                spend.GetSpend(spend_service_pb2.GetSpendRequest(), timeout=10)
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            stop(background, [app])


class TestResponseCache:
    def test_a_repeat_is_served_from_the_cache_at_zero_cost(
        self, background: BackgroundLoop, upstream: Upstream, tmp_path: Path, redis_url: str
    ) -> None:
        """The same Classify on the other replica is answered from the cache: flagged, no
        billed call, zero cost, the same typed answer, and no upstream request; with
        ``x-tiergate-cache: off`` it goes upstream again, and so does another caller's."""
        apps = replicas(
            background, upstream, tmp_path, redis_url=redis_url, response_cache_ttl_s=60
        )
        try:
            first, second = stubs(apps)
            upstream.script(Script(text=ANSWER, count=2))
            paid = first.Classify(classify("refund my order"), timeout=10, metadata=AUTH)
            hit = second.Classify(classify("refund my order"), timeout=10, metadata=AUTH)
            assert not paid.usage.from_cache
            assert paid.usage.billed_calls == 1
            assert hit.usage.from_cache
            assert (hit.usage.billed_calls, hit.usage.cost.total_nanos) == (0, 0)
            assert (hit.label, hit.confidence) == (paid.label, paid.confidence)
            assert len(upstream.requests) == 1
            fresh = second.Classify(
                classify("refund my order"),
                timeout=10,
                metadata=(*AUTH, ("x-tiergate-cache", "off")),
            )
            assert not fresh.usage.from_cache
            assert fresh.usage.billed_calls == 1
            assert len(upstream.requests) == 2
            upstream.script(Script(text=ANSWER))
            other = first.Classify(
                classify("refund my order"),
                timeout=10,
                metadata=(("authorization", "Bearer s3cret-search"),),
            )
            assert not other.usage.from_cache
            assert len(upstream.requests) == 3
        finally:
            stop(background, apps)

    def test_a_changed_prompt_or_caller_changes_the_key(self) -> None:
        """The key follows the task's prompt: other instructions, schema or max_tokens for
        the same request bytes give another key; so does another caller."""
        request = classify("x")
        base = Prompt("do it", (), "x", {"type": "object"}, 64)
        others = [
            Prompt("do it better", (), "x", {"type": "object"}, 64),
            Prompt("do it", (), "x", {"type": "object", "required": ["a"]}, 64),
            Prompt("do it", (), "x", {"type": "object"}, 65),
        ]
        keys = {cache_key("Classify", "m", request, p, scope="a") for p in [base, *others]}
        keys.add(cache_key("Classify", "m", request, base, scope="b"))
        assert len(keys) == 5
        assert prompt_version(base) == prompt_version(
            Prompt("do it", ("c",), "y", {"type": "object"}, 64)
        )


class TestCoalescing:
    def test_fifty_identical_calls_over_two_replicas_cost_one_upstream_call(
        self, background: BackgroundLoop, upstream: Upstream, tmp_path: Path, redis_url: str
    ) -> None:
        """50 identical concurrent Classify calls, split over two replicas, while the upstream
        is slow to answer: one upstream request, one billed answer, 49 at zero cost."""
        apps = replicas(
            background, upstream, tmp_path, redis_url=redis_url, response_cache_ttl_s=60
        )
        try:
            calls = stubs(apps)
            upstream.inject(Fault("slow", delay_s=1.0))
            upstream.script(Script(text=ANSWER, count=50))
            futures = [
                calls[i % 2].Classify.future(
                    classify("where is my refund"), timeout=30, metadata=AUTH
                )
                for i in range(50)
            ]
            answers = [f.result() for f in futures]
            print(f"upstream requests={len(upstream.requests)}")
            assert len(upstream.requests) == 1
            assert sum(a.usage.billed_calls for a in answers) == 1
            assert {a.label for a in answers} == {"billing"}
            coalesced = sum(app.shared.coalescer.coalesced for app in apps)
            assert coalesced >= 1
        finally:
            stop(background, apps)


class TestRedisUnreachable:
    def test_budgets_fail_closed_and_open_as_configured(
        self,
        background: BackgroundLoop,
        upstream: Upstream,
        tmp_path: Path,
        redis_server: RedisServer,
        redis_url: str,
    ) -> None:
        """redis-server is killed while a budgeted call is in flight: that call is served and
        its settlement held; a fail-closed replica then refuses budgeted calls with
        SHARED_STATE_UNAVAILABLE before any upstream request; a fail-open replica serves them.
        Once Redis is back (empty: the test server keeps no data) every held settlement is
        stored, none lost, none twice."""
        budgets = '[callers.billing-service]\nmonthly_usd = "100"\n'
        closed = replicas(background, upstream, tmp_path, budgets, redis_url=redis_url)[0]
        opened = start_app(
            background,
            upstream,
            redis_url=redis_url,
            budgets_file=str(tmp_path / "budgets.toml"),
            auth_tokens_file=str(tmp_path / "tokens"),
            budget_store_failure="open",
        )
        assert closed.shared.budgets is not None
        assert opened.shared.budgets is not None
        try:
            closed_stub, open_stub = stubs([closed, opened])
            upstream.inject(Fault("slow", delay_s=1.0))
            in_flight = closed_stub.Classify.future(
                classify("in flight during the outage"), timeout=30, metadata=AUTH
            )
            budgets_of = closed.shared.budgets
            eventually(
                lambda: True if background.run(budgets_of.spend())[0].reserved else None,
                "the in-flight call's reservation",
            )
            redis_server.kill()
            first = in_flight.result()
            assert budgets_of.pending == 1
            sent = len(upstream.requests)
            with pytest.raises(grpc.RpcError) as refused:
                closed_stub.Classify(classify("during the outage"), timeout=10, metadata=AUTH)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_info(refused.value)[0] == "SHARED_STATE_UNAVAILABLE"
            assert len(upstream.requests) == sent
            served = open_stub.Classify(classify("during the outage"), timeout=10, metadata=AUTH)
            assert served.usage.cost.total_nanos > 0
            assert opened.shared.budgets.pending == 1
            redis_server.start()
            for held in (budgets_of, opened.shared.budgets):
                eventually(partial(_stored, held), "settlements stored")
            (row,) = background.run(opened.shared.budgets.spend("billing-service"))
            costs = first.usage.cost.total_nanos + served.usage.cost.total_nanos
            assert (row.spent, row.reserved) == (costs, 0)
        finally:
            stop(background, [closed, opened])


class TestRateLimitPacing:
    def test_calls_wait_for_room_or_are_refused_before_a_429(
        self, background: BackgroundLoop, upstream: Upstream, tmp_path: Path, redis_url: str
    ) -> None:
        """After one replica reads "no requests left until reset", the next call on the other
        replica is the probe and goes upstream (which says the same again); a call right after
        it, whose deadline ends before both the reset and the next probe, is refused with
        UPSTREAM_RATE_LIMITED and RetryInfo and sends nothing upstream; once the reading says
        room comes back soon, a call with time to wait goes through."""
        apps = replicas(background, upstream, tmp_path, redis_url=redis_url)
        try:
            first, second = stubs(apps)
            far = _reset_in(30)
            upstream.script(Script(text=ANSWER, headers=_limits(remaining=0, reset=far), count=2))
            first.Classify(classify("one"), timeout=10, metadata=AUTH)
            probe = second.Classify(classify("two"), timeout=10, metadata=AUTH)
            assert probe.usage.billed_calls == 1
            assert len(upstream.requests) == 2
            with pytest.raises(grpc.RpcError) as paced:
                first.Classify(classify("three"), timeout=0.5, metadata=AUTH)
            assert paced.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            reason, details = error_info(paced.value)
            assert reason == "UPSTREAM_RATE_LIMITED"
            retry = [d for d in details if isinstance(d, error_details_pb2.RetryInfo)]
            assert retry
            assert retry[0].retry_delay.seconds >= 2
            assert len(upstream.requests) == 2
            # A newer reading (as a response on the first replica would bring): room in ~2 s.
            background.run(
                apps[0].shared.pacer.observe(  # type: ignore[union-attr]
                    "claude-haiku-4-5", _limits(remaining=0, reset=_reset_in(2))
                )
            )
            served = second.Classify(classify("four"), timeout=30, metadata=AUTH)
            assert served.usage.billed_calls == 1
            assert apps[1].shared.pacer is not None
            assert apps[1].shared.pacer.paced + apps[1].shared.pacer.probed >= 2
        finally:
            stop(background, apps)


class TestRateLimitReadings:
    def test_header_names_are_read_in_any_case(self) -> None:
        """HTTP header names are case-insensitive: a reading comes from any spelling, other
        headers are ignored, and so is a bucket without all three of its headers."""
        reset = _reset_in(30)
        headers = {
            "Anthropic-RateLimit-Requests-Limit": "50",
            "ANTHROPIC-RATELIMIT-REQUESTS-REMAINING": "40",
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-input-tokens-limit": "1000",
            "content-type": "application/json",
        }
        now = time.time()
        reading = parse_reading(headers, now)
        assert reading == {
            "requests:limit": 50.0,
            "requests:remaining": 40.0,
            "requests:reset": datetime.datetime.fromisoformat(reset).timestamp(),
            "requests:at": now,
            "requests:taken": 0.0,
        }

    def test_each_reset_instant_is_read_for_itself(self) -> None:
        """Two readings with different reset instants keep their own (the parse of an
        instant is remembered, never confused with another)."""
        soon, later = _reset_in(5), _reset_in(50)
        now = time.time()
        first = parse_reading(_limits(remaining=1, reset=soon), now)
        second = parse_reading(_limits(remaining=1, reset=later), now)
        again = parse_reading(_limits(remaining=1, reset=soon), now)
        assert second["requests:reset"] - first["requests:reset"] == pytest.approx(45, abs=1)
        assert again == first


def _stored(budgets: Budgets) -> bool | None:
    return True if not budgets.pending else None


def _spend_cli(
    port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    monkeypatch.setenv("TIERGATE_TOKEN", TOKEN)
    capsys.readouterr()
    assert cli.main(["spend", "--target", f"127.0.0.1:{port}", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _reset_in(seconds: float) -> str:
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def _limits(*, remaining: int, reset: str) -> dict[str, str]:
    return {
        "anthropic-ratelimit-requests-limit": "1",
        "anthropic-ratelimit-requests-remaining": str(remaining),
        "anthropic-ratelimit-requests-reset": reset,
    }
