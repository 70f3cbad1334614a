"""The model client's own calls through the real SDK to the emulator, in process (no gRPC)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import anthropic
import httpx2
import pytest
import structlog.testing
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider

from tiergate import errors
from tiergate.calls.prompt import Prompt, render_params
from tiergate.config import Settings
from tiergate.emulator import Emulator, Fault, Script
from tiergate.emulator.testing import ThreadedEmulator
from tiergate.ledger import PriceTable
from tiergate.upstream.model_client import Completion, ModelClient
from tiergate.upstream.transport import upstream_client

PROMPT = Prompt(
    instructions="Answer with a label.",
    context=(),
    request="Which label?",
    output_schema={
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["a", "b"]}},
        "required": ["label"],
        "additionalProperties": False,
    },
    max_tokens=64,
)


def complete(served: ThreadedEmulator, **settings: int) -> Completion:
    """One ``complete`` with a client built as the service builds it, telemetry left out."""

    async def run() -> Completion:
        sdk = anthropic.AsyncAnthropic(base_url=served.base_url, api_key="any-key")
        client = ModelClient(sdk, Settings(**settings))  # type: ignore[arg-type]  # int fields
        try:
            return await client.complete(
                PROMPT,
                facts=PriceTable.load().facts("claude-haiku-4-5"),
                check=lambda _: [],
                size_field=lambda: "text",
            )
        finally:
            await client.close()

    return asyncio.run(run())


class TestOneBilledCall:
    def test_answer_without_telemetry(self, served: ThreadedEmulator, emulator: Emulator) -> None:
        """A client built without telemetry still answers, in one call and one attempt."""
        emulator.script(Script(text='{"label": "b"}'))
        completion = complete(served)
        assert completion.output == {"label": "b"}
        assert (completion.billed_calls, completion.attempts) == (1, 1)


class TestRetriesAreOurs:
    def test_the_sdk_does_not_retry_behind_our_back(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """With one attempt allowed, an overloaded upstream sees exactly one request."""
        emulator.inject(Fault("overloaded"))
        with pytest.raises(errors.UpstreamUnavailable):
            complete(served, max_attempts=1)
        assert len(emulator.requests) == 1


def fail(
    served: ThreadedEmulator,
    *,
    deadline_in_s: float | None = None,
    **settings: float,
) -> errors.TiergateError:
    """The service error one ``complete`` raises; ``deadline_in_s`` sets the caller's deadline."""

    async def run() -> Completion:
        sdk = anthropic.AsyncAnthropic(base_url=served.base_url, api_key="any-key")
        client = ModelClient(sdk, Settings(**settings))  # type: ignore[arg-type]  # typed fields
        deadline = None if deadline_in_s is None else time.monotonic() + deadline_in_s
        try:
            return await client.complete(
                PROMPT,
                facts=PriceTable.load().facts("claude-haiku-4-5"),
                check=lambda _: [],
                size_field=lambda: "text",
                deadline=deadline,
            )
        finally:
            await client.close()

    with pytest.raises(errors.TiergateError) as raised:
        asyncio.run(run())
    return raised.value


def billed(err: errors.TiergateError) -> Completion:
    """What the failed call says it billed."""
    assert isinstance(err.completion, Completion)
    return err.completion


class TestDeadline:
    def test_a_deadline_already_past_sends_nothing(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """A deadline that passed before the first attempt fails at once, with nothing billed."""
        err = fail(served, deadline_in_s=-1.0)
        assert type(err) is errors.DeadlineExceeded
        assert err.message == "the call's deadline passed before the model answered"
        assert (billed(err).attempts, billed(err).billed_calls) == (0, 0)
        assert emulator.requests == []

    def test_a_call_cut_by_the_deadline_is_deadline_exceeded(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """An upstream slower than the caller's deadline ends in DEADLINE_EXCEEDED, not retries."""
        emulator.inject(Fault("slow", delay_s=1.5))
        err = fail(served, deadline_in_s=0.5)
        assert type(err) is errors.DeadlineExceeded
        assert billed(err).attempts == 1
        assert len(emulator.requests) == 1

    def test_the_upstream_timeout_without_a_deadline_is_unavailable(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """With no caller deadline, the upstream timeout is a retryable UNAVAILABLE per attempt."""
        emulator.inject(Fault("slow", delay_s=1.5, count=2))
        err = fail(served, upstream_timeout_s=0.3, max_attempts=2)
        assert type(err) is errors.UpstreamUnavailable
        assert err.message == "the model API did not answer in time"
        assert (billed(err).attempts, billed(err).billed_calls) == (2, 0)

    def test_a_wait_past_the_deadline_fails_now(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """A retry hint longer than the time left is passed on at once instead of slept on."""
        emulator.inject(Fault("rate_limit", retry_after_s=30.0, count=3))
        err = fail(served, deadline_in_s=20.0)
        assert type(err) is errors.UpstreamRateLimited
        assert err.retry_after_s == 30.0
        assert billed(err).attempts == 1
        assert len(emulator.requests) == 1

    def test_a_short_hint_is_waited_and_retried(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """A retry hint within the deadline is slept on and the next attempt answers."""
        emulator.inject(Fault("rate_limit", retry_after_s=0.0))
        emulator.script(Script(text='{"label": "a"}'))

        async def run() -> Completion:
            sdk = anthropic.AsyncAnthropic(base_url=served.base_url, api_key="any-key")
            client = ModelClient(sdk, Settings())
            try:
                return await client.complete(
                    PROMPT,
                    facts=PriceTable.load().facts("claude-haiku-4-5"),
                    check=lambda _: [],
                    size_field=lambda: "text",
                    deadline=time.monotonic() + 30.0,
                )
            finally:
                await client.close()

        completion = asyncio.run(run())
        assert completion.output == {"label": "a"}
        assert (completion.attempts, completion.billed_calls) == (2, 1)


class TestUsageRidesOnErrors:
    def test_retries_spent_carry_the_attempts(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """Every attempt is counted on the error when the upstream stays down, none billed; the
        model asked for and an empty output are what the RPC's log and span report."""
        emulator.inject(Fault("server_error", retry_after_s=0.0, count=3))
        err = fail(served, max_attempts=3)
        assert type(err) is errors.UpstreamUnavailable
        assert (billed(err).attempts, billed(err).billed_calls) == (3, 0)
        assert (billed(err).model, billed(err).output) == ("claude-haiku-4-5", {})
        assert not err.billed
        assert len(emulator.requests) == 3

    def test_a_refusal_is_billed_and_names_its_category(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """A refusal is MODEL_REFUSED naming the category, with the refused call's usage."""
        emulator.inject(Fault("refusal", category="bio"))
        err = fail(served)
        assert type(err) is errors.ModelRefused
        assert err.message == "the model refused the request (category: bio)"
        assert err.metadata == {"category": "bio"}
        assert billed(err).billed_calls == 1
        assert billed(err).usage.output_tokens > 0
        assert err.billed

    def test_a_refusal_without_details_is_unspecified(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """A refusal without stop_details still names a category: ``unspecified``."""
        emulator.script(Script(text="No.", stop_reason="refusal"))
        err = fail(served)
        assert type(err) is errors.ModelRefused
        assert err.message == "the model refused the request (category: unspecified)"
        assert err.metadata == {"category": "unspecified"}

    def test_no_room_to_answer_is_too_large_on_the_size_field(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """A context window filled before the answer names the request field, billed once."""
        emulator.script(Script(text='{"la', stop_reason="model_context_window_exceeded"))
        err = fail(served)
        assert type(err) is errors.RequestTooLarge
        assert err.violations == [
            errors.FieldViolation(
                "text", "the prompt leaves the model too little of its context window to answer"
            )
        ]
        assert billed(err).billed_calls == 1
        assert len(emulator.requests) == 1


class TestReasks:
    @pytest.mark.parametrize("max_reasks", [0, 1, 2])
    def test_one_call_plus_each_reask(
        self, served: ThreadedEmulator, emulator: Emulator, max_reasks: int
    ) -> None:
        """A model that never answers usably is asked 1 + max_reasks times, each call billed."""
        emulator.inject(Fault("malformed", count=max_reasks + 2))
        err = fail(served, max_reasks=max_reasks)
        assert type(err) is errors.OutputInvalid
        assert len(emulator.requests) == max_reasks + 1
        assert billed(err).billed_calls == max_reasks + 1
        assert err.message.startswith(
            f"the model's output was unusable after {max_reasks + 1} billed calls: "
        )

    def test_a_reask_that_answers_is_the_output(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """A bad first answer then a good one: the good one, two billed calls summed."""
        emulator.inject(Fault("malformed"))
        emulator.script(Script(text='{"la', stop_reason="end_turn"))
        emulator.script(Script(text='{"label": "b"}'))
        completion = complete(served, max_reasks=2)
        assert completion.output == {"label": "b"}
        assert completion.billed_calls == 3


def count(base_url: str, *, deadline_in_s: float | None = None) -> int | None:
    """One ``count_tokens`` for PROMPT; ``deadline_in_s`` sets the caller's deadline."""

    async def run() -> int | None:
        sdk = anthropic.AsyncAnthropic(base_url=base_url, api_key="any-key")
        client = ModelClient(sdk, Settings())
        deadline = None if deadline_in_s is None else time.monotonic() + deadline_in_s
        try:
            return await client.count_tokens(
                PROMPT, facts=PriceTable.load().facts("claude-haiku-4-5"), deadline=deadline
            )
        finally:
            await client.close()

    return asyncio.run(run())


def sdk_count(served: ThreadedEmulator, *, drop: str | None = None) -> int:
    """The upstream's count for PROMPT as the service lays it out, less the ``drop`` field."""
    params = render_params(PROMPT, facts=PriceTable.load().facts("claude-haiku-4-5"), ttl="5m")
    sdk = anthropic.Anthropic(base_url=served.base_url, api_key="any-key")
    fields = {k: params[k] for k in ("model", "system", "messages", "output_config") if k != drop}
    return sdk.messages.count_tokens(**fields).input_tokens


class TestCountTokens:
    def test_the_whole_prompt_is_counted(self, served: ThreadedEmulator) -> None:
        """The count covers the system blocks and the output schema, as the call would send them."""
        whole = sdk_count(served)
        assert whole > sdk_count(served, drop="system")
        assert whole > sdk_count(served, drop="output_config")
        assert count(served.base_url) == whole
        assert count(served.base_url, deadline_in_s=30.0) == whole

    def test_a_deadline_already_past_counts_nothing(self, served: ThreadedEmulator) -> None:
        """With no time left the count is skipped: None, and the call itself decides."""
        assert count(served.base_url, deadline_in_s=-1.0) is None

    def test_an_upstream_failure_is_no_count_and_logged(self) -> None:
        """An unreachable upstream gives None and one log line naming the model and the error."""
        with structlog.testing.capture_logs() as logs:
            assert count("http://127.0.0.1:9") is None
        failed = [entry for entry in logs if entry["event"] == "count_tokens.failed"]
        assert failed == [
            {
                "event": "count_tokens.failed",
                "log_level": "info",
                "model": "claude-haiku-4-5",
                "error": "APIConnectionError",
            }
        ]


class TestTruncationAtTheLimit:
    def test_no_reask_past_the_models_largest_output(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """Truncated with max_tokens already at the model's largest output: no re-ask, no
        RetryInfo, and the message says why."""
        facts = PriceTable.load().facts("claude-haiku-4-5")
        prompt = dataclasses.replace(PROMPT, max_tokens=facts.max_output_tokens)
        emulator.inject(Fault("truncated", count=2))

        async def run() -> Completion:
            sdk = anthropic.AsyncAnthropic(base_url=served.base_url, api_key="any-key")
            client = ModelClient(sdk, Settings(max_reasks=2))
            try:
                return await client.complete(
                    prompt, facts=facts, check=lambda _: [], size_field=lambda: "text"
                )
            finally:
                await client.close()

        with pytest.raises(errors.OutputInvalid) as raised:
            asyncio.run(run())
        assert raised.value.message == (
            "the model's output was unusable after 1 billed calls: output truncated at max_tokens"
            " (at the model's largest output)"
        )
        assert raised.value.retry_after_s is None
        assert len(emulator.requests) == 1


async def upstream_headers(make_client: Callable[[str], anthropic.AsyncAnthropic]) -> set[str]:
    """The header names of one ``messages.create`` sent inside a recording span to a real
    HTTP server on loopback, which answers with a minimal message."""
    seen: set[str] = set()

    async def messages(request: web.Request) -> web.Response:
        seen.update(name.lower() for name in request.headers)
        return web.json_response(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-haiku-4-5",
                "content": [{"type": "text", "text": "a"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 1},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # started
    client = make_client(f"http://127.0.0.1:{port}")
    try:
        with TracerProvider().get_tracer("test").start_as_current_span("rpc"):
            await client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=5,
                messages=[{"role": "user", "content": "hi"}],
            )
    finally:
        await client.close()
        await runner.cleanup()
    return seen


class TestUpstreamClient:
    def test_no_trace_context_goes_upstream(self) -> None:
        """The SDK client the service builds sends no ``traceparent``, even inside a
        recording span: each attempt has our CLIENT span already, and the API has no use
        for our trace context. A default SDK client would send it."""
        ours = asyncio.run(
            upstream_headers(
                lambda url: upstream_client(api_key="k", base_url=url, settings=Settings())
            )
        )
        default = asyncio.run(
            upstream_headers(lambda url: anthropic.AsyncAnthropic(api_key="k", base_url=url))
        )
        assert "anthropic-version" in ours
        assert "traceparent" not in ours
        assert "traceparent" in default

    def test_the_response_hook_learns_the_model_of_the_call(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """The response hook (rate-limit pacing) is told the model the service's call asked
        for, without parsing the request body again; a request made outside a model call
        tells it nothing."""
        seen: list[tuple[str, str]] = []
        emulator.script(Script(text='{"label": "b"}'))

        async def hook(response: httpx2.Response, model: str) -> None:
            seen.append((response.request.url.path, model))

        async def run() -> None:
            sdk = upstream_client(
                api_key="k", base_url=served.base_url, settings=Settings(), on_response=hook
            )
            client = ModelClient(sdk, Settings())
            try:
                await client.complete(
                    PROMPT,
                    facts=PriceTable.load().facts("claude-haiku-4-5"),
                    check=lambda _: [],
                    size_field=lambda: "text",
                )
                await sdk.messages.create(
                    model="claude-sonnet-4-6",
                    max_tokens=5,
                    messages=[{"role": "user", "content": "hi"}],
                )
            finally:
                await client.close()
                await sdk.close()

        asyncio.run(run())
        assert seen == [("/v1/messages", "claude-haiku-4-5"), ("/v1/messages", "")]
