"""The emulator's answers read as plausible: the README's tasks through the real server, and the
heuristics behind them over realistic and hostile texts (still heuristics, not a model)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from google.protobuf import json_format

from tiergate.emulator.arithmetic import solve
from tiergate.emulator.evidence import Evidence
from tiergate.emulator.fields import TextValues, iso_date
from tiergate.emulator.responder import respond
from tiergate.emulator.verdicts import Verdicts
from tiergate.emulator.words import prose_sentences
from tiergate.schema import compile_schema
from tiergate.tasks import answer as answer_task
from tiergate.tasks import moderate, reason
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
POLICY_LABELS = [
    pb.Label(name="billing", description="charges, refunds, invoices"),
    pb.Label(name="technical", description="errors, crashes, outages"),
    pb.Label(name="account", description="login, password, profile"),
]


def answer(schema: dict[str, Any], text: str, context: str = "") -> Any:
    """The emulator's structured answer, checked against the schema it was asked for."""
    output = respond(schema, Evidence(text, context, text), 10**9)
    assert output.text is not None
    value = json.loads(output.text)
    jsonschema.validate(value, schema)
    return value


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    names = list(properties) if required is None else required
    return {
        "type": "object",
        "properties": properties,
        "required": names,
        "additionalProperties": False,
    }


class TestReadmeTasks:
    def test_invoice_values_land_in_their_fields(self, stub: Stub) -> None:
        """The README's invoice: the id, email, date and total in their fields, and its two
        lines read whole (not the header lines with quantity -2041)."""
        request = pb.ExtractRequest(
            text=(EXAMPLES / "invoice.txt").read_text(),
            json_schema=(EXAMPLES / "invoice.schema.json").read_text(),
        )
        data = json_format.MessageToDict(stub.Extract(request, timeout=30).data)
        assert data == {
            "invoice_number": "INV-2041",
            "email": "ana@example.com",
            "date": "2026-11-02",
            "lines": [
                {"item": "Widget", "quantity": 3.0, "unit_price": 12.0},
                {"item": "Shipping", "quantity": 1.0, "unit_price": 4.5},
            ],
            "total": 40.5,
        }

    def test_threat_is_flagged_with_a_rationale_naming_it(self, stub: Stub) -> None:
        """An explicit threat is violence and harassment under the built-in policy; every
        rationale says what matched or what was looked for, never the text repeated."""
        text = "I will kill you and your family"
        reply = stub.Moderate(pb.ModerateRequest(text=text, include_rationale=True), timeout=30)
        verdicts = {v.name: v for v in reply.categories}
        assert reply.flagged
        assert {n for n, v in verdicts.items() if v.flagged} == {"violence", "harassment"}
        assert '"I will kill you"' in verdicts["violence"].rationale
        assert "threat" in verdicts["harassment"].rationale
        assert all(v.rationale != text for v in reply.categories)
        assert verdicts["spam"].rationale == "Not flagged: no spam terms in the text."

    def test_a_plain_ticket_flags_nothing(self, stub: Stub) -> None:
        """The README's crash report: nothing flagged, six different rationales."""
        text = (EXAMPLES / "tickets" / "export-crash.txt").read_text()
        reply = stub.Moderate(pb.ModerateRequest(text=text, include_rationale=True), timeout=30)
        assert not reply.flagged
        assert len({v.rationale for v in reply.categories}) == 6
        assert all(v.rationale.startswith("Not flagged") for v in reply.categories)

    def test_confidence_follows_the_evidence(self, stub: Stub) -> None:
        """A plainly positive review gets a high confidence; a text no label fits gets
        chance; the double charge is billing with a clear lead."""

        def classify(text: str, labels: list[pb.Label]) -> pb.ClassifyResponse:
            request = pb.ClassifyRequest(text=text, labels=labels, include_confidence=True)
            reply: pb.ClassifyResponse = stub.Classify(request, timeout=30)
            return reply

        sentiment = [pb.Label(name=n) for n in ("positive", "negative", "neutral")]
        review = "I love this blender. It works perfectly and I would recommend it."
        positive = classify(review, sentiment)
        assert positive.label == "positive"
        assert positive.confidence >= 0.8
        unrelated = classify("Lorem ipsum dolor.", [pb.Label(name="a"), pb.Label(name="b")])
        assert unrelated.confidence == pytest.approx(0.5)
        ticket = classify((EXAMPLES / "tickets" / "double-charge.txt").read_text(), POLICY_LABELS)
        assert ticket.label == "billing"
        assert 0.7 <= ticket.confidence <= 0.95

    def test_reason_works_the_arithmetic(self, stub: Stub) -> None:
        """The README's question gets 50 cents with its steps, not the question back."""
        question = "A ticket costs 0.05 cents; what do 1,000 tickets cost?"
        request = pb.ReasonRequest(
            question=question, context="Costs add up linearly per ticket.", include_confidence=True
        )
        reply = stub.Reason(request, timeout=30)
        assert reply.answer == "1,000 tickets cost 50 cents."
        assert reply.steps == [
            "One ticket: 0.05 cents.",
            "1,000 tickets: 1,000 \u00d7 0.05 cents = 50 cents.",
        ]
        assert reply.confidence == pytest.approx(0.9)

    def test_reason_without_figures_draws_on_the_context(self, stub: Stub) -> None:
        """No arithmetic: the context sentences bearing on the question, never the question;
        no context either: a plain statement that there is nothing to go on."""
        question = "Should we migrate the database before or after the release?"
        context = "The release is on March 14. The migration takes two days. Lunch is at noon."
        reply = stub.Reason(pb.ReasonRequest(question=question, context=context), timeout=30)
        assert reply.steps == ["The release is on March 14.", "The migration takes two days."]
        bare = stub.Reason(pb.ReasonRequest(question=question), timeout=30)
        assert bare.answer.startswith("Not enough to go on")
        assert question not in [bare.answer, *bare.steps]

    def test_summary_leaves_the_heading_out(self, stub: Stub) -> None:
        """A title line is not glued to the first sentence; wrapped lines are joined."""
        text = (
            "Q3 Release Notes\n\nThe export service now retries failed\nuploads. Reports load fast."
        )
        reply = stub.Summarize(pb.SummarizeRequest(text=text), timeout=30)
        assert reply.summary == "The export service now retries failed uploads. Reports load fast."


class TestExtraction:
    def test_values_are_chosen_by_their_labels(self) -> None:
        """Two dates, two emails, three amounts: each field takes the one its label names."""
        text = (
            "Order PO-7731 from shop@example.com\n"
            "Billed to: ana@example.com\n"
            "Issued: 2026-11-02\nDue date: 3 December 2026\n"
            "Subtotal: $36.00\nTax: $4.50\nTotal due: $40.50\n"
        )
        schema = obj(
            {
                "order_id": {"type": "string"},
                "billed_to": {"type": "string", "format": "email"},
                "issued": {"type": "string", "format": "date"},
                "due_date": {"type": "string", "format": "date"},
                "tax": {"type": "number"},
                "total": {"type": "number"},
                "amount_text": {"type": "string", "description": "the total due as written"},
            }
        )
        assert answer(schema, text) == {
            "order_id": "PO-7731",
            "billed_to": "ana@example.com",
            "issued": "2026-11-02",
            "due_date": "2026-12-03",
            "tax": 4.5,
            "total": 40.5,
            "amount_text": "$40.50",
        }

    def test_the_eval_invoices_come_out_as_expected(self) -> None:
        """Every invoice of examples/eval: vendor, id, total, currency and due date from
        one-line texts in several forms ("USD 89.99", "$15,400.00", "Fabrikam GmbH")."""
        for line in (EXAMPLES / "eval" / "invoices.jsonl").read_text().splitlines():
            item = json.loads(line)
            text, schema = item["request"]["text"], compile_schema(item["request"]["json_schema"])
            data = schema.decode(answer(schema.wire, text))
            assert data == item["expected"]["data"], text

    def test_optional_fields_the_text_lacks_are_left_out(self) -> None:
        """Nothing to extract for an optional phone or date: the property is absent."""
        schema = obj(
            {"email": {"type": "string"}, "phone": {"type": "string"}, "due": {"type": "string"}},
            required=["email"],
        )
        assert answer(schema, "Write to ana@example.com please.") == {"email": "ana@example.com"}

    @pytest.mark.parametrize(
        ("line", "item", "quantity", "price"),
        [
            ("3 x Widget at 12.00 each", "Widget", 3, 12.0),
            ("2 \u00d7 USB cable - $4.50", "USB cable", 2, 4.5),
            ("3 widgets at 10.50 EUR, total 31.50 EUR.", "widgets", 3, 10.5),
            ("Gift wrap x 2 @ 1.25", "Gift wrap", 2, 1.25),
        ],
    )
    def test_line_items_in_their_usual_forms(
        self, line: str, item: str, quantity: int, price: float
    ) -> None:
        """Quantity, name and unit price of an invoice line; a line total is their product."""
        row = obj(
            {
                "description": {"type": "string"},
                "qty": {"type": "integer"},
                "unit_price": {"type": "number"},
                "line_total": {"type": "number"},
            }
        )
        schema = obj({"items": {"type": "array", "items": row}})
        expected = {"description": item, "qty": quantity, "unit_price": price}
        assert answer(schema, f"Invoice\n{line}") == {
            "items": [{**expected, "line_total": round(quantity * price, 2)}]
        }

    def test_no_line_items_means_an_empty_list_unless_one_is_required(self) -> None:
        """A text without invoice lines: [] where allowed, one item where minItems is 1."""
        row = obj({"item": {"type": "string"}, "quantity": {"type": "integer"}})
        free = obj({"lines": {"type": "array", "items": row}})
        assert answer(free, "Thanks for your order.") == {"lines": []}
        least = obj({"lines": {"type": "array", "items": row, "minItems": 1}})
        assert len(answer(least, "Thanks for your order.")["lines"]) == 1

    def test_an_id_is_never_read_as_a_negative_number(self) -> None:
        """INV-2041 is an id; numeric fields skip it, dates and phones."""
        values = TextValues("INVOICE INV-2041 on 2026-11-02, call +1 415 555 0100. 7 boxes.")
        assert [f.text for f in values.found("id")] == ["INV-2041"]
        assert [f.text for f in values.found("number")] == ["7"]
        schema = obj({"invoice_number": {"type": "string"}, "boxes": {"type": "integer"}})
        text = "INVOICE INV-2041 on 2026-11-02. 7 boxes."
        assert answer(schema, text) == {"invoice_number": "INV-2041", "boxes": 7}

    def test_an_example_in_the_description_picks_the_id_of_its_shape(self) -> None:
        """Among several codes the one shaped like the description's example wins."""
        schema = obj({"ref": {"type": "string", "description": "the booking, e.g. BK-10023"}})
        text = "Error E4012 on booking BK-55310 for flight LH-441."
        assert answer(schema, text) == {"ref": "BK-55310"}

    @pytest.mark.parametrize(
        ("written", "iso"),
        [
            ("2026-11-02", "2026-11-02"),
            ("Nov 2, 2026", "2026-11-02"),
            ("2nd of November 2026", "2026-11-02"),
            ("25/12/2026", "2026-12-25"),
            ("03/04/2026", None),
            ("31/31/2026", None),
        ],
    )
    def test_dates_become_iso_only_when_unambiguous(self, written: str, iso: str | None) -> None:
        """A day and month that could swap are not guessed."""
        assert iso_date(written) == iso


class TestArithmetic:
    @pytest.mark.parametrize(
        ("question", "expected"),
        [
            ("What is 15% of 240?", Fraction(36)),
            ("What is 12 * (3 + 4)?", Fraction(84)),
            ("What is 7 plus 5 times 2?", Fraction(17)),
            ("Compute 2^10 - 24.", Fraction(1000)),
            ("What is 1 / 3 + 1?", Fraction(4, 3)),
            ("Tickets are $5 each. How much do 12 tickets cost?", Fraction(60)),
            ("A car goes 60 km per hour. How far does it go in 2.5 hours?", Fraction(150)),
            ("What is the average of 3, 5 and 10?", Fraction(6)),
            (
                "Ana has 12 apples and gives away 5, then buys 3 bags of 4. How many apples?",
                Fraction(19),
            ),
            ("Ana had 10 dollars, spent 3 and earned 4. How much does she have?", Fraction(11)),
        ],
    )
    def test_word_problems(self, question: str, expected: Fraction) -> None:
        """Expressions, percentages, unit rates, averages and running totals, exactly."""
        solved = solve(question)
        assert solved is not None
        assert solved.value == expected
        assert solved.steps
        assert all(step.strip() for step in solved.steps)

    @pytest.mark.parametrize(
        "question",
        [
            "What is __import__('os').system('id')?",
            "What is 9^9^9^9?",
            "What is 10^99999?",
            "What is 1/0?",
            "What is " + "(" * 50 + "1" + ")" * 50 + "+1?",
            "When is 2026-11-02?",
            "Should we ship on Friday?",
            "How many days from March 7 to March 14?",
        ],
    )
    def test_nothing_is_evaluated_or_guessed(self, question: str) -> None:
        """Code, huge powers, division by zero, deep nesting, dates and loose figures give no
        answer rather than a wrong, slow or dangerous one."""
        assert solve(question) is None

    def test_hostile_text_is_bounded(self) -> None:
        """A megabyte of figures and operators is cut to the first characters read."""
        assert solve("1+" * 500_000 + "1") is None  # too many figures: not a question
        assert solve("(" * 1_000_000) is None


class TestModeration:
    @pytest.mark.parametrize(
        ("text", "category", "flagged"),
        [
            ("Hello, the skill tree is great.", "profanity", False),
            ("Hello, the skill tree is great.", "violence", False),
            ("We freeze features on Friday.", "spam", False),
            ("They killed the process.", "violence", True),
            ("I'm going to find and hurt you.", "harassment", True),
            ("You're dead, watch your back.", "violence", True),
        ],
    )
    def test_terms_are_whole_words_and_threats_are_read(
        self, text: str, category: str, flagged: bool
    ) -> None:
        """``hell`` is not in ``hello``, ``kill`` not in ``skill``, ``free`` not in ``freeze``;
        a threat aimed at a person counts for violence and harassment."""
        assert Verdicts(text).verdict(category, "").flagged is flagged

    def test_a_custom_category_matches_its_description(self) -> None:
        """A category outside the built-in terms is flagged by distinctive words of its
        description, named in the rationale; a threat counts when the description says so."""
        verdicts = Verdicts("What dosage of ibuprofen is safe?")
        verdict = verdicts.verdict("medical_advice", "questions about medication dosage")
        assert verdict.flagged
        assert verdict.rationale == (
            'Flagged: the text mentions "dosage", as the policy\'s description of medical'
            " advice does."
        )
        threat = Verdicts("We will burn your shop").verdict("intimidation", "threats to owners")
        assert threat.flagged
        assert '"We will burn your"' in threat.rationale


class TestTexts:
    def test_headings_and_wrapping(self) -> None:
        """Titles, markdown headings and numbered section titles are not sentences; a lone
        line without a stop is kept (it is the text, not a title)."""
        text = (
            "# Notes\nSUPPORT POLICY\n\n1. General rules\n\nRead the ticket\nfirst. Then route it."
        )
        assert prose_sentences(text) == ["Read the ticket first.", "Then route it."]
        assert prose_sentences("I will kill you and your family") == [
            "I will kill you and your family"
        ]

    def test_answers_are_deterministic(self) -> None:
        """The same request gives the same bytes."""
        schema = obj({"summary": {"type": "string"}, "total": {"type": "number"}})
        text = (EXAMPLES / "invoice.txt").read_text()
        first = respond(schema, Evidence(text, "", text), 1000)
        assert first == respond(schema, Evidence(text, "", text), 1000)

    def test_hostile_inputs_stay_valid_and_bounded(self) -> None:
        """Long runs that make naive patterns backtrack, and a schema of 2,000 fields of every
        kind, still end in a schema-valid answer."""
        hostile = "\n".join(
            [
                "a-" * 50_000,
                "1," * 50_000,
                "Aaaa " * 20_000,
                "x" * 100_000 + "@",
                "http://" * 10_000,
                "3 x " * 20_000,
            ]
        )
        kinds = ["email", "total", "date", "invoice_number", "quantity", "name", "phone", "note"]
        types = ["string", "number", "integer", "string", "integer", "string", "string", "string"]
        properties: dict[str, Any] = {
            f"{kinds[i % len(kinds)]}_{i}": {"type": types[i % len(types)]} for i in range(2000)
        }
        properties["lines"] = {
            "type": "array",
            "items": obj({"item": {"type": "string"}, "quantity": {"type": "integer"}}),
        }
        value = answer(obj(properties, required=[]), hostile)
        assert isinstance(value, dict)


class TestBareShapes:
    """Asked without a schema, the emulator answers in the plain forms the tasks ask for, and
    each reads back through the task's own bare path in one call."""

    @staticmethod
    def plain(prompt: Any) -> str:
        context = "\n\n".join((prompt.instructions, *prompt.context))
        output = respond(None, Evidence(prompt.request, context, prompt.request), 10**9)
        assert output.text is not None
        return output.text

    def test_moderate_names_the_flagged_categories_or_none(self) -> None:
        """A threat names the built-in categories it falls under; a plain ticket is none."""
        threat = moderate.prompt(pb.ModerateRequest(text="I will kill you and your family"))
        assert self.plain(threat) == "harassment, violence"
        ticket = (EXAMPLES / "tickets" / "export-crash.txt").read_text()
        assert self.plain(moderate.prompt(pb.ModerateRequest(text=ticket))) == "none"

    def test_answer_cites_the_best_sentence_by_number(self) -> None:
        """The best sentence and its number in brackets; a question no sentence meets is
        unknown."""
        documents = [
            pb.Document(id="refunds", text="Refunds are issued within 14 days of a request."),
            pb.Document(id="security", text="Passwords are hashed with Argon2."),
        ]
        asked = answer_task.prompt(
            pb.AnswerRequest(question="How are passwords hashed?", documents=documents)
        )
        assert self.plain(asked) == "Passwords are hashed with Argon2. [2]"
        assert answer_task.read_answer(self.plain(asked)) == {
            "answer": "Passwords are hashed with Argon2.",
            "cite": [2],
        }
        unknown = answer_task.prompt(
            pb.AnswerRequest(question="Which database?", documents=documents)
        )
        assert self.plain(unknown) == "unknown"

    def test_answer_fallback_cites_numbers(self) -> None:
        """With the fallback's schema, cite holds the best sentence's number from the enum."""
        documents = [pb.Document(id="a", text="Seats are billed monthly. Refunds take 14 days.")]
        prompt = answer_task.prompt(
            pb.AnswerRequest(question="How long do refunds take?", documents=documents)
        )
        context = "\n\n".join((prompt.instructions, *prompt.context))
        value = respond(
            prompt.output_schema, Evidence(prompt.request, context, prompt.request), 10**9
        )
        assert value.text is not None
        assert json.loads(value.text) == {"answer": "Refunds take 14 days.", "cite": [2]}

    def test_reason_writes_steps_then_an_answer_line(self) -> None:
        """Worked steps a line each, then the Answer line the instructions ask for."""
        asked = reason.prompt(pb.ReasonRequest(question="What is 15% of 240?"))
        text = self.plain(asked)
        assert text.splitlines()[-1] == "Answer: 36"
        read = reason.read_reasoning(text)
        assert read["answer"] == "36"
        assert read["steps"]
