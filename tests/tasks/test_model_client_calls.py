"""The model client's own calls through the real SDK to the emulator, in process (no gRPC)."""

from __future__ import annotations

import asyncio

import anthropic
import pytest

from tiergate import errors
from tiergate.config import Settings
from tiergate.emulator import Emulator, Fault, Script
from tiergate.emulator.testing import ThreadedEmulator
from tiergate.ledger import PriceTable
from tiergate.model_client import Completion, ModelClient
from tiergate.prompt import Prompt

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
