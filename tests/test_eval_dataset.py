"""Labelled data: good lines load with their line numbers; every bad line is reported, skipped."""

from __future__ import annotations

import io
import json
from pathlib import Path

from tiergate.evaluation.dataset import load, read
from tiergate.evaluation.scorers import scorer_for
from tiergate.tasks import TASKS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "eval"
LABELS = [{"name": "billing"}, {"name": "technical"}]


def line(text: str = "charged twice", expected: object = None) -> str:
    return json.dumps(
        {
            "request": {"text": text, "labels": LABELS},
            "expected": {"label": "billing"} if expected is None else expected,
        }
    )


def classify(data: str, max_line_bytes: int = 1 << 20) -> tuple[list[int], list[str]]:
    dataset = read(
        io.BytesIO(data.encode()),
        TASKS["Classify"],
        scorer_for("Classify"),
        max_line_bytes=max_line_bytes,
    )
    return [item.line for item in dataset.items], [str(bad) for bad in dataset.bad]


class TestBadLines:
    def test_each_kind_of_bad_line_is_reported_with_its_number(self) -> None:
        """Not JSON, not an object, missing or unknown keys, a bad request field, an invalid
        request, unusable expected fields: each is one report; the good lines still load."""
        lines = [
            line(),  # 1
            "{not json",  # 2
            "[1, 2]",  # 3
            json.dumps({"request": {"text": "x", "labels": LABELS}}),  # 4
            json.dumps({"request": {}, "expected": {}, "extra": 1}),  # 5
            json.dumps({"request": {"txt": "x"}, "expected": {"label": "billing"}}),  # 6
            line(text="   "),  # 7: the task's own validation rejects a blank text
            line(expected={"label": "shipping"}),  # 8
            "",  # 9: blank, ignored
            line(),  # 10
        ]
        good, bad = classify("\n".join(lines) + "\n")
        assert good == [1, 10]
        assert [b.split(":")[0] for b in bad] == [f"line {n}" for n in (2, 3, 4, 5, 6, 7, 8)]
        assert "not JSON" in bad[0]
        assert "request.text: must not be empty or blank" in bad[5]
        assert "'shipping' is not one of the request's labels" in bad[6]

    def test_an_overlong_line_is_skipped_without_reading_it_whole(self) -> None:
        """A line over the bound is one bad line; the next line keeps its own number."""
        long_line = line(text="x" * 5000)
        good, bad = classify(f"{line()}\n{long_line}\n{line()}\n", max_line_bytes=1000)
        assert good == [1, 3]
        assert bad == ["line 2: longer than 1000 bytes"]

    def test_last_line_without_newline_loads(self) -> None:
        """Files need not end with a newline."""
        assert classify(line()) == ([1], [])


class TestExamples:
    def test_example_sets_load_whole(self) -> None:
        """The shipped examples are clean: every line loads (tickets: 24, invoices: 12)."""
        tickets = load(EXAMPLES / "tickets.jsonl", TASKS["Classify"], scorer_for("Classify"))
        invoices = load(EXAMPLES / "invoices.jsonl", TASKS["Extract"], scorer_for("Extract"))
        assert (len(tickets.items), tickets.bad) == (24, [])
        assert (len(invoices.items), invoices.bad) == (12, [])
        labels = {item.expected.fields["label"] for item in tickets.items}
        assert labels == {"billing", "technical", "account", "shipping"}
