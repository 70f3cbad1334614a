"""The emulator's cloud roads, driven by the SDK's own client for each provider over HTTP.

One emulator process serves every road; each road takes its own wire shape and credentials and
refuses what its provider refuses (docs/api-fidelity.md, "Roads").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest

from tiergate.emulator import Emulator, EmulatorConfig, Fault
from tiergate.emulator.roads import PREFIXES, RoadKeys
from tiergate.emulator.testing import ThreadedEmulator

HAIKU_BEDROCK = "global.anthropic.claude-haiku-4-5-20251001-v1:0"
HAIKU_VERTEX = "claude-haiku-4-5@20251001"
ASK: list[Any] = [{"role": "user", "content": "Is this invoice a billing question?"}]
INVOKE_VERSION = {"anthropic_version": "bedrock-2023-05-31"}
VERTEX_VERSION = {"anthropic_version": "vertex-2023-10-16"}
SCHEMA: Any = {
    "format": {
        "type": "json_schema",
        "schema": {
            "type": "object",
            "properties": {"label": {"type": "string"}},
            "required": ["label"],
            "additionalProperties": False,
        },
    }
}


@pytest.fixture(scope="module")
def roads() -> Iterator[ThreadedEmulator]:
    keys = RoadKeys(bedrock="bedrock-key", vertex="vertex-token", foundry="foundry-key")
    with ThreadedEmulator(EmulatorConfig(road_keys=keys)) as running:
        yield running


@pytest.fixture
def emulator(roads: ThreadedEmulator) -> Emulator:
    roads.emulator.reset()
    return roads.emulator


def mantle(roads: ThreadedEmulator, key: str = "bedrock-key") -> anthropic.AnthropicBedrockMantle:
    return anthropic.AnthropicBedrockMantle(
        api_key=key, aws_region="us-east-1", base_url=roads.base_url + PREFIXES["bedrock"]
    )


def invoke(roads: ThreadedEmulator, key: str = "bedrock-key") -> anthropic.AnthropicBedrock:
    return anthropic.AnthropicBedrock(
        api_key=key, aws_region="us-east-1", base_url=roads.base_url + PREFIXES["bedrock-invoke"]
    )


def vertex(roads: ThreadedEmulator, token: str = "vertex-token") -> anthropic.AnthropicVertex:
    return anthropic.AnthropicVertex(
        access_token=token,
        region="europe-west1",
        project_id="acme",
        base_url=roads.base_url + PREFIXES["vertex"],
    )


def foundry(roads: ThreadedEmulator, key: str = "foundry-key") -> anthropic.AnthropicFoundry:
    return anthropic.AnthropicFoundry(api_key=key, base_url=roads.base_url + PREFIXES["foundry"])


class TestEachRoadAnswers:
    def test_every_road_is_served_by_one_process_in_its_own_shape(
        self, roads: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """Each SDK client reaches its road; the recorded calls show each wire shape."""
        answers = [
            mantle(roads).messages.create(model=HAIKU_BEDROCK, max_tokens=64, messages=ASK),
            invoke(roads).messages.create(
                model=HAIKU_BEDROCK, max_tokens=64, messages=ASK, extra_body=INVOKE_VERSION
            ),
            vertex(roads).messages.create(
                model=HAIKU_VERTEX, max_tokens=64, messages=ASK, extra_body=VERTEX_VERSION
            ),
            foundry(roads).messages.create(model="claude-haiku-4-5", max_tokens=64, messages=ASK),
        ]
        assert [a.model for a in answers] == [
            HAIKU_BEDROCK,
            HAIKU_BEDROCK,
            HAIKU_VERTEX,
            "claude-haiku-4-5",
        ]
        seen = emulator.road_requests
        assert [r["road"] for r in seen] == ["bedrock", "bedrock-invoke", "vertex", "foundry"]
        assert seen[0]["path"] == "/bedrock-mantle/anthropic/v1/messages"
        assert seen[1]["path"] == f"/bedrock-runtime/model/{HAIKU_BEDROCK}/invoke"
        assert seen[2]["path"] == (
            "/vertex/v1/projects/acme/locations/europe-west1/publishers/anthropic/models/"
            f"{HAIKU_VERTEX}:rawPredict"
        )
        assert "model" in seen[0]["body"]
        assert "model" not in seen[1]["body"]
        assert seen[2]["body"]["anthropic_version"] == "vertex-2023-10-16"
        assert [r["credential"] for r in seen] == ["bearer", "bearer", "bearer", "api-key"]

    def test_usage_is_the_same_on_every_road(self, roads: ThreadedEmulator) -> None:
        """The same prompt bills the same tokens whichever road carries it."""
        one = mantle(roads).messages.create(model=HAIKU_BEDROCK, max_tokens=64, messages=ASK)
        two = vertex(roads).messages.create(
            model=HAIKU_VERTEX, max_tokens=64, messages=ASK, extra_body=VERTEX_VERSION
        )
        assert one.usage.input_tokens == two.usage.input_tokens > 0


class TestRoadsRefuse:
    def test_bedrock_refuses_a_claude_api_model_id(self, roads: ThreadedEmulator) -> None:
        with pytest.raises(anthropic.NotFoundError):
            mantle(roads).messages.create(model="claude-haiku-4-5", max_tokens=64, messages=ASK)
        with pytest.raises(anthropic.BadRequestError, match="model identifier is invalid"):
            invoke(roads).messages.create(
                model="claude-haiku-4-5", max_tokens=64, messages=ASK, extra_body=INVOKE_VERSION
            )

    def test_vertex_refuses_a_model_id_without_its_date(self, roads: ThreadedEmulator) -> None:
        with pytest.raises(anthropic.NotFoundError):
            vertex(roads).messages.create(
                model="claude-haiku-4-5", max_tokens=64, messages=ASK, extra_body=VERTEX_VERSION
            )

    def test_invoke_refuses_the_sdk_default_version_on_a_legacy_model(
        self, roads: ThreadedEmulator
    ) -> None:
        """SDK 2.13 puts 2026-10-21 in the body; the ARN-versioned models refuse it."""
        with pytest.raises(anthropic.BadRequestError, match="anthropic_version"):
            invoke(roads).messages.create(model=HAIKU_BEDROCK, max_tokens=64, messages=ASK)

    def test_vertex_refuses_a_wrong_version(self, roads: ThreadedEmulator) -> None:
        with pytest.raises(anthropic.BadRequestError, match="vertex-2023-10-16"):
            vertex(roads).messages.create(model=HAIKU_VERTEX, max_tokens=64, messages=ASK)

    def test_a_body_model_where_the_path_names_it_is_refused(self, roads: ThreadedEmulator) -> None:
        url = (
            roads.base_url
            + PREFIXES["vertex"]
            + (
                f"/projects/p/locations/global/publishers/anthropic/models/{HAIKU_VERTEX}:rawPredict"
            )
        )
        body = {"model": HAIKU_VERTEX, "max_tokens": 64, "messages": ASK, **VERTEX_VERSION}
        answer = httpx2.post(url, json=body, headers={"authorization": "Bearer vertex-token"})
        assert answer.status_code == 400
        assert "Extra inputs" in answer.json()["error"]["message"]

    def test_structured_outputs_missing_for_haiku_on_vertex(self, roads: ThreadedEmulator) -> None:
        with pytest.raises(anthropic.BadRequestError, match="not supported for claude-haiku-4-5"):
            vertex(roads).messages.create(
                model=HAIKU_VERTEX,
                max_tokens=64,
                messages=ASK,
                output_config=SCHEMA,
                extra_body=VERTEX_VERSION,
            )
        answer = vertex(roads).messages.create(
            model="claude-sonnet-4-6",
            max_tokens=64,
            messages=ASK,
            output_config=SCHEMA,
            extra_body=VERTEX_VERSION,
        )
        assert answer.stop_reason == "end_turn"

    def test_bedrock_takes_only_base64_images(self, roads: ThreadedEmulator) -> None:
        image: Any = {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {"type": "text", "text": "What is this?"},
            ],
        }
        with pytest.raises(anthropic.BadRequestError, match="only 'base64'"):
            mantle(roads).messages.create(model=HAIKU_BEDROCK, max_tokens=64, messages=[image])

    def test_wrong_credentials_are_refused_per_road(self, roads: ThreadedEmulator) -> None:
        with pytest.raises(anthropic.PermissionDeniedError):
            mantle(roads, key="stolen").messages.create(
                model=HAIKU_BEDROCK, max_tokens=64, messages=ASK
            )
        with pytest.raises(anthropic.AuthenticationError):
            vertex(roads, token="stale").messages.create(
                model=HAIKU_VERTEX, max_tokens=64, messages=ASK, extra_body=VERTEX_VERSION
            )
        with pytest.raises(anthropic.AuthenticationError):
            foundry(roads, key="wrong").messages.create(
                model="claude-haiku-4-5", max_tokens=64, messages=ASK
            )

    def test_sigv4_must_name_the_roads_service(self, roads: ThreadedEmulator) -> None:
        """A SigV4 signature scoped to bedrock is refused on bedrock-mantle."""
        url = roads.base_url + PREFIXES["bedrock"] + "/v1/messages"
        signed = (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/us-east-1/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=" + "a" * 64
        )
        body = {"model": HAIKU_BEDROCK, "max_tokens": 64, "messages": ASK}
        headers = {"anthropic-version": "2026-10-21", "x-amz-date": "20261206T000000Z"}
        wrong = httpx2.post(
            url, json=body, headers={**headers, "authorization": signed.format(service="bedrock")}
        )
        right = httpx2.post(
            url,
            json=body,
            headers={**headers, "authorization": signed.format(service="bedrock-mantle")},
        )
        assert (wrong.status_code, right.status_code) == (403, 200)

    def test_batches_exist_only_on_the_claude_api(self, roads: ThreadedEmulator) -> None:
        for road in ("bedrock", "foundry"):
            url = roads.base_url + PREFIXES[road] + "/v1/messages/batches"
            assert httpx2.post(url, json={"requests": []}).status_code == 404


class TestFaultsPerRoad:
    def test_a_roads_fault_touches_only_that_road(
        self, roads: ThreadedEmulator, emulator: Emulator
    ) -> None:
        emulator.inject(Fault("overloaded", count=2), road="bedrock")
        with pytest.raises(anthropic.APIStatusError) as failed:
            mantle(roads).with_options(max_retries=0).messages.create(
                model=HAIKU_BEDROCK, max_tokens=64, messages=ASK
            )
        assert failed.value.status_code == 529
        vertex(roads).messages.create(
            model=HAIKU_VERTEX, max_tokens=64, messages=ASK, extra_body=VERTEX_VERSION
        )
        assert emulator.road_faults["bedrock"].pending()[0]["count"] == 1

    def test_faults_per_road_over_the_control_route(
        self, roads: ThreadedEmulator, emulator: Emulator
    ) -> None:
        answer = httpx2.post(
            roads.base_url + "/_emulator/faults?road=vertex", json=[{"kind": "server_error"}]
        )
        assert answer.status_code == 200
        assert emulator.road_faults["vertex"].pending()
        assert not emulator.faults.pending()

    def test_a_road_that_is_down_drops_connections(
        self, roads: ThreadedEmulator, emulator: Emulator
    ) -> None:
        httpx2.post(roads.base_url + "/_emulator/down", json={"down": ["foundry"]})
        with pytest.raises(anthropic.APIConnectionError):
            foundry(roads).with_options(max_retries=0).messages.create(
                model="claude-haiku-4-5", max_tokens=64, messages=ASK
            )
        mantle(roads).messages.create(model=HAIKU_BEDROCK, max_tokens=64, messages=ASK)
