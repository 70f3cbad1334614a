"""Labelled data: one JSON object a line, ``{"request": {...}, "expected": {...}}``.

``request`` is the task's request in proto JSON; ``expected`` holds the response fields to score.
A line that is not usable (not JSON, a request the task would reject, expected fields the scorer
cannot use, too long) is reported with its line number and skipped; the rest still run. Lines
are read with a bound, so a huge file line costs no more memory than the bound.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from google.protobuf import json_format
from google.protobuf.message import Message

from tiergate import errors
from tiergate.evaluation.scorers import Expected, Scorer
from tiergate.tasks import Task

DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Item:
    """One labelled request."""

    line: int
    request: Message
    expected: Expected


@dataclass(frozen=True)
class BadLine:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


@dataclass(frozen=True)
class Dataset:
    items: list[Item]
    bad: list[BadLine]


def load(
    path: Path,
    task: Task[Any, Any],
    scorer: Scorer,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Dataset:
    """Every usable item of ``path`` and every bad line; raises OSError when it cannot be read."""
    with path.open("rb") as stream:
        return read(stream, task, scorer, max_line_bytes=max_line_bytes)


def read(
    stream: IO[bytes],
    task: Task[Any, Any],
    scorer: Scorer,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Dataset:
    items: list[Item] = []
    bad: list[BadLine] = []
    for number, raw in _lines(stream, max_line_bytes):
        if raw is None:
            bad.append(BadLine(number, f"longer than {max_line_bytes} bytes"))
            continue
        if not raw.strip():
            continue  # blank lines separate nothing and mean nothing
        parsed = parse_line(raw, task, scorer)
        if isinstance(parsed, str):
            bad.append(BadLine(number, parsed))
        else:
            request, expected = parsed
            items.append(Item(number, request, expected))
    return Dataset(items, bad)


def parse_line(raw: bytes, task: Task[Any, Any], scorer: Scorer) -> tuple[Message, Expected] | str:
    """The line's request (valid for ``task``) and expected fields, or what is wrong."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        return f"not JSON ({getattr(exc, 'msg', type(exc).__name__)})"
    if not isinstance(data, dict):
        return "not a JSON object"
    unknown = sorted(set(data) - {"request", "expected"})
    if unknown:
        return f"unknown keys {unknown}; a line has request and expected"
    if "request" not in data or "expected" not in data:
        return "a line needs both request and expected"
    request_type: type[Message] = task.request_type
    try:
        request = json_format.ParseDict(data["request"], request_type())
    except (json_format.ParseError, TypeError, AttributeError) as exc:
        return f"request: {exc}"
    try:
        # The server's own validation: a request it would reject never reaches a model.
        task.validate(request)
    except errors.InvalidRequest as exc:
        return "; ".join(f"request.{v.field}: {v.description}" for v in exc.violations)
    expected = scorer.expected(request, data["expected"])
    if isinstance(expected, list):
        return "; ".join(expected)
    return request, expected


def _lines(stream: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per line; None for a line over ``limit``, whose rest is skipped."""
    number = 0
    while True:
        chunk = stream.readline(limit + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > limit and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(limit + 1)
            yield number, None
            continue
        yield number, chunk
