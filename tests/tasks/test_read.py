"""Read in process: validation of the files, the prompt's layout, and outputs held to the
caller's schema."""

from __future__ import annotations

import json
import pathlib

import pytest

from tiergate.calls.prompt import render_params
from tiergate.errors import InvalidRequest
from tiergate.ledger import PriceTable
from tiergate.tasks import read
from tiergate.tasks.task import Serving
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import usage_pb2

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent.parent / "examples"
PDF = (EXAMPLES / "invoice.pdf").read_bytes()
PNG = (EXAMPLES / "receipt.png").read_bytes()
SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {"total": {"type": "number", "minimum": 0}},
        "required": ["total"],
    }
)
PRICES = PriceTable.load()


def request(*documents: pb.ReadDocument, schema: str = SCHEMA) -> pb.ReadRequest:
    return pb.ReadRequest(documents=documents, json_schema=schema)


def fields(err: InvalidRequest) -> list[str]:
    return [v.field for v in err.violations]


class TestValidate:
    def test_every_problem_is_named_at_once(self) -> None:
        bad = request(
            pb.ReadDocument(data=PNG, media_type="application/pdf"),
            pb.ReadDocument(data=b"", media_type="image/png"),
            pb.ReadDocument(data=PDF, media_type="text/plain"),
            pb.ReadDocument(data=PDF, media_type="application/pdf", name="x" * 257),
            schema='{"type": "array"}',
        )
        with pytest.raises(InvalidRequest) as caught:
            read.validate(bad)
        assert fields(caught.value) == [
            "documents[0].data",
            "documents[1].data",
            "documents[2].media_type",
            "documents[3].name",
            "json_schema",
        ]

    def test_a_pdf_and_an_image_are_valid(self) -> None:
        read.validate(
            request(
                pb.ReadDocument(data=PDF, media_type="application/pdf"),
                pb.ReadDocument(data=PNG, media_type="image/png"),
            )
        )

    def test_admit_holds_the_request_size_as_base64(self) -> None:
        """3 bytes become 4 on the wire: a limit between the raw and the encoded size refuses."""
        facts = PRICES.facts("claude-opus-4-7")
        valid = request(pb.ReadDocument(data=PDF, media_type="application/pdf"))
        others = 2 * len(SCHEMA.encode()) + 64 * 1024
        read.admit(valid, Serving(facts, others + 4 * -(-len(PDF) // 3)))
        with pytest.raises(InvalidRequest) as caught:
            read.admit(valid, Serving(facts, others + len(PDF) + 1))
        assert fields(caught.value) == ["documents[0].data"]


class TestPrompt:
    def test_files_first_base64_with_a_breakpoint_when_it_can_pay(self) -> None:
        """A large enough prefix gets breakpoint 3 on the last file; the list follows it."""
        big = pb.ReadDocument(data=PDF, media_type="application/pdf", name="invoice.pdf")
        prompt = read.prompt(request(*[big] * 3))
        params = render_params(prompt, facts=PRICES.facts("claude-opus-4-7"), ttl="5m")
        content = params["messages"][0]["content"]
        assert [b["type"] for b in content] == ["document"] * 3 + ["text"]
        assert "cache_control" in content[2]
        assert "cache_control" not in content[0]
        assert content[3]["text"].endswith("3. invoice.pdf (application/pdf)")
        assert content[0]["title"] == "invoice.pdf"

    def test_a_small_image_prefix_gets_no_breakpoint(self) -> None:
        prompt = read.prompt(request(pb.ReadDocument(data=PNG, media_type="image/png")))
        params = render_params(prompt, facts=PRICES.facts("claude-opus-4-7"), ttl="5m")
        image = params["messages"][0]["content"][0]
        assert image["type"] == "image"
        assert "cache_control" not in image


class TestOutput:
    def test_the_caller_schema_holds(self) -> None:
        valid = request(pb.ReadDocument(data=PNG, media_type="image/png"))
        assert read.check(valid, {"total": 9.0}) == []
        assert read.check(valid, {"total": -1.0})  # minimum 0: the caller's rule, re-asked
        reply = read.respond(valid, {"total": 9.0}, usage_pb2.Usage())
        assert reply.data["total"] == 9.0
