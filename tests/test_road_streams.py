"""StreamSummarize, StreamAnswer and StreamReason on every cloud road, over real gRPC against
the paced emulator through each provider's SDK client: partials in order, the final Usage the
road's exact bill with its provider and scope, forced tool use where the road lacks structured
outputs, the road's own mid-stream errors; and failover rounds for streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from test_shared_state import error_info
from test_streaming import DOCUMENTS, SUMMARY, TEXT, assert_never_retracted

from harness import BackgroundLoop, Upstream, eventually
from tiergate.config import Settings
from tiergate.emulator import Emulator, EmulatorConfig, Fault, Script
from tiergate.emulator.roads import PREFIXES
from tiergate.serving.app import App
from tiergate.v1 import stream_service_pb2_grpc
from tiergate.v1 import task_service_pb2 as pb

Stub = stream_service_pb2_grpc.StreamServiceStub
HAIKU_INPUT, HAIKU_OUTPUT = 1000, 5000  # list nanos per token (models.toml)
POINTS = ["A double charge in March.", "A refund is requested."]
SUMMARY_OUTPUT = json.dumps({"summary": SUMMARY, "key_points": POINTS})


def road_env(url: str) -> dict[str, str]:
    return {
        "AWS_REGION": "us-east-1",
        "AWS_BEARER_TOKEN_BEDROCK": "bedrock-key",
        "ANTHROPIC_BEDROCK_MANTLE_BASE_URL": url + PREFIXES["bedrock"],
        "ANTHROPIC_BEDROCK_BASE_URL": url + PREFIXES["bedrock-invoke"],
        "CLOUD_ML_REGION": "global",
        "ANTHROPIC_VERTEX_PROJECT_ID": "acme",
        "ANTHROPIC_VERTEX_BASE_URL": url + PREFIXES["vertex"],
        "ANTHROPIC_FOUNDRY_API_KEY": "foundry-key",
        "ANTHROPIC_FOUNDRY_BASE_URL": url + PREFIXES["foundry"],
    }


# road -> (scope setting, endpoint scope, price percent, model id as sent, path ending)
ROADS: dict[str, tuple[dict[str, Any], str, int, str, str]] = {
    "bedrock": (
        {},
        "global",
        100,
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        "/v1/messages",
    ),
    "bedrock-invoke": (
        {"bedrock_scope": "regional"},
        "regional",
        110,
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "/invoke-with-response-stream",
    ),
    "vertex": ({}, "global", 100, "claude-haiku-4-5@20251001", ":streamRawPredict"),
    "foundry": ({}, "global", 100, "claude-haiku-4-5", "/v1/messages"),
}


@pytest.fixture(scope="module")
def paced(background: BackgroundLoop) -> Iterator[Upstream]:
    """An emulator at a tenth of the seed's latency: deltas arrive over time."""
    emulator = Emulator(EmulatorConfig(latency="seed", latency_scale=0.1))
    background.run(emulator.start())
    yield Upstream(emulator, background)
    background.run(emulator.stop())


def serve(background: BackgroundLoop, upstream: str, **settings: Any) -> App:
    app = App(
        Settings(
            **{
                "host": "127.0.0.1",
                "port": 0,
                "upstream": upstream,
                "vertex_access_token": "vertex-token",
                "response_cache_ttl_s": 0.0,
                **settings,
            }
        )
    )
    background.run(app.start())
    return app


@pytest.fixture(scope="module", params=list(ROADS))
def road(
    request: pytest.FixtureRequest, background: BackgroundLoop, paced: Upstream
) -> Iterator[tuple[str, Stub]]:
    """A server on one road (module-wide: each road's server serves all its tests)."""
    name: str = request.param
    with pytest.MonkeyPatch.context() as env:
        for variable, value in road_env(paced.url).items():
            env.setenv(variable, value)
        app = serve(background, name, **ROADS[name][0])
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield name, Stub(channel)
        finally:
            background.run(app.stop(grace=1))


@pytest.fixture
def streams(road: tuple[str, Stub], paced: Upstream) -> tuple[str, Stub]:
    paced.reset()
    return road


def sent(paced: Upstream) -> dict[str, Any]:
    return paced.emulator.road_requests[-1]


def inject_on(upstream: Upstream, road: str, *faults: Fault) -> None:
    async def inject() -> None:
        upstream.emulator.inject(*faults, road=road)  # type: ignore[arg-type]

    upstream._loop.run(inject())


class TestEveryRoadStreams:
    def test_summarize_grows_in_order_and_ends_with_the_roads_exact_bill(
        self, streams: tuple[str, Stub], paced: Upstream
    ) -> None:
        """Partials grow and are never taken back; the last carries Usage naming the road, its
        scope and model id, priced at the road's percent to the nano; the call went to the
        road's streaming path; Haiku on Vertex was asked by forced tool use, its answer read
        from input_json_delta."""
        name, stub = streams
        _, scope, percent, wire_model, path = ROADS[name]
        paced.script(Script(text=SUMMARY_OUTPUT, usage={"input_tokens": 1000, "output_tokens": 77}))
        request = pb.SummarizeRequest(text=TEXT, include_key_points=True)
        messages = list(stub.StreamSummarize(request, timeout=30))
        *partials, last = messages
        assert len(partials) > 2
        assert not any(m.complete for m in partials)
        assert_never_retracted(messages)
        summaries = [m.response.summary for m in partials if m.response.summary]
        assert summaries
        assert all(SUMMARY.startswith(s) for s in summaries)
        assert last.complete
        assert last.response.summary == SUMMARY
        assert list(last.response.key_points) == POINTS
        usage = last.response.usage
        assert (usage.provider, usage.endpoint_scope, usage.model) == (name, scope, wire_model)
        assert (usage.input_tokens, usage.output_tokens) == (1000, 77)
        assert usage.cost.total_nanos == (1000 * HAIKU_INPUT + 77 * HAIKU_OUTPUT) * percent // 100
        assert usage.billed_calls == 1
        call = sent(paced)
        assert call["road"] == name
        assert call["path"].endswith(path)
        body = call["body"]
        if name == "vertex":
            assert body["tool_choice"] == {"type": "tool", "name": "answer"}
            assert "output_config" not in body
        else:
            assert body["output_config"]["format"]["type"] == "json_schema"
        assert ("stream" in body) is (name != "bedrock-invoke")

    def test_answer_and_reason_stream_on_the_road(
        self, streams: tuple[str, Stub], paced: Upstream
    ) -> None:
        name, stub = streams
        output = {"answer": "Refunds are issued within five business days.", "cite": [1]}
        steps = ["Two trains leave at noon.", "They meet after two hours."]
        reasoning = {"steps": steps, "answer": "At two in the afternoon.", "confidence": 3}
        paced.script(Script(text=json.dumps(output)), Script(text=json.dumps(reasoning)))
        question = pb.AnswerRequest(question="How fast are refunds?", documents=DOCUMENTS)
        answers = list(stub.StreamAnswer(question, timeout=30))
        assert_never_retracted(answers)
        assert answers[-1].complete
        assert answers[-1].response.answerable
        assert [c.quote for c in answers[-1].response.citations] == [DOCUMENTS[0].text]
        assert answers[-1].response.usage.provider == name
        asked = pb.ReasonRequest(question="When?", include_confidence=True)
        reasons = list(stub.StreamReason(asked, timeout=30))
        assert_never_retracted(reasons)
        assert len(reasons) > 1
        assert list(reasons[-1].response.steps) == steps
        assert reasons[-1].response.usage.provider == name

    def test_the_roads_error_before_output_is_retried(
        self, streams: tuple[str, Stub], paced: Upstream
    ) -> None:
        """The road's error event before the first delta (on InvokeModel the event-stream
        exception that relays an overload) is retried on the road: one clean stream."""
        name, stub = streams
        inject_on(paced, name, Fault("stream_error", after_deltas=0))
        scripted = Script(text=json.dumps({"summary": SUMMARY}))
        paced.script(scripted, scripted)
        messages = list(stub.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30))
        assert messages[-1].response.summary == SUMMARY
        assert messages[-1].response.usage.attempts == 2
        assert len(paced.emulator.road_requests) == 2

    def test_the_roads_error_after_output_ends_the_stream_unavailable(
        self, streams: tuple[str, Stub], paced: Upstream
    ) -> None:
        name, stub = streams
        inject_on(paced, name, Fault("stream_error", after_deltas=5))
        paced.script(Script(text=json.dumps({"summary": SUMMARY})))
        seen: list[Any] = []
        with pytest.raises(grpc.RpcError) as caught:
            seen.extend(stub.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(caught.value)[0] == "UPSTREAM_UNAVAILABLE"
        assert seen
        assert not any(m.complete for m in seen)
        assert len(paced.emulator.road_requests) == 1

    def test_cancel_closes_the_roads_upstream_stream(
        self, streams: tuple[str, Stub], paced: Upstream
    ) -> None:
        """Cancelling after the first partial closes the road's stream at once (an event
        stream as much as server-sent events): the emulator sees its client hang up."""
        _, stub = streams
        long_summary = " ".join([SUMMARY] * 6)
        paced.script(Script(text=json.dumps({"summary": long_summary})))
        call = stub.StreamSummarize(pb.SummarizeRequest(text=TEXT, max_words=500), timeout=30)
        assert not next(call).complete
        call.cancel()
        eventually(lambda: paced.emulator.abandoned or None, "the road's stream to close")
        assert paced.emulator.abandoned == 1


class TestInvokeStreamExceptions:
    @pytest.mark.parametrize(
        ("exception", "retried"),
        [
            ("throttlingException", True),
            ("serviceUnavailableException", True),
            ("modelStreamErrorException", True),
            ("validationException", False),
        ],
    )
    def test_each_exception_is_the_status_aws_documents(
        self,
        background: BackgroundLoop,
        paced: Upstream,
        exception: str,
        retried: bool,
    ) -> None:
        """Before any output, throttling (429), unavailability (503) and a model stream error
        (424, documented "Retry your request") are retried; a validation error (400) is not,
        and ends as a 400 of the unary path does, never UNKNOWN."""
        paced.reset()
        with pytest.MonkeyPatch.context() as env:
            for variable, value in road_env(paced.url).items():
                env.setenv(variable, value)
            app = serve(background, "bedrock-invoke", bedrock_scope="regional")
        try:
            inject_on(
                paced,
                "bedrock-invoke",
                Fault("stream_error", after_deltas=0, stream_error_type=exception),
            )
            scripted = Script(text=json.dumps({"summary": SUMMARY}))
            paced.script(scripted, scripted)
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                call = Stub(channel).StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30)
                if retried:
                    assert list(call)[-1].response.summary == SUMMARY
                else:
                    with pytest.raises(grpc.RpcError) as caught:
                        list(call)
                    # A 400 is the request's fault, and tiergate built it: as on the unary path.
                    assert caught.value.code() == grpc.StatusCode.INTERNAL
                    assert error_info(caught.value)[0] == "UPSTREAM_REJECTED"
            assert len(paced.emulator.road_requests) == (2 if retried else 1)
        finally:
            background.run(app.stop(grace=1))


@pytest.fixture
def two_roads(background: BackgroundLoop, paced: Upstream) -> Iterator[Stub]:
    """A server on Bedrock InvokeModel, then Vertex AI, with two rounds over them."""
    paced.reset()
    with pytest.MonkeyPatch.context() as env:
        for variable, value in road_env(paced.url).items():
            env.setenv(variable, value)
        app = serve(background, "bedrock-invoke,vertex", max_attempts=2, breaker_failures=3)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            yield Stub(channel)
    finally:
        background.run(app.stop(grace=1))
        paced.reset()


def roads_of(upstream: Upstream) -> list[str]:
    return [call["road"] for call in upstream.emulator.road_requests]


class TestStreamFailover:
    @pytest.mark.parametrize(
        "fault",
        [Fault("overloaded"), Fault("stream_error", after_deltas=0)],
        ids=["529", "error-event"],
    )
    def test_a_road_failing_before_any_output_fails_over(
        self, two_roads: Stub, paced: Upstream, fault: Fault
    ) -> None:
        """The first road overloaded (a 529, or the overload relayed in its event stream before
        the first delta): the stream moves to the next road at once, which answers and bills;
        the caller sees one clean stream."""
        inject_on(paced, "bedrock-invoke", fault)
        paced.script(*[Script(text=json.dumps({"summary": SUMMARY}))] * 3)
        messages = list(two_roads.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30))
        assert_never_retracted(messages)
        usage = messages[-1].response.usage
        assert messages[-1].response.summary == SUMMARY
        assert roads_of(paced) == ["bedrock-invoke", "vertex"]
        assert (usage.provider, usage.billed_calls, usage.attempts) == ("vertex", 1, 2)

    def test_a_failure_after_partials_does_not_fail_over(
        self, two_roads: Stub, paced: Upstream
    ) -> None:
        """Once a partial went out, another road would write another answer over it: the
        stream ends UNAVAILABLE and the next road is never asked."""
        inject_on(paced, "bedrock-invoke", Fault("stream_error", after_deltas=5))
        paced.script(Script(text=json.dumps({"summary": SUMMARY})))
        seen: list[Any] = []
        with pytest.raises(grpc.RpcError) as caught:
            seen.extend(two_roads.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert seen
        assert roads_of(paced) == ["bedrock-invoke"]

    def test_every_road_failing_starts_another_round(
        self, two_roads: Stub, paced: Upstream
    ) -> None:
        """Both roads overloaded: after the backoff a second round starts, as for a unary
        call, and the first road answers it."""
        inject_on(paced, "bedrock-invoke", Fault("overloaded"))
        inject_on(paced, "vertex", Fault("overloaded"))
        paced.script(Script(text=json.dumps({"summary": SUMMARY})))
        messages = list(two_roads.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30))
        usage = messages[-1].response.usage
        assert (usage.provider, usage.billed_calls) == ("bedrock-invoke", 1)
        assert (usage.attempts, usage.endpoint_scope) == (3, "global")
        assert roads_of(paced) == ["bedrock-invoke", "vertex", "bedrock-invoke"]
