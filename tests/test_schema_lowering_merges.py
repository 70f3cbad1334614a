"""Lowering, in process: ``$ref`` inlined, ``allOf`` merged, ``anyOf``/``oneOf`` sent as unions
or stated as rules."""

from __future__ import annotations

from typing import Any

import pytest
from lowered_schemas import NOTE, JsonObject, closed, lowered, obj, refusal, wire_of

DEFS: JsonObject = {"s": {"type": "string", "description": "target"}, "n": {"type": "integer"}}


class TestReferences:
    def test_a_reference_is_inlined_with_the_callers_annotations(self) -> None:
        """``$ref`` is replaced by its target; a title beside it is kept, the target's own
        description wins over the one beside the reference."""
        schema = obj(
            {"a": {"$ref": "#/$defs/s", "description": "beside", "title": "T"}},
            ["a"],
            **{"$defs": DEFS},
        )
        assert wire_of(schema)["properties"]["a"] == {
            "type": "string",
            "description": "target",
            "title": "T",
        }

    def test_2020_12_applies_the_keywords_beside_a_reference(self) -> None:
        """In 2020-12 a rule beside ``$ref`` applies with the target: merged, and stated."""
        schema = obj({"a": {"$ref": "#/$defs/n", "maximum": 9}}, ["a"], **{"$defs": DEFS})
        assert wire_of(schema)["properties"]["a"] == {
            "type": "integer",
            "description": NOTE + "at most 9.",
        }

    def test_2020_12_refuses_a_type_beside_a_reference_that_contradicts_it(self) -> None:
        """A ``type`` beside ``$ref`` that shares nothing with the target is unsatisfiable."""
        schema = obj({"a": {"$ref": "#/$defs/s", "type": "integer"}}, **{"$defs": DEFS})
        refused = refusal(schema)
        assert (refused.pointer, refused.description) == (
            "/properties/a/allOf/0",
            "allOf branches share no type",
        )

    def test_draft_07_ignores_the_shape_keywords_beside_a_reference(self) -> None:
        """draft-07 ignores every keyword beside ``$ref``: the target's type is sent."""
        schema = obj(
            {"a": {"$ref": "#/definitions/s", "type": "integer"}},
            ["a"],
            definitions=DEFS,
        )
        assert wire_of(schema, draft7=True)["properties"]["a"] == {
            "type": "string",
            "description": "target",
        }

    def test_draft_07_states_no_rule_beside_a_reference(self) -> None:
        """draft-07 never checks a rule beside ``$ref``, so none is written as "checked after
        answering"; the caller's annotations beside it are kept."""
        node = {
            "$ref": "#/definitions/s",
            "maxLength": 3,
            "items": [{}],
            "title": "T",
            "default": "d",
        }
        schema = obj({"a": node}, ["a"], definitions=DEFS)
        assert wire_of(schema, draft7=True)["properties"]["a"] == {
            "type": "string",
            "description": "target",
            "title": "T",
            "default": "d",
        }

    def test_keywords_beside_a_reference_join_an_all_of_beside_it(self) -> None:
        """``$ref`` beside ``allOf``: the target and every branch are merged."""
        node = {"$ref": "#/$defs/n", "allOf": [{"minimum": 1}, {"maximum": 5}]}
        schema = obj({"a": node}, ["a"], **{"$defs": DEFS})
        assert wire_of(schema)["properties"]["a"] == {
            "type": "integer",
            "description": NOTE + "at least 1; at most 5.",
        }

    def test_an_all_of_branch_that_is_a_chain_of_references_is_followed(self) -> None:
        """An ``allOf`` branch whose target is another ``$ref`` resolves to the end."""
        defs = {"a": {"$ref": "#/$defs/b"}, "b": {"type": "string", "maxLength": 4}}
        schema = obj({"v": {"allOf": [{"$ref": "#/$defs/a"}, {"minLength": 1}]}}, ["v"])
        schema["$defs"] = defs
        assert wire_of(schema)["properties"]["v"] == {
            "type": "string",
            "description": NOTE + "at most 4 characters; at least 1 characters.",
        }

    def test_a_reference_out_of_an_all_of_branch_is_refused_at_that_branch(self) -> None:
        """A dangling ``$ref`` inside ``allOf`` is named by the branch's path."""
        refused = refusal(obj({"v": {"allOf": [{"type": "string"}, {"$ref": "#/$defs/x"}]}}))
        assert refused.pointer == "/properties/v/allOf/1"
        assert refused.description == "$ref does not resolve to anything in the document"

    def test_a_dangling_reference_is_refused_at_its_path(self) -> None:
        """A ``$ref`` to nothing is refused where it stands."""
        refused = refusal(obj({"a": {"$ref": "#/$defs/none"}}))
        assert refused.pointer == "/properties/a"
        assert refused.description == "$ref does not resolve to anything in the document"


class TestAllOf:
    @staticmethod
    def merged(*branches: Any) -> JsonObject:
        merged: JsonObject = wire_of(obj({"v": {"allOf": list(branches)}}, ["v"]))["properties"][
            "v"
        ]
        return merged

    def test_properties_and_required_of_every_branch_are_merged(self) -> None:
        """Properties of all branches, one property in two branches merged again; required
        names of all branches, each once."""
        wire = self.merged(
            obj({"a": {"type": "string"}, "b": {"type": "number"}}, ["a"]),
            obj({"b": {"type": "integer", "maximum": 3}, "c": {"type": "boolean"}}, ["a", "b"]),
        )
        assert wire == closed(
            {
                "a": {"type": "string"},
                "b": {"type": "integer", "description": NOTE + "at most 3."},
                "c": {"type": "boolean"},
            },
            ["a", "b"],
        )

    @pytest.mark.parametrize(
        ("first", "second", "common"),
        [
            ("number", "integer", "integer"),
            ("integer", "number", "integer"),
            (["number", "string"], ["integer", "string"], ["string", "integer"]),
            (["string", "null"], ["null", "string"], ["string", "null"]),
            (["string", "boolean", "null"], "boolean", "boolean"),
            ("number", ["integer", "number"], ["number", "integer"]),
        ],
    )
    def test_types_are_intersected_an_integer_being_a_number(
        self, first: Any, second: Any, common: Any
    ) -> None:
        """Branch types meet: the first branch's order, then integer when a number meets an
        integer; one common type is sent alone."""
        assert self.merged({"type": first}, {"type": second})["type"] == common

    def test_branches_sharing_no_type_are_refused(self) -> None:
        """No common type: unsatisfiable, refused at the branch that adds the conflict."""
        refused = refusal(obj({"v": {"allOf": [{"type": "string"}, {"type": "number"}]}}))
        assert (refused.pointer, refused.description) == (
            "/properties/v/allOf/1",
            "allOf branches share no type",
        )

    def test_descriptions_are_joined_once_each(self) -> None:
        """Each branch's description is kept, one per line; a repeated one is not repeated."""
        wire = self.merged(
            {"type": "string", "description": "first"},
            {"description": "second"},
            {"description": "first"},
        )
        assert wire == {"type": "string", "description": "first\nsecond"}

    def test_the_first_value_of_a_rule_is_stated(self) -> None:
        """Two values for one rule: the first is written for the model (both are checked
        afterwards against the caller's schema)."""
        wire = self.merged({"type": "string", "maxLength": 3}, {"maxLength": 5})
        assert wire == {"type": "string", "description": NOTE + "at most 3 characters."}

    def test_nested_all_of_is_flattened(self) -> None:
        """An ``allOf`` inside an ``allOf`` branch merges into the same schema."""
        wire = self.merged({"allOf": [{"type": "integer"}, {"minimum": 2}]}, {"maximum": 4})
        assert wire == {"type": "integer", "description": NOTE + "at least 2; at most 4."}

    def test_keywords_beside_all_of_merge_with_its_branches(self) -> None:
        """The schema around ``allOf`` is one more branch, merged first."""
        node = {"type": "number", "allOf": [{"type": "integer"}]}
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"] == {"type": "integer"}

    def test_a_true_branch_adds_nothing(self) -> None:
        """``true`` in ``allOf`` admits everything: the other branches decide."""
        assert self.merged(True, {"type": "string"}) == {"type": "string"}

    def test_a_reference_branch_keeps_the_keywords_beside_it(self) -> None:
        """An ``allOf`` branch with ``$ref`` and a rule: the target and the rule, merged."""
        schema = obj(
            {"v": {"allOf": [{"$ref": "#/$defs/n", "maximum": 5}]}}, ["v"], **{"$defs": DEFS}
        )
        assert wire_of(schema)["properties"]["v"] == {
            "type": "integer",
            "description": NOTE + "at most 5.",
        }

    def test_a_false_branch_of_a_nested_all_of_is_refused_at_its_path(self) -> None:
        """Refusals inside a nested ``allOf`` name the nested branch."""
        node = {"allOf": [{"allOf": [{"type": "string"}, False]}]}
        assert refusal(obj({"v": node})).pointer == "/properties/v/allOf/0/allOf/1"

    def test_map_values_are_taken_from_the_first_branch(self) -> None:
        """Only ``properties``, ``required``, ``type``, descriptions and literals are merged; any
        other keyword (a map's values) is the first branch's on the wire."""
        maps = self.merged(
            {"type": "object", "additionalProperties": {"type": "integer"}},
            {"additionalProperties": {"type": "string"}},
        )
        assert maps["properties"]["entries"]["items"]["properties"]["value"] == {"type": "integer"}

    def test_enums_meet_in_the_values_every_branch_allows(self) -> None:
        """Two enums: only the values both allow are sent, in the first branch's order, so
        constrained decoding cannot pick one a branch forbids."""
        assert self.merged({"enum": ["c", "a", "b"]}, {"enum": ["b", "c", "d"]}) == {
            "enum": ["c", "b"]
        }

    def test_literals_compare_as_json_values(self) -> None:
        """1 and 1.0 are one JSON value; true is not 1, nor false 0."""
        assert self.merged({"enum": [1, True, 0]}, {"enum": [1.0, False]}) == {"enum": [1]}
        assert self.merged({"enum": [None, "null"]}, {"enum": [None]}) == {"enum": [None]}

    def test_a_const_meets_an_enum_or_a_const(self) -> None:
        """A ``const`` every branch allows is sent; a ``const`` outside the other branch's
        ``enum`` is refused at the ``const``."""
        assert self.merged({"enum": ["a", "b"]}, {"const": "b"}) == {"const": "b"}
        assert self.merged({"const": 2}, {"const": 2.0}) == {"const": 2}
        refused = refusal(obj({"v": {"allOf": [{"enum": ["a"]}, {"const": "b"}]}}))
        assert (refused.pointer, refused.description) == (
            "/properties/v/const",
            "the const value is not one of enum's",
        )

    def test_an_array_const_in_every_branch_is_refused_as_a_const(self) -> None:
        """An array ``const`` is one value, not a list of them: merged whole, then refused as
        a ``const`` structured outputs cannot send."""
        refused = refusal(obj({"v": {"allOf": [{"const": [1]}, {"const": [1]}]}}))
        assert (refused.pointer, refused.description) == (
            "/properties/v/const",
            "const values must be strings, numbers, booleans or null",
        )

    @pytest.mark.parametrize(
        ("branches", "key"),
        [
            ([{"enum": ["a", "b"]}, {"enum": ["c"]}], "enum"),
            ([{"const": True}, {"const": 1}], "const"),
        ],
    )
    def test_literals_no_value_satisfies_are_refused(
        self, branches: list[JsonObject], key: str
    ) -> None:
        """``allOf`` branches whose literals share no value admit no answer: refused before
        any call, at the branch that empties them."""
        refused = refusal(obj({"v": {"allOf": branches}}))
        assert (refused.pointer, refused.description) == (
            "/properties/v/allOf/1",
            f"allOf branches share no {key} value",
        )

    def test_a_kept_format_or_pattern_is_the_first_branchs(self) -> None:
        """Two formats or two patterns: the first is sent, the other not joined to it."""
        wire = self.merged({"type": "string", "format": "email"}, {"format": "uuid"})
        assert wire == {"type": "string", "format": "email"}
        wire = self.merged({"type": "string", "pattern": "^a"}, {"pattern": "^b"})
        assert wire == {"type": "string", "pattern": "^a"}


class TestUnions:
    def test_any_of_becomes_any_of_with_the_callers_annotations(self) -> None:
        """``anyOf`` of types is sent as ``anyOf``, one union at the keyword's path."""
        node = {"anyOf": [{"type": "string"}, {"type": "integer"}], "title": "t", "default": 1}
        wire, shape, unions, _ = lowered(obj({"v": node}, ["v"]))
        assert wire["properties"]["v"] == {
            "anyOf": [{"type": "string"}, {"type": "integer"}],
            "title": "t",
        }
        assert (shape, unions) == (None, ["/properties/v/anyOf"])

    def test_one_of_becomes_any_of(self) -> None:
        """``oneOf`` is sent as ``anyOf``; its branches' refusals name the ``oneOf`` path."""
        node = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
        wire, _, unions, _ = lowered(obj({"v": node}, ["v"]))
        assert wire["properties"]["v"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}
        assert unions == ["/properties/v/oneOf"]
        refused = refusal(obj({"v": {"oneOf": [{"type": "string"}, False]}}))
        assert refused.pointer == "/properties/v/oneOf/1"

    def test_branches_equal_once_lowered_are_sent_once(self) -> None:
        """Branches that lower to the same wire schema are one schema, no union."""
        node = {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "string", "maxLength": 2}]}
        wire, _, unions, _ = lowered(obj({"v": node}, ["v"]))
        assert wire["properties"]["v"] == {
            "type": "string",
            "description": NOTE + "at most 2 characters.",
        }
        assert unions == []

    def test_shape_keywords_beside_a_union_apply_to_each_branch(self) -> None:
        """``type`` and a description beside ``anyOf`` are merged into every branch."""
        node = {
            "type": "string",
            "description": "d",
            "anyOf": [{"format": "email"}, {"format": "uuid"}],
        }
        wire, _, unions, _ = lowered(obj({"v": node}, ["v"]))
        assert wire["properties"]["v"] == {
            "anyOf": [
                {"type": "string", "format": "email", "description": "d"},
                {"type": "string", "format": "uuid", "description": "d"},
            ]
        }
        assert unions == ["/properties/v/anyOf"]

    @pytest.mark.parametrize(
        ("key", "phrase"), [("anyOf", "at least one of"), ("oneOf", "exactly one of")]
    )
    def test_branches_that_only_add_rules_are_stated_not_sent(self, key: str, phrase: str) -> None:
        """``anyOf``/``oneOf`` of ``required`` lists: no union on the wire, the rule in the
        description (and checked afterwards)."""
        node = obj(
            {"email": {"type": "string"}, "phone": {"type": "string"}},
            **{key: [{"required": ["email"]}, {"required": ["phone"]}]},
        )
        wire, _, unions, _ = lowered(node)
        rule = '[{"required": ["email"]}, {"required": ["phone"]}]'
        assert wire == closed(
            {"email": {"type": "string"}, "phone": {"type": "string"}},
            [],
            description=f"{NOTE}matches {phrase} {rule}.",
        )
        assert unions == []

    def test_a_union_with_one_typed_branch_is_a_real_union(self) -> None:
        """One branch with a type among rule-only ones: the union is sent."""
        node = {"anyOf": [{"minLength": 1}, {"type": "integer"}]}
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"] == {
            "anyOf": [
                {"type": "string", "description": NOTE + "at least 1 characters."},
                {"type": "integer"},
            ]
        }

    def test_an_empty_union_is_no_union(self) -> None:
        """``anyOf: []`` adds nothing: the schema beside it is lowered alone."""
        assert wire_of({"type": "string", "anyOf": []}) == {"type": "string"}

    def test_rules_beside_a_union_are_stated_on_the_union(self) -> None:
        """A rule beside ``anyOf`` (no shape keyword) is written on the union, the union
        itself not."""
        node = {"maxLength": 3, "anyOf": [{"type": "string"}, {"type": "null"}]}
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"] == {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": NOTE + "at most 3 characters.",
        }

    def test_an_object_with_alternative_property_sets_is_a_union_of_objects(self) -> None:
        """``type: object`` beside ``anyOf`` of property sets: one closed object per set."""
        node = {
            "type": "object",
            "anyOf": [
                obj({"a": {"type": "string"}}, ["a"]),
                obj({"b": {"type": "integer"}}, ["b"]),
            ],
        }
        wire, _, unions, _ = lowered(obj({"v": node}, ["v"]))
        assert wire["properties"]["v"] == {
            "anyOf": [
                closed({"a": {"type": "string"}}, ["a"]),
                closed({"b": {"type": "integer"}}, ["b"]),
            ]
        }
        assert unions == ["/properties/v/anyOf"]
