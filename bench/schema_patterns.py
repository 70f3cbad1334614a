"""Caller patterns in output validation: RE2 against a backtracking pattern.

.venv/bin/python -m bench.schema_patterns

Validates a 50,000-character output, matching and not matching ``^(a+)+$``, through the
compiled caller schema (what Extract's check runs), and prints the time per validation.
"""

from __future__ import annotations

import json
import time

from tiergate.schema import compile_schema

PATTERN = "^(a+)+$"
LENGTH = 50_000
ROUNDS = 20


def main() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": PATTERN}}}
    compiled = compile_schema(json.dumps(schema))
    for label, text in (("matching", "a" * LENGTH), ("not matching", "a" * LENGTH + "b")):
        started = time.perf_counter()
        for _ in range(ROUNDS):
            problems = compiled.problems({"code": text})
        per_call_ms = (time.perf_counter() - started) / ROUNDS * 1000
        print(f"{label:>12}: {len(text)} chars, {per_call_ms:.2f} ms per validation, {problems}")


if __name__ == "__main__":
    main()
