"""The caller-schema compiler: a caller's JSON Schema in, what the service needs out.

    compiled = compile_schema(request.json_schema)   # SchemaRefused (INVALID_ARGUMENT) if not
    compiled.wire                  # for output_config.format.schema: the documented subset
    data = compiled.decode(output) # the model's output in the caller's shape
    compiled.problems(data)        # broken rules of the caller's full schema, by JSON path

Steps, each refusing with a JSON pointer: the text's size and nesting (before parsing), JSON,
the dialect (2020-12, 2019-09 or draft-07) and its metaschema, references and patterns
(:mod:`.references`), lowering (:mod:`.lowering`), then the API's limits on what was lowered.
Compiled schemas are cached by the SHA-256 of the text, bounded in bytes; a refusal is cached
as its short violation only.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.protocols import Validator

from tiergate.schema.dialects import check_metaschema
from tiergate.schema.dialects import dialect as dialect_of
from tiergate.schema.limits import (
    MAX_UNION_TYPES,
    MAX_WIRE_BYTES,
    SchemaRefused,
    check_text,
)
from tiergate.schema.lowering import lower
from tiergate.schema.patterns import output_validator, validator
from tiergate.schema.references import audit, subschemas
from tiergate.schema.rules import problem
from tiergate.schema.shapes import Shape, decode

JsonObject = dict[str, Any]

CACHE_BYTES = 32 * 1024 * 1024
"""What the compiled-schema cache may hold, estimated from the sizes of the texts it keeps."""
# tracemalloc on the schema corpus: a compiled schema holds about 3 bytes per byte of text
# (raw plus wire) for large schemas, and 8-35 KB per entry for small ones (validator objects).
_OBJECT_BYTES_PER_TEXT_BYTE = 4
_ENTRY_OVERHEAD_BYTES = 16 * 1024
_REFUSAL_OVERHEAD_BYTES = 512


@dataclass(frozen=True)
class CompiledSchema:
    """A caller's schema, ready to send and to validate against."""

    wire: JsonObject
    """The schema for ``output_config.format.schema``."""
    shape: Shape | None
    validator: Validator
    """The caller's full schema, on RE2 patterns and offline references."""
    declared: frozenset[str]
    """Every property name the caller's schema declares (others are not quoted in messages)."""
    weight: int = field(default=0)

    def decode(self, output: JsonObject) -> JsonObject:
        """The model's output (valid against :attr:`wire`) in the caller's shape."""
        decoded: JsonObject = decode(self.shape, output)
        return decoded

    def problems(self, data: Any, *, limit: int = 5) -> list[str]:
        """Rules of the caller's schema that ``data`` breaks: the JSON path and the rule only."""
        errors = sorted(self.validator.iter_errors(data), key=jsonschema.exceptions.relevance)
        return [problem(error, self.declared) for error in errors[:limit]]


def _declared(node: Any, found: set[str], depth: int = 0) -> set[str]:
    if isinstance(node, dict) and depth < 200:
        properties = node.get("properties")
        if isinstance(properties, dict):
            found.update(k for k in properties if len(k) <= 64)
        for _, sub in subschemas(node, ""):
            _declared(sub, found, depth + 1)
    return found


def _parse(raw: str) -> Any:
    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(raw, parse_constant=no_constant)
    except RecursionError:
        raise SchemaRefused("", "is nested too deeply") from None
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "a number or constant"
        raise SchemaRefused("", f"is not JSON ({reason})") from None


def _compile(raw: str) -> CompiledSchema:
    check_text(raw)
    schema = _parse(raw)
    if not isinstance(schema, dict):
        raise SchemaRefused("", "must be a JSON object (a JSON Schema document)")
    dialect = dialect_of(schema)
    check_metaschema(schema, dialect)
    audit(schema)
    wire, shape, unions, _ = lower(schema, draft7=dialect == "draft-07")
    if wire.get("type") != "object":
        raise SchemaRefused("", 'must describe an object: its top level needs "type": "object"')
    if len(unions) > MAX_UNION_TYPES:
        raise SchemaRefused(
            unions[MAX_UNION_TYPES],
            f"needs more than {MAX_UNION_TYPES} union types (anyOf, oneOf, type lists, nullable"
            " optional properties past 24) once lowered; structured outputs take 16",
        )
    size = len(json.dumps(wire, ensure_ascii=False).encode())
    if size > MAX_WIRE_BYTES:
        raise SchemaRefused("", f"takes more than {MAX_WIRE_BYTES} bytes once $refs are inlined")
    weight = (len(raw.encode()) + size) * _OBJECT_BYTES_PER_TEXT_BYTE + _ENTRY_OVERHEAD_BYTES
    return CompiledSchema(
        wire=wire,
        shape=shape,
        validator=validator(schema, dialect),
        declared=frozenset(_declared(schema, set())),
        weight=weight,
    )


@dataclass(frozen=True)
class _Refusal:
    pointer: str
    description: str


class SchemaCache:
    """Least recently used entries, bounded by their estimated bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[bytes, tuple[CompiledSchema | _Refusal, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> CompiledSchema | _Refusal | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[0]

    def put(self, key: bytes, entry: CompiledSchema | _Refusal, weight: int) -> None:
        with self._lock:
            if weight > self.max_bytes or key in self._entries:
                return
            self._entries[key] = (entry, weight)
            self.bytes += weight
            while self.bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self.bytes -= evicted

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


CACHE = SchemaCache(CACHE_BYTES)


def compile_schema(raw: str) -> CompiledSchema:
    """The compiled form of the caller's ``json_schema``; :class:`SchemaRefused` if refused."""
    check_text(raw)  # before hashing: an oversized text is neither hashed nor kept
    key = hashlib.sha256(raw.encode()).digest()
    found = CACHE.get(key)
    if isinstance(found, _Refusal):
        raise SchemaRefused(found.pointer, found.description)
    if found is not None:
        return found
    try:
        compiled = _compile(raw)
    except SchemaRefused as refused:
        weight = len(refused.pointer) + len(refused.description) + _REFUSAL_OVERHEAD_BYTES
        CACHE.put(key, _Refusal(refused.pointer, refused.description), weight)
        raise
    CACHE.put(key, compiled, compiled.weight)
    return compiled


_WIRE_CACHE = SchemaCache(8 * 1024 * 1024)


def wire_validator(schema: JsonObject) -> Validator:
    """A cached validator of a schema the service sends upstream (RE2, offline references)."""
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = hashlib.sha256(text.encode()).digest()
    found = _WIRE_CACHE.get(key)
    if isinstance(found, CompiledSchema):
        return found.validator
    made = output_validator(schema)
    weight = len(text) * _OBJECT_BYTES_PER_TEXT_BYTE + _ENTRY_OVERHEAD_BYTES
    _WIRE_CACHE.put(key, CompiledSchema(schema, None, made, frozenset(), weight), weight)
    return made
