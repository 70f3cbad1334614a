"""References and patterns anywhere in a caller's schema: what resolves, and each refusal
with its pointer and words; in process."""

from __future__ import annotations

from typing import Any

import pytest

from tiergate.schema.limits import MAX_JSON_NESTING, SchemaRefused
from tiergate.schema.references import audit, resolve

OUTSIDE = "$ref points outside the document; remote schemas are never fetched"
ANCHOR = "$ref to an anchor; use a JSON pointer such as #/$defs/name"
DANGLING = "$ref does not resolve to anything in the document"
NOT_A_SCHEMA = "$ref resolves to something that is not a schema"
RECURSIVE = "$ref makes the schema recursive; structured outputs take no recursion"
SLOW_PATTERN = "pattern cannot run in linear time (lookaround, backreferences or too large)"

ROOT: dict[str, Any] = {
    "$defs": {
        "a/b": {"type": "string"},
        "t~n": {"type": "integer"},
        "with space": {"type": "boolean"},
        "d": {"type": "object", "enum": [{"x": 1}]},
    },
    "allOf": [{"minProperties": 1}, True],
}


def refusal(schema: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(SchemaRefused) as caught:
        audit(schema)
    return caught.value.pointer, caught.value.description


class TestResolve:
    @pytest.mark.parametrize(
        ("ref", "target"),
        [
            ("#/$defs/a~1b", "/$defs/a~1b"),
            ("#/$defs/t~0n", "/$defs/t~0n"),
            ("#/$defs/with%20space", "/$defs/with space"),
            ("#/allOf/0", "/allOf/0"),
            ("#/allOf/1", "/allOf/1"),
            ("#", ""),
        ],
    )
    def test_a_pointer_into_the_document_resolves(self, ref: str, target: str) -> None:
        """Escapes (~1, ~0, percent-encoding) and array indexes are followed; the target is
        the pointer of what was found, escaped again."""
        found, node = resolve(ROOT, ref, "/p")
        assert found == target
        assert node is not None

    @pytest.mark.parametrize(
        ("ref", "description"),
        [
            ("https://example.com/schema", OUTSIDE),
            ("other.json#/a", OUTSIDE),
            ("#here", ANCHOR),
            ("#/$defs/missing", DANGLING),
            ("#/allOf/2", DANGLING),
            ("#/allOf/x", DANGLING),
            ("#/$defs/d/type", NOT_A_SCHEMA),
            ("#/$defs/d/enum", NOT_A_SCHEMA),
        ],
    )
    def test_anything_else_is_refused_where_the_ref_stands(
        self, ref: str, description: str
    ) -> None:
        """Remote, anchor, dangling and non-schema references are refused at the $ref."""
        with pytest.raises(SchemaRefused) as caught:
            resolve(ROOT, ref, "/p")
        assert (caught.value.pointer, caught.value.description) == ("/p", description)


class TestAudit:
    def test_references_that_resolve_pass(self) -> None:
        """A reference used twice (a diamond) and one into a list pass the audit."""
        schema = {
            "$defs": {"s": {"type": "string"}},
            "properties": {"a": {"$ref": "#/$defs/s"}, "b": {"$ref": "#/$defs/s"}},
            "anyOf": [{"$ref": "#/properties/a"}],
        }
        audit(schema)

    @pytest.mark.parametrize(
        ("schema", "pointer", "description"),
        [
            (
                {"properties": {"a": {"items": {"$ref": "http://x/y"}}}},
                "/properties/a/items",
                OUTSIDE,
            ),
            (
                {"$defs": {"n": {"properties": {"next": {"$ref": "#/$defs/n"}}}}},
                "/$defs/n/properties/next",
                RECURSIVE,
            ),
            (
                {"$ref": "#/$defs/a", "$defs": {"a": {"not": {"$ref": "#"}}}},
                "/$defs/a/not",
                RECURSIVE,
            ),
            ({"properties": {"a": {"$id": "x"}}}, "/properties/a/$id", None),
            ({"if": {"$dynamicRef": "#m"}}, "/if/$dynamicRef", "$dynamicRef is not supported"),
            ({"else": {"$recursiveRef": "#"}}, "/else/$recursiveRef", None),
            ({"properties": {"a": {"pattern": "(?=a)"}}}, "/properties/a/pattern", SLOW_PATTERN),
            ({"patternProperties": {"a/(?<=b)": {}}}, "/patternProperties/a~1(?<=b)", None),
            (
                {"unevaluatedProperties": False, "properties": {"a": {"patternProperties": {}}}},
                "/unevaluatedProperties",
                "unevaluatedProperties together with patternProperties",
            ),
            (
                {
                    "patternProperties": {"^x": {}},
                    "allOf": [{"unevaluatedProperties": False}, {"unevaluatedProperties": {}}],
                },
                "/allOf/0/unevaluatedProperties",
                None,
            ),
        ],
    )
    def test_the_first_bad_construct_is_refused_by_its_pointer(
        self, schema: dict[str, Any], pointer: str, description: str | None
    ) -> None:
        """Every subschema is audited, also those structured outputs never see; the refusal
        points at the construct itself."""
        found = refusal(schema)
        assert found[0] == pointer
        if description is not None:
            assert found[1] == description
        assert refusal(schema)[1] == found[1]

    def test_only_subschemas_are_audited(self) -> None:
        """Values that are no subschema (a default, examples, an enum) are not walked, and
        unevaluatedProperties alone passes; draft-07 positional items are walked."""
        audit({"default": {"pattern": "(?=a)"}, "examples": [{"$ref": "http://x"}]})
        audit({"unevaluatedProperties": False, "properties": {"a": {}}})
        assert refusal({"items": [{"type": "string"}, {"pattern": "(?=a)"}]}) == (
            "/items/1/pattern",
            SLOW_PATTERN,
        )

    def test_an_id_is_allowed_at_the_root_only(self) -> None:
        """``$id`` at the root names the document; below it, it would re-base references."""
        audit({"$id": "https://example.com/s", "type": "object"})
        assert refusal({"properties": {"a": {"$id": "x"}}})[1] == (
            "$id below the root is not supported"
        )
        assert refusal({"else": {"$recursiveRef": "#"}})[1] == "$recursiveRef is not supported"

    def test_a_reference_chain_is_bounded(self) -> None:
        """A chain of references longer than twice the nesting bound is refused (each link is
        a new subschema, so no recursion is involved)."""
        links = 2 * MAX_JSON_NESTING + 2
        defs = {f"d{i}": {"$ref": f"#/$defs/d{i + 1}"} for i in range(links)}
        defs[f"d{links}"] = {"type": "string"}
        pointer, description = refusal({"$ref": "#/$defs/d0", "$defs": defs})
        assert description == "$ref chains nest too deeply"
        assert pointer.startswith("/$defs/d")
        short = {f"d{i}": {"$ref": f"#/$defs/d{i + 1}"} for i in range(100)}
        short["d100"] = {"type": "string"}
        audit({"$ref": "#/$defs/d0", "$defs": short})
