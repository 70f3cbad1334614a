"""Files a task sends the model (PDFs and images): checked by decoding them, and counted.

Bad input never reaches the model. Each file is opened by the library that reads its format
(Pillow for images, pypdf for PDFs), never by a parser of our own, and held to the Messages
API's documented rules (``docs/api-fidelity.md``):

- the bytes are of the declared media type (Pillow's or pypdf's own recognition of the magic
  numbers and structure: a PNG declared ``image/jpeg`` is refused);
- images at most 8000x8000 px, or 2000x2000 px when the request holds more than 20 images;
  at most 100 images;
- PDFs readable and unencrypted, with at most 100 pages on a 200K-window model and 600 on a
  1M-window one (all PDFs of the request together);
- the whole request, base64 as the API receives it, within the provider's request-size limit.

Decoding is bounded: Pillow reads only the header (``Image.open`` is lazy) and refuses
decompression bombs past :data:`MAX_IMAGE_PIXELS`; pypdf reads the page tree and, for the
text layer, at most the pages the model takes.

Tokens follow the documented rule: an image is first scaled down, keeping its aspect ratio,
until its long edge is at most 1568 px and it holds at most :data:`MAX_RESIZED_PIXELS`; it then
costs ``ceil(width * height / 750)`` tokens. A PDF page costs its text plus the image of the
page, rendered at :data:`PAGE_DPI` and resized the same way.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Final

from PIL import Image
from pypdf import PdfReader

from tiergate.calls.estimate import Bounds, bounds
from tiergate.errors import FieldViolation

IMAGE_FORMATS: Final = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}
"""Media types the API takes as images, with Pillow's name of the format."""
PDF = "application/pdf"
MEDIA_TYPES: Final = (PDF, *IMAGE_FORMATS)

MAX_IMAGES = 100
MAX_IMAGE_EDGE = 8000
MAX_IMAGE_EDGE_MANY = 2000
"""The edge limit when a request holds more than :data:`MANY_IMAGES` images."""
MANY_IMAGES = 20
PAGES_200K = 100
PAGES_1M = 600
PROVIDER_REQUEST_BYTES = 32 * 1024 * 1024
"""The Claude API's request-size limit (the ``TIERGATE_UPLOAD_MAX_BYTES`` default)."""
MAX_IMAGE_PIXELS = MAX_IMAGE_EDGE * MAX_IMAGE_EDGE
"""Pillow refuses more pixels than this as a decompression bomb: no valid image has more."""

RESIZE_LONG_EDGE = 1568
MAX_RESIZED_PIXELS = 1_200_000
"""About 1,600 tokens: the documented ceiling of one image after the resize."""
PIXELS_PER_TOKEN = 750
PAGE_DPI = 100
"""The resolution a PDF page is pictured at before the resize (a letter page: 850x1100 px)."""
BLOCK_TEXT_ALLOWANCE = 16
"""Tokens the API may add around one file block (its title, framing)."""

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def resized(width: int, height: int) -> tuple[int, int]:
    """The size the API scales an image to before counting it (aspect ratio kept)."""
    scale = min(1.0, RESIZE_LONG_EDGE / max(width, height))
    scale = min(scale, math.sqrt(MAX_RESIZED_PIXELS / (width * height)))
    if scale >= 1.0:
        return width, height
    return max(1, int(width * scale)), max(1, int(height * scale))


def image_tokens(width: int, height: int) -> int:
    """Tokens of an image of ``width`` x ``height`` px, by the documented rule."""
    w, h = resized(width, height)
    return math.ceil(w * h / PIXELS_PER_TOKEN)


def page_image_tokens(width_pt: float, height_pt: float) -> int:
    """Tokens of the picture of a PDF page of the given size in points (1/72 inch)."""
    width = max(1, round(width_pt * PAGE_DPI / 72))
    height = max(1, round(height_pt * PAGE_DPI / 72))
    return image_tokens(width, height)


def max_pdf_pages(context_window_tokens: int) -> int:
    """The pages a request may hold on a model with this context window."""
    return PAGES_1M if context_window_tokens >= 1_000_000 else PAGES_200K


def wire_bytes(data: bytes) -> int:
    """Bytes ``data`` takes in the request body, base64-encoded."""
    return 4 * math.ceil(len(data) / 3)


@dataclass(frozen=True)
class File:
    """One file as the model will see it."""

    media_type: str
    data: bytes
    name: str
    size: tuple[int, int] | None = None
    """An image's width and height in px."""
    pages: tuple[tuple[float, float], ...] = ()
    """A PDF's page sizes in points."""
    text: str = ""
    """A PDF's text layer, page by page."""

    @property
    def tokens(self) -> Bounds:
        """Token bounds of the file's block: image tokens exactly, a PDF's text by bounds."""
        if self.size is not None:
            exact = image_tokens(*self.size)
            return Bounds(exact, exact + BLOCK_TEXT_ALLOWANCE)
        images = sum(page_image_tokens(w, h) for w, h in self.pages)
        text = bounds(self.text) + bounds(self.name)
        return Bounds(images + text.low, images + text.high + BLOCK_TEXT_ALLOWANCE)


class Refusals:
    """Violations of one request's files, each naming ``documents[i].data`` and the rule."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.found: list[FieldViolation] = []

    def add(self, index: int, rule: str) -> None:
        self.found.append(FieldViolation(f"{self.field}[{index}].data", rule))


def open_file(
    index: int, data: bytes, media_type: str, name: str, refusals: Refusals
) -> File | None:
    """The file, decoded as far as its checks need; ``None`` (and a refusal) when unusable."""
    if not data:
        refusals.add(index, "must not be empty")
        return None
    if media_type == PDF:
        return _open_pdf(index, data, name, refusals)
    return _open_image(index, data, media_type, name, refusals)


def _open_image(
    index: int, data: bytes, media_type: str, name: str, refusals: Refusals
) -> File | None:
    expected = IMAGE_FORMATS[media_type]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS.values())) as image:
                found, size = image.format, image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        refusals.add(index, f"is larger than {MAX_IMAGE_EDGE}x{MAX_IMAGE_EDGE} pixels")
        return None
    except Exception:  # hostile bytes: whatever the decoder raises means unreadable
        refusals.add(index, f"is not a readable {media_type} image")
        return None
    if found != expected:
        actual = next((t for t, f in IMAGE_FORMATS.items() if f == found), found)
        refusals.add(index, f"holds {actual}, not the declared {media_type}")
        return None
    return File(media_type, data, name, size=size)


def _open_pdf(index: int, data: bytes, name: str, refusals: Refusals) -> File | None:
    if data.lstrip(b"\x00\t\n\f\r ")[:5] != b"%PDF-":
        # The header is how the format identifies itself; pypdf would search further.
        refusals.add(index, "is not a PDF (no %PDF- header)")
        return None
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            refusals.add(index, "is an encrypted or password-protected PDF")
            return None
        boxes = tuple((float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages)
    except Exception:  # hostile bytes: pypdf raises more than PyPdfError
        refusals.add(index, "is not a readable PDF")
        return None
    if not boxes:
        refusals.add(index, "is a PDF without pages")
        return None
    return File(PDF, data, name, pages=boxes, text="" if len(boxes) > PAGES_1M else _text(reader))


def _text(reader: PdfReader) -> str:
    pages = []
    for page in reader.pages:
        try:
            pages.append(page.extract_text() or "")
        except Exception:  # an unsupported or broken stream (NotImplementedError, ...)
            pages.append("")  # a page without a usable text layer is seen as its picture only
    return "\n\n".join(pages)


def check_limits(files: list[File | None], refusals: Refusals) -> None:
    """The rules over the request's files together: image count and sizes."""
    sizes = [(i, f.size) for i, f in enumerate(files) if f is not None and f.size is not None]
    if len(sizes) > MAX_IMAGES:
        refusals.add(
            sizes[MAX_IMAGES][0], f"is image {MAX_IMAGES + 1}; a request takes at most {MAX_IMAGES}"
        )
    edge = MAX_IMAGE_EDGE_MANY if len(sizes) > MANY_IMAGES else MAX_IMAGE_EDGE
    for i, (width, height) in sizes:
        if width > edge or height > edge:
            many = (
                f" (the limit when a request holds more than {MANY_IMAGES} images)"
                if edge == MAX_IMAGE_EDGE_MANY
                else ""
            )
            refusals.add(i, f"is {width}x{height} pixels; at most {edge}x{edge}{many}")


def check_model_limits(
    files: list[File],
    *,
    max_pages: int,
    max_request_bytes: int,
    other_bytes: int,
    refusals: Refusals,
) -> None:
    """The rules that depend on the model and the road: pages and the request's size."""
    pages = 0
    for i, file in enumerate(files):
        if file.pages:
            pages += len(file.pages)
            if pages > max_pages:
                refusals.add(
                    i,
                    f"brings the request to {pages} PDF pages; the model takes at most {max_pages}",
                )
                break
    size = other_bytes
    for i, file in enumerate(files):
        size += wire_bytes(file.data)
        if size > max_request_bytes:
            refusals.add(
                i,
                f"brings the request to {size} bytes base64-encoded; the provider takes at most"
                f" {max_request_bytes}",
            )
            break
