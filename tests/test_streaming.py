"""StreamService over real gRPC against the streaming emulator: partials in order and never
taken back, the final message the unary response with its exact Usage, a mid-stream error
event, and a cancel that closes the upstream stream."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from test_cli import run as run_cli
from test_shared_state import AUTH, TOKEN, error_info

from conftest import start_app
from harness import BackgroundLoop, Upstream, eventually
from tiergate.calls.partials import extends
from tiergate.client import AsyncTaskClient, TaskClient, TiergateError
from tiergate.emulator import Emulator, EmulatorConfig, Fault, Script
from tiergate.emulator.validation import validate_request
from tiergate.ledger import PriceTable, TokenUsage, price
from tiergate.serving.app import App
from tiergate.v1 import (
    spend_service_pb2,
    spend_service_pb2_grpc,
    stream_service_pb2_grpc,
    task_service_pb2_grpc,
)
from tiergate.v1 import stream_service_pb2 as stream_pb
from tiergate.v1 import task_service_pb2 as pb

HAIKU = PriceTable.load().facts("claude-haiku-4-5")
SUMMARY = (
    "The customer was charged twice for the March subscription and asks for a refund of the"
    " second charge before the end of the month, citing the invoice number."
)
POINTS = ["A double charge in March.", "A refund is requested.", "The invoice is cited."]
TEXT = "I was charged twice in March for my subscription (invoice 4471). Please refund one."
DOCUMENTS = [
    pb.Document(id="kb-1", text="Refunds are issued within 5 business days of approval."),
    pb.Document(id="kb-2", text="Annual plans can be cancelled at any time."),
]


@pytest.fixture(scope="module")
def paced(background: BackgroundLoop) -> Iterator[Upstream]:
    """An emulator at a tenth of the seed's latency: deltas arrive over time."""
    emulator = Emulator(EmulatorConfig(latency="seed", latency_scale=0.1))
    background.run(emulator.start())
    yield Upstream(emulator, background)
    background.run(emulator.stop())


@pytest.fixture(scope="module")
def streaming_app(background: BackgroundLoop, paced: Upstream) -> Iterator[App]:
    app = start_app(background, paced)
    yield app
    background.run(app.stop(grace=1))


@pytest.fixture(autouse=True)
def full_retry_budget(request: pytest.FixtureRequest) -> None:
    """Each test starts with the server's retry budget full: one test's injected failures
    must not hold back the next test's retries."""
    if "streaming_app" in request.fixturenames:
        app: App = request.getfixturevalue("streaming_app")
        for budget in app.retry_budgets.values():
            budget.tokens = budget.max_tokens


@pytest.fixture
def streams(
    streaming_app: App, paced: Upstream
) -> Iterator[stream_service_pb2_grpc.StreamServiceStub]:
    paced.reset()
    with grpc.insecure_channel(f"127.0.0.1:{streaming_app.port}") as channel:
        yield stream_service_pb2_grpc.StreamServiceStub(channel)


@pytest.fixture
def unary(streaming_app: App) -> Iterator[task_service_pb2_grpc.TaskServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{streaming_app.port}") as channel:
        yield task_service_pb2_grpc.TaskServiceStub(channel)


StreamMessage = (
    stream_pb.StreamSummarizeResponse
    | stream_pb.StreamAnswerResponse
    | stream_pb.StreamReasonResponse
)


def assert_never_retracted(messages: Sequence[StreamMessage]) -> None:
    for before, after in itertools.pairwise(messages):
        assert extends(after.response, before.response), (before, after)


class TestSummarize:
    def test_partials_grow_in_order_and_the_last_is_the_unary_response(
        self,
        streams: stream_service_pb2_grpc.StreamServiceStub,
        unary: task_service_pb2_grpc.TaskServiceStub,
        paced: Upstream,
    ) -> None:
        """The summary grows by whole words, key points by whole items; only the last message
        is complete and carries Usage; it equals what the unary RPC answers to the same
        output."""
        output = json.dumps({"summary": SUMMARY, "key_points": POINTS})
        paced.script(Script(text=output), Script(text=output))
        request = pb.SummarizeRequest(text=TEXT, include_key_points=True)
        messages = list(streams.StreamSummarize(request, timeout=30))
        assert len(messages) > 3
        *partials, last = messages
        assert last.complete
        assert not any(m.complete for m in partials)
        assert not any(m.response.HasField("usage") for m in partials)
        assert_never_retracted(messages)
        summaries = [m.response.summary for m in partials if m.response.summary]
        assert summaries, "the summary should grow before the end"
        assert all(SUMMARY.startswith(s) for s in summaries)
        # Whole words only: every partial ends where a word of the summary ends.
        assert all(SUMMARY[len(s) : len(s) + 1] in (" ", "") for s in summaries)
        point_counts = [len(m.response.key_points) for m in messages]
        assert point_counts == sorted(point_counts)
        assert point_counts[-1] == 3
        whole = unary.Summarize(request, timeout=30)
        assert last.response.summary == whole.summary
        assert list(last.response.key_points) == list(whole.key_points)
        # Both calls were billed alike (same prompt, same scripted output), each exactly.
        assert last.response.usage.input_tokens == whole.usage.input_tokens
        assert last.response.usage.output_tokens == whole.usage.output_tokens > 0
        assert last.response.usage.cost.total_nanos == whole.usage.cost.total_nanos > 0

    def test_usage_is_the_upstream_bill_exactly(
        self, streams: stream_service_pb2_grpc.StreamServiceStub, paced: Upstream
    ) -> None:
        """The final Usage prices the input of message_start and the output of message_delta
        with the ledger, to the nano-dollar."""
        paced.script(Script(text=json.dumps({"summary": SUMMARY}), usage={"output_tokens": 77}))
        *_, last = streams.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30)
        usage = last.response.usage
        assert usage.output_tokens == 77
        tokens = TokenUsage(
            input_tokens=usage.input_tokens,
            cache_write_5m_tokens=usage.cache_creation_input_tokens,
            cache_read_tokens=usage.cache_read_input_tokens,
            output_tokens=77,
            inference_geo="global",
        )
        assert usage.cost.total_nanos == price(HAIKU, tokens, batch=False).total_nanos
        assert paced.emulator.requests[-1]["stream"] is True


class TestAnswer:
    def test_citations_are_the_numbered_sentences_written_verbatim(
        self, streams: stream_service_pb2_grpc.StreamServiceStub, paced: Upstream
    ) -> None:
        """The model cites sentence numbers; each citation goes out, before the end, as the
        numbered sentence itself, quoted verbatim from its document."""
        output = {"answer": "Refunds are issued within five business days.", "cite": [1, 2]}
        paced.script(Script(text=json.dumps(output)))
        request = pb.AnswerRequest(question="How fast are refunds?", documents=DOCUMENTS)
        messages = list(streams.StreamAnswer(request, timeout=30))
        assert_never_retracted(messages)
        cited = {(c.document_id, c.quote) for m in messages for c in m.response.citations}
        assert cited == {(d.id, d.text) for d in DOCUMENTS}
        assert any(m.response.citations and not m.complete for m in messages)
        assert messages[-1].response.answerable
        assert messages[-1].complete
        sent = paced.emulator.requests[-1]
        assert sent["stream"] is True
        assert sent["output_config"]["format"]["type"] == "json_schema"

    def test_unanswerable_sends_nothing_before_the_end(
        self, streams: stream_service_pb2_grpc.StreamServiceStub, paced: Upstream
    ) -> None:
        """An unanswerable answer has nothing to show early: one final message."""
        output = {"answer": "", "cite": []}
        paced.script(Script(text=json.dumps(output)))
        request = pb.AnswerRequest(question="Who won in 1930?", documents=DOCUMENTS)
        messages = list(streams.StreamAnswer(request, timeout=30))
        assert [m.complete for m in messages] == [True]
        assert not messages[0].response.answerable


class TestReason:
    def test_steps_come_whole_then_the_answer_grows(
        self, streams: stream_service_pb2_grpc.StreamServiceStub, paced: Upstream
    ) -> None:
        steps = ["Two trains leave at noon.", "They meet after two hours.", "So at 2 pm."]
        output = {"steps": steps, "answer": "They meet at two in the afternoon.", "confidence": 3}
        paced.script(Script(text=json.dumps(output)))
        request = pb.ReasonRequest(question="When do they meet?", include_confidence=True)
        messages = list(streams.StreamReason(request, timeout=30))
        assert_never_retracted(messages)
        for m in messages[:-1]:
            assert all(step in steps for step in m.response.steps)
            assert m.response.confidence == 0  # clamped at the end: only the last says it
        assert messages[-1].response.confidence == 1.0
        assert list(messages[-1].response.steps) == steps


class TestFailures:
    def test_overloaded_before_any_output_is_retried(
        self, streams: stream_service_pb2_grpc.StreamServiceStub, paced: Upstream
    ) -> None:
        """An overloaded_error event before the first content delta is retried like a 529:
        the caller sees one clean stream."""
        paced.inject(Fault("stream_error", after_deltas=0))
        scripted = Script(text=json.dumps({"summary": SUMMARY}))
        paced.script(scripted, scripted)  # the broken attempt's reply and the retry's
        messages = list(streams.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30))
        assert messages[-1].complete
        assert messages[-1].response.summary == SUMMARY
        assert len(paced.emulator.requests) == 2

    def test_a_start_that_cannot_be_a_bill_is_retried(
        self, streams: stream_service_pb2_grpc.StreamServiceStub, paced: Upstream
    ) -> None:
        """A message_start whose usage cannot be a bill (a negative input count) is the
        upstream's fault, as a whole answer's would be: retried before any output, and the
        caller's Usage is the real answer's alone."""
        scripted = Script(text=json.dumps({"summary": SUMMARY}))
        paced.script(scripted)
        clean = list(streams.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30))[-1]
        paced.emulator.reset()
        paced.inject(Fault("rewritten", usage={"input_tokens": -5}))
        paced.script(scripted, scripted)
        messages = list(streams.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30))
        assert messages[-1].complete
        assert messages[-1].response.summary == SUMMARY
        usage = messages[-1].response.usage
        assert (usage.attempts, usage.billed_calls) == (2, 1)
        assert usage.cost == clean.response.usage.cost
        assert len(paced.emulator.requests) == 2

    def test_an_error_event_after_output_ends_the_stream_unavailable(
        self, streams: stream_service_pb2_grpc.StreamServiceStub, paced: Upstream
    ) -> None:
        """After partials went out, an error event ends the stream with UNAVAILABLE (rich
        status, a retry delay), and the partials sent stay a prefix of nothing retracted."""
        paced.inject(Fault("stream_error", after_deltas=5))
        paced.script(Script(text=json.dumps({"summary": SUMMARY})))
        seen: list[stream_pb.StreamSummarizeResponse] = []
        call = streams.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30)
        with pytest.raises(grpc.RpcError) as caught:
            seen.extend(call)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert seen
        assert not any(m.complete for m in seen)
        assert_never_retracted(seen)
        assert error_info(caught.value)[0] == "UPSTREAM_UNAVAILABLE"
        assert len(paced.emulator.requests) == 1  # never retried once output was sent

    def test_a_dropped_connection_after_output_ends_the_stream_unavailable(
        self, streams: stream_service_pb2_grpc.StreamServiceStub, paced: Upstream
    ) -> None:
        """The upstream connection dropping mid-answer ends the stream UNAVAILABLE, never
        UNKNOWN or INTERNAL."""
        paced.inject(Fault("stream_cut", after_deltas=5))
        paced.script(Script(text=json.dumps({"summary": SUMMARY})))
        seen: list[stream_pb.StreamSummarizeResponse] = []
        with pytest.raises(grpc.RpcError) as caught:
            seen.extend(streams.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert seen
        assert error_info(caught.value)[0] == "UPSTREAM_UNAVAILABLE"

    def test_a_dropped_connection_before_output_is_retried(
        self, streams: stream_service_pb2_grpc.StreamServiceStub, paced: Upstream
    ) -> None:
        paced.inject(Fault("stream_cut", after_deltas=0))
        scripted = Script(text=json.dumps({"summary": SUMMARY}))
        paced.script(scripted, scripted)
        messages = list(streams.StreamSummarize(pb.SummarizeRequest(text=TEXT), timeout=30))
        assert messages[-1].response.summary == SUMMARY
        assert len(paced.emulator.requests) == 2

    def test_a_failed_final_check_ends_with_the_unary_status(
        self,
        streams: stream_service_pb2_grpc.StreamServiceStub,
        unary: task_service_pb2_grpc.TaskServiceStub,
        paced: Upstream,
    ) -> None:
        """A truncated answer (max_tokens) fails the final check: the stream ends with the
        status and reason the unary RPC gives when its answers are truncated too."""
        cut = Script(text='{"summary": "The customer was charged twice', stop_reason="max_tokens")
        paced.script(cut, cut, cut)  # the stream's one call; the unary call and its re-ask
        request = pb.SummarizeRequest(text=TEXT)
        with pytest.raises(grpc.RpcError) as streamed:
            list(streams.StreamSummarize(request, timeout=30))
        with pytest.raises(grpc.RpcError) as whole:
            unary.Summarize(request, timeout=30)
        assert streamed.value.code() == whole.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(streamed.value)[0] == error_info(whole.value)[0] == "OUTPUT_INVALID"

    def test_a_lone_surrogate_is_an_unusable_output_never_internal(
        self,
        streams: stream_service_pb2_grpc.StreamServiceStub,
        unary: task_service_pb2_grpc.TaskServiceStub,
        paced: Upstream,
    ) -> None:
        """Half a surrogate pair, escaped in the model's JSON, is no text a reply can carry:
        the unary call asks again and is served; the stream, which never re-asks, ends with
        OUTPUT_INVALID having sent nothing but whole words before it."""
        broken = Script(text='{"summary": "Refund the \\ud800 second charge now"}')
        paced.script(broken, broken, Script(text=json.dumps({"summary": SUMMARY})))
        request = pb.SummarizeRequest(text=TEXT)
        seen: list[stream_pb.StreamSummarizeResponse] = []
        with pytest.raises(grpc.RpcError) as streamed:
            seen.extend(streams.StreamSummarize(request, timeout=30))
        assert streamed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(streamed.value)[0] == "OUTPUT_INVALID"
        assert all("\ufffd" not in m.response.summary for m in seen)
        reply = unary.Summarize(request, timeout=30)
        assert reply.summary == SUMMARY
        assert reply.usage.billed_calls == 2

    def test_cancel_closes_the_upstream_stream(
        self, streams: stream_service_pb2_grpc.StreamServiceStub, paced: Upstream
    ) -> None:
        """Cancelling after the first partial closes the upstream stream at once: the
        emulator sees its client hang up mid-answer."""
        long_summary = " ".join([SUMMARY] * 6)
        paced.script(Script(text=json.dumps({"summary": long_summary})))
        call = streams.StreamSummarize(pb.SummarizeRequest(text=TEXT, max_words=500), timeout=30)
        first = next(call)
        assert not first.complete
        call.cancel()
        eventually(lambda: paced.emulator.abandoned or None, "the upstream stream to close")
        time.sleep(0.1)
        assert paced.emulator.abandoned == 1

    def test_a_passed_deadline_closes_the_upstream_stream(
        self, streams: stream_service_pb2_grpc.StreamServiceStub, paced: Upstream
    ) -> None:
        """A deadline that passes mid-answer ends the stream DEADLINE_EXCEEDED and closes the
        upstream stream: the emulator sees its client hang up instead of writing on."""
        long_summary = " ".join([SUMMARY] * 30)  # longer than the deadline lets it write
        paced.script(Script(text=json.dumps({"summary": long_summary})))
        seen: list[stream_pb.StreamSummarizeResponse] = []
        call = streams.StreamSummarize(pb.SummarizeRequest(text=TEXT, max_words=1000), timeout=1)
        with pytest.raises(grpc.RpcError) as caught:
            seen.extend(call)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert seen  # it was cut mid-answer, not before it began
        assert not any(m.complete for m in seen)
        eventually(lambda: paced.emulator.abandoned or None, "the upstream stream to close")
        assert paced.emulator.abandoned == 1


class TestCommandLine:
    def test_stream_prints_the_summary_then_the_whole_response(
        self, streaming_app: App, paced: Upstream
    ) -> None:
        """`tiergate summarize --stream` prints the summary as it comes, then the complete
        response with its usage and cost."""
        paced.reset()
        paced.script(Script(text=json.dumps({"summary": SUMMARY})))
        done = run_cli(
            "summarize", "--stream", "--text", TEXT, "--target", f"127.0.0.1:{streaming_app.port}"
        )
        assert done.returncode == 0, done.stderr
        streamed, _, table = done.stdout.partition("\n\n")
        assert SUMMARY.startswith(streamed)
        assert len(streamed.split()) > 1
        assert "cost" in table
        assert SUMMARY.split()[-1] in table

    def test_stream_json_prints_one_line_per_message(
        self, streaming_app: App, paced: Upstream
    ) -> None:
        paced.reset()
        paced.script(Script(text=json.dumps({"summary": SUMMARY})))
        done = run_cli(
            "summarize",
            "--stream",
            "--json",
            "--text",
            TEXT,
            "--target",
            f"127.0.0.1:{streaming_app.port}",
        )
        assert done.returncode == 0, done.stderr
        messages = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(messages) > 1
        assert [m["complete"] for m in messages] == [False] * (len(messages) - 1) + [True]
        assert messages[-1]["response"]["summary"] == SUMMARY
        assert int(messages[-1]["response"]["usage"]["output_tokens"]) > 0

    def test_stream_is_offered_only_where_a_task_streams(self) -> None:
        done = run_cli("classify", "--stream", "--text", "x", "--label", "a")
        assert done.returncode == 2
        assert "--stream" in done.stderr


class TestSharedState:
    def test_a_cache_hit_streams_as_one_complete_message_and_a_cancel_settles_its_bound(
        self, background: BackgroundLoop, paced: Upstream, tmp_path: Path
    ) -> None:
        """With the response cache on, a repeated Answer streams as one complete message with
        nothing billed. With a budget, a stream cancelled mid-answer settles at its input as
        billed plus max_tokens of output: less than the reservation's worst case (which counts
        the re-asks), more than nothing."""
        paced.reset()
        (tmp_path / "tokens").write_text(f"billing-service={TOKEN}\n")
        (tmp_path / "budgets.toml").write_text('[callers.billing-service]\nmonthly_usd = "5"\n')
        app = start_app(
            background,
            paced,
            auth_tokens_file=str(tmp_path / "tokens"),
            budgets_file=str(tmp_path / "budgets.toml"),
            response_cache_ttl_s=60,
        )
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                streams = stream_service_pb2_grpc.StreamServiceStub(channel)
                output = {"answer": "Refunds are issued within five business days.", "cite": [1]}
                paced.script(Script(text=json.dumps(output)))
                request = pb.AnswerRequest(question="How fast are refunds?", documents=DOCUMENTS)
                first = list(streams.StreamAnswer(request, timeout=30, metadata=AUTH))
                again = list(streams.StreamAnswer(request, timeout=30, metadata=AUTH))
                assert len(first) > 1
                assert [m.complete for m in again] == [True]
                assert again[0].response.answer == first[-1].response.answer
                assert again[0].response.usage.cost.total_nanos == 0
                assert len(paced.emulator.requests) == 1
                spend = spend_service_pb2_grpc.SpendServiceStub(channel)
                before = spend.GetSpend(spend_service_pb2.GetSpendRequest(), metadata=AUTH)
                paced.script(Script(text=json.dumps({"summary": " ".join([SUMMARY] * 6)})))
                call = streams.StreamSummarize(
                    pb.SummarizeRequest(text=TEXT, max_words=500), timeout=30, metadata=AUTH
                )
                assert not next(call).complete
                call.cancel()
                eventually(lambda: paced.emulator.abandoned or None, "the upstream to close")

                def settled() -> int | None:
                    now = spend.GetSpend(spend_service_pb2.GetSpendRequest(), metadata=AUTH)
                    (row,) = now.periods
                    grown = row.spent_nanos - before.periods[0].spent_nanos
                    return grown if grown and not row.reserved_nanos else None

                cost = eventually(settled, "the cancelled stream's settlement")
            body = paced.emulator.requests[-1]
            bound = price(
                HAIKU,
                TokenUsage(input_tokens=count_input(paced, body), output_tokens=body["max_tokens"]),
                batch=False,
            ).total_nanos
            assert cost == bound
        finally:
            background.run(app.stop(grace=1))


def count_input(paced: Upstream, body: dict[str, object]) -> int:
    """The input tokens the emulator billed for ``body`` (no cache: a first call)."""
    prompt = validate_request(body, models=paced.emulator.config.models).prompt
    return prompt.total_tokens


class TestClients:
    def test_the_python_clients_retry_a_stream_only_before_its_first_message(
        self, streaming_app: App, paced: Upstream
    ) -> None:
        """Rate limits that outlast the server's own retries come back with pushback: the
        client's retry, before any message, ends in one clean stream (three server attempts,
        then one more); a stream broken after its first message is not retried."""
        paced.reset()
        paced.inject(Fault("rate_limit", count=3, retry_after_s=0.05))
        target = f"127.0.0.1:{streaming_app.port}"
        with TaskClient(target) as client:
            messages = list(client.stream_summarize(pb.SummarizeRequest(text=TEXT)))
        assert messages[-1].complete
        assert len(paced.emulator.requests) == 4
        paced.reset()
        paced.inject(Fault("stream_error", after_deltas=4))

        async def read() -> tuple[list[stream_pb.StreamSummarizeResponse], TiergateError]:
            seen: list[stream_pb.StreamSummarizeResponse] = []
            async with AsyncTaskClient(target) as client:
                request = pb.SummarizeRequest(text=TEXT, max_words=60)
                try:
                    async for message in client.stream_summarize(request):
                        seen.append(message)
                except TiergateError as error:
                    return seen, error
            raise AssertionError("the stream ended cleanly")

        seen, error = asyncio.run(read())
        assert error.reason == "UPSTREAM_UNAVAILABLE"
        assert seen
        assert not any(m.complete for m in seen)
        assert len(paced.emulator.requests) == 1
