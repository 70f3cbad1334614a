"""The assistant's text: schema-valid, input-aware heuristics (not a language model).

With ``output_config.format = {"type": "json_schema", "schema": S}`` the answer is a JSON value
valid against S, every property filled from the request's text, keyed on property names,
types, formats and descriptions (:mod:`.structured`, its leaves :mod:`.leaves`): enums pick the
value whose words overlap the request most (a ``confidence`` beside one follows that
evidence), ``summary`` takes the leading sentences of the prose (headings left out),
``quote`` copies the best matching sentence verbatim and ``document_id`` names its document,
``flagged`` and its ``rationale`` say which category terms or threats matched
(:mod:`.verdicts`), ``steps``/``answer`` work out the arithmetic asked (:mod:`.arithmetic`),
and ids, emails, dates, amounts, quantities, names, phones, URLs and invoice lines come from
:mod:`.fields`; an optional property the text gives nothing for is left out; ``cite`` beside
numbered document sentences holds the best sentence's number. Without a schema it answers in
short plain text, as a model follows plain instructions (:mod:`.plain`). An answer longer
than ``max_tokens`` is cut there. Same request, same output.

    >>> from tiergate.emulator.evidence import Evidence
    >>> ev = Evidence("The invoice is late.", "", "The invoice is late.")
    >>> respond({"type": "string", "enum": ["shipping", "invoice"]}, ev, 100).text
    '"invoice"'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .evidence import Evidence
from .plain import plain_text
from .structured import fill
from .tokens import count_tokens, truncate_to_tokens


@dataclass(frozen=True)
class Output:
    """What the assistant message carries."""

    text: str | None
    """The text block's text; None means ``content: []``."""
    stop_reason: str
    stop_details: dict[str, Any] | None = None

    @property
    def output_tokens(self) -> int:
        """Billed output tokens."""
        return count_tokens(self.text) if self.text is not None else 0


def respond(schema: dict[str, Any] | None, evidence: Evidence, max_tokens: int) -> Output:
    """Build the answer, cut to ``max_tokens`` tokens (stop_reason ``max_tokens``) when longer."""
    if schema is None:
        text = plain_text(evidence)
    else:
        text = json.dumps(fill(schema, evidence), ensure_ascii=False)
    if count_tokens(text) > max_tokens:
        return Output(truncate_to_tokens(text, max_tokens), "max_tokens")
    return Output(text, "end_turn")
