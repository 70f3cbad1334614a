"""The emulator's Message Batches API, through the real SDK: asynchronous processing, results
as JSONL, the documented limits and states, and scripted item outcomes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tiergate.emulator import EmulatorConfig
from tiergate.emulator.testing import ThreadedEmulator

HAIKU = "claude-haiku-4-5"
PARAMS: dict[str, Any] = {
    "model": HAIKU,
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hello"}],
}


def requests(count: int, params: dict[str, Any] | None = None) -> list[Any]:
    return [{"custom_id": f"r-{i}", "params": params or PARAMS} for i in range(count)]


def ended(client: anthropic.Anthropic, batch_id: str) -> Any:
    """The batch once ended; the bound is a failure, not a timing."""
    give_up = time.monotonic() + 10
    while time.monotonic() < give_up:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.01)
    raise AssertionError("the batch never ended")


@pytest.fixture
def slow() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(EmulatorConfig(batch_delay_s=600)) as running:
        yield running


def post(url: str, payload: Any) -> None:
    request = urllib.request.Request(url, data=json.dumps(payload).encode())
    request.add_header("content-type", "application/json")
    urllib.request.urlopen(request).close()


class TestProcessing:
    def test_results_arrive_once_ended_with_batch_usage(self, client: anthropic.Anthropic) -> None:
        """Every request is answered; usage says ``service_tier: batch``; the results (JSONL)
        cover every custom_id once; the batch can be deleted only after it ended."""
        batch = client.messages.batches.create(requests=requests(3))
        assert batch.id.startswith("msgbatch_")
        done = ended(client, batch.id)
        assert done.request_counts.succeeded == 3
        assert done.results_url is not None
        results = list(client.messages.batches.results(batch.id))
        assert sorted(r.custom_id for r in results) == ["r-0", "r-1", "r-2"]
        for result in results:
            assert result.result.type == "succeeded"
            assert result.result.message.usage.service_tier == "batch"
        assert any(b.id == batch.id for b in client.messages.batches.list())
        client.messages.batches.delete(batch.id)
        with pytest.raises(anthropic.NotFoundError):
            client.messages.batches.retrieve(batch.id)

    def test_scripted_outcomes_and_invalid_params_error_alone(
        self, client: anthropic.Anthropic, served: ThreadedEmulator
    ) -> None:
        """Scripted expired, errored and canceled items end that way; a request whose params
        the Messages API would reject errors alone (invalid_request_error)."""
        post(f"{served.base_url}/_emulator/batch_script", ["expired", "errored", "canceled"])
        bad: Any = {"custom_id": "bad", "params": {**PARAMS, "max_tokens": 0}}
        batch = client.messages.batches.create(requests=[*requests(3), bad])
        done = ended(client, batch.id)
        counts = done.request_counts
        assert (counts.expired, counts.errored, counts.canceled) == (1, 2, 1)
        by_id = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
        assert by_id["r-0"].type == "expired"
        assert by_id["r-1"].type == "errored"
        assert by_id["r-2"].type == "canceled"
        assert by_id["bad"].type == "errored"
        assert by_id["bad"].error.error.type == "invalid_request_error"


class TestLimits:
    def test_custom_ids_must_be_unique_and_well_formed(self, client: anthropic.Anthropic) -> None:
        """A repeated or malformed custom_id, or no requests, is a 400 for the whole batch."""
        cases: list[list[Any]] = [
            [*requests(1), *requests(1)],
            [{"custom_id": "has space", "params": PARAMS}],
            [{"custom_id": "x" * 65, "params": PARAMS}],
            [],
        ]
        for bad in cases:
            with pytest.raises(anthropic.BadRequestError):
                client.messages.batches.create(requests=bad)

    def test_more_than_100000_requests_are_refused(self, client: anthropic.Anthropic) -> None:
        """The API's count limit per batch."""
        with pytest.raises(anthropic.BadRequestError):
            client.messages.batches.create(requests=requests(100_001))


class TestCancel:
    def test_a_cancel_cancels_what_was_not_processed(self, slow: ThreadedEmulator) -> None:
        """While processing waits, a cancel moves the batch to ``canceling`` and every item
        ends ``canceled``; results are refused (400) before the batch ends, and an unfinished
        batch cannot be deleted."""
        client = anthropic.Anthropic(base_url=slow.base_url, api_key="k", max_retries=0)
        batch = client.messages.batches.create(requests=requests(2))
        with pytest.raises(anthropic.BadRequestError):
            client.messages.batches.delete(batch.id)
        with pytest.raises(urllib.error.HTTPError) as early:
            urllib.request.urlopen(f"{slow.base_url}/v1/messages/batches/{batch.id}/results")
        assert early.value.code == 400
        cancelling = client.messages.batches.cancel(batch.id)
        assert cancelling.processing_status == "canceling"
        assert cancelling.cancel_initiated_at is not None
        done = ended(client, batch.id)
        assert done.request_counts.canceled == 2
        assert {r.result.type for r in client.messages.batches.results(batch.id)} == {"canceled"}
