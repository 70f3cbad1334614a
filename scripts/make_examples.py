"""Write the example files Read takes: ``examples/invoice.pdf`` (one page, with a text layer,
from ``examples/invoice.txt``) and ``examples/receipt.png`` (a small receipt drawn as pixels).

Run with ``.venv/bin/python scripts/make_examples.py``; the files are small and committed, and
the same functions make the files the tests read (``tests/test_read.py``).
"""

from __future__ import annotations

import datetime
import io
import pathlib

from fpdf import FPDF
from PIL import Image, ImageDraw

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

RECEIPT_LINES = (
    "CORNER CAFE",
    "Receipt R-118",
    "Date: 2026-11-03",
    "2 x Coffee 3.20",
    "1 x Bagel 2.60",
    "Total: 9.00 EUR",
)


def pdf_bytes(text: str, pages: int = 1) -> bytes:
    """A PDF of ``pages`` letter pages, each with ``text`` as its text layer (deterministic)."""
    pdf = FPDF(format="letter")
    pdf.set_creation_date(datetime.datetime(2026, 11, 2, tzinfo=datetime.UTC))
    pdf.set_font("Helvetica", size=12)
    for _ in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 7, text)
    return bytes(pdf.output())


def image_bytes(width: int, height: int, fmt: str, lines: tuple[str, ...] = ()) -> bytes:
    """An image of ``width`` x ``height`` px in Pillow's ``fmt`` (PNG, JPEG, GIF, WEBP), with
    ``lines`` drawn on white."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((12, 12 + 18 * i), line, fill="black")
    out = io.BytesIO()
    image.save(out, format=fmt, **({"optimize": True} if fmt == "PNG" else {}))
    return out.getvalue()


def main() -> None:
    text = (EXAMPLES / "invoice.txt").read_text(encoding="utf-8")
    (EXAMPLES / "invoice.pdf").write_bytes(pdf_bytes(text))
    (EXAMPLES / "receipt.png").write_bytes(image_bytes(240, 140, "PNG", RECEIPT_LINES))
    for name in ("invoice.pdf", "receipt.png"):
        print(f"examples/{name}: {(EXAMPLES / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
