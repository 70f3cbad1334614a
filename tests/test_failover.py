"""Failover between roads, end to end: three roads on one emulator process, the first failing
mid-load (scripted 529s, then its endpoint down) and recovering; real gRPC throughout."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from harness import BackgroundLoop, Upstream
from tiergate.config import Settings
from tiergate.emulator import Fault, Script
from tiergate.emulator.roads import PREFIXES
from tiergate.serving.app import App
from tiergate.upstream.failover import RoadClient
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub
CLASSIFY = pb.ClassifyRequest(
    text="My invoice is wrong.", labels=[pb.Label(name="billing"), pb.Label(name="other")]
)
COOLDOWN_S = 1.0


def road_env(url: str) -> dict[str, str]:
    return {
        "AWS_REGION": "us-east-1",
        "AWS_BEARER_TOKEN_BEDROCK": "bedrock-key",
        "ANTHROPIC_BEDROCK_MANTLE_BASE_URL": url + PREFIXES["bedrock"],
        "CLOUD_ML_REGION": "global",
        "ANTHROPIC_VERTEX_PROJECT_ID": "acme",
        "ANTHROPIC_VERTEX_BASE_URL": url + PREFIXES["vertex"],
        "ANTHROPIC_FOUNDRY_API_KEY": "foundry-key",
        "ANTHROPIC_FOUNDRY_BASE_URL": url + PREFIXES["foundry"],
    }


def replica(background: BackgroundLoop, **settings: Any) -> App:
    """A server on the three roads (the environment must hold their variables)."""
    app = App(
        Settings(
            **{
                "host": "127.0.0.1",
                "port": 0,
                "upstream": "bedrock,vertex,foundry",
                "vertex_access_token": "vertex-token",
                "response_cache_ttl_s": 0.0,
                "breaker_failures": 3,
                "breaker_cooldown_s": COOLDOWN_S,
                **settings,
            }
        )
    )
    background.run(app.start())
    return app


@pytest.fixture
def three_roads(background: BackgroundLoop, upstream: Upstream) -> Iterator[tuple[App, Stub]]:
    upstream.reset()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in road_env(upstream.url).items():
            patch.setenv(name, value)
        app = replica(background)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield app, Stub(channel)
        finally:
            background.run(app.stop(grace=1))
            upstream.reset()


def load(stub: Stub, calls: int, *, concurrency: int = 10) -> list[Any]:
    """``calls`` Classify calls, ``concurrency`` at a time; each a reply or the RpcError."""
    outcomes: list[Any] = []
    for start in range(0, calls, concurrency):
        futures = [
            stub.Classify.future(CLASSIFY, timeout=10)
            for _ in range(min(concurrency, calls - start))
        ]
        for future in futures:
            try:
                outcomes.append(future.result())
            except grpc.RpcError as failed:
                outcomes.append(failed)
    return outcomes


def breaker_state(client: RoadClient) -> str:
    """The first road's breaker state, read afresh (mypy narrows attributes across calls)."""
    return client.roads[0].breaker.state


def roads_of(upstream: Upstream) -> list[str]:
    return [request["road"] for request in upstream.emulator.road_requests]


def set_down(upstream: Upstream, *roads: str) -> None:
    async def down() -> None:
        upstream.emulator.down = set(roads)  # type: ignore[arg-type]

    upstream._loop.run(down())


def inject_on(upstream: Upstream, road: str, fault: Fault) -> None:
    async def inject() -> None:
        upstream.emulator.inject(fault, road=road)  # type: ignore[arg-type]

    upstream._loop.run(inject())


class TestFailover:
    def test_the_first_road_failing_mid_load_costs_no_call(
        self, three_roads: tuple[App, Stub], upstream: Upstream
    ) -> None:
        """240 calls: 60 healthy, 60 while bedrock answers 529, 60 while it is down, 60 after
        it recovers. None fails; bedrock's breaker opens and sees at most a handful of probes;
        traffic returns to it once it answers again."""
        app, stub = three_roads
        client = app._model_client
        assert isinstance(client, RoadClient)
        breaker = client.roads[0].breaker

        healthy = load(stub, 60)
        assert set(roads_of(upstream)) == {"bedrock"}

        inject_on(upstream, "bedrock", Fault("overloaded", count=10_000))
        overloaded = load(stub, 60)
        assert breaker.state != "closed"
        seen_overloaded = roads_of(upstream).count("bedrock")

        set_down(upstream, "bedrock")
        down = load(stub, 60)

        probes_while_broken = breaker.probes
        set_down(upstream)
        upstream.emulator.road_faults["bedrock"].clear()
        time.sleep(COOLDOWN_S * 1.2)  # the cool-down ends: the next call probes bedrock
        upstream.emulator.road_requests.clear()
        recovered = load(stub, 60)

        outcomes = [*healthy, *overloaded, *down, *recovered]
        failed = [o for o in outcomes if isinstance(o, grpc.RpcError)]
        assert (len(outcomes), len(failed)) == (240, 0)
        # Opened after 3 failures (10 calls were in flight at once): a handful of probes since.
        assert seen_overloaded - 60 <= 13
        assert probes_while_broken <= 5
        assert breaker_state(client) == "closed"
        # One call probes bedrock while the others of its wave take vertex; then all return.
        assert roads_of(upstream)[-50:] == ["bedrock"] * 50
        print(
            f"failover: bedrock saw {seen_overloaded - 60} calls after the 529s began and "
            f"{probes_while_broken} probes while open"
        )
        providers = {reply.usage.provider for reply in overloaded + down}
        assert providers == {"vertex"}

    def test_a_bad_request_is_not_failed_over(
        self, three_roads: tuple[App, Stub], upstream: Upstream
    ) -> None:
        """A 400 on the first road is the request's fault: no other road is asked."""
        _, stub = three_roads
        inject_on(upstream, "bedrock", Fault("bad_request"))
        with pytest.raises(grpc.RpcError) as failed:
            stub.Classify(CLASSIFY, timeout=10)
        assert failed.value.code() != grpc.StatusCode.OK
        assert roads_of(upstream) == ["bedrock"]

    def test_a_reask_stays_on_the_road_that_answered(
        self, three_roads: tuple[App, Stub], upstream: Upstream
    ) -> None:
        """A bad answer on bedrock is re-asked on bedrock: a call that billed on a road stays
        there, so the re-ask reads the same provider's prompt cache."""
        _, stub = three_roads
        upstream.script(
            Script(text=json.dumps({"label": "nonsense"})),
            Script(text=json.dumps({"label": "billing"})),
        )
        reply = stub.Classify(CLASSIFY, timeout=10)
        assert reply.usage.provider == "bedrock"
        assert roads_of(upstream) == ["bedrock", "bedrock"]

    def test_every_road_down_fails_fast_with_retry_info(
        self, three_roads: tuple[App, Stub], upstream: Upstream
    ) -> None:
        """With every road down, calls fail UNAVAILABLE; once every breaker is open they fail
        at once, without waiting on any road."""
        _, stub = three_roads
        set_down(upstream, "bedrock", "vertex", "foundry")
        outcomes = load(stub, 20)
        assert all(isinstance(o, grpc.RpcError) for o in outcomes)
        assert {o.code() for o in outcomes} == {grpc.StatusCode.UNAVAILABLE}
        set_down(upstream)


class TestSharedBreakers:
    def test_one_replica_opening_a_breaker_spares_the_others(
        self, background: BackgroundLoop, upstream: Upstream, redis_url: str
    ) -> None:
        """Two replicas on one Redis: when bedrock's 529s open the first one's breaker, the
        second skips bedrock from its next call on, without a failure of its own."""
        upstream.reset()
        with pytest.MonkeyPatch.context() as patch:
            for name, value in road_env(upstream.url).items():
                patch.setenv(name, value)
            # A cool-down far longer than both loads: the opening must still be in the store
            # when the second replica looks, however slow a loaded machine runs them.
            first = replica(background, redis_url=redis_url, breaker_cooldown_s=60.0)
            second = replica(background, redis_url=redis_url, breaker_cooldown_s=60.0)
        try:
            with (
                grpc.insecure_channel(f"127.0.0.1:{first.port}") as one,
                grpc.insecure_channel(f"127.0.0.1:{second.port}") as two,
            ):
                inject_on(upstream, "bedrock", Fault("overloaded", count=10_000))
                assert not any(isinstance(o, grpc.RpcError) for o in load(Stub(one), 10))
                upstream.emulator.road_requests.clear()
                outcomes = load(Stub(two), 10)
                assert not any(isinstance(o, grpc.RpcError) for o in outcomes)
                assert "bedrock" not in roads_of(upstream)
                assert {reply.usage.provider for reply in outcomes} == {"vertex"}
        finally:
            background.run(first.stop(grace=1))
            background.run(second.stop(grace=1))
            upstream.reset()
