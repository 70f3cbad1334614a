"""A structured answer's JSON as the model writes it, read once as it arrives.

ijson's push parser (yajl, in C) takes each delta once and keeps its place between them; the
values it reports are whole (a string once its closing quote is written, a number once
something ends it), and ijson's own ``ObjectBuilder`` puts them together into ``complete``:
the answer as far as it is written, its lists holding their complete items.

A string still being written is the one thing a streamed answer shows before it is whole.
Where it opens is told by its quotes, counted past backslash escapes, and it goes to the parser
only once its closing quote is written (yajl would scan a string it holds again with every
delta); the parser's events up to it say what it is (the value of which key). ``growing`` adds
it, for a top-level key, as far as its last space: no JSON escape holds a space, so the text up
to one is a whole JSON string body, decoded by the standard library once. Nothing is read
twice::

    >>> written = Written()
    >>> written.feed('{"summary": "The quick brown')
    True
    >>> written.growing, written.complete
    ({'summary': 'The quick '}, {})
    >>> written.feed(' fox", "cite": [1, 1')
    True
    >>> written.complete  # 1 may yet be 12: a number is whole once something ends it
    {'summary': 'The quick brown fox', 'cite': [1]}
"""

from __future__ import annotations

import json
import re
from typing import Any

import ijson
from ijson.common import ObjectBuilder

from tiergate.calls.prompt import JsonObject

_QUOTE_OR_ESCAPE = re.compile(r'["\\]')


class Written:
    """One streamed answer's JSON, fed delta by delta (:meth:`feed`)."""

    def __init__(self) -> None:
        self._events: list[tuple[str, Any]] = ijson.sendable_list()
        self._parser = ijson.basic_parse_coro(self._events, use_float=True)
        self._builder = ObjectBuilder()
        self._depth = 0
        self._last_event = ""
        self._key: str | None = None
        self.broken = False
        """The text stopped being JSON: nothing more is read (the final check says why)."""
        # The string being written, if any: held back from the parser until it ends (yajl
        # would scan a string it holds again with every delta), its text decoded up to its
        # last space, the rest still raw; and whether a backslash inside it awaits its
        # escaped character.
        self._open = False
        self._escaped = False
        self._held: list[str] = []
        self._text: list[str] = []
        self._raw = ""

    @property
    def complete(self) -> JsonObject:
        """The answer as far as its values are whole (live: it grows with each feed)."""
        value = self._builder.value
        return value if isinstance(value, dict) else {}

    @property
    def growing(self) -> JsonObject:
        """:attr:`complete`, with a top-level string still being written as far as its last
        space."""
        if not (self._open and self._depth == 1 and self._last_event == "map_key"):
            return self.complete
        assert self._key is not None
        if len(self._text) > 1:
            self._text[:] = ["".join(self._text)]
        return {**self.complete, self._key: self._text[0] if self._text else ""}

    def feed(self, piece: str) -> bool:
        """Read the next delta; whether the answer as far as written may have changed."""
        if self.broken or not piece:
            return False
        ready, grew = self._split(piece)
        if not ready:
            return grew and not self.broken  # the parser reads an empty send as the end
        try:
            self._parser.send(ready.encode())
        except (ijson.JSONError, UnicodeEncodeError):  # a lone surrogate is no text either
            self.broken = True
            return False
        for event, value in self._events:
            self._builder.event(event, value)
            if event in ("start_map", "start_array"):
                self._depth += 1
            elif event in ("end_map", "end_array"):
                self._depth -= 1
            elif event == "map_key" and self._depth == 1:
                self._key = value
            self._last_event = event
        found = bool(self._events)
        del self._events[:]
        return (found or grew) and not self.broken

    def _split(self, piece: str) -> tuple[str, bool]:
        """What of ``piece`` the parser may read now (all but a string still open at its end,
        held until it ends), and whether that open string's text grew."""
        ready: list[str] = []
        start = 0
        at = 0
        while True:
            if self._escaped:
                if at >= len(piece):
                    break
                at += 1  # the escaped character, whatever it is, is no quote
                self._escaped = False
            mark = _QUOTE_OR_ESCAPE.search(piece, at)
            if mark is None:
                break
            at = mark.end()
            if mark.group() == "\\":
                self._escaped = self._open  # outside a string it is no JSON: the parser says so
            elif self._open:
                ready += [*self._held, piece[start:at]]
                self._open, self._held, start = False, [], at
            else:
                ready.append(piece[start:at])  # up to and with the opening quote
                self._open, self._text, self._raw, start = True, [], "", at
        rest = piece[start:]
        if not self._open:
            ready.append(rest)
            return "".join(ready), False
        self._held.append(rest)
        return "".join(ready), self._decode_words(rest)

    def _decode_words(self, new: str) -> bool:
        """Decode the open string's raw text up to its last space, if ``new`` brings one."""
        space = new.rfind(" ")
        if space < 0:
            self._raw += new
            return False
        # No JSON escape holds a space: up to one the raw text is a whole JSON string body.
        try:
            words = json.loads(f'"{self._raw}{new[: space + 1]}"')
            words.encode()  # an escaped lone surrogate (\ud800) decodes, but is no text
        except (ValueError, UnicodeEncodeError):
            self.broken = True
            return False
        self._text.append(words)
        self._raw = new[space + 1 :]
        return True
