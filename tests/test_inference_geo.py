"""End to end through gRPC: every billed call is priced in the geo its response reports, and
Usage names the geo; a re-ask served in another geo sums exactly."""

from __future__ import annotations

import json

from harness import Upstream
from tiergate.emulator import Script
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub
QUESTION = pb.ReasonRequest(
    question="What is 2 + 2?", context="Arithmetic on integers.", include_confidence=True
)
ANSWER = json.dumps({"steps": ["Add two and two."], "answer": "4", "confidence": 0.9})
NO_CONFIDENCE = json.dumps({"steps": ["Add two and two."], "answer": "4"})


def usage(input_tokens: int, output_tokens: int, geo: str) -> dict[str, object]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "inference_geo": geo}


class TestInferenceGeoOverGrpc:
    def test_us_inference_on_sonnet_4_6_costs_ten_percent_more(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """Reason on Sonnet 4.6 served in the US: 1,000 input and 50 output tokens cost
        1,000 x 3,300 + 50 x 16,500 nanos, and Usage says ``us``."""
        upstream.script(Script(text=ANSWER, usage=usage(1000, 50, "us")))
        reply = stub.Reason(QUESTION, timeout=10)
        assert reply.usage.inference_geo == "us"
        assert reply.usage.cost.input_nanos == 3_300_000
        assert reply.usage.cost.output_nanos == 825_000
        assert reply.usage.cost.total_nanos == 4_125_000

    def test_global_inference_costs_the_base_price(self, stub: Stub, upstream: Upstream) -> None:
        """The same call served globally: 3,000 and 15,000 nanos a token, Usage says ``global``."""
        upstream.script(Script(text=ANSWER, usage=usage(1000, 50, "global")))
        reply = stub.Reason(QUESTION, timeout=10)
        assert reply.usage.inference_geo == "global"
        assert reply.usage.cost.total_nanos == 3_750_000

    def test_a_reask_in_another_geo_is_priced_per_call(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """A bad answer served globally, its re-ask in the US: each call at its own geo's
        price, 3,750,000 + 4,125,000 nanos, and Usage names both geos in call order."""
        upstream.script(
            Script(text=NO_CONFIDENCE, usage=usage(1000, 50, "global")),
            Script(text=ANSWER, usage=usage(1000, 50, "us")),
        )
        reply = stub.Reason(QUESTION, timeout=10)
        assert reply.usage.billed_calls == 2
        assert reply.usage.inference_geo == "global,us"
        assert (reply.usage.input_tokens, reply.usage.output_tokens) == (2000, 100)
        assert reply.usage.cost.total_nanos == 7_875_000

    def test_haiku_has_no_us_premium(self, stub: Stub, upstream: Upstream) -> None:
        """Classify on Haiku 4.5 served in the US costs its base price: 1,000 and 5,000."""
        upstream.script(
            Script(text=json.dumps({"label": "a", "confidence": 1}), usage=usage(1000, 10, "us"))
        )
        request = pb.ClassifyRequest(text="x", labels=[pb.Label(name="a"), pb.Label(name="b")])
        reply = stub.Classify(request, timeout=10)
        assert reply.usage.inference_geo == "us"
        assert reply.usage.cost.total_nanos == 1000 * 1000 + 10 * 5000
