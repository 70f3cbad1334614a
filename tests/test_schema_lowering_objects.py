"""Lowering, in process: objects closed, optional properties past the API's limit, open maps as
``{key, value}`` entries and how they decode, tuples, and the rules written into descriptions."""

from __future__ import annotations

from typing import Any

from lowered_schemas import (
    ANY,
    NOTE,
    JsonObject,
    closed,
    entries_of,
    lowered,
    obj,
    refusal,
    wire_of,
)

from tiergate.schema.limits import MAX_DATA_DEPTH, MAX_OPTIONAL_PROPERTIES
from tiergate.schema.shapes import decode


class TestObjects:
    def test_every_object_is_closed_with_its_required_names_once(self) -> None:
        """Objects are sent closed; ``required`` keeps its names in order, each once."""
        wire, shape, unions, optional = lowered(
            obj({"a": {"type": "string"}, "b": {"type": "string"}}, ["b", "a", "b"])
        )
        assert wire == closed({"a": {"type": "string"}, "b": {"type": "string"}}, ["b", "a"])
        assert (shape, unions, optional) == (None, [], 0)

    def test_an_undeclared_required_name_is_refused_at_its_index(self) -> None:
        """A required name properties does not declare could never be answered."""
        refused = refusal(obj({"a": {"type": "string"}}, ["a", "b"]))
        assert (refused.pointer, refused.description) == (
            "/required/1",
            "required names a property that properties does not declare",
        )

    def test_declared_additional_properties_true_stays_closed(self) -> None:
        """``additionalProperties: true`` beside declared properties adds no entries: the
        declared properties are what the model is asked for."""
        schema = obj({"a": {"type": "string"}}, ["a"], additionalProperties=True)
        assert lowered(schema)[:2] == (closed({"a": {"type": "string"}}, ["a"]), None)

    def test_empty_properties_is_a_closed_empty_object(self) -> None:
        """``properties: {}`` says there are none: no entries."""
        assert wire_of({"type": "object", "properties": {}}) == closed({}, [])

    def test_optional_properties_are_counted(self) -> None:
        """Properties not in ``required`` stay optional and are counted, nested ones too."""
        schema = obj({"a": {"type": "string"}, "o": obj({"b": {"type": "string"}})}, ["a"])
        wire, _, _, optional = lowered(schema)
        assert wire["required"] == ["a"]
        assert wire["properties"]["o"]["required"] == []
        assert optional == 2

    def test_additional_properties_false_is_closed(self) -> None:
        """``additionalProperties: false`` and nothing declared: an empty closed object."""
        schema = {"type": "object", "additionalProperties": False}
        assert lowered(schema)[:2] == (closed({}, []), None)

    def test_an_object_that_needs_no_decoding_has_no_shape(self) -> None:
        """Plain objects, arrays and tuples of plain items decode as they are: no shape."""
        schema = obj(
            {
                "list": {"type": "array", "items": {"type": "string"}},
                "tuple": {"type": "array", "prefixItems": [{"type": "string"}]},
                "nested": obj({"a": {"type": "array", "items": obj({})}}),
            }
        )
        assert lowered(schema)[1] is None


class TestOptionalBudget:
    @staticmethod
    def schema(n: int, extra: JsonObject | None = None) -> JsonObject:
        properties: JsonObject = {f"p{i:02}": {"type": "string"} for i in range(n)}
        properties.update(extra or {})
        return obj(properties)

    def test_up_to_the_limit_every_optional_property_stays_optional(self) -> None:
        """24 optional properties are within the API's limit: sent as they are."""
        wire, shape, unions, optional = lowered(self.schema(MAX_OPTIONAL_PROPERTIES))
        assert wire["required"] == []
        assert (shape, unions, optional) == (None, [], MAX_OPTIONAL_PROPERTIES)

    def test_past_the_limit_the_last_become_required_and_nullable(self) -> None:
        """The 25th optional property becomes required and nullable (one union), and a null
        for it decodes to absent."""
        wire, shape, unions, optional = lowered(self.schema(MAX_OPTIONAL_PROPERTIES + 1))
        assert optional == MAX_OPTIONAL_PROPERTIES
        assert wire["required"] == ["p24"]
        assert wire["properties"]["p24"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
        assert wire["properties"]["p23"] == {"type": "string"}
        assert unions == ["/properties/p24"]
        assert decode(shape, {"p00": "x", "p24": None}) == {"p00": "x"}
        assert decode(shape, {"p24": "y"}) == {"p24": "y"}

    def test_a_caller_null_stays_a_value(self) -> None:
        """A property past the limit that already admits null is sent as it is, no union,
        and its null is the caller's value, kept when decoding."""
        nullable_ = {"type": ["string", "null"]}
        wire, shape, unions, _ = lowered(self.schema(MAX_OPTIONAL_PROPERTIES, {"z": nullable_}))
        assert wire["required"] == ["z"]
        assert wire["properties"]["z"] == nullable_
        assert unions == ["/properties/z"]  # its own type list, not one added
        assert shape is None
        assert decode(shape, {"z": None}) == {"z": None}

    def test_an_enum_past_the_limit_takes_null_as_one_more_value(self) -> None:
        """An enum past the limit admits null by one more value, not by a union."""
        wire, shape, unions, _ = lowered(
            self.schema(MAX_OPTIONAL_PROPERTIES, {"z": {"enum": ["a", "b"]}})
        )
        assert wire["properties"]["z"] == {"enum": ["a", "b", None]}
        assert unions == []
        assert decode(shape, {"z": None}) == {}

    def test_past_the_limit_references_still_resolve(self) -> None:
        """The lowering that makes properties nullable inlines ``$ref`` like the first."""
        schema = self.schema(MAX_OPTIONAL_PROPERTIES, {"z": {"$ref": "#/$defs/n"}})
        schema["$defs"] = {"n": {"type": "integer"}}
        wire = wire_of(schema)
        assert wire["properties"]["z"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}

    def test_past_the_limit_draft_07_still_ignores_keywords_beside_a_reference(self) -> None:
        """draft-07 stays draft-07 when properties past the limit are made nullable: a
        ``type`` beside ``$ref`` is not merged (and so not refused)."""
        schema = self.schema(
            MAX_OPTIONAL_PROPERTIES, {"z": {"$ref": "#/definitions/s", "type": "integer"}}
        )
        schema["definitions"] = {"s": {"type": "string"}}
        wire = wire_of(schema, draft7=True)
        assert wire["properties"]["z"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}

    def test_past_the_limit_the_depth_bound_is_the_same(self) -> None:
        """Made nullable or not, 20 levels of nesting are served."""
        deep: JsonObject = {"type": "string"}
        for _ in range(MAX_DATA_DEPTH - 1):
            deep = obj({"a": deep}, ["a"])
        wire = wire_of(self.schema(MAX_OPTIONAL_PROPERTIES + 1, {"deep": deep}))
        assert "deep" in wire["properties"]


class TestOpenMaps:
    def test_additional_properties_become_key_value_entries(self) -> None:
        """A map of integers is one required ``entries`` array of ``{key, value}``; decoding
        turns it back into keys."""
        wire, shape, unions, _ = lowered(
            {"type": "object", "additionalProperties": {"type": "integer"}}
        )
        assert wire == closed({"entries": entries_of({"type": "integer"})}, ["entries"])
        assert unions == []
        output = {"entries": [{"key": "a", "value": 1}, {"key": "b", "value": 2}]}
        assert decode(shape, output) == {"a": 1, "b": 2}

    def test_declared_properties_and_other_keys_together(self) -> None:
        """Declared properties stay; the other keys come through ``entries``."""
        schema = obj({"id": {"type": "string"}}, ["id"], additionalProperties={"type": "string"})
        wire, shape, _, _ = lowered(schema)
        assert wire == closed(
            {"id": {"type": "string"}, "entries": entries_of({"type": "string"})},
            ["id", "entries"],
        )
        output = {"id": "1", "entries": [{"key": "x", "value": "y"}]}
        assert decode(shape, output) == {"id": "1", "x": "y"}

    def test_the_entries_property_avoids_a_declared_name(self) -> None:
        """A declared ``entries`` (and ``_entries``) keeps its name: the map takes the next
        free name with a leading underscore."""
        declared = {"entries": {"type": "string"}, "_entries": {"type": "string"}}
        schema = obj(declared, ["entries", "_entries"], additionalProperties={"type": "string"})
        wire, shape, _, _ = lowered(schema)
        assert list(wire["properties"]) == ["entries", "_entries", "__entries"]
        assert wire["required"] == ["entries", "_entries", "__entries"]
        output = {"entries": "e", "_entries": "f", "__entries": [{"key": "k", "value": "v"}]}
        assert decode(shape, output) == {"entries": "e", "_entries": "f", "k": "v"}

    def test_an_object_with_nothing_declared_is_a_map_of_anything(self) -> None:
        """``{"type": "object"}`` admits any keys: entries of any primitive, one union."""
        wire, _, unions, _ = lowered({"type": "object"})
        assert wire == closed({"entries": entries_of(ANY)}, ["entries"])
        assert unions == [""]
        assert wire_of({"type": "object", "additionalProperties": True}) == wire

    def test_one_pattern_property_constrains_the_key(self) -> None:
        """A single ``patternProperties`` pattern structured outputs take is the key's
        pattern; its schema the value's."""
        schema = {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}}
        wire, _, unions, _ = lowered(schema)
        key = {"type": "string", "pattern": "^x-"}
        assert wire == closed({"entries": entries_of({"type": "integer"}, key)}, ["entries"])
        assert unions == []

    def test_a_pattern_with_a_word_boundary_leaves_the_key_free(self) -> None:
        """A pattern structured outputs refuse (``\\b``) is not sent as the key's pattern."""
        schema = {"type": "object", "patternProperties": {"\\bx": {"type": "integer"}}}
        assert wire_of(schema)["properties"]["entries"] == entries_of({"type": "integer"})

    def test_several_value_schemas_are_a_union_and_free_keys(self) -> None:
        """Two patterns, or a pattern and ``additionalProperties``: the key is any string,
        the value any of the schemas (one union, at the object)."""
        schema = {
            "type": "object",
            "patternProperties": {"^n": {"type": "integer"}},
            "additionalProperties": {"type": "string"},
        }
        wire, shape, unions, _ = lowered(schema)
        value = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
        assert wire == closed({"entries": entries_of(value)}, ["entries"])
        assert unions == [""]
        output = {"entries": [{"key": "n1", "value": 1}, {"key": "s", "value": "t"}]}
        assert decode(shape, output) == {"n1": 1, "s": "t"}

    def test_a_map_of_maps_decodes_at_every_level(self) -> None:
        """Entry values keep their own shape: a map of maps decodes twice."""
        inner = {"type": "object", "additionalProperties": {"type": "integer"}}
        wire, shape, _, _ = lowered({"type": "object", "additionalProperties": inner})
        inner_wire = closed({"entries": entries_of({"type": "integer"})}, ["entries"])
        assert wire == closed({"entries": entries_of(inner_wire)}, ["entries"])
        output = {"entries": [{"key": "a", "value": {"entries": [{"key": "b", "value": 1}]}}]}
        assert decode(shape, output) == {"a": {"b": 1}}

    def test_a_map_inside_a_union_decodes_by_the_branch_it_matches(self) -> None:
        """A union of a map and a string: the output decodes by the branch it fits."""
        node = {
            "anyOf": [
                {"type": "object", "additionalProperties": {"type": "integer"}},
                {"type": "string"},
            ]
        }
        wire, shape, unions, _ = lowered(obj({"v": node}, ["v"]))
        assert wire["properties"]["v"] == {
            "anyOf": [
                closed({"entries": entries_of({"type": "integer"})}, ["entries"]),
                {"type": "string"},
            ]
        }
        assert unions == ["/properties/v/anyOf"]
        assert decode(shape, {"v": {"entries": [{"key": "k", "value": 3}]}}) == {"v": {"k": 3}}
        assert decode(shape, {"v": "s"}) == {"v": "s"}

    def test_a_map_in_an_array_decodes_in_every_item(self) -> None:
        """An array of maps decodes each item."""
        node = {
            "type": "array",
            "items": {"type": "object", "additionalProperties": {"type": "string"}},
        }
        _, shape, _, _ = lowered(obj({"v": node}, ["v"]))
        item = {"entries": [{"key": "k", "value": "x"}]}
        assert decode(shape, {"v": [item, item]}) == {"v": [{"k": "x"}, {"k": "x"}]}

    def test_a_false_map_value_is_refused(self) -> None:
        """``patternProperties`` with a ``false`` schema is refused at that pattern."""
        refused = refusal({"type": "object", "patternProperties": {"^a": False}})
        assert refused.pointer == "/patternProperties/^a"

    def test_the_values_schema_is_lowered_at_its_own_path(self) -> None:
        """``additionalProperties``' schema is named by its path, in refusals and unions."""
        refused = refusal({"type": "object", "additionalProperties": {"allOf": [False]}})
        assert refused.pointer == "/additionalProperties/allOf/0"
        _, _, unions, _ = lowered({"type": "object", "additionalProperties": {}})
        assert unions == ["/additionalProperties"]


class TestArrays:
    def test_items_are_lowered_and_min_items_kept_at_most_one(self) -> None:
        """``minItems`` 0 or 1 is sent as is, more as 1 plus the rule in words."""

        def array(**more: Any) -> JsonObject:
            wire = wire_of(
                obj({"v": {"type": "array", "items": {"type": "string"}, **more}}, ["v"])
            )
            array_: JsonObject = wire["properties"]["v"]
            return array_

        base = {"type": "array", "items": {"type": "string"}}
        assert array() == base
        assert array(minItems=0) == base
        assert array(minItems=1) == {**base, "minItems": 1}
        assert array(minItems=3) == {
            **base,
            "minItems": 1,
            "description": NOTE + "at least 3 items.",
        }

    def test_an_array_without_items_holds_any_primitive(self) -> None:
        """No ``items``: any primitive, one union at the items' path."""
        wire, _, unions, _ = lowered(obj({"v": {"type": "array"}}, ["v"]))
        assert wire["properties"]["v"] == {"type": "array", "items": ANY}
        assert unions == ["/properties/v/items"]

    def test_prefix_items_become_items_of_any_position(self) -> None:
        """A tuple is an array of any of its positions' schemas, ``items: false`` stated."""
        node = {
            "type": "array",
            "prefixItems": [{"type": "string"}, {"type": "integer"}],
            "items": False,
        }
        wire, _, unions, _ = lowered(obj({"v": node}, ["v"]))
        assert wire["properties"]["v"] == {
            "type": "array",
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "description": NOTE
            + 'item by position: [{"type": "string"}, {"type": "integer"}];'
            + " no items past those positions.",
        }
        assert unions == ["/properties/v/items"]

    def test_items_after_prefix_items_join_the_union(self) -> None:
        """``items`` after ``prefixItems`` is one more choice for every item."""
        node: JsonObject = {
            "type": "array",
            "prefixItems": [{"type": "string"}],
            "items": {"type": "boolean"},
        }
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"]["items"] == {
            "anyOf": [{"type": "string"}, {"type": "boolean"}]
        }
        node["items"] = True
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"]["items"] == {
            "anyOf": [{"type": "string"}, ANY]
        }

    def test_same_positions_are_one_item_schema(self) -> None:
        """Positions that lower alike need no union."""
        node = {"type": "array", "prefixItems": [{"type": "string"}, {"type": "string"}]}
        wire, _, unions, _ = lowered(obj({"v": node}, ["v"]))
        assert wire["properties"]["v"]["items"] == {"type": "string"}
        assert unions == []

    def test_draft_07_tuples_and_additional_items(self) -> None:
        """draft-07 ``items`` as a list is a tuple, ``additionalItems`` its rest; both are
        stated for the model."""
        node: JsonObject = {
            "type": "array",
            "items": [{"type": "string"}],
            "additionalItems": {"type": "integer"},
        }
        wire, _, unions, _ = lowered(obj({"v": node}, ["v"]), draft7=True)
        assert wire["properties"]["v"] == {
            "type": "array",
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "description": NOTE + 'item by position: [{"type": "string"}].',
        }
        assert unions == ["/properties/v/items"]
        node["additionalItems"] = False
        assert wire_of(obj({"v": node}, ["v"]), draft7=True)["properties"]["v"] == {
            "type": "array",
            "items": {"type": "string"},
            "description": NOTE
            + 'item by position: [{"type": "string"}]; no items past those positions.',
        }

    def test_a_position_is_refused_at_its_index(self) -> None:
        """A ``false`` position is refused by its own path."""
        node = {"type": "array", "prefixItems": [{"type": "string"}, False]}
        assert refusal(obj({"v": node})).pointer == "/properties/v/prefixItems/1"
        draft7 = {"type": "array", "items": [False]}
        assert refusal(obj({"v": draft7}), draft7=True).pointer == "/properties/v/items/0"
        rest = {"type": "array", "items": [{"type": "string"}], "additionalItems": False}
        assert refusal(
            obj({"v": {**rest, "additionalItems": {"allOf": [False]}}}), draft7=True
        ).pointer == ("/properties/v/additionalItems/allOf/0")

    def test_items_after_prefix_items_are_named_by_their_path(self) -> None:
        """A refusal inside ``items`` after ``prefixItems`` names ``items``."""
        node = {"type": "array", "prefixItems": [{"type": "string"}], "items": {"allOf": [False]}}
        assert refusal(obj({"v": node})).pointer == "/properties/v/items/allOf/0"

    def test_object_positions_are_lowered_and_nest(self) -> None:
        """A tuple's object positions are closed objects, counted toward the depth."""
        node = {
            "type": "array",
            "prefixItems": [obj({"a": {"type": "string"}}, ["a"]), {"type": "null"}],
        }
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"]["items"] == {
            "anyOf": [closed({"a": {"type": "string"}}, ["a"]), {"type": "null"}]
        }
        deep: JsonObject = {"type": "string"}
        for _ in range(MAX_DATA_DEPTH):
            deep = {"type": "array", "prefixItems": [deep]}
        assert wire_of(deep)["type"] == "array"  # 20 levels
        deeper = {"type": "array", "prefixItems": [deep]}
        assert refusal(deeper).pointer == "/prefixItems/0" * MAX_DATA_DEPTH


class TestDescriptions:
    def test_annotations_and_a_primitive_default_are_kept(self) -> None:
        """Title, description and a primitive default reach the wire."""
        node = {"type": "integer", "title": "T", "description": "D", "default": 3}
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"] == node

    def test_annotations_that_are_not_text_and_structured_defaults_are_dropped(self) -> None:
        """A non-string title or description, and an object default, are not sent."""
        node = {"type": "string", "title": 1, "description": ["d"], "default": {"a": 1}}
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"] == {"type": "string"}

    def test_a_union_takes_no_default(self) -> None:
        """A default beside an ``anyOf`` wire schema is left out."""
        node: JsonObject = {"type": ["object", "null"], "properties": {}, "default": None}
        assert "default" not in wire_of(obj({"v": node}, ["v"]))["properties"]["v"]

    def test_dropped_rules_follow_the_callers_description(self) -> None:
        """The rules the wire cannot carry come after the description, in the caller's order."""
        node = {"type": "string", "description": "Name.", "maxLength": 9, "minLength": 2}
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"] == {
            "type": "string",
            "description": "Name.\n\n" + NOTE + "at most 9 characters; at least 2 characters.",
        }

    def test_kept_formats_and_patterns_are_not_repeated_in_words(self) -> None:
        """One of the ten formats and a pattern structured outputs take are sent, not stated;
        another format and a pattern with ``\\b`` are stated, not sent."""
        kept = {"type": "string", "format": "uuid", "pattern": "^[a-f0-9-]+$"}
        assert wire_of(obj({"v": kept}, ["v"]))["properties"]["v"] == kept
        dropped = {"type": "string", "format": "ipv4-cidr", "pattern": "\\bx"}
        assert wire_of(obj({"v": dropped}, ["v"]))["properties"]["v"] == {
            "type": "string",
            "description": NOTE + "in ipv4-cidr format; matches the regular expression \\bx.",
        }

    def test_a_rule_that_says_nothing_adds_no_note(self) -> None:
        """``uniqueItems: false`` asks nothing: no rules note."""
        node: JsonObject = {"type": "array", "items": {"type": "string"}, "uniqueItems": False}
        assert "description" not in wire_of(obj({"v": node}, ["v"]))["properties"]["v"]
        node["uniqueItems"] = True
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"]["description"] == (
            NOTE + "no item repeated."
        )
