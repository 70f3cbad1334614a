"""Every road that streams, in its own form: Bedrock InvokeModel's AWS event stream (decoded by
botocore and by the SDK), Vertex AI's ``:streamRawPredict`` and the Messages API endpoints of
Bedrock and Foundry as server-sent events; the same pacing and mid-stream faults on each."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from test_emulator_roads import (
    ASK,
    HAIKU_BEDROCK,
    HAIKU_VERTEX,
    INVOKE_VERSION,
    VERTEX_VERSION,
    foundry,
    invoke,
    mantle,
    vertex,
)

from tiergate.emulator import Emulator, EmulatorConfig, Fault, Script
from tiergate.emulator.eventstream import chunk, exception, frame
from tiergate.emulator.roads import PREFIXES, RoadKeys
from tiergate.emulator.testing import ThreadedEmulator

ROADS = ("bedrock", "bedrock-invoke", "vertex", "foundry")
KEY_ID, SECRET = "AKIDSTREAM", "stream-secret"


@pytest.fixture(scope="module")
def roads() -> Iterator[ThreadedEmulator]:
    keys = RoadKeys(
        bedrock="bedrock-key",
        vertex="vertex-token",
        foundry="foundry-key",
        aws_secrets={KEY_ID: SECRET},
    )
    with ThreadedEmulator(EmulatorConfig(road_keys=keys)) as running:
        yield running


@pytest.fixture
def emulator(roads: ThreadedEmulator) -> Emulator:
    roads.emulator.reset()
    return roads.emulator


def stream_on(roads: ThreadedEmulator, road: str) -> Any:
    """The SDK's stream manager for ``ASK`` on ``road``, as its client sends it."""
    if road == "bedrock":
        return mantle(roads).messages.stream(model=HAIKU_BEDROCK, max_tokens=200, messages=ASK)
    if road == "bedrock-invoke":
        return invoke(roads).messages.stream(
            model=HAIKU_BEDROCK, max_tokens=200, messages=ASK, extra_body=INVOKE_VERSION
        )
    if road == "vertex":
        return vertex(roads).messages.stream(
            model=HAIKU_VERTEX, max_tokens=200, messages=ASK, extra_body=VERTEX_VERSION
        )
    return foundry(roads).messages.stream(model="claude-haiku-4-5", max_tokens=200, messages=ASK)


def decoded(raw: bytes) -> list[tuple[dict[str, Any], Any]]:
    """botocore's reading of an event stream: (headers, payload JSON) per message."""
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return [(dict(message.headers), json.loads(message.payload)) for message in buffer]


class TestEventStreamFraming:
    def test_botocore_reads_what_the_encoder_writes(self) -> None:
        """Prelude, headers and both CRC32s as botocore checks them; a flipped byte fails."""
        written = chunk({"type": "ping"}) + exception("throttlingException", "Slow down.")
        (first_headers, first), (second_headers, second) = decoded(written)
        assert first_headers == {
            ":event-type": "chunk",
            ":content-type": "application/json",
            ":message-type": "event",
        }
        assert json.loads(base64.b64decode(first["bytes"])) == {"type": "ping"}
        assert second_headers[":message-type"] == "exception"
        assert second_headers[":exception-type"] == "throttlingException"
        assert second == {"message": "Slow down."}
        broken = bytearray(frame({":message-type": "event"}, b"{}"))
        broken[-5] ^= 1
        buffer = EventStreamBuffer()
        buffer.add_data(bytes(broken))
        with pytest.raises(ChecksumMismatch):
            list(buffer)

    def test_only_documented_exceptions(self) -> None:
        with pytest.raises(ValueError, match="unknown ResponseStream exception"):
            exception("overloadedException", "no such thing")


class TestInvokeWithResponseStream:
    def test_the_events_travel_as_base64_chunks_in_the_documented_order(
        self, roads: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """Raw HTTP with a SigV4 signature by botocore: the event-stream content type, one
        chunk per Messages API event, message_start first and message_stop last, the usage of
        message_delta the whole bill; the body took no ``stream`` key (the path streams)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        url = f"{roads.base_url}{PREFIXES['bedrock-invoke']}/model/{HAIKU_BEDROCK}"
        body = json.dumps({**INVOKE_VERSION, "max_tokens": 200, "messages": ASK}).encode()
        signed = AWSRequest("POST", url + "/invoke-with-response-stream", data=body)
        signed.headers["content-type"] = "application/json"
        SigV4Auth(Credentials(KEY_ID, SECRET), "bedrock", "us-east-1").add_auth(signed)
        answer = httpx2.post(signed.url, content=body, headers=dict(signed.headers.items()))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/vnd.amazon.eventstream"
        frames = decoded(answer.content)
        assert {headers[":event-type"] for headers, _ in frames} == {"chunk"}
        events = [json.loads(base64.b64decode(payload["bytes"])) for _, payload in frames]
        kinds = [event["type"] for event in events]
        assert kinds[:3] == ["message_start", "ping", "content_block_start"]
        assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
        whole = invoke(roads).messages.create(
            model=HAIKU_BEDROCK, max_tokens=200, messages=ASK, extra_body=INVOKE_VERSION
        )
        text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
        assert text == whole.content[0].text  # type: ignore[union-attr]
        assert events[-2]["usage"]["output_tokens"] == whole.usage.output_tokens
        recorded = emulator.road_requests[0]
        assert recorded["credential"] == "sigv4"
        assert recorded["path"].endswith("/invoke-with-response-stream")

    def test_the_sdk_streams_what_a_whole_invoke_answers(
        self, roads: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """AnthropicBedrock's stream (botocore's decoder inside the SDK) accumulates the same
        message and usage as the unstreamed InvokeModel; the SDK sent no model or stream key."""
        with stream_on(roads, "bedrock-invoke") as stream:
            deltas = list(stream.text_stream)
            streamed = stream.get_final_message()
        whole = invoke(roads).messages.create(
            model=HAIKU_BEDROCK, max_tokens=200, messages=ASK, extra_body=INVOKE_VERSION
        )
        assert len(deltas) > 1
        assert "".join(deltas) == whole.content[0].text  # type: ignore[union-attr]
        assert streamed.usage.output_tokens == whole.usage.output_tokens
        assert streamed.usage.input_tokens == whole.usage.input_tokens
        assert streamed.model == HAIKU_BEDROCK
        sent = emulator.road_requests[0]
        assert sent["body"]["anthropic_version"] == "bedrock-2023-05-31"
        assert "model" not in sent["body"]
        assert "stream" not in sent["body"]

    def test_a_stream_key_in_the_body_is_refused(self, roads: ThreadedEmulator) -> None:
        url = f"{roads.base_url}{PREFIXES['bedrock-invoke']}/model/{HAIKU_BEDROCK}/invoke"
        body = {**INVOKE_VERSION, "max_tokens": 64, "messages": ASK, "stream": True}
        answer = httpx2.post(url, json=body, headers={"authorization": "Bearer bedrock-key"})
        assert answer.status_code == 400
        assert "stream" in answer.json()["error"]["message"]

    def test_the_road_rules_hold_on_the_stream_path(self, roads: ThreadedEmulator) -> None:
        """The version rule and the credential apply as on ``/invoke``."""
        unversioned = invoke(roads).messages.stream(
            model=HAIKU_BEDROCK, max_tokens=64, messages=ASK
        )
        with (
            pytest.raises(anthropic.BadRequestError, match="anthropic_version"),
            unversioned as stream,
        ):
            stream.get_final_message()
        wrong_key = invoke(roads, key="wrong").messages.stream(
            model=HAIKU_BEDROCK, max_tokens=64, messages=ASK, extra_body=INVOKE_VERSION
        )
        with pytest.raises(anthropic.PermissionDeniedError), wrong_key as stream:
            stream.get_final_message()


class TestEveryRoadStreams:
    @pytest.mark.parametrize("road", ROADS)
    def test_the_same_message_on_every_road(
        self, roads: ThreadedEmulator, emulator: Emulator, road: str
    ) -> None:
        """Each road's SDK client streams; the accumulated text and usage are the same on
        every road, and each call reached its own streaming path."""
        with stream_on(roads, road) as stream:
            text = "".join(stream.text_stream)
            message = stream.get_final_message()
        with stream_on(roads, "foundry") as reference:
            expected = reference.get_final_message()
        assert text == expected.content[0].text
        assert message.usage.output_tokens == expected.usage.output_tokens
        sent = emulator.road_requests[0]
        assert sent["road"] == road
        if road == "vertex":
            assert sent["path"].endswith(f"{HAIKU_VERTEX}:streamRawPredict")
            assert sent["body"]["stream"] is True
            assert sent["body"]["anthropic_version"] == "vertex-2023-10-16"
        elif road in ("bedrock", "foundry"):
            assert sent["path"].endswith("/v1/messages")
            assert sent["body"]["stream"] is True

    @pytest.mark.parametrize("road", ROADS)
    def test_an_error_after_the_200_in_the_roads_own_form(
        self, roads: ThreadedEmulator, emulator: Emulator, road: str
    ) -> None:
        """stream_error after two deltas: an overloaded_error event on the SSE roads; on
        InvokeModel the modelStreamErrorException that relays it. The SDK raises both as a
        status error of the stream's 200 whose body names the error."""
        emulator.inject(Fault("stream_error", after_deltas=2), road=road)  # type: ignore[arg-type]
        seen: list[str] = []
        with pytest.raises(anthropic.APIStatusError) as caught, stream_on(roads, road) as stream:
            seen.extend(stream.text_stream)
        assert len(seen) == 2
        expected = "modelStreamErrorException" if road == "bedrock-invoke" else "overloaded_error"
        assert caught.value.body["error"]["type"] == expected  # type: ignore[index]

    def test_an_invoke_stream_can_be_throttled_mid_way(
        self, roads: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """A fault may name any ResponseStream exception; an SSE road sends it as api_error."""
        throttled = Fault("stream_error", after_deltas=1, stream_error_type="throttlingException")
        emulator.inject(throttled, road="bedrock-invoke")
        emulator.inject(throttled, road="vertex")
        for road, expected in (("bedrock-invoke", "throttlingException"), ("vertex", "api_error")):
            with pytest.raises(anthropic.APIStatusError) as caught, stream_on(roads, road) as s:
                list(s.text_stream)
            assert caught.value.body["error"]["type"] == expected  # type: ignore[index]

    @pytest.mark.parametrize("road", ROADS)
    def test_a_cut_stream_drops_the_connection(
        self, roads: ThreadedEmulator, emulator: Emulator, road: str
    ) -> None:
        emulator.inject(Fault("stream_cut", after_deltas=1), road=road)  # type: ignore[arg-type]
        with pytest.raises(httpx2.TransportError), stream_on(roads, road) as stream:
            list(stream.text_stream)

    def test_faults_reach_a_road_over_the_control_route(
        self, roads: ThreadedEmulator, emulator: Emulator
    ) -> None:
        fault = {"kind": "stream_error", "after_deltas": 0, "stream_error_type": "api_error"}
        queued = httpx2.post(roads.base_url + "/_emulator/faults?road=bedrock-invoke", json=[fault])
        assert queued.status_code == 200
        with (
            pytest.raises(anthropic.APIStatusError) as caught,
            stream_on(roads, "bedrock-invoke") as stream,
        ):
            list(stream.text_stream)
        kind = caught.value.body["error"]["type"]  # type: ignore[index]
        assert kind == "internalServerException"
        refused = httpx2.post(
            roads.base_url + "/_emulator/faults",
            json=[{"kind": "stream_error", "stream_error_type": "nonsense"}],
        )
        assert refused.status_code == 400


class TestPacingOnEveryRoad:
    @pytest.mark.parametrize("road", ROADS)
    def test_deltas_spread_over_the_generation_time(self, road: str) -> None:
        """At a scaled seed latency, each road's deltas arrive over the generation time, not
        at once."""

        async def run() -> tuple[float, int]:
            keys = RoadKeys(bedrock="k", vertex="t", foundry="f")
            emulator = Emulator(EmulatorConfig(latency="seed", latency_scale=0.5, road_keys=keys))
            url = await emulator.start()
            emulator.script(Script(text=" ".join(["word"] * 60)))
            client, model, extra = _async_client(road, url)
            try:
                first = last = 0.0
                began = time.monotonic()
                async with client.messages.stream(
                    model=model, max_tokens=400, messages=ASK, extra_body=extra
                ) as stream:
                    async for _text in stream.text_stream:
                        last = time.monotonic() - began
                        first = first or last
                    tokens = (await stream.get_final_message()).usage.output_tokens
                return last - first, tokens
            finally:
                await client.close()
                await emulator.stop()

        spread, tokens = asyncio.run(run())
        assert spread >= 0.8 * (tokens / 85 * 0.5) * (1 - 1 / 20)


def _async_client(road: str, url: str) -> tuple[Any, str, dict[str, Any]]:
    base = url + PREFIXES[road]  # type: ignore[index]
    if road == "bedrock":
        mantle_client = anthropic.AsyncAnthropicBedrockMantle(
            api_key="k", aws_region="us-east-1", base_url=base
        )
        return mantle_client, HAIKU_BEDROCK, {}
    if road == "bedrock-invoke":
        client = anthropic.AsyncAnthropicBedrock(api_key="k", aws_region="us-east-1", base_url=base)
        return client, HAIKU_BEDROCK, INVOKE_VERSION
    if road == "vertex":
        vertex_client = anthropic.AsyncAnthropicVertex(
            access_token="t", region="global", project_id="p", base_url=base
        )
        return vertex_client, HAIKU_VERTEX, VERTEX_VERSION
    return anthropic.AsyncAnthropicFoundry(api_key="f", base_url=base), "claude-haiku-4-5", {}
