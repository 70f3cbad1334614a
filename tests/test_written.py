"""A streamed answer's JSON read once as it arrives (tiergate.upstream.written): whole values
only in ``complete``, a top-level string growing by words, escapes and numbers cut anywhere by
a delta boundary, and text that stops being JSON."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tiergate.calls.partials import answer_view
from tiergate.upstream.written import Written
from tiergate.v1 import task_service_pb2 as pb


def fed(*pieces: str) -> Written:
    written = Written()
    for piece in pieces:
        written.feed(piece)
    return written


class TestWholeValues:
    def test_a_string_is_complete_once_its_closing_quote_is_written(self) -> None:
        written = fed('{"summary": "Refund the second', ' charge"')
        assert written.complete == {"summary": "Refund the second charge"}

    def test_a_number_is_held_until_something_ends_it(self) -> None:
        written = fed('{"answer": "Yes.", "cite": [1, 1')
        assert written.complete["cite"] == [1]
        written.feed("2")
        assert written.complete["cite"] == [1]
        written.feed("]")
        assert written.complete["cite"] == [1, 12]

    def test_a_list_grows_by_complete_items(self) -> None:
        written = fed('{"steps": ["Add the two.", "Then hal')
        assert written.complete == {"steps": ["Add the two."]}
        assert written.growing == {"steps": ["Add the two."]}  # only a top-level string grows

    def test_the_whole_answer_is_what_json_reads(self) -> None:
        document = {"summary": 'a "quoted" \\ word\nand é 😀', "key_points": ["x", "y"], "n": 2.5}
        text = json.dumps(document)
        written = fed(*text)  # a character a delta
        assert written.complete == document
        assert not written.broken


class TestGrowingText:
    def test_text_grows_up_to_its_last_space(self) -> None:
        written = fed('{"summary": "The customer was char')
        assert written.growing == {"summary": "The customer was "}
        assert written.complete == {}

    def test_a_key_being_written_is_no_value(self) -> None:
        written = fed('{"summary": "Done.", "key_po')
        assert written.growing == {"summary": "Done."}

    def test_an_escaped_quote_does_not_end_the_string(self) -> None:
        written = fed('{"answer": "She said \\', '"no\\" to it and lef')
        assert written.growing == {"answer": 'She said "no" to it and '}

    def test_an_escape_cut_by_a_delta_is_read_whole(self) -> None:
        written = fed('{"answer": "caf\\u00', "e9 au lait \\ud83d", "\\ude00 ok ")
        assert written.growing == {"answer": "café au lait 😀 ok "}

    def test_an_escaped_backslash_before_the_quote_ends_the_string(self) -> None:
        written = fed('{"answer": "a path C:\\\\', '", "cite": [')
        assert written.complete["answer"] == "a path C:\\"
        assert written.growing == {"answer": "a path C:\\", "cite": []}

    def test_a_string_inside_a_list_does_not_grow(self) -> None:
        written = fed('{"answer": "Yes.", "notes": ["one two thr')
        assert written.growing == {"answer": "Yes.", "notes": []}


class TestNotJson:
    def test_text_that_stops_being_json_reads_no_further(self) -> None:
        written = fed('{"summary": "ok then "')
        assert not written.feed("}}")  # yajl refuses the second brace
        assert written.broken
        assert not written.feed(', "more": "x"}')

    def test_a_bad_escape_in_growing_text_stops_the_reading(self) -> None:
        written = Written()
        assert not written.feed('{"summary": "bad \\x escape ')
        assert written.broken


class TestLoneSurrogates:
    """Half a surrogate pair is no text: no reply could carry it (protobuf strings are UTF-8)."""

    def test_an_escaped_one_in_growing_text_stops_the_reading(self) -> None:
        written = fed('{"summary": "ok ', "\\ud800 then more ")
        assert written.broken
        assert written.growing == {"summary": "ok "}

    def test_a_raw_one_in_a_delta_stops_the_reading(self) -> None:
        written = fed('{"summary": "ok", ', '"key_points": ["\ud800"]}')
        assert written.broken
        assert written.complete == {"summary": "ok"}


class TestCitations:
    def test_a_citation_goes_out_only_once_its_number_is_whole(self) -> None:
        """Sentence 1 must not go out while the model is writing 12."""
        request = pb.AnswerRequest(
            question="q",
            documents=[pb.Document(id="d", text=" ".join(f"S{n}." for n in range(1, 13)))],
        )
        written = fed('{"answer": "See the policy.", "cite": [1')
        shown = answer_view(request, written.growing, written.complete)
        assert shown is not None
        assert list(shown.citations) == []
        written.feed("2]}")
        shown = answer_view(request, written.growing, written.complete)
        assert shown is not None
        assert [c.quote for c in shown.citations] == ["S12."]


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_ANSWERS = st.fixed_dictionaries(
    {
        "summary": _TEXT,
        "key_points": st.lists(_TEXT, max_size=3),
        "cite": st.lists(st.integers(0, 10_000), max_size=4),
    }
)


@settings(max_examples=200, deadline=None)
@given(answer=_ANSWERS, cuts=st.lists(st.integers(0, 400), max_size=12), ascii_only=st.booleans())
def test_any_cutting_shows_only_prefixes_and_ends_with_the_answer(
    answer: dict[str, Any], cuts: list[int], ascii_only: bool
) -> None:
    text = json.dumps(answer, ensure_ascii=ascii_only)
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    written = Written()
    for start, end in itertools.pairwise(bounds):
        written.feed(text[start:end])
        growing, complete = written.growing, written.complete
        assert answer["summary"].startswith(growing.get("summary", ""))
        for key in ("key_points", "cite"):
            assert answer[key][: len(complete.get(key, []))] == complete.get(key, [])
    assert written.complete == answer
    assert not written.broken


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.text(st.characters(exclude_categories=[]), max_size=20), max_size=30))
def test_any_text_at_all_is_read_without_raising(pieces: list[str]) -> None:
    """Whatever an upstream streams (it is not always JSON, or even text: lone surrogates
    included), reading it never raises and the views are always objects: a stream that stops
    being JSON is the final check's to refuse."""
    written = Written()
    for piece in pieces:
        written.feed(piece)
        assert isinstance(written.growing, dict)
        assert isinstance(written.complete, dict)
