"""Caller JSON Schemas: compiled to what structured outputs accept, validated in full.

See :mod:`tiergate.schema.compiler` for the steps, :mod:`tiergate.schema.lowering` for what
each construct becomes, and :mod:`tiergate.schema.patterns` for linear-time patterns.
"""

from __future__ import annotations

from tiergate.schema.compiler import CACHE, CompiledSchema, compile_schema, wire_validator
from tiergate.schema.limits import MAX_SCHEMA_BYTES, SchemaRefused

__all__ = [
    "CACHE",
    "MAX_SCHEMA_BYTES",
    "CompiledSchema",
    "SchemaRefused",
    "compile_schema",
    "wire_validator",
]
