"""What a streamed answer may show before it is complete: a task's response as far as written.

Each view takes the request and the output parsed so far twice (``growing``: the last string
possibly cut short; ``complete``: complete strings only) and returns the task's response
message without ``usage``, holding only what the final response will hold too:

- a text field grows by whole words (the word being written may still change), trimmed and
  cut at the task's limits exactly as the final response is;
- a list field grows by complete items: a summary's key points and action items, Reason's
  steps, Answer's citations (each a numbered sentence of the documents, written verbatim);
- Answer says ``answerable`` only once its answer has a word (a blank answer ends
  unanswerable); Reason's ``confidence`` and anything else that may be clamped or dropped at
  the end come with the final response only.

:class:`Progress` sends a view only when it extends the last one sent, so nothing a caller
saw is ever taken back by a later partial.

    >>> view = PARTIALS["Reason"]
    >>> view(pb.ReasonRequest(question="q"), {"steps": ["a", "b"]}, {"steps": ["a"]}).steps
    ['a']
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tiergate.calls.prompt import JsonObject
from tiergate.tasks import answer, summarize
from tiergate.v1 import task_service_pb2 as pb

View = Callable[[Any, JsonObject, JsonObject], Message | None]

_LAST_WORD = re.compile(r"\S*\Z")


def settled_text(growing: JsonObject, complete: JsonObject, key: str) -> str:
    """The text of ``key`` as far as it can no longer change: whole, or up to its last word."""
    done = complete.get(key)
    if isinstance(done, str):
        return done.strip()
    text = growing.get(key)
    if not isinstance(text, str):
        return ""
    return text[: _LAST_WORD.search(text).start()].strip()  # type: ignore[union-attr]


def _items(complete: JsonObject, key: str) -> list[str]:
    found = complete.get(key)
    if not isinstance(found, list):
        return []
    return [item.strip() for item in found if isinstance(item, str) and item.strip()]


def summarize_view(
    request: pb.SummarizeRequest, growing: JsonObject, complete: JsonObject
) -> pb.SummarizeResponse:
    text = settled_text(growing, complete, "summary")
    if text and summarize._FORMATS[request.format] == "bullets":
        lines = [line.strip() for line in text.split("\n") if line.strip()]
        if not isinstance(complete.get("summary"), str):
            lines = lines[:-1]  # the line being written may still turn into something else
        # Only lines that are bullets already stay as they are in the final response.
        text = "\n".join(lines) if all(line.startswith("- ") for line in lines) else ""
    return pb.SummarizeResponse(
        summary=summarize._cut(text, summarize._max_words(request)) if text else "",
        key_points=_items(complete, "key_points"),
        action_items=_items(complete, "action_items"),
    )


def answer_view(
    request: pb.AnswerRequest, growing: JsonObject, complete: JsonObject
) -> pb.AnswerResponse | None:
    text = settled_text(growing, complete, "answer")
    if not text:
        return None  # a blank answer ends unanswerable: nothing to show before it
    found = complete.get("cite")
    numbers = [n for n in (found if isinstance(found, list) else []) if type(n) is int]
    # The quotes are the numbered sentences themselves: verbatim by construction.
    return pb.AnswerResponse(answer=text, answerable=True, citations=answer.cited(request, numbers))


def reason_view(
    request: pb.ReasonRequest, growing: JsonObject, complete: JsonObject
) -> pb.ReasonResponse:
    return pb.ReasonResponse(
        steps=_items(complete, "steps"), answer=settled_text(growing, complete, "answer")
    )


PARTIALS: Mapping[str, View] = {
    "Summarize": summarize_view,
    "Answer": answer_view,
    "Reason": reason_view,
}
"""The tasks that stream, by RPC name."""


def extends(new: Message, old: Message) -> bool:
    """Whether ``new`` keeps everything ``old`` holds: text fields start with old's text,
    lists start with old's items, other fields are old's or still unset in old."""
    for field in new.DESCRIPTOR.fields:
        before, after = getattr(old, field.name), getattr(new, field.name)
        if field.is_repeated:
            if list(after[: len(before)]) != list(before):
                return False
        elif field.type == FieldDescriptor.TYPE_STRING:
            if not after.startswith(before):
                return False
        elif field.type != FieldDescriptor.TYPE_MESSAGE and before and after != before:
            return False
    return True


class Progress:
    """Turns a stream's parsed output into partial responses, each extending the last sent."""

    def __init__(
        self, view: View, request: Any, send: Callable[[Message], Awaitable[None]]
    ) -> None:
        self._view = view
        self._request = request
        self._send = send
        self.last: Message | None = None
        self.sent = 0

    async def __call__(self, growing: JsonObject, complete: JsonObject) -> bool:
        partial = self._view(self._request, growing, complete)
        if partial is None or partial == self.last or partial.ByteSize() == 0:
            return False
        if self.last is not None and not extends(partial, self.last):
            return False  # held back: it would take back what the caller saw
        self.last = partial
        self.sent += 1
        await self._send(partial)
        return True
