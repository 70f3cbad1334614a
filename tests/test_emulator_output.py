"""The emulator's structured output: schema-valid, input-aware heuristics (it is not a model)."""

from __future__ import annotations

import anthropic
import pytest
from emulator_calls import ask, obj, structured, text_of

DOCS = (
    '<document id="refunds" title="Refund policy">Shoes can be returned within 30 days. '
    "Refunds go back to the original card within 5 business days.</document>\n"
    '<document id="shipping" title="Shipping">Orders ship within 2 days. '
    "Express shipping costs $15.</document>"
)


class TestStructuredOutput:
    def test_every_supported_construct_yields_valid_json(self, client: anthropic.Anthropic) -> None:
        """object/array/string/integer/number/boolean/null, enum, const, anyOf, allOf, $ref."""
        schema = obj(
            {
                "kind": {"const": "ticket"},
                "priority": {"type": "integer"},
                "score": {"type": "number"},
                "urgent": {"type": "boolean"},
                "nothing": {"type": "null"},
                "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "maybe": {"type": ["string", "null"]},
                # allOf takes inline schemas only: the API refuses allOf combined with $ref.
                "merged": {"allOf": [obj({"label": {"type": "string"}})]},
                "items": {"type": "array", "items": {"$ref": "#/$defs/base"}},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
                "when": {"type": "string", "format": "date"},
            },
            **{"$defs": {"base": obj({"label": {"type": "string"}})}},
        )
        value = structured(client, schema)
        assert value["kind"] == "ticket"
        assert value["nothing"] is None
        assert 1 <= len(value["items"]) <= 3

    def test_enum_picks_the_value_overlapping_the_user_text(
        self, client: anthropic.Anthropic
    ) -> None:
        """A string enum takes the value sharing most words with the request; ties: first."""
        schema = obj({"category": {"enum": ["shipping_delay", "billing_error", "login_problem"]}})
        login = [{"role": "user", "content": "I cannot login; the login page shows a problem."}]
        assert structured(client, schema, messages=login)["category"] == "login_problem"
        unrelated = [{"role": "user", "content": "Hello."}]
        assert structured(client, schema, messages=unrelated)["category"] == "shipping_delay"

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("I love it, the fit is perfect.", "positive"),
            ("This is terrible, the zipper is broken.", "negative"),
            ("The package arrived on Tuesday.", "neutral"),
        ],
    )
    def test_sentiment_enum_reads_sentiment_terms(
        self, client: anthropic.Anthropic, text: str, expected: str
    ) -> None:
        """positive/negative follow built-in sentiment terms; neutral wins when none fire."""
        schema = obj({"sentiment": {"enum": ["positive", "negative", "neutral"]}})
        messages = [{"role": "user", "content": text}]
        assert structured(client, schema, messages=messages)["sentiment"] == expected

    def test_quote_is_verbatim_from_the_best_document(self, client: anthropic.Anthropic) -> None:
        """quote copies the best-overlapping document sentence; document_id names its document."""
        schema = obj(
            {
                "answerable": {"type": "boolean"},
                "answer": {"type": "string"},
                "quote": {"type": "string"},
                "document_id": {"type": "string"},
                "confidence": {"type": "number"},
            }
        )
        question = [{"role": "user", "content": "How much does express shipping cost?"}]
        value = structured(client, schema, system=DOCS, messages=question)
        assert value["quote"] == "Express shipping costs $15."
        assert value["quote"] in DOCS
        assert value["document_id"] == "shipping"
        assert value["answerable"] is True
        assert 0 < value["confidence"] <= 1
        off_topic = [{"role": "user", "content": "Who painted the Mona Lisa?"}]
        unanswerable = structured(client, schema, system=DOCS, messages=off_topic)
        assert unanswerable["answerable"] is False
        assert unanswerable["confidence"] < value["confidence"]

    def test_summary_and_action_items_come_from_the_request(
        self, client: anthropic.Anthropic
    ) -> None:
        """summary is the leading sentences; action_items only sentences with action cues."""
        notes = (
            "The launch moved to May. Budget is unchanged. Priya will update the roadmap. "
            "Send the deck to legal."
        )
        schema = obj(
            {
                "summary": {"type": "string"},
                "action_items": {"type": "array", "items": {"type": "string"}},
            }
        )
        value = structured(client, schema, messages=[{"role": "user", "content": notes}])
        assert value["summary"] == "The launch moved to May. Budget is unchanged."
        assert value["action_items"] == [
            "Priya will update the roadmap.",
            "Send the deck to legal.",
        ]

    def test_extracted_fields_use_values_from_the_text(self, client: anthropic.Anthropic) -> None:
        """email, date, amount, name, phone and url come from the user text; absent -> null."""
        text = (
            "Hi, this is Maria Gonzalez. I was charged $45.99 on 2025-03-14. "
            "Reach me at maria@example.com or +1 415 555 0100, see https://shop.example.com/o/7."
        )
        schema = obj(
            {
                "customer_name": {"type": "string"},
                "email": {"type": "string"},
                "order_date": {"type": "string"},
                "amount": {"type": "string"},
                "phone": {"type": "string"},
                "receipt_url": {"type": "string"},
            }
        )
        value = structured(client, schema, messages=[{"role": "user", "content": text}])
        assert value["customer_name"] == "Maria Gonzalez"
        assert value["email"] == "maria@example.com"
        assert value["order_date"] == "2025-03-14"
        assert value["amount"] == "$45.99"
        assert value["phone"] == "+1 415 555 0100"
        assert value["receipt_url"] == "https://shop.example.com/o/7"
        nullable = obj({"email": {"anyOf": [{"type": "string"}, {"type": "null"}]}})
        no_email = [{"role": "user", "content": "Call me tomorrow."}]
        assert structured(client, nullable, messages=no_email) == {"email": None}

    def test_flagged_follows_category_terms_and_descriptions(
        self, client: anthropic.Anthropic
    ) -> None:
        """flagged is true for categories whose terms (or context description) the text uses."""
        category = obj({"flagged": {"type": "boolean"}})
        schema = obj({"violence": category, "spam": category, "medical_advice": category})
        system = "Categories:\n- medical_advice: questions about medication dosage or symptoms"
        spam = [{"role": "user", "content": "Click here to claim your free prize!"}]
        value = structured(client, schema, system=system, messages=spam)
        assert value == {
            "violence": {"flagged": False},
            "spam": {"flagged": True},
            "medical_advice": {"flagged": False},
        }
        dosage = [{"role": "user", "content": "What dosage of ibuprofen is safe?"}]
        value = structured(client, schema, system=system, messages=dosage)
        assert value["medical_advice"] == {"flagged": True}
        assert value["spam"] == {"flagged": False}

    def test_array_of_category_verdicts_covers_every_category(
        self, client: anthropic.Anthropic
    ) -> None:
        """Verdict items keyed by a category enum: one per category, the text's first, flagged."""
        item = obj(
            {"category": {"enum": ["hate", "violence", "spam"]}, "flagged": {"type": "boolean"}}
        )
        schema = obj({"results": {"type": "array", "items": item}})
        threat = [{"role": "user", "content": "I will attack you with a weapon."}]
        value = structured(client, schema, messages=threat)
        assert value["results"] == [
            {"category": "violence", "flagged": True},
            {"category": "hate", "flagged": False},
            {"category": "spam", "flagged": False},
        ]

    def test_same_request_same_output(self, client: anthropic.Anthropic) -> None:
        """Output is deterministic: identical requests give identical text."""
        schema = obj({"summary": {"type": "string"}, "key_points": {"type": "array"}})
        config = {"format": {"type": "json_schema", "schema": schema}}
        texts = {text_of(ask(client, output_config=config, system=DOCS)) for _ in range(3)}
        assert len(texts) == 1
