"""Request validation shared by the tasks: collect every field violation, then reject once.

violations = Violations()
violations.text("text", request.text)
violations.raise_if_any()   # InvalidRequest with a BadRequest field violation per problem
"""

from __future__ import annotations

from collections.abc import Iterable

from tiergate.errors import FieldViolation, InvalidRequest

# Per-field ceiling for stable context (instructions, examples); the context-window check
# (``tiergate.calls.sizing``) is what really bounds a prompt.
MAX_CONTEXT_CHARS = 800_000


class Violations:
    """Field violations of one request, in the order found."""

    def __init__(self) -> None:
        self._found: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._found.append(FieldViolation(field, description))

    def text(self, field: str, value: str, *, max_chars: int | None = None) -> None:
        """A required, non-blank string."""
        if not value.strip():
            self.add(field, "must not be empty or blank")
        elif max_chars is not None and len(value) > max_chars:
            self.add(field, f"must be at most {max_chars} characters (got {len(value)})")

    def optional_text(self, field: str, value: str, *, max_chars: int) -> None:
        if len(value) > max_chars:
            self.add(field, f"must be at most {max_chars} characters (got {len(value)})")

    def count(self, field: str, n: int, *, least: int, most: int) -> None:
        if n < least:
            self.add(field, f"needs at least {least} entr{'y' if least == 1 else 'ies'} (got {n})")
        elif n > most:
            self.add(field, f"allows at most {most} entries (got {n})")

    def unique(self, field: str, names: Iterable[str], *, key: str = "name") -> None:
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in seen:
                self.add(f"{field}[{i}].{key}", f"duplicates {field}[{seen[name]}].{key}")
            else:
                seen[name] = i

    def raise_if_any(self) -> None:
        if self._found:
            raise InvalidRequest(self._found)
