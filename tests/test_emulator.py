"""The Messages API emulator, driven end to end with the real anthropic SDK over HTTP.

Usage accounting, validation, faults, control routes and latency; structured output has its
own file (test_emulator_output.py), and so has the prefix cache (test_emulator_cache.py).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import anthropic
import pytest
from anthropic.types import ToolParam
from emulator_calls import QUESTION, SONNET, ask, http, obj, text_of

from tiergate.emulator import Emulator, EmulatorConfig, Fault, count_tokens
from tiergate.emulator.testing import ThreadedEmulator


class TestUsageAndShape:
    def test_usage_parts_sum_to_count_tokens(self, client: anthropic.Anthropic) -> None:
        """input + cache write + cache read equals count_tokens for a varied prompt."""
        tools: list[ToolParam] = [
            {"name": "lookup", "description": "Find an order.", "input_schema": obj({})}
        ]
        params: dict[str, Any] = {
            "system": "You answer questions about refunds.",
            "tools": tools,
            "messages": [*QUESTION, {"role": "assistant", "content": "Let me check."}, *QUESTION],
            "output_config": {"format": {"type": "json_schema", "schema": obj({})}},
        }
        message = ask(client, **params)
        params.pop("tools")
        total = client.messages.count_tokens(model=SONNET, tools=tools, **params).input_tokens
        usage = message.usage
        parts = usage.input_tokens
        parts += (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
        assert parts == total
        assert usage.output_tokens == count_tokens(text_of(message))

    def test_token_count_follows_the_documented_overheads(
        self, client: anthropic.Anthropic
    ) -> None:
        """System block +3, message +4 and block +3 on top of text tokens."""
        counted = client.messages.count_tokens(
            model=SONNET, system="Be brief.", messages=[{"role": "user", "content": "Hi there!"}]
        )
        # "Be brief." is Be|brie|f|. (4 tokens); "Hi there!" is Hi|ther|e|! (4 tokens).
        assert counted.input_tokens == (4 + 3) + (4 + 3 + 4)

    def test_response_is_labelled_as_emulated(self, client: anthropic.Anthropic) -> None:
        """Message ids start with msg_emu_ and responses carry request-id and the emulator tag."""
        raw = client.messages.with_raw_response.create(
            model=SONNET, max_tokens=100, messages=QUESTION
        )
        assert raw.headers["x-tiergate-emulator"] == "1"
        assert raw.headers["request-id"].startswith("req_")
        message = raw.parse()
        assert message.id.startswith("msg_emu_")
        assert message.usage.service_tier == "standard"
        assert message.stop_sequence is None

    def test_plain_text_without_schema_is_deterministic(self, client: anthropic.Anthropic) -> None:
        """Without a schema the answer is short plain text, identical for identical requests."""
        first, second = text_of(ask(client)), text_of(ask(client))
        assert first == second
        assert "refund window" in first
        with pytest.raises(json.JSONDecodeError):
            json.loads(first)

    def test_long_output_is_cut_at_max_tokens(self, client: anthropic.Anthropic) -> None:
        """Output never exceeds max_tokens: the text is cut and stop_reason is max_tokens."""
        schema = obj({"summary": {"type": "string"}, "key_points": {"type": "array"}})
        message = ask(
            client,
            max_tokens=5,
            output_config={"format": {"type": "json_schema", "schema": schema}},
        )
        assert message.stop_reason == "max_tokens"
        assert message.usage.output_tokens == 5 == count_tokens(text_of(message))
        with pytest.raises(json.JSONDecodeError):
            json.loads(text_of(message))


class TestValidation:
    @pytest.mark.parametrize(
        ("params", "fragment"),
        [
            ({"extra_body": {"temperature": 0.5}}, "temperature"),
            ({"extra_body": {"top_k": 5}}, "top_k"),
            ({"max_tokens": 0}, "max_tokens"),
            (
                {
                    "output_config": {
                        "format": {"type": "json_schema", "schema": {"type": "object"}}
                    }
                },
                "additionalProperties",
            ),
        ],
    )
    def test_invalid_parameters_are_bad_requests(
        self, client: anthropic.Anthropic, params: dict[str, Any], fragment: str
    ) -> None:
        """Sampling parameters, max_tokens < 1 and open object schemas give 400."""
        with pytest.raises(anthropic.BadRequestError) as caught:
            ask(client, **params)
        assert fragment in str(caught.value)

    def test_more_than_four_breakpoints_is_rejected(self, client: anthropic.Anthropic) -> None:
        """Five cache_control blocks give BadRequestError."""
        block = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
        system = [{**block, "text": f"part {i}"} for i in range(5)]
        with pytest.raises(anthropic.BadRequestError, match="maximum of 4"):
            ask(client, system=system)

    def test_1h_after_5m_is_rejected(self, client: anthropic.Anthropic) -> None:
        """A 1h breakpoint after a 5m one gives BadRequestError."""
        system = [
            {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
            {"type": "text", "text": "b", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        ]
        with pytest.raises(anthropic.BadRequestError, match="1h"):
            ask(client, system=system)

    def test_unknown_model_is_not_found(self, client: anthropic.Anthropic) -> None:
        """A model the emulator does not know gives NotFoundError; dated ids resolve."""
        with pytest.raises(anthropic.NotFoundError):
            ask(client, model="claude-imaginary-9")
        assert ask(client, model="claude-haiku-4-5-20251001").model == "claude-haiku-4-5-20251001"

    def test_streaming_is_answered(self, client: anthropic.Anthropic) -> None:
        """stream=true is answered with events (tests/test_emulator_streaming.py has them)."""
        with client.messages.create(
            model=SONNET, max_tokens=10, messages=QUESTION, stream=True
        ) as events:
            kinds = [event.type for event in events]
        assert kinds[0] == "message_start"
        assert kinds[-1] == "message_stop"

    def test_missing_fields_and_large_max_tokens_over_raw_http(
        self, served: ThreadedEmulator
    ) -> None:
        """Missing max_tokens and max_tokens above Haiku's 64,000 are 400 invalid_request_error."""
        url = f"{served.base_url}/v1/messages"
        status, body = http(url, {"model": SONNET, "messages": QUESTION})
        assert (status, body["error"]["type"]) == (400, "invalid_request_error")
        assert "max_tokens" in body["error"]["message"]
        haiku = "claude-haiku-4-5"
        status, body = http(url, {"model": haiku, "messages": QUESTION, "max_tokens": 64_001})
        assert status == 400
        assert "64000" in body["error"]["message"]
        assert body["type"] == "error"
        assert body["request_id"].startswith("req_")

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("GET", "/_emulator/health", None),
            ("POST", "/_emulator/faults", []),
            ("GET", "/v1/messages/batches", None),
            ("POST", "/v1/messages", {"model": SONNET, "messages": QUESTION}),
        ],
    )
    def test_every_route_tags_its_response(
        self, served: ThreadedEmulator, method: str, path: str, body: Any
    ) -> None:
        """Control routes, the Batches API and errors alike carry the emulator tag and a
        request-id (the module docstring's promise)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(served.base_url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        request.add_header("x-api-key", "k")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                headers = response.headers
        except urllib.error.HTTPError as error:
            headers = error.headers
        assert headers["x-tiergate-emulator"] == "1"
        assert headers["request-id"].startswith("req_")


class TestAuthentication:
    def test_configured_key_is_required(self) -> None:
        """With api_key set, a wrong key is 401; Bearer and x-api-key with the right key pass."""
        with ThreadedEmulator(EmulatorConfig(api_key="secret")) as running:
            wrong = anthropic.Anthropic(base_url=running.base_url, api_key="nope", max_retries=0)
            with pytest.raises(anthropic.AuthenticationError):
                ask(wrong)
            right = anthropic.Anthropic(base_url=running.base_url, api_key="secret")
            assert ask(right).stop_reason == "end_turn"
            body = {"model": SONNET, "max_tokens": 10, "messages": QUESTION}
            url = f"{running.base_url}/v1/messages"
            assert http(url, body, {"x-api-key": "secret"})[0] == 200
            assert http(url, body, {"x-api-key": "wrong"})[0] == 401


class TestFaults:
    @pytest.mark.parametrize(
        ("kind", "exception"),
        [
            ("rate_limit", anthropic.RateLimitError),
            ("overloaded", anthropic.OverloadedError),
            ("server_error", anthropic.InternalServerError),
            ("gateway_timeout", anthropic.GatewayTimeoutError),
            ("unauthorized", anthropic.AuthenticationError),
            ("forbidden", anthropic.PermissionDeniedError),
            ("disconnect", anthropic.APIConnectionError),
        ],
    )
    def test_error_fault_raises_the_sdk_exception(
        self,
        client: anthropic.Anthropic,
        emulator: Emulator,
        kind: Any,
        exception: type[Exception],
    ) -> None:
        """Each error fault surfaces as its SDK exception class, then the next call succeeds."""
        emulator.inject(Fault(kind))
        with pytest.raises(exception):
            ask(client)
        assert ask(client).stop_reason == "end_turn"

    def test_overloaded_body_follows_the_api(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """Error bodies carry type, error.type, message and the request id of the header."""
        emulator.inject(Fault("overloaded"))
        with pytest.raises(anthropic.OverloadedError) as caught:
            ask(client)
        error = caught.value
        assert error.status_code == 529
        assert isinstance(error.body, dict)
        assert error.body["error"]["type"] == "overloaded_error"
        assert error.body["request_id"] == error.response.headers["request-id"]

    def test_sdk_waits_for_retry_after(self, served: ThreadedEmulator, emulator: Emulator) -> None:
        """The SDK reads retry-after(-ms) from a 429, waits that long and retries successfully."""
        emulator.inject(Fault("rate_limit", retry_after_s=0.4))
        retrying = anthropic.Anthropic(base_url=served.base_url, api_key="k", max_retries=1)
        started = time.monotonic()
        message = ask(retrying)
        elapsed = time.monotonic() - started
        assert message.stop_reason == "end_turn"
        assert elapsed >= 0.4  # it waited at least what the 429 asked for
        assert len(emulator.requests) == 2

    def test_rate_limit_headers(self, client: anthropic.Anthropic, emulator: Emulator) -> None:
        """A 429 carries retry-after in whole seconds and retry-after-ms."""
        emulator.inject(Fault("rate_limit", retry_after_s=2.5))
        with pytest.raises(anthropic.RateLimitError) as caught:
            ask(client)
        headers = caught.value.response.headers
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("3", "2500")

    def test_faults_apply_in_fifo_order(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """Unscoped faults are consumed in the order they were queued, one request each."""
        emulator.inject(Fault("rate_limit"), Fault("server_error"))
        with pytest.raises(anthropic.RateLimitError):
            ask(client)
        with pytest.raises(anthropic.InternalServerError) as caught:
            ask(client)
        assert caught.value.status_code == 500
        assert ask(client).stop_reason == "end_turn"

    def test_faults_are_counted_and_model_scoped(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """A request takes the first queued fault for its model; count sets how many it hits."""
        haiku = "claude-haiku-4-5"
        emulator.inject(
            Fault("overloaded", count=2, model=SONNET), Fault("server_error", model=haiku)
        )
        with pytest.raises(anthropic.OverloadedError):
            ask(client)
        with pytest.raises(anthropic.InternalServerError) as caught:
            ask(client, model=haiku)
        assert caught.value.status_code == 500
        assert ask(client, model=haiku).stop_reason == "end_turn"
        with pytest.raises(anthropic.OverloadedError):
            ask(client)
        assert ask(client).stop_reason == "end_turn"

    def test_billed_faults_change_output_but_bill_normally(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """truncated, malformed, refusal and empty keep normal input usage; output changes."""
        schema = {"format": {"type": "json_schema", "schema": obj({"answer": {"type": "string"}})}}
        normal = ask(client, output_config=schema)
        json.loads(text_of(normal))
        emulator.inject(
            Fault("truncated"), Fault("malformed"), Fault("refusal", category="bio"), Fault("empty")
        )
        truncated, malformed, refusal, empty = (ask(client, output_config=schema) for _ in "1234")
        for message in (truncated, malformed, refusal, empty):
            assert message.usage.input_tokens == normal.usage.input_tokens
        assert truncated.stop_reason == "max_tokens"
        assert 0 < truncated.usage.output_tokens < normal.usage.output_tokens
        assert text_of(normal).startswith(text_of(truncated))
        with pytest.raises(json.JSONDecodeError):
            json.loads(text_of(truncated))
        assert malformed.stop_reason == "end_turn"
        with pytest.raises(json.JSONDecodeError):
            json.loads(text_of(malformed))
        assert refusal.stop_reason == "refusal"
        assert refusal.stop_details is not None
        assert refusal.stop_details.category == "bio"
        assert "{" not in text_of(refusal)
        assert empty.content == []
        assert empty.usage.output_tokens == 0

    def test_slow_fault_delays_then_answers(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """A slow fault answers normally after delay_s."""
        emulator.inject(Fault("slow", delay_s=0.3))
        started = time.monotonic()
        assert ask(client).stop_reason == "end_turn"
        assert time.monotonic() - started >= 0.3

    def test_error_fault_writes_nothing_to_the_cache(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """A failed call bills nothing: the next identical call still pays the cache write."""
        system = [
            {"type": "text", "text": "Rule one. " * 600, "cache_control": {"type": "ephemeral"}}
        ]
        emulator.inject(Fault("server_error"))
        with pytest.raises(anthropic.InternalServerError):
            ask(client, system=system)
        after = ask(client, system=system)
        assert (after.usage.cache_creation_input_tokens or 0) > 0
        assert after.usage.cache_read_input_tokens == 0


class TestControlRoutes:
    def test_faults_requests_reset_and_health(self, served: ThreadedEmulator) -> None:
        """Faults queue over HTTP, requests are recorded newest last, reset clears both."""
        base = served.base_url
        assert http(f"{base}/_emulator/health") == (200, {"status": "ok", "emulator": True})
        status, queued = http(f"{base}/_emulator/faults", [{"kind": "overloaded", "count": 2}])
        assert status == 200
        assert queued["queued"] == 1
        assert queued["pending"][0]["count"] == 2
        assert http(f"{base}/_emulator/faults", [{"kind": "nonsense"}])[0] == 400
        body = {"model": SONNET, "max_tokens": 10, "messages": QUESTION}
        assert http(f"{base}/v1/messages", body)[0] == 529
        status, recorded = http(f"{base}/_emulator/requests")
        assert recorded["requests"][-1] == body
        assert http(f"{base}/_emulator/reset", {})[1] == {"reset": True}
        assert http(f"{base}/_emulator/requests")[1] == {"requests": [], "abandoned": 0}
        assert http(f"{base}/v1/messages", body)[0] == 200


class TestLatency:
    def test_fixed_delay_and_seed_latency(self) -> None:
        """fixed_delay_s delays every answer; seed latency adds first-token and output time."""

        async def timed(config: EmulatorConfig) -> float:
            emulator = Emulator(config)
            client = anthropic.AsyncAnthropic(base_url=await emulator.start(), api_key="k")
            try:
                started = time.monotonic()
                await client.messages.create(
                    model="claude-opus-4-7", max_tokens=50, messages=QUESTION
                )
                return time.monotonic() - started
            finally:
                await emulator.stop()

        assert asyncio.run(timed(EmulatorConfig(fixed_delay_s=0.25))) >= 0.25
        # Opus: 0.45 s to first token at scale 0.5 = 0.225 s, plus the output tokens.
        assert asyncio.run(timed(EmulatorConfig(latency="seed", latency_scale=0.5))) >= 0.225


class TestBoundedMemory:
    def test_recorded_requests_are_capped(self) -> None:
        """Only the newest max_recorded_requests bodies are kept, so a long run stays bounded."""
        with ThreadedEmulator(EmulatorConfig(max_recorded_requests=3)) as served:
            client = anthropic.Anthropic(base_url=served.base_url, api_key="x", max_retries=0)
            for i in range(5):
                ask(client, messages=[{"role": "user", "content": f"message {i}"}])
            kept = [body["messages"][0]["content"] for body in served.emulator.requests]
        assert kept == ["message 2", "message 3", "message 4"]
