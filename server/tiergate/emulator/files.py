"""Image and document (PDF) content blocks, checked and counted as the Messages API does.

The bytes are decoded by Pillow (images: format and size from the header) and pypdf (PDFs:
structure, encryption, pages, text layer), never by a parser of our own. The rules, with their
sources in ``docs/api-fidelity.md``:

- sources are base64 (the only kind Bedrock and Vertex take; url and file sources need the
  network or the Files API, which the emulator has not);
- images are PNG, JPEG, GIF or WebP as declared, at most 8000x8000 px (2000x2000 px when the
  request holds more than 20 images), at most 100 per request;
- PDFs are readable and unencrypted, at most 100 pages per request on 200K-window models and
  600 on 1M-window ones;
- an image costs ``ceil(width * height / 750)`` tokens after the documented resize (long edge at
  most 1568 px, at most 1.2 megapixels); a PDF page costs the tokens of its text layer plus
  those of its picture at 100 dpi, resized the same way.

    >>> image_tokens(1000, 1000)
    1334
    >>> image_tokens(4000, 3000)  # scaled to 1264x948 first
    1598
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image
from pypdf import PdfReader

from .errors import ApiError, invalid_request
from .tokens import count_tokens

IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
MAX_IMAGES = 100
MAX_EDGE = 8000
MAX_EDGE_MANY = 2000
MANY_IMAGES = 20
MAX_PAGES_200K = 100
MAX_PAGES_1M = 600
RESIZE_LONG_EDGE = 1568
MAX_RESIZED_PIXELS = 1_200_000
PIXELS_PER_TOKEN = 750
PAGE_DPI = 100
MAX_REQUEST_BYTES = 32 * 1024 * 1024
"""The request-size limit of the standard endpoints (``413 request_too_large`` beyond)."""


def image_tokens(width: int, height: int) -> int:
    """Tokens of one image by the documented rule, after the documented resize."""
    scale = min(1.0, RESIZE_LONG_EDGE / max(width, height))
    scale = min(scale, math.sqrt(MAX_RESIZED_PIXELS / (width * height)))
    if scale < 1.0:
        width, height = max(1, int(width * scale)), max(1, int(height * scale))
    return math.ceil(width * height / PIXELS_PER_TOKEN)


@dataclass(frozen=True)
class FileBlock:
    """What one image or document block holds for counting and answering."""

    tokens: int
    text: str
    """A PDF's text layer ("" for images and PDFs without one)."""
    pages: int = 0
    size: tuple[int, int] | None = None


def is_file_block(block: dict[str, Any]) -> bool:
    source = block.get("source")
    return block.get("type") in ("image", "document") and not (
        isinstance(source, dict) and source.get("type") == "text"
    )


def _decoded(block: dict[str, Any], where: str) -> tuple[str, bytes]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise invalid_request(f"{where}.source: Field required")
    if source.get("type") != "base64":
        raise invalid_request(
            f"{where}.source.type: this emulator takes base64 sources only (got"
            f" {source.get('type')!r})"
        )
    media_type, data = source.get("media_type"), source.get("data")
    if not isinstance(media_type, str) or not isinstance(data, str):
        raise invalid_request(f"{where}.source: media_type and data are required")
    try:
        return media_type, base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid_request(f"{where}.source.data: invalid base64 data") from exc


def read_block(block: dict[str, Any], where: str) -> FileBlock:
    """Decode one block; a 400 ``invalid_request_error`` for anything the API refuses."""
    media_type, data = _decoded(block, where)
    if block["type"] == "image":
        return _image(media_type, data, where)
    if media_type != "application/pdf":
        raise invalid_request(
            f"{where}.source.media_type: Input should be 'application/pdf' (got {media_type!r})"
        )
    return _pdf(data, where)


def _image(media_type: str, data: bytes, where: str) -> FileBlock:
    expected = IMAGE_FORMATS.get(media_type)
    if expected is None:
        raise invalid_request(
            f"{where}.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif'"
            f" or 'image/webp' (got {media_type!r})"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS.values())) as image:
                found, size = image.format, image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise invalid_request(
            f"{where}.source.base64.data: image dimensions exceed max allowed size:"
            f" {MAX_EDGE} pixels"
        ) from exc
    except Exception as exc:  # hostile bytes: whatever the decoder raises means unreadable
        raise invalid_request(f"{where}.source.base64.data: Could not process image") from exc
    if found != expected:
        actual = next((t for t, f in IMAGE_FORMATS.items() if f == found), str(found))
        raise invalid_request(
            f"{where}.source.base64.data: The image was specified using the {media_type} media"
            f" type, but the image appears to be a {actual} image"
        )
    return FileBlock(image_tokens(*size), "", size=size)


def _pdf(data: bytes, where: str) -> FileBlock:
    try:
        if data.lstrip(b"\x00\t\n\f\r ")[:5] != b"%PDF-":
            raise ValueError("no header")
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise invalid_request(f"{where}.source: PDF documents must not be encrypted")
        pages = list(reader.pages)
        if not pages:
            raise ValueError("no pages")
        tokens, texts = 0, []
        for page in pages:
            width = max(1, round(float(page.mediabox.width) * PAGE_DPI / 72))
            height = max(1, round(float(page.mediabox.height) * PAGE_DPI / 72))
            try:
                text = page.extract_text() or ""
            except Exception:  # an unsupported or broken stream (NotImplementedError, ...)
                text = ""
            texts.append(text)
            tokens += image_tokens(width, height) + count_tokens(text)
    except ApiError:
        raise
    except Exception as exc:  # hostile bytes: pypdf raises more than PyPdfError
        raise invalid_request(f"{where}.source: The PDF specified was not valid.") from exc
    return FileBlock(tokens, "\n\n".join(texts), pages=len(pages))


def check_request(files: list[tuple[str, FileBlock]], context_window_tokens: int) -> None:
    """The rules over all of a request's files: image count, sizes and PDF pages."""
    images = [(where, f.size) for where, f in files if f.size is not None]
    if len(images) > MAX_IMAGES:
        raise invalid_request(f"messages: Too many images: at most {MAX_IMAGES} per request")
    edge = MAX_EDGE_MANY if len(images) > MANY_IMAGES else MAX_EDGE
    for where, (width, height) in images:
        if width > edge or height > edge:
            many = " for many-image requests" if edge == MAX_EDGE_MANY else ""
            raise invalid_request(
                f"{where}.source.base64.data: At least one of the image dimensions exceed max"
                f" allowed size{many}: {edge} pixels"
            )
    most = MAX_PAGES_1M if context_window_tokens >= 1_000_000 else MAX_PAGES_200K
    pages = sum(f.pages for _, f in files)
    if pages > most:
        raise invalid_request(f"messages: A maximum of {most} PDF pages may be provided.")
