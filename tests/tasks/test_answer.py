"""Answer's own logic, in process, over hand-written model outputs."""

from __future__ import annotations

import pytest

from task_io import USAGE, as_text, message, schema_errors, violations
from tiergate.calls.prompt import JsonObject
from tiergate.tasks import answer
from tiergate.upstream.output import BadOutput, parse_output
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


def reply_to(cite: list[int], answer_text: str = "14 days.") -> pb.AnswerResponse:
    return answer.respond(request(), {"answer": answer_text, "cite": cite}, USAGE)


def pairs(reply: pb.AnswerResponse) -> list[tuple[str, str]]:
    return [(c.document_id, c.quote) for c in reply.citations]


def read(text: str) -> JsonObject:
    """A bare answer through the model client's parsing, as a call would read it."""
    prompt = answer.prompt(request())
    return parse_output(
        message(text), prompt.output_schema, lambda _: [], prompt.bare_key, prompt.bare_reading
    )


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
        """Documents in the caller's order, each under its title (or id), sentences numbered
        across documents; the question comes alone; no schema is sent."""
        prompt = answer.prompt(request())
        assert prompt.instructions == answer.INSTRUCTIONS
        assert prompt.context == (
            "Documents:\nRefund policy\n1. Refunds take 14 days.\n2. XX marks.\n"
            'security\n3. Passwords use "Argon2".',
        )
        assert prompt.request == "How long do refunds take?"
        assert prompt.max_tokens == 1024
        assert prompt.bare_key == "answer"
        fallback = prompt.fallback
        assert fallback is not None
        assert fallback.bare_key is None
        assert fallback.instructions == answer.JSON_INSTRUCTIONS
        assert (fallback.context, fallback.output_schema) == (prompt.context, prompt.output_schema)

    def test_a_sentence_across_lines_is_one_numbered_line(self) -> None:
        """Line breaks end a sentence; runs of spaces inside one are shown as one."""
        documents = [pb.Document(id="a", text="One  two.\nThree\n\nFour? Five!")]
        assert answer.prompt(request(documents=documents)).context == (
            "Documents:\na\n1. One two.\n2. Three\n3. Four?\n4. Five!",
        )

    def test_output_schema(self) -> None:
        """cite holds sentence numbers from an enum of the prompt's numbers."""
        assert answer.prompt(request()).output_schema == {
            "type": "object",
            "properties": {
                "answer": {"type": "string"},
                "cite": {"type": "array", "items": {"type": "integer", "enum": [1, 2, 3]}},
            },
            "required": ["answer", "cite"],
            "additionalProperties": False,
        }


class TestOutputSchema:
    def test_a_number_that_is_no_sentence_breaks_the_schema(self) -> None:
        """A citation of sentence 0 or 4 (of 3), or a quote instead of a number, fails."""
        schema = answer.prompt(request()).output_schema
        assert schema_errors(schema, {"answer": "x", "cite": [0]}) == ["$.cite[0]"]
        assert schema_errors(schema, {"answer": "x", "cite": [4]}) == ["$.cite[0]"]
        assert set(schema_errors(schema, {"answer": "x", "cite": ["Refunds"]})) == {"$.cite[0]"}

    def test_a_schema_valid_output_is_never_re_asked(self) -> None:
        """Answer has no check beyond its schema: quotes are the server's to write."""
        output = {"answer": "14 days.", "cite": [1]}
        schema = answer.prompt(request()).output_schema
        assert answer.TASK.check(request(), output) == []
        assert parse_output(message(as_text(output)), schema, lambda _: []) == output


class TestBareAnswer:
    """The default: the answer with bracketed numbers, read as a person would read it."""

    @pytest.mark.parametrize(
        ("text", "output"),
        [
            ("Refunds take 14 days. [1]", {"answer": "Refunds take 14 days.", "cite": [1]}),
            ("14 days [1][2].", {"answer": "14 days .", "cite": [1, 2]}),
            ("14 days [1, 3]", {"answer": "14 days", "cite": [1, 3]}),
            ("Argon2 [3]\n", {"answer": "Argon2", "cite": [3]}),
            ("14 days.", {"answer": "14 days.", "cite": []}),
            ("unknown", {"answer": "", "cite": []}),
            ("**Unknown.**", {"answer": "", "cite": []}),
            ("The documents do not say.", {"answer": "", "cite": []}),
            ("This is not mentioned in the documents.", {"answer": "", "cite": []}),
            (
                "Refunds do not take longer than 14 days. [1]",
                {"answer": "Refunds do not take longer than 14 days.", "cite": [1]},
            ),
            ('{"answer": "14 days.", "cite": [1]}', {"answer": "14 days.", "cite": [1]}),
        ],
    )
    def test_answer_forms(self, text: str, output: JsonObject) -> None:
        assert read(text) == output

    def test_a_number_that_is_no_sentence_is_asked_again(self) -> None:
        """Citing sentence 9 of 3 breaks the schema: the call falls back to structured outputs."""
        with pytest.raises(BadOutput, match="schema"):
            read("14 days. [9]")


class TestRespond:
    def test_cited_sentences_are_written_verbatim(self) -> None:
        """Each cited number becomes its sentence, exactly as in its document."""
        reply = reply_to([3, 1], " 14 days. ")
        assert reply.answerable
        assert reply.answer == "14 days."
        assert pairs(reply) == [
            ("security", 'Passwords use "Argon2".'),
            ("refunds", "Refunds take 14 days."),
        ]
        assert reply.usage == USAGE
        texts = {d.id: d.text for d in DOCUMENTS}
        assert all(quote in texts[doc] for doc, quote in pairs(reply))

    def test_a_sentence_cited_twice_is_kept_once(self) -> None:
        """The model's order, each sentence once."""
        assert pairs(reply_to([2, 1, 2])) == [
            ("refunds", "XX marks."),
            ("refunds", "Refunds take 14 days."),
        ]

    def test_a_quote_keeps_its_document_text_exactly(self) -> None:
        """Whitespace inside a sentence is the document's, not the prompt's single space."""
        documents = [pb.Document(id="a", text="One  two.\nThree")]
        request_ = request(documents=documents)
        reply = answer.respond(request_, {"answer": "x", "cite": [1, 2]}, USAGE)
        assert pairs(reply) == [("a", "One  two."), ("a", "Three")]

    def test_blank_answer_is_unanswerable(self) -> None:
        """A blank answer says nothing: no answer and no citations, whatever was cited."""
        reply = reply_to([1], "  \n")
        assert not reply.answerable
        assert reply.answer == ""
        assert list(reply.citations) == []
        assert reply.usage == USAGE
