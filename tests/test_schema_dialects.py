"""Which dialect a caller's schema speaks, and the flattened 2020-12 metaschema judging every
document exactly as the official one does; in process."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tiergate.schema import dialects
from tiergate.schema.limits import SchemaRefused

OFFICIAL = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)

# One document per vocabulary rule, wrong and right, at the top and nested (where the
# metaschema's dynamic reference to its root does the work).
VALID: list[Any] = [
    {},
    True,
    {"type": ["object", "null"], "minProperties": 1, "maxProperties": 3},
    {"properties": {"a": {"type": "string", "minLength": 1, "format": "email"}}},
    {"$defs": {"d": {"type": "integer", "minimum": 0}}, "$ref": "#/$defs/d"},
    {"items": {"type": "number", "multipleOf": 0.5}, "prefixItems": [{"type": "string"}]},
    {"dependentRequired": {"a": ["b"]}, "dependentSchemas": {"a": {"required": ["c"]}}},
    {"unevaluatedProperties": False, "propertyNames": {"pattern": "^x"}},
    {"contentEncoding": "base64", "contentMediaType": "text/plain", "deprecated": True},
    {"$anchor": "here", "$comment": "c", "title": "t", "examples": [1]},
    {"anyOf": [{"const": 1}], "oneOf": [{"enum": [1, "a"]}], "not": {"type": "null"}},
    {"if": {"type": "string"}, "then": {"maxLength": 3}, "else": {"minimum": 2}},
]
INVALID: list[Any] = [
    3,
    {"type": 3},
    {"type": "text"},
    {"minLength": -1},
    {"maxItems": 1.5},
    {"required": ["a", "a"]},
    {"properties": []},
    {"properties": {"a": {"type": 3}}},
    {"properties": {"a": {"properties": {"b": {"minimum": "1"}}}}},
    {"$defs": {"d": {"enum": {}}}},
    {"items": {"uniqueItems": "yes"}},
    {"prefixItems": {}},
    {"prefixItems": [{"maxLength": -2}]},
    {"dependentRequired": {"a": [1]}},
    {"dependentSchemas": {"a": 3}},
    {"unevaluatedProperties": 1},
    {"propertyNames": {"minLength": "x"}},
    {"contentEncoding": 1},
    {"format": 1},
    {"deprecated": "x"},
    {"$anchor": "#bad"},
    {"$comment": 1},
    {"anyOf": []},
    {"anyOf": [{"type": 3}]},
    {"not": {"multipleOf": 0}},
    {"if": {"type": 3}},
    {"then": {"minContains": -1}},
    {"additionalProperties": {"exclusiveMinimum": "0"}},
    {"patternProperties": {"^a": {"pattern": 3}}},
    {"contains": {"maxContains": "2"}},
]


class TestFlatMetaschema:
    @pytest.mark.parametrize("document", VALID, ids=[str(d)[:40] for d in VALID])
    def test_what_the_official_metaschema_accepts_is_accepted(self, document: Any) -> None:
        """Valid documents of every vocabulary pass the flattened metaschema too."""
        assert OFFICIAL.is_valid(document)
        assert dialects._META["2020-12"].is_valid(document)

    @pytest.mark.parametrize("document", INVALID, ids=[str(d)[:40] for d in INVALID])
    def test_what_the_official_metaschema_refuses_is_refused(self, document: Any) -> None:
        """A wrong rule anywhere, at the top or nested, fails the flattened metaschema as it
        fails the official one."""
        assert not OFFICIAL.is_valid(document)
        assert not dialects._META["2020-12"].is_valid(document)

    def test_a_refusal_points_at_the_rule(self) -> None:
        """The refusal names the JSON pointer of the broken rule and the metaschema's rule."""
        with pytest.raises(SchemaRefused) as caught:
            dialects.check_metaschema({"properties": {"a": {"minLength": -1}}}, "2020-12")
        assert caught.value.pointer == "/properties/a/minLength"
        assert caught.value.description == (
            "is not valid JSON Schema (2020-12): the metaschema's minimum rule"
        )


class TestDialect:
    @pytest.mark.parametrize(
        ("schema", "name"),
        [
            ({"type": "object"}, "2020-12"),
            ({"$schema": "https://json-schema.org/draft/2020-12/schema#"}, "2020-12"),
            ({"$schema": "https://json-schema.org/draft/2019-09/schema"}, "2019-09"),
            ({"$schema": "http://json-schema.org/draft-07/schema#"}, "draft-07"),
            ({"$schema": "https://json-schema.org/draft-07/schema"}, "draft-07"),
            ({"items": [{"type": "string"}]}, "draft-07"),
            ({"additionalItems": False}, "draft-07"),
            ({"dependencies": {"a": ["b"]}}, "draft-07"),
            ({"properties": {"a": {"items": [{"type": "string"}]}}}, "draft-07"),
            ({"properties": {"a": {"items": {"type": "string"}}}}, "2020-12"),
        ],
    )
    def test_the_dialect_is_declared_or_read_from_draft_07_forms(
        self, schema: dict[str, Any], name: str
    ) -> None:
        """``$schema`` decides (with or without its ``#``); without it, a draft-07-only form
        anywhere in the document means draft-07, else 2020-12."""
        assert dialects.dialect(schema) == name

    def test_an_unknown_dialect_is_refused_at_its_keyword(self) -> None:
        """Any other ``$schema`` is refused, pointing at it."""
        with pytest.raises(SchemaRefused):
            dialects.dialect({"$schema": "https://json-schema.org/draft/2020-12/schemaX"})
        with pytest.raises(SchemaRefused) as caught:
            dialects.dialect({"$schema": "http://json-schema.org/draft-04/schema#"})
        assert caught.value.pointer == "/$schema"
        assert caught.value.description == (
            "must be draft 2020-12, 2019-09 or draft-07 (or absent)"
        )

    def test_draft_07_forms_are_found_at_any_depth_a_document_may_have(self) -> None:
        """A document nests at most 96 levels (refused before its dialect is read); a
        draft-07 form at the deepest of them still makes it draft-07."""
        node: dict[str, Any] = {"items": [{"type": "string"}]}
        for _ in range(90):
            node = {"not": node}
        assert dialects.dialect(node) == "draft-07"
