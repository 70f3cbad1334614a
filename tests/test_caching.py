"""Prompt layout for caching: stable parts cached, per-request text never; savings exact."""

from __future__ import annotations

import json
from typing import Any

import grpc

from conftest import start_app
from harness import BackgroundLoop, Upstream
from samples import TICKET_LABELS, long_policy
from tiergate.calls.prompt import Prompt, canonical_json, render_params
from tiergate.calls.sizing import bounds
from tiergate.ledger import PriceTable, TokenUsage
from tiergate.tasks import TASKS
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc, usage_pb2

Stub = task_service_pb2_grpc.TaskServiceStub
PRICES = PriceTable.load()
HAIKU = PRICES.facts("claude-haiku-4-5")


def ticket(text: str) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(text=text, labels=TICKET_LABELS, instructions=long_policy())


def uncached_cost(usage: usage_pb2.Usage) -> int:
    """What the same call would cost with every prompt token at the full input price."""
    prompt = usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
    tokens = TokenUsage(input_tokens=prompt, output_tokens=usage.output_tokens)
    return PRICES.cost(usage.model, tokens).total_nanos


def cached_blocks(body: dict[str, Any]) -> list[str]:
    """The text of every block up to and including the last breakpoint, in prefix order."""
    blocks = [*body.get("system", [])]
    for message in body["messages"]:
        blocks.extend(message["content"])
    marked = [i for i, block in enumerate(blocks) if "cache_control" in block]
    return [json.dumps(block) for block in blocks[: max(marked, default=-1) + 1]]


class TestCacheHits:
    def test_second_call_reads_the_prefix_the_first_wrote(self, stub: Stub) -> None:
        """Call 1 writes the stable prefix, call 2 (other text) reads all of it, costs less,
        and costs exactly the uncached price minus the ledger's saving."""
        first = stub.Classify(ticket("I was charged twice this month."), timeout=10).usage
        second = stub.Classify(ticket("My password reset link never arrives."), timeout=10).usage
        assert first.cache_creation_input_tokens > HAIKU.min_cacheable_tokens
        assert first.cache_creation_5m_input_tokens == first.cache_creation_input_tokens
        assert first.cache_read_input_tokens == 0
        assert second.cache_read_input_tokens == first.cache_creation_input_tokens
        assert second.cache_creation_input_tokens == 0
        assert second.cost.total_nanos < first.cost.total_nanos
        assert second.cost.cache_read_nanos == second.cache_read_input_tokens * HAIKU.cache_read
        saved = second.cache_read_input_tokens * (HAIKU.input - HAIKU.cache_read)
        assert second.cost.cache_savings_nanos == saved
        assert second.cost.total_nanos + saved == uncached_cost(second)
        premium = first.cache_creation_input_tokens * (HAIKU.cache_write_5m - HAIKU.input)
        assert first.cost.cache_write_premium_nanos == premium
        assert first.cost.total_nanos - premium == uncached_cost(first)

    def test_short_prefix_is_not_cached(self, stub: Stub) -> None:
        """Below the model's minimum cacheable length both cache counters stay zero."""
        request = pb.ClassifyRequest(text="Refund please", labels=TICKET_LABELS)
        for _ in range(2):
            usage = stub.Classify(request, timeout=10).usage
            assert usage.cache_creation_input_tokens == 0
            assert usage.cache_read_input_tokens == 0

    def test_one_hour_ttl_is_billed_at_its_own_price(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """With 1h breakpoints the write is reported as 1h and priced at 2x input."""
        app = start_app(background, upstream, cache_ttl="1h")
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                usage = Stub(channel).Classify(ticket("Invoice is wrong"), timeout=10).usage
        finally:
            background.run(app.stop(grace=1))
        assert usage.cache_creation_1h_input_tokens == usage.cache_creation_input_tokens > 0
        assert usage.cache_creation_5m_input_tokens == 0
        assert usage.cost.cache_write_1h_nanos == usage.cache_creation_input_tokens * 2000
        assert usage.cost.cache_write_nanos == usage.cost.cache_write_1h_nanos
        system = upstream.requests[-1]["system"]
        ttls = {b["cache_control"]["ttl"] for b in system if "cache_control" in b}
        assert ttls == {"1h"}

    def test_balanced_tier_caches_from_its_lower_minimum(self, stub: Stub) -> None:
        """Reason on Sonnet caches a context that would be too short for Haiku."""
        context = long_policy(words=2400)
        first = stub.Reason(pb.ReasonRequest(question="Which queue?", context=context)).usage
        second = stub.Reason(pb.ReasonRequest(question="Which rule?", context=context)).usage
        assert 1024 <= first.cache_creation_input_tokens < 4096
        assert second.cache_read_input_tokens == first.cache_creation_input_tokens


class TestLayout:
    def test_per_request_text_is_never_inside_the_cached_prefix(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """For every task the per-request text sits after the last breakpoint, alone."""
        marker = "zebra-marker-7781"
        requests = [
            ("Classify", ticket(f"{marker} charged twice")),
            ("Summarize", pb.SummarizeRequest(text=f"{marker}. The team shipped.")),
            (
                "Extract",
                pb.ExtractRequest(text=marker, json_schema='{"type":"object","properties":{}}'),
            ),
            (
                "Answer",
                pb.AnswerRequest(question=marker, documents=[pb.Document(id="a", text="x.")]),
            ),
            ("Moderate", pb.ModerateRequest(text=marker)),
            ("Reason", pb.ReasonRequest(question=marker, context=long_policy(2400))),
        ]
        for rpc, request in requests:
            getattr(stub, rpc)(request, timeout=10)
            body = upstream.requests[-1]
            assert all(marker not in block for block in cached_blocks(body)), rpc
            assert marker not in json.dumps(body["system"]), rpc
            assert marker not in json.dumps(body.get("output_config")), rpc
            last = body["messages"][-1]["content"][-1]
            assert marker in last["text"], rpc
            assert "cache_control" not in last, rpc

    def test_stable_parts_serialize_to_the_same_bytes(self, stub: Stub, upstream: Upstream) -> None:
        """Same labels, examples and instructions -> byte-identical system and schema."""
        request = pb.ClassifyRequest(
            text="a",
            labels=TICKET_LABELS,
            instructions="Prefer billing on ties.",
            examples=[pb.ClassifyExample(text="refund", label="billing")],
        )
        stub.Classify(request, timeout=10)
        request.text = "something else entirely"
        stub.Classify(request, timeout=10)
        one, two = upstream.requests[-2:]
        assert json.dumps(one["system"]) == json.dumps(two["system"])
        assert json.dumps(one.get("output_config")) == json.dumps(two.get("output_config"))
        assert one["messages"] != two["messages"]


def breakpoints(params: dict[str, Any]) -> list[int]:
    """Indexes of the system blocks that carry a cache breakpoint."""
    return [i for i, block in enumerate(params["system"]) if "cache_control" in block]


def bare_prompt(instructions: str, schema: dict[str, Any], context: tuple[str, ...] = ()) -> Prompt:
    return Prompt(
        instructions=instructions,
        context=context,
        request="the per-request text",
        output_schema=schema,
        max_tokens=64,
    )


CLOSED = {"type": "object", "properties": {}, "additionalProperties": False}
SONNET = PRICES.facts("claude-sonnet-4-6")
OPUS_4_7 = PRICES.facts("claude-opus-4-7")


class TestBreakpointsThatPay:
    def test_short_instructions_get_no_breakpoint(self) -> None:
        """About 150 tokens of instructions and a small schema can never reach Haiku's 4,096:
        no breakpoint at all."""
        prompt = TASKS["Classify"].prompt(pb.ClassifyRequest(text="hi", labels=TICKET_LABELS))
        assert breakpoints(render_params(prompt, facts=HAIKU, ttl="5m")) == []

    def test_a_long_context_keeps_only_the_breakpoint_that_pays(self) -> None:
        """A long caller context: breakpoint 2 after it, none after the short instructions."""
        prompt = TASKS["Classify"].prompt(ticket("hi"))
        params = render_params(prompt, facts=HAIKU, ttl="5m")
        assert breakpoints(params) == [len(params["system"]) - 1]
        assert "cache_control" not in params["messages"][0]["content"][-1]

    def test_the_output_schema_counts_towards_the_prefix(self) -> None:
        """The schema heads the cached prefix: a large one lets breakpoint 1 pay even after
        short instructions."""
        properties = {f"field_{i}": {"type": "string", "description": "x" * 40} for i in range(250)}
        schema = {**CLOSED, "properties": properties}
        small = render_params(bare_prompt("Short instructions.", CLOSED), facts=HAIKU, ttl="5m")
        large = render_params(bare_prompt("Short instructions.", schema), facts=HAIKU, ttl="5m")
        assert breakpoints(small) == []
        assert breakpoints(large) == [0]

    def test_the_models_minimum_decides(self) -> None:
        """About 2,000 tokens of instructions pay on Sonnet 4.6 (1,024) but not on Haiku (4,096)."""
        prompt = bare_prompt(long_policy(words=1100), CLOSED)
        assert breakpoints(render_params(prompt, facts=SONNET, ttl="5m")) == [0]
        assert breakpoints(render_params(prompt, facts=HAIKU, ttl="5m")) == []

    def test_opus_4_7_counts_its_larger_tokenizer(self) -> None:
        """A prefix just under 2,048 tokens at the 4.6 rates is over it on Opus 4.7's tokenizer
        (30% more tokens): the breakpoint stays there."""
        instructions = "word " * 900
        raw = bounds(canonical_json(CLOSED)).high + bounds(instructions).high
        assert raw < OPUS_4_7.min_cacheable_tokens <= raw * 13 // 10
        params = render_params(bare_prompt(instructions, CLOSED), facts=OPUS_4_7, ttl="5m")
        assert breakpoints(params) == [0]

    def test_served_request_without_a_paying_prefix_sends_no_breakpoint(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """Over the wire: a short Classify goes upstream without any cache_control."""
        stub.Classify(pb.ClassifyRequest(text="Refund please", labels=TICKET_LABELS), timeout=10)
        assert "cache_control" not in json.dumps(upstream.requests[-1])
