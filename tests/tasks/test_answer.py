"""Answer's own logic, in process, over hand-written model outputs."""

from __future__ import annotations

from task_io import USAGE, as_text, message, schema_errors, violations
from tiergate.calls.prompt import JsonObject
from tiergate.tasks import answer
from tiergate.upstream.model_client import _parse
from tiergate.v1 import task_service_pb2 as pb

DOCUMENTS = [
    pb.Document(id="refunds", title="Refund policy", text="Refunds take 14 days. XX marks."),
    pb.Document(id="security", text='Passwords use "Argon2".'),
]


def request(**fields: object) -> pb.AnswerRequest:
    base: dict[str, object] = {"question": "How long do refunds take?", "documents": DOCUMENTS}
    base.update(fields)
    return pb.AnswerRequest(**base)  # type: ignore[arg-type]  # fields typed by the proto


def documents(n: int) -> list[pb.Document]:
    return [pb.Document(id=f"d{i}", text="t") for i in range(n)]


def cite(document_id: str, quote: str) -> JsonObject:
    return {"document_id": document_id, "quote": quote}


def reply_to(citations: list[JsonObject], answer_text: str = "14 days.") -> pb.AnswerResponse:
    output = {"answerable": True, "answer": answer_text, "citations": citations}
    return answer.respond(request(), output, USAGE)


def pairs(reply: pb.AnswerResponse) -> list[tuple[str, str]]:
    return [(c.document_id, c.quote) for c in reply.citations]


class TestValidate:
    def test_limits_are_inclusive(self) -> None:
        """One or 100 documents, 128-character ids and 500-character titles are valid."""
        answer.validate(request(documents=documents(1)))
        answer.validate(request(documents=documents(100)))
        answer.validate(
            request(
                question="q" * 800_000,
                documents=[pb.Document(id="i" * 128, title="t" * 500, text="x")],
            )
        )

    def test_question_must_be_non_blank_and_bounded(self) -> None:
        """A blank or overlong question is refused by name."""
        assert violations(answer.validate, request(question="  ")) == {
            "question": "must not be empty or blank"
        }
        assert violations(answer.validate, request(question="q" * 800_001)) == {
            "question": "must be at most 800000 characters (got 800001)"
        }

    def test_document_count_is_bounded(self) -> None:
        """From 1 to 100 documents."""
        assert violations(answer.validate, request(documents=[])) == {
            "documents": "needs at least 1 entry (got 0)"
        }
        assert violations(answer.validate, request(documents=documents(101))) == {
            "documents": "allows at most 100 entries (got 101)"
        }

    def test_each_document_is_checked_with_its_index(self) -> None:
        """Blank or long ids, long titles and blank texts are named by index."""
        bad = [
            pb.Document(id=" ", text="t"),
            pb.Document(id="i" * 129, text="t"),
            pb.Document(id="c", title="t" * 501, text="t"),
            pb.Document(id="d", text="\n"),
        ]
        assert violations(answer.validate, request(documents=bad)) == {
            "documents[0].id": "must not be empty or blank",
            "documents[1].id": "must be at most 128 characters (got 129)",
            "documents[2].title": "must be at most 500 characters (got 501)",
            "documents[3].text": "must not be empty or blank",
        }

    def test_duplicate_ids_are_refused(self) -> None:
        """Citations name documents by id, so ids are unique."""
        bad = [pb.Document(id="a", text="t"), pb.Document(id="a", text="u")]
        assert violations(answer.validate, request(documents=bad)) == {
            "documents[1].id": "duplicates documents[0].id"
        }


class TestPrompt:
    def test_documents_are_the_cached_context(self) -> None:
        """Documents in the caller's order, text unescaped; the question comes alone."""
        prompt = answer.prompt(request())
        assert prompt.instructions == answer.INSTRUCTIONS
        assert prompt.context == (
            "<documents>\n"
            '<document id="refunds" title="Refund policy">Refunds take 14 days. XX marks.'
            "</document>\n"
            '<document id="security" title="">Passwords use "Argon2".</document>\n'
            "</documents>",
        )
        assert prompt.request == "How long do refunds take?"
        assert prompt.max_tokens == 1024

    def test_output_schema(self) -> None:
        """Citations name a request document by enum and quote non-blank text."""
        assert answer.prompt(request()).output_schema == {
            "type": "object",
            "properties": {
                "answerable": {"type": "boolean"},
                "answer": {"type": "string"},
                "citations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "document_id": {"type": "string", "enum": ["refunds", "security"]},
                            "quote": {"type": "string", "pattern": r"\S"},
                        },
                        "required": ["document_id", "quote"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["answerable", "answer", "citations"],
            "additionalProperties": False,
        }


class TestOutputSchema:
    def test_foreign_document_and_blank_quote_break_the_schema(self) -> None:
        """A citation of a document not in the request, or of whitespace, fails the schema."""
        schema = answer.prompt(request()).output_schema
        output = {
            "answerable": True,
            "answer": "x",
            "citations": [cite("faq", "Refunds"), cite("refunds", " \t")],
        }
        assert schema_errors(schema, output) == [
            "$.citations[0].document_id",
            "$.citations[1].quote",
        ]

    def test_a_non_verbatim_quote_is_schema_valid_and_not_re_asked(self) -> None:
        """Verbatim quoting is the one thing no schema says: it is verified in the response."""
        output = {"answerable": True, "answer": "x", "citations": [cite("refunds", "invented")]}
        schema = answer.prompt(request()).output_schema
        assert answer.TASK.check(request(), output) == []
        assert _parse(message(as_text(output)), schema, lambda _: []) == output


class TestRespond:
    def test_verbatim_quotes_are_kept(self) -> None:
        """A quote found in the document it names is returned, with the trimmed answer."""
        reply = reply_to([cite("refunds", "Refunds take 14 days.")], " 14 days. ")
        assert reply.answerable
        assert reply.answer == "14 days."
        assert pairs(reply) == [("refunds", "Refunds take 14 days.")]
        assert reply.usage == USAGE

    def test_non_verbatim_quotes_are_dropped(self) -> None:
        """A paraphrase, a changed case or a quote from another document is dropped."""
        reply = reply_to(
            [
                cite("refunds", "Refunds take two weeks."),
                cite("refunds", "refunds take 14 days."),
                cite("security", "Refunds take 14 days."),
                cite("security", "Argon2"),
            ]
        )
        assert pairs(reply) == [("security", "Argon2")]

    def test_duplicate_quotes_are_kept_once(self) -> None:
        """The same quote of the same document, even padded differently, appears once."""
        reply = reply_to(
            [cite("refunds", "14 days"), cite("refunds", " 14 days\n"), cite("security", "use")]
        )
        assert pairs(reply) == [("refunds", "14 days"), ("security", "use")]

    def test_same_quote_in_two_documents_is_two_citations(self) -> None:
        """Deduplication is per document: the pair, not the quote, is the key."""
        reply = reply_to([cite("refunds", "s"), cite("security", "s")])
        assert pairs(reply) == [("refunds", "s"), ("security", "s")]

    def test_quotes_are_trimmed_and_blank_ones_dropped(self) -> None:
        """Surrounding whitespace is not part of a quote; a whitespace quote cites nothing."""
        reply = reply_to([cite("refunds", "  14 days  "), cite("refunds", "   ")])
        assert pairs(reply) == [("refunds", "14 days")]

    def test_unknown_document_ids_are_dropped(self) -> None:
        """A citation of a document the request does not hold is never returned."""
        reply = reply_to([cite("faq", "XX"), cite("", "Refunds")])
        assert pairs(reply) == []

    def test_unanswerable_has_no_answer_and_no_citations(self) -> None:
        """answerable false: empty answer, no citations, whatever the model wrote."""
        output = {
            "answerable": False,
            "answer": "Maybe 14 days.",
            "citations": [cite("refunds", "Refunds take 14 days.")],
        }
        reply = answer.respond(request(), output, USAGE)
        assert not reply.answerable
        assert reply.answer == ""
        assert list(reply.citations) == []
        assert reply.usage == USAGE

    def test_blank_answer_is_unanswerable(self) -> None:
        """An "answerable" output with a blank answer says nothing: it is unanswerable."""
        reply = reply_to([cite("refunds", "Refunds take 14 days.")], "  \n")
        assert not reply.answerable
        assert reply.answer == ""
        assert list(reply.citations) == []
