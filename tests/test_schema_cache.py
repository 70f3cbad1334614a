"""The schema compiler's own steps and its cache, in process: each whole-document refusal in
its words, the compiled schema kept and found again, the byte bound and the eviction order."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tiergate.schema import compiler, limits
from tiergate.schema.compiler import CACHE, SchemaCache, compile_schema
from tiergate.schema.limits import SchemaRefused


@pytest.fixture
def empty_cache() -> Iterator[SchemaCache]:
    CACHE.clear()
    yield CACHE
    CACHE.clear()


def refused(raw: str) -> tuple[str, str]:
    with pytest.raises(SchemaRefused) as caught:
        compile_schema(raw)
    return caught.value.pointer, caught.value.description


def union_schema(n: int) -> str:
    """``n`` properties, each a union of two types: ``n`` unions once lowered."""
    properties = {f"p{i}": {"type": ["string", "integer"]} for i in range(n)}
    return json.dumps({"type": "object", "properties": properties})


class TestWholeDocumentRefusals:
    @pytest.mark.parametrize(
        ("raw", "description"),
        [
            ("[1]", "must be a JSON object (a JSON Schema document)"),
            ('{"type": NaN}', "is not JSON (a number or constant)"),
            ('{"type": "string"}', 'must describe an object: its top level needs "type": "object"'),
        ],
        ids=["array", "nan", "string"],
    )
    def test_each_is_refused_at_the_root_in_its_words(self, raw: str, description: str) -> None:
        """Refusals of the whole document name the root (an empty pointer)."""
        assert refused(raw) == ("", description)

    def test_sixteen_unions_are_served(self) -> None:
        """The union bound is inclusive."""
        compile_schema(union_schema(16))

    def test_a_union_past_the_bound_is_named_by_its_pointer(self) -> None:
        """Beyond 16, the refusal points at the 17th union and says what counts as one."""
        assert refused(union_schema(17)) == (
            "/properties/p16",
            "needs more than 16 union types (anyOf, oneOf, type lists, nullable optional"
            " properties past 24) once lowered; structured outputs take 16",
        )

    def test_parsing_past_the_interpreters_depth_is_a_refusal(self) -> None:
        """Were the nesting bound ever bypassed, parsing still ends in a refusal, not a
        crash."""
        with pytest.raises(SchemaRefused) as caught:
            compiler._parse("[" * 100_000 + "]" * 100_000)
        assert (caught.value.pointer, caught.value.description) == ("", "is nested too deeply")

    @pytest.mark.parametrize(
        ("dialect", "names"),
        [
            ("http://json-schema.org/draft-07/schema#", ["y"]),
            ("https://json-schema.org/draft/2020-12/schema", ["x", "y"]),
        ],
        ids=["draft-07", "2020-12"],
    )
    def test_keywords_beside_a_ref_follow_the_dialect(self, dialect: str, names: list[str]) -> None:
        """draft-07 ignores every keyword beside ``$ref``; 2020-12 applies them too."""
        target = {"type": "object", "properties": {"y": {"type": "string"}}, "required": ["y"]}
        beside = {"properties": {"x": {"type": "integer"}}, "required": ["x"]}
        schema = {
            "$schema": dialect,
            "type": "object",
            "definitions": {"o": target},
            "properties": {"a": {"$ref": "#/definitions/o", **beside}},
            "required": ["a"],
        }
        wire = compile_schema(json.dumps(schema)).wire["properties"]["a"]
        assert sorted(wire["properties"]) == names

    def test_a_schema_too_large_once_its_refs_are_inlined_is_refused(self) -> None:
        """A small text whose references inline to more than 128 KiB is refused at the root."""
        big = {f"p{i}": {"type": "string", "description": "x" * 100} for i in range(80)}
        schema = {
            "type": "object",
            "$defs": {"d": {"type": "object", "properties": big, "required": list(big)}},
            "properties": {f"r{i}": {"$ref": "#/$defs/d"} for i in range(15)},
            "required": [f"r{i}" for i in range(15)],
        }
        assert refused(json.dumps(schema)) == (
            "",
            "takes more than 131072 bytes once $refs are inlined",
        )


class TestTextBounds:
    @pytest.mark.parametrize(
        ("raw", "description"),
        [
            (" \n", "must be a JSON Schema document describing an object"),
            ("x" * (64 * 1024 + 1), "must be at most 65536 bytes"),
            ("\u00e9" * (32 * 1024 + 1), "must be at most 65536 bytes"),
            ("[" * 97 + "]" * 97, "nests arrays and objects more than 96 deep"),
        ],
        ids=["blank", "long", "long-in-bytes", "deep"],
    )
    def test_text_too_large_or_deep_is_refused_before_parsing(
        self, raw: str, description: str
    ) -> None:
        """Blank text, more than 64 KiB (counted in UTF-8 bytes) or nesting deeper than 96:
        refused at the root before the text is parsed."""
        with pytest.raises(SchemaRefused) as caught:
            limits.check_text(raw)
        assert (caught.value.pointer, caught.value.description) == ("", description)

    def test_the_bounds_are_inclusive_and_strings_do_not_nest(self) -> None:
        """Exactly 64 KiB and 96 levels pass; brackets inside strings are no nesting."""
        limits.check_text(" " * (64 * 1024 - 2) + "{}")
        limits.check_text("[" * 96 + "]" * 96)
        limits.check_text(json.dumps({"a": "[" * 200, "b": '\\"' + "{" * 200}))

    def test_pointers_are_escaped_and_bounded(self) -> None:
        """Tokens escape ``~`` and ``/`` as RFC 6901 says; a field path past 240 characters
        is cut to 237 and marked."""
        assert limits.child("/a", "x/y~z", 3) == "/a/x~1y~0z/3"
        exact = SchemaRefused("/" + "p" * (240 - len("json_schema") - 1), "d")
        assert exact.violations[0].field == "json_schema/" + "p" * 228
        long = SchemaRefused("/" + "p" * 300, "d")
        assert long.violations[0].field == "json_schema/" + "p" * 225 + "..."
        assert long.pointer == "/" + "p" * 300


class TestCompileCache:
    def test_the_same_text_is_compiled_once(self, empty_cache: SchemaCache) -> None:
        """A second request with the same schema text gets the compiled schema kept."""
        raw = json.dumps({"type": "object", "properties": {"a": {"type": "string"}}})
        first = compile_schema(raw)
        assert compile_schema(raw) is first
        assert len(empty_cache) == 1
        assert empty_cache.bytes == first.weight
        assert first.weight == (len(raw.encode()) + len(json.dumps(first.wire))) * 4 + 16 * 1024

    def test_a_refusal_is_kept_as_its_short_violation(self, empty_cache: SchemaCache) -> None:
        """A refused text is refused again from the cache, the same way, at a small weight."""
        raw = json.dumps({"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}})
        first = refused(raw)
        kept = empty_cache.get(hashlib.sha256(raw.encode()).digest())
        assert kept == compiler._Refusal(*first)
        assert refused(raw) == first
        assert len(empty_cache) == 1
        assert empty_cache.bytes == len(first[0]) + len(first[1]) + 512

    def test_a_wire_schema_validator_is_built_once(self) -> None:
        """The validator of a schema the service sends is kept, whatever its key order, at
        its estimated weight."""
        compiler._WIRE_CACHE.clear()
        schema = {"type": "object", "properties": {"é": {"type": "string"}}, "required": []}
        first = compiler.wire_validator(schema)
        assert compiler.wire_validator(dict(reversed(schema.items()))) is first
        text = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert compiler._WIRE_CACHE.bytes == len(text) * 4 + 16 * 1024
        compiler._WIRE_CACHE.clear()

    def test_problems_are_limited_to_five(self) -> None:
        """At most five broken rules are named, the most relevant first."""
        properties = {f"p{i}": {"type": "string"} for i in range(7)}
        compiled = compile_schema(json.dumps({"type": "object", "properties": properties}))
        assert len(compiled.problems({f"p{i}": i for i in range(7)})) == 5


def entry(weight: int) -> Any:
    return compiler._Refusal("", "x" * weight)


class TestSchemaCache:
    def test_entries_up_to_the_bound_are_kept(self) -> None:
        """Weights adding up to exactly the bound all stay; one entry may weigh it all."""
        whole = SchemaCache(100)
        whole.put(b"w", entry(0), 100)
        assert whole.get(b"w") == entry(0)
        cache = SchemaCache(100)
        cache.put(b"a", entry(1), 60)
        cache.put(b"b", entry(2), 40)
        assert (len(cache), cache.bytes) == (2, 100)
        assert cache.get(b"a") == entry(1)

    def test_the_least_recently_used_entry_goes_first(self) -> None:
        """Past the bound, the entry used longest ago is evicted, and its weight with it."""
        cache = SchemaCache(100)
        cache.put(b"a", entry(1), 40)
        cache.put(b"b", entry(2), 40)
        assert cache.get(b"a") == entry(1)  # now b is the oldest
        cache.put(b"c", entry(3), 40)
        assert cache.get(b"b") is None
        assert cache.get(b"a") == entry(1)
        assert cache.get(b"c") == entry(3)
        assert cache.bytes == 80

    def test_an_entry_heavier_than_the_bound_is_not_kept(self) -> None:
        """It would evict everything and still not fit."""
        cache = SchemaCache(100)
        cache.put(b"a", entry(1), 50)
        cache.put(b"big", entry(2), 101)
        assert (len(cache), cache.bytes) == (1, 50)
        assert cache.get(b"big") is None

    def test_a_key_is_kept_once(self) -> None:
        """Putting a known key again changes nothing (first entry, weight counted once)."""
        cache = SchemaCache(100)
        cache.put(b"a", entry(1), 30)
        cache.put(b"a", entry(2), 30)
        assert (len(cache), cache.bytes) == (1, 30)
        assert cache.get(b"a") == entry(1)

    def test_clear_empties_it(self) -> None:
        """Nothing is found and nothing is counted after a clear."""
        cache = SchemaCache(100)
        cache.put(b"a", entry(1), 30)
        cache.clear()
        assert (len(cache), cache.bytes, cache.get(b"a")) == (0, 0, None)
