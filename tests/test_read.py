"""Read over real gRPC against the emulator: a PDF and each image type, every refusal at its
bound, and exact usage for image and page tokens."""

from __future__ import annotations

import io
import json
import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from pypdf import PdfReader, PdfWriter

from conftest import start_app
from harness import BackgroundLoop, Upstream
from tiergate.calls import files
from tiergate.emulator.tokens import count_tokens
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc, usage_pb2

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
from make_examples import RECEIPT_LINES, image_bytes, pdf_bytes

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SCHEMA = (EXAMPLES / "invoice.schema.json").read_text()
INVOICE_TEXT = (EXAMPLES / "invoice.txt").read_text()
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
Stub = task_service_pb2_grpc.TaskServiceStub


def doc(data: bytes, media_type: str, name: str = "") -> pb.ReadDocument:
    return pb.ReadDocument(data=data, media_type=media_type, name=name)


def read(*documents: pb.ReadDocument, schema: str = SCHEMA) -> pb.ReadRequest:
    return pb.ReadRequest(documents=documents, json_schema=schema)


def prompt_tokens(usage: usage_pb2.Usage) -> int:
    return (
        usage.input_tokens
        + usage.cache_creation_5m_input_tokens
        + usage.cache_creation_1h_input_tokens
        + usage.cache_read_input_tokens
    )


def violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    assert isinstance(err, grpc.Call)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    found = rpc_status.from_call(err)
    assert found is not None
    for detail in found.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return [(v.field, v.description) for v in bad.field_violations]
    raise AssertionError("no BadRequest detail")


def refused(stub: Stub, request: pb.ReadRequest, upstream: Upstream) -> list[tuple[str, str]]:
    before = len(upstream.requests)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Read(request, timeout=30)
    assert len(upstream.requests) == before, "a refused request reached the model"
    return violations(caught.value)


class TestReads:
    def test_pdf_answer_comes_from_its_text_layer(self, stub: Stub, upstream: Upstream) -> None:
        """The invoice PDF is read on the frontier tier into the caller's schema."""
        pdf = (EXAMPLES / "invoice.pdf").read_bytes()
        reply = stub.Read(read(doc(pdf, "application/pdf", "invoice.pdf")), timeout=30)
        data = json_format.MessageToDict(reply.data)
        assert data["invoice_number"] == "INV-2041"
        assert data["total"] == 40.5
        assert (reply.usage.model, reply.usage.tier) == ("claude-opus-4-7", usage_pb2.TIER_FRONTIER)
        block = upstream.requests[-1]["messages"][0]["content"][0]
        assert (block["type"], block["title"], block["source"]["type"]) == (
            "document",
            "invoice.pdf",
            "base64",
        )

    def test_a_page_stream_no_reader_decodes_is_read_as_its_picture(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """A content stream under a filter pypdf does not know (it raises NotImplementedError,
        as fuzzed bytes found) has no text layer: the page is read as its picture alone, on
        both sides of the wire, and nothing ends in INTERNAL."""
        pdf = (EXAMPLES / "invoice.pdf").read_bytes().replace(b"/FlateDecode", b"/FlateDecodX")
        reply = stub.Read(read(doc(pdf, "application/pdf")), timeout=30)
        assert reply.usage.billed_calls == 1
        assert (
            files.open_file(0, pdf, "application/pdf", "", files.Refusals("documents")) is not None
        )

    @pytest.mark.parametrize("media_type", sorted(FORMATS))
    def test_each_image_type(self, stub: Stub, upstream: Upstream, media_type: str) -> None:
        data = image_bytes(240, 140, FORMATS[media_type], RECEIPT_LINES)
        reply = stub.Read(read(doc(data, media_type, "receipt")), timeout=30)
        assert reply.usage.billed_calls == 1
        sent = upstream.requests[-1]["messages"][0]["content"][0]
        assert (sent["type"], sent["source"]["media_type"]) == ("image", media_type)

    @pytest.mark.parametrize(
        ("small", "large"), [((200, 100), (1000, 800)), ((300, 300), (4000, 3000))]
    )
    def test_image_tokens_are_exact(
        self, stub: Stub, small: tuple[int, int], large: tuple[int, int]
    ) -> None:
        """Two reads that differ in one image's size differ by the documented image tokens."""
        a = stub.Read(read(doc(image_bytes(*small, "PNG"), "image/png")), timeout=30)
        b = stub.Read(read(doc(image_bytes(*large, "PNG"), "image/png")), timeout=30)
        delta = files.image_tokens(*large) - files.image_tokens(*small)
        assert prompt_tokens(b.usage) - prompt_tokens(a.usage) == delta

    def test_page_tokens_are_exact(self, stub: Stub) -> None:
        """Each more page costs its text layer plus its picture."""
        one, three = pdf_bytes(INVOICE_TEXT, 1), pdf_bytes(INVOICE_TEXT, 3)
        a = stub.Read(read(doc(one, "application/pdf")), timeout=30)
        b = stub.Read(read(doc(three, "application/pdf")), timeout=30)
        page_text = PdfReader(io.BytesIO(one)).pages[0].extract_text()
        page = files.page_image_tokens(612, 792) + count_tokens(page_text)
        # The pages' texts are joined by a blank line; its characters count no token.
        assert prompt_tokens(b.usage) - prompt_tokens(a.usage) == 2 * page

    def test_estimate_bounds_the_count(self, stub: Stub, background: Any) -> None:
        """The reservation's low and high bounds hold the count the API reports."""
        from tiergate.calls import sizing
        from tiergate.ledger import PriceTable
        from tiergate.tasks import read as read_task

        facts = PriceTable.load().facts("claude-opus-4-7")
        for request in (
            read(doc(pdf_bytes(INVOICE_TEXT, 5), "application/pdf")),
            read(doc(image_bytes(3000, 2000, "JPEG"), "image/jpeg")),
        ):
            estimate = sizing.prompt_bounds(read_task.prompt(request), facts)
            counted = prompt_tokens(stub.Read(request, timeout=30).usage)
            assert estimate.low <= counted <= estimate.high

    def test_a_read_larger_than_other_rpcs_take(self, stub: Stub) -> None:
        """Read takes messages past the 4 MB other RPCs keep."""
        import os

        from PIL import Image

        noise = Image.frombytes("RGB", (1400, 1400), os.urandom(1400 * 1400 * 3))
        out = io.BytesIO()
        noise.save(out, format="PNG")
        assert out.tell() > 5 * 1024 * 1024
        reply = stub.Read(read(doc(out.getvalue(), "image/png")), timeout=60)
        assert reply.usage.billed_calls == 1
        with pytest.raises(grpc.RpcError) as caught:
            stub.Extract(
                pb.ExtractRequest(text="x" * (5 * 1024 * 1024), json_schema=SCHEMA), timeout=30
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


class TestRefusals:
    def test_bytes_must_match_the_media_type(self, stub: Stub, upstream: Upstream) -> None:
        png = image_bytes(20, 20, "PNG")
        found = refused(
            stub,
            read(doc(png, "image/png"), doc(png, "image/jpeg"), doc(b"hello", "application/pdf")),
            upstream,
        )
        assert found == [
            ("documents[1].data", "holds image/png, not the declared image/jpeg"),
            ("documents[2].data", "is not a PDF (no %PDF- header)"),
        ]

    def test_media_type_and_count(self, stub: Stub, upstream: Upstream) -> None:
        found = refused(stub, read(doc(b"x", "image/tiff")), upstream)
        assert found[0][0] == "documents[0].media_type"
        assert refused(stub, read(), upstream)[0][0] == "documents"

    def test_image_edge_at_8000(self, stub: Stub, upstream: Upstream) -> None:
        stub.Read(read(doc(image_bytes(8000, 2, "PNG"), "image/png")), timeout=30)
        found = refused(stub, read(doc(image_bytes(8001, 2, "PNG"), "image/png")), upstream)
        assert found == [("documents[0].data", "is 8001x2 pixels; at most 8000x8000")]

    def test_image_edge_at_2000_past_20_images(self, stub: Stub, upstream: Upstream) -> None:
        wide = image_bytes(2001, 2, "PNG")
        small = image_bytes(10, 10, "PNG")
        # 20 images: the 8000 px rule holds.
        stub.Read(read(doc(wide, "image/png"), *[doc(small, "image/png")] * 19), timeout=60)
        stub.Read(read(*[doc(image_bytes(2000, 2, "PNG"), "image/png")] * 21), timeout=60)
        found = refused(
            stub, read(doc(wide, "image/png"), *[doc(small, "image/png")] * 20), upstream
        )
        assert found == [
            (
                "documents[0].data",
                "is 2001x2 pixels; at most 2000x2000 (the limit when a request holds more than 20"
                " images)",
            )
        ]

    def test_at_most_100_images(self, stub: Stub, upstream: Upstream) -> None:
        small = doc(image_bytes(4, 4, "PNG"), "image/png")
        stub.Read(read(*[small] * 100), timeout=60)
        found = refused(stub, read(*[small] * 101), upstream)
        assert ("documents[100].data", "is image 101; a request takes at most 100") in found

    def test_encrypted_and_unreadable_pdfs(self, stub: Stub, upstream: Upstream) -> None:
        writer = PdfWriter(clone_from=io.BytesIO(pdf_bytes(INVOICE_TEXT)))
        writer.encrypt("secret")
        locked = io.BytesIO()
        writer.write(locked)
        broken = pdf_bytes(INVOICE_TEXT)[:200]
        found = refused(
            stub,
            read(doc(locked.getvalue(), "application/pdf"), doc(broken, "application/pdf")),
            upstream,
        )
        assert found == [
            ("documents[0].data", "is an encrypted or password-protected PDF"),
            ("documents[1].data", "is not a readable PDF"),
        ]

    def test_pages_at_the_model_limit(self, stub: Stub, upstream: Upstream) -> None:
        """600 pages on the 1M-window frontier model; the 601st is refused."""
        stub.Read(
            read(
                doc(pdf_bytes("p", 300), "application/pdf"),
                doc(pdf_bytes("p", 300), "application/pdf"),
            ),
            timeout=120,
        )
        found = refused(
            stub,
            read(
                doc(pdf_bytes("p", 300), "application/pdf"),
                doc(pdf_bytes("p", 301), "application/pdf"),
            ),
            upstream,
        )
        assert found == [
            (
                "documents[1].data",
                "brings the request to 601 PDF pages; the model takes at most 600",
            )
        ]


# Opus 4.5 retires on 2027-01-22: the service warns once at start-up, the SDK on every call.
@pytest.mark.filterwarnings("ignore:The model 'claude-opus-4-5' is deprecated")
def test_pages_on_a_200k_window_model(background: BackgroundLoop, upstream: Upstream) -> None:
    """On a 200K-window model (Opus 4.5 on the frontier tier) the limit is 100 pages."""
    app = start_app(background, upstream, frontier_model="claude-opus-4-5")
    channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
    try:
        stub = task_service_pb2_grpc.TaskServiceStub(channel)
        reply = stub.Read(read(doc(pdf_bytes("p", 100), "application/pdf")), timeout=60)
        assert reply.usage.model == "claude-opus-4-5"
        found = refused(stub, read(doc(pdf_bytes("p", 101), "application/pdf")), upstream)
    finally:
        channel.close()
        background.run(app.stop(grace=1))
    assert found == [
        ("documents[0].data", "brings the request to 101 PDF pages; the model takes at most 100")
    ]


@pytest.fixture(scope="module")
def small_upload(background: BackgroundLoop, upstream: Upstream) -> Iterator[Stub]:
    """A server whose provider takes requests of at most 1 MB (as on some clouds)."""
    app = start_app(background, upstream, upload_max_bytes=1024 * 1024)
    channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
    yield task_service_pb2_grpc.TaskServiceStub(channel)
    channel.close()
    background.run(app.stop(grace=1))


def test_request_size_limit_counts_base64(small_upload: Stub, upstream: Upstream) -> None:
    """700 KB of files pass; 500 KB + 300 KB cross 1 MB once base64-encoded (4/3)."""
    small_upload.Read(read(doc(padded(700_000), "application/pdf")), timeout=30)
    found = refused(
        small_upload,
        read(doc(padded(500_000), "application/pdf"), doc(padded(300_000), "application/pdf")),
        upstream,
    )
    assert found[0][0] == "documents[1].data"
    assert "the provider takes at most 1048576" in found[0][1]


def padded(size: int) -> bytes:
    """A valid one-page PDF of ``size`` bytes: a PDF comment of spaces after its header line."""
    pdf = pdf_bytes(INVOICE_TEXT)
    head, _, rest = pdf.partition(b"\n")
    filler = b"%" + b" " * (size - len(pdf) - 2) + b"\n"
    data = head + b"\n" + filler + rest
    assert len(data) == size
    return data


def test_an_identical_read_is_served_by_the_response_cache(
    background: BackgroundLoop, upstream: Upstream
) -> None:
    """Read is cacheable: the same files and schema again cost no second upstream call."""
    app = start_app(background, upstream, response_cache_ttl_s=60.0)
    channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
    try:
        stub = task_service_pb2_grpc.TaskServiceStub(channel)
        request = read(doc((EXAMPLES / "receipt.png").read_bytes(), "image/png", "receipt.png"))
        first = stub.Read(request, timeout=30)
        calls = len(upstream.requests)
        second = stub.Read(request, timeout=30)
        other = read(doc(image_bytes(240, 141, "PNG", RECEIPT_LINES), "image/png", "receipt.png"))
        stub.Read(other, timeout=30)
    finally:
        channel.close()
        background.run(app.stop(grace=1))
    assert first.usage.billed_calls == 1
    assert second.data == first.data
    assert second.usage.billed_calls == 0
    # One more pixel row is another file: it reaches the model.
    assert len(upstream.requests) == calls + 1


def test_the_same_files_are_read_from_the_prompt_cache_per_schema(
    stub: Stub, upstream: Upstream
) -> None:
    """Files with a breakpoint after them: read again with the same schema, they come from the
    cache; with another schema (which heads the prefix) they are written again."""
    pages = doc(pdf_bytes(INVOICE_TEXT, 3), "application/pdf", "invoice.pdf")
    first = stub.Read(read(pages), timeout=30).usage
    again = stub.Read(read(pages), timeout=30).usage
    other = json.dumps({"type": "object", "properties": {"total": {"type": "number"}}})
    reshaped = stub.Read(read(pages, schema=other), timeout=30).usage
    assert first.cache_creation_5m_input_tokens > 3 * files.page_image_tokens(612, 792)
    assert again.cache_read_input_tokens == first.cache_creation_5m_input_tokens
    assert again.cost.total_nanos < first.cost.total_nanos
    assert reshaped.cache_read_input_tokens == 0
    assert reshaped.cache_creation_5m_input_tokens > 3 * files.page_image_tokens(612, 792)


def test_an_upload_limit_below_1_refuses_to_start() -> None:
    from tiergate.config import Settings

    with pytest.raises(ValueError, match="upload_max_bytes must be at least 1"):
        Settings(upload_max_bytes=0)
