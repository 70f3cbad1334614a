"""The emulator's image and document blocks, driven with the real SDK: each API rule refused at
its bound, and tokens counted by the documented rules."""

from __future__ import annotations

import base64
import io
import pathlib
import sys
from typing import Any

import anthropic
import pytest
from pypdf import PdfReader, PdfWriter

from tiergate.emulator.files import image_tokens
from tiergate.emulator.tokens import count_tokens

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
from make_examples import image_bytes, pdf_bytes

OPUS = "claude-opus-4-7"  # 1M window: 600 pages
HAIKU = "claude-haiku-4-5"  # 200K window: 100 pages


def image(data: bytes, media_type: str = "image/png") -> dict[str, Any]:
    source = {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()}
    return {"type": "image", "source": source}


def pdf(data: bytes) -> dict[str, Any]:
    encoded = base64.b64encode(data).decode()
    source = {"type": "base64", "media_type": "application/pdf", "data": encoded}
    return {"type": "document", "source": source}


def user(*blocks: dict[str, Any]) -> Any:
    """One user message: the blocks, then a question (typed loosely: the SDK's unions)."""
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": "What is shown?"}]}]


def ask(client: anthropic.Anthropic, *blocks: dict[str, Any], model: str = OPUS) -> Any:
    return client.messages.create(model=model, max_tokens=64, messages=user(*blocks))


def count(client: anthropic.Anthropic, *blocks: dict[str, Any]) -> int:
    counted = client.messages.count_tokens(model=OPUS, messages=user(*blocks))
    return int(counted.input_tokens)


def refused(client: anthropic.Anthropic, *blocks: dict[str, Any], model: str = OPUS) -> str:
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask(client, *blocks, model=model)
    return str(caught.value.message)


class TestImages:
    @pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
    def test_each_type_is_read_and_a_wrong_declaration_refused(
        self, client: anthropic.Anthropic, fmt: str
    ) -> None:
        data = image_bytes(64, 48, fmt)
        assert ask(client, image(data, f"image/{fmt.lower()}")).usage.input_tokens > 0
        wrong = "image/gif" if fmt != "GIF" else "image/png"
        assert "but the image appears to be" in refused(client, image(data, wrong))

    def test_edge_at_8000(self, client: anthropic.Anthropic) -> None:
        ask(client, image(image_bytes(8000, 2, "PNG")))
        assert "max allowed size: 8000 pixels" in refused(
            client, image(image_bytes(2, 8001, "PNG"))
        )

    def test_edge_at_2000_past_20_images(self, client: anthropic.Anthropic) -> None:
        small = image(image_bytes(4, 4, "PNG"))
        ask(client, image(image_bytes(2001, 2, "PNG")), *[small] * 19)
        message = refused(client, image(image_bytes(2001, 2, "PNG")), *[small] * 20)
        assert "for many-image requests: 2000 pixels" in message

    def test_at_most_100_images(self, client: anthropic.Anthropic) -> None:
        small = image(image_bytes(4, 4, "PNG"))
        ask(client, *[small] * 100)
        assert "Too many images" in refused(client, *[small] * 101)

    @pytest.mark.parametrize("size", [(200, 200), (1000, 1000), (1568, 700), (4000, 3000)])
    def test_tokens_by_the_documented_rule(
        self, client: anthropic.Anthropic, size: tuple[int, int]
    ) -> None:
        """Counted tokens grow by exactly the rule's image tokens (after the resize)."""
        base = count(client, image(image_bytes(1, 1, "PNG")))
        assert count(client, image(image_bytes(*size, "PNG"))) - base == image_tokens(*size) - 1


class TestPdfs:
    def test_page_tokens_are_text_plus_picture(self, client: anthropic.Anthropic) -> None:
        one, two = pdf_bytes("Total due: 40.50 USD", 1), pdf_bytes("Total due: 40.50 USD", 2)
        text = PdfReader(io.BytesIO(one)).pages[0].extract_text()
        page = image_tokens(850, 1100) + count_tokens(text)
        assert count(client, pdf(two)) - count(client, pdf(one)) == page

    def test_encrypted_and_broken_pdfs(self, client: anthropic.Anthropic) -> None:
        writer = PdfWriter(clone_from=io.BytesIO(pdf_bytes("secret")))
        writer.encrypt("pw")
        locked = io.BytesIO()
        writer.write(locked)
        assert "must not be encrypted" in refused(client, pdf(locked.getvalue()))
        assert "not valid" in refused(client, pdf(pdf_bytes("x")[:150]))

    def test_pages_per_model_window(self, client: anthropic.Anthropic) -> None:
        ask(client, pdf(pdf_bytes("p", 100)), model=HAIKU)
        assert "maximum of 100 PDF pages" in refused(client, pdf(pdf_bytes("p", 101)), model=HAIKU)
        ask(client, pdf(pdf_bytes("p", 600)))
        assert "maximum of 600 PDF pages" in refused(client, pdf(pdf_bytes("p", 601)))

    def test_the_answer_comes_from_the_text_layer(self, client: anthropic.Anthropic) -> None:
        text = "INVOICE INV-7731\nTotal due: 88.20 USD"
        schema: Any = {
            "type": "object",
            "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}},
            "required": ["invoice_number", "total"],
            "additionalProperties": False,
        }
        reply = client.messages.create(
            model=OPUS,
            max_tokens=256,
            messages=user(pdf(pdf_bytes(text))),
            output_config={"format": {"type": "json_schema", "schema": schema}},
        )
        answer = next(block.text for block in reply.content if block.type == "text")
        assert '"INV-7731"' in answer
        assert "88.2" in answer


def test_a_request_over_32_mb_is_413(client: anthropic.Anthropic) -> None:
    big = pdf(b"%PDF-1.4\n%" + b" " * (25 * 1024 * 1024))
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(client, big)
    assert caught.value.status_code == 413
