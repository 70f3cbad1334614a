"""The emulator streams as the Messages API does: the documented event order over SSE, the
SDK's own accumulation giving the same message as a whole call, usage in message_start and
message_delta, pacing by the latency model, and mid-stream faults."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import anthropic
import httpx2
import pytest
from emulator_calls import QUESTION, SONNET, ask, obj, text_of

from tiergate.emulator import Emulator, EmulatorConfig, Fault, Script
from tiergate.emulator.streaming import pieces
from tiergate.emulator.testing import ThreadedEmulator

SCHEMA = obj({"answer": {"type": "string"}})


def raw_events(base_url: str, body: dict[str, Any]) -> tuple[str, list[tuple[str, Any]]]:
    """The content type and the (event, data) pairs of a streamed call over raw HTTP."""
    request = urllib.request.Request(
        f"{base_url}/v1/messages",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        kind = response.headers["content-type"]
        text = response.read().decode()
    found = []
    for chunk in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        found.append((lines["event"], json.loads(lines["data"])))
    return kind, found


class TestEventOrder:
    def test_events_follow_the_documented_flow(self, served: ThreadedEmulator) -> None:
        """message_start, ping, one content block (start, deltas, stop), message_delta with
        the stop reason and usage, message_stop; each data carries its event's type."""
        body = {"model": SONNET, "max_tokens": 300, "messages": QUESTION, "stream": True}
        kind, events = raw_events(served.base_url, body)
        assert kind.startswith("text/event-stream")
        names = [name for name, _ in events]
        assert names[:3] == ["message_start", "ping", "content_block_start"]
        assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
        assert set(names[3:-3]) == {"content_block_delta"}
        assert all(data["type"] == name for name, data in events)
        start = events[0][1]["message"]
        assert start["content"] == []
        assert start["stop_reason"] is None
        assert start["usage"]["input_tokens"] > 0
        final = events[-2][1]
        assert final["delta"]["stop_reason"] == "end_turn"
        assert final["usage"]["output_tokens"] > start["usage"]["output_tokens"]

    def test_the_sdk_accumulates_what_a_whole_call_answers(
        self, client: anthropic.Anthropic
    ) -> None:
        """The SDK's stream decoding gives the same text, stop reason and usage as the same
        call unstreamed."""
        config = {"format": {"type": "json_schema", "schema": SCHEMA}}
        whole = ask(client, output_config=config)
        with client.messages.stream(
            model=SONNET,
            max_tokens=400,
            messages=QUESTION,
            output_config=config,  # type: ignore[arg-type]  # an OutputConfigParam as JSON
        ) as stream:
            deltas = list(stream.text_stream)
            streamed = stream.get_final_message()
        assert len(deltas) > 1
        assert "".join(deltas) == text_of(streamed) == text_of(whole)
        assert streamed.stop_reason == whole.stop_reason
        assert streamed.usage.output_tokens == whole.usage.output_tokens
        assert streamed.usage.input_tokens == whole.usage.input_tokens

    def test_a_forced_tool_streams_input_json_deltas(self, client: anthropic.Anthropic) -> None:
        """A tool_use block starts with an empty input and grows by input_json_delta."""
        tool = {"name": "answer", "description": "the answer", "input_schema": SCHEMA}
        with client.messages.stream(
            model=SONNET,
            max_tokens=400,
            messages=QUESTION,
            tools=[tool],  # type: ignore[list-item]  # a ToolParam as JSON
            tool_choice={"type": "tool", "name": "answer"},
        ) as stream:
            kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
            message = stream.get_final_message()
        assert set(kinds) == {"input_json_delta"}
        assert message.content[0].type == "tool_use"
        assert isinstance(message.content[0].input, dict)

    def test_pieces_join_back_to_the_text(self) -> None:
        text = "A  few words,\nwith lines and  spaces "
        assert "".join(pieces(text)) == text
        assert len(pieces(text)) > 1


class TestPacing:
    def test_first_token_then_the_rest_at_the_seed_rate(self) -> None:
        """The first delta waits the time to first token; the last comes after the
        generation time, not at once (scaled seed latency)."""

        async def run() -> tuple[float, float, int]:
            emulator = Emulator(EmulatorConfig(latency="seed", latency_scale=0.5))
            url = await emulator.start()
            emulator.script(Script(text=" ".join(["word"] * 60)))
            client = anthropic.AsyncAnthropic(base_url=url, api_key="any")
            try:
                began = time.monotonic()
                first = last = 0.0
                async with client.messages.stream(
                    model="claude-haiku-4-5", max_tokens=400, messages=QUESTION
                ) as stream:
                    async for _text in stream.text_stream:
                        last = time.monotonic() - began
                        first = first or last
                    tokens = (await stream.get_final_message()).usage.output_tokens
                return first, last, tokens
            finally:
                await client.close()
                await emulator.stop()

        first, last, tokens = asyncio.run(run())
        assert first >= 0.12 * 0.5
        # The whole answer spreads over its generation time (85 tokens a second, scaled).
        assert last - first >= 0.8 * (tokens / 85 * 0.5) * (1 - 1 / 20)


class TestMidStreamFaults:
    def test_an_error_event_after_the_200(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """stream_error: some deltas, then an overloaded_error event; the SDK raises it as an
        API status error whose body names the error type."""
        emulator.inject(Fault("stream_error", after_deltas=2))
        seen: list[str] = []
        with (
            pytest.raises(anthropic.APIStatusError) as caught,
            client.messages.stream(model=SONNET, max_tokens=300, messages=QUESTION) as stream,
        ):
            seen.extend(stream.text_stream)
        assert len(seen) == 2
        assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]

    def test_a_cut_stream_drops_the_connection(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """stream_cut: some deltas, then the connection closes without message_stop (the SDK
        lets its HTTP client's error through as it is, mid-stream)."""
        emulator.inject(Fault("stream_cut", after_deltas=1))
        with (
            pytest.raises(httpx2.RemoteProtocolError),
            client.messages.stream(model=SONNET, max_tokens=300, messages=QUESTION) as stream,
        ):
            list(stream.text_stream)

    def test_stream_must_be_a_boolean(self, client: anthropic.Anthropic) -> None:
        with pytest.raises(anthropic.BadRequestError, match="stream"):
            client.post(
                "/v1/messages",
                body={"model": SONNET, "max_tokens": 10, "messages": QUESTION, "stream": "yes"},
                cast_to=object,
            )
