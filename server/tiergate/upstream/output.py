"""What the model wrote, judged: the answer read from a message, checked, and asked again.

The answer is a message's first text block, or the input of the answer tool where a road asks
by forced tool use. It is parsed as JSON, or read as a person would read it where the call
asked for a bare answer, then validated against the schema sent upstream and the task's own
check. What fails is a :class:`BadOutput`: a re-ask may fix it, and :func:`reask_params` says
how (more room after a truncation, else a correction after the bad answer). A refusal, or a
prompt that left no room to answer, is a stop no re-ask can fix (:func:`stop_error`).

Error messages never quote the model's output: a schema violation is named by its path and
failing keyword.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
from anthropic.types import Message

from tiergate import errors
from tiergate.calls.bare import read_bare
from tiergate.calls.prompt import JsonObject, Prompt
from tiergate.ledger import ModelFacts
from tiergate.schema import wire_validator
from tiergate.upstream.answers import is_text

OutputCheck = Callable[[JsonObject], list[str]]
SizeField = Callable[[], str]
"""The request field to name when the prompt is too large (computed only then)."""

# The longest piece of a validator's message a re-ask quotes back to the model.
_PROBLEM_CHARS = 300
# Keys of the instance path in an error message: bounded, since open maps let the model pick them.
_PATH_CHARS = 120


class BadOutput(Exception):
    """The model answered, but not with something usable; a re-ask may fix it.

    ``problem`` is told to the model in the re-ask; ``public`` goes to the caller and never
    quotes the output; ``rule`` identifies the broken rule, to tell a repeat from chance.
    """

    def __init__(
        self,
        problem: str,
        *,
        public: str | None = None,
        rule: str | None = None,
        truncated: bool = False,
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.public = problem if public is None else public
        self.rule = self.public if rule is None else rule
        self.truncated = truncated


def stop_error(message: Message, size_field: SizeField) -> errors.TiergateError | None:
    """The error of a stop no re-ask can fix: a refusal, or a prompt that left no room."""
    if message.stop_reason == "refusal":
        details = message.stop_details
        category = getattr(details, "category", None) or "unspecified"
        if not is_text(str(category)):
            category = "unspecified"
        return errors.ModelRefused(
            f"the model refused the request (category: {category})",
            metadata={"category": str(category)},
        )
    if message.stop_reason == "model_context_window_exceeded":
        # The prompt fit but left too little room to answer: a longer re-ask cannot help.
        return errors.RequestTooLarge(
            [
                errors.FieldViolation(
                    size_field(),
                    "the prompt leaves the model too little of its context window to answer",
                )
            ]
        )
    return None


def usable_output(
    message: Message, prompt: Prompt, check: OutputCheck, size_field: SizeField
) -> JsonObject:
    """The output of one answered call (a batch item's), as :meth:`ModelClient.complete` would
    accept it, with no re-ask: raises ``ModelRefused``, ``RequestTooLarge`` or
    ``OutputInvalid`` (without RetryInfo: the call is already paid)."""
    stopped = stop_error(message, size_field)
    if stopped is not None:
        raise stopped
    try:
        return parse_output(
            message, prompt.output_schema, check, prompt.bare_key, prompt.bare_reading
        )
    except BadOutput as bad:
        raise errors.OutputInvalid(f"the model's output was unusable: {bad.public}") from None


ANSWER_TOOL = "answer"
"""The one tool whose input is the answer, where a road asks by forced tool use."""


def answer_text(message: Message) -> str | None:
    # Newer models may open with a thinking block: the answer is the first text block, or
    # the input of the answer tool where the road asked by forced tool use.
    for block in message.content:
        if block.type == "text":
            return block.text
        if block.type == "tool_use" and block.name == ANSWER_TOOL:
            return json.dumps(block.input)
    return None


def parse_output(
    message: Message,
    schema: JsonObject,
    check: OutputCheck,
    bare_key: str | None = None,
    bare_reading: Callable[[str], JsonObject] | None = None,
) -> JsonObject:
    text = answer_text(message)
    if message.stop_reason == "max_tokens":
        raise BadOutput("output truncated at max_tokens", truncated=True)
    if not text or not text.strip():
        raise BadOutput("empty output")
    if bare_key is not None:
        # A plain-text answer is the value itself, read as a person would read it (a model
        # may still answer with a JSON object: its value for the key is taken); the schema
        # below judges either.
        found = _json_object(text)
        output: Any
        if found is not None and bare_key in found:
            output = found if bare_reading is not None else {bare_key: found[bare_key]}
        elif bare_reading is not None:
            output = bare_reading(text)
        else:
            output = {bare_key: read_bare(text, schema.get("properties", {}).get(bare_key))}
    else:
        try:
            output = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadOutput(f"output is not JSON ({exc.msg})") from None
    if not isinstance(output, dict):
        raise BadOutput("output is not a JSON object")
    # No model writes half a surrogate pair: only a \u escape, or one the SDK already decoded,
    # can bring it, so the output is walked only then.
    if ("\\u" in text or not is_text(text)) and not _unicode(output):
        raise BadOutput("output holds a lone surrogate escape, which is no text")
    error = jsonschema.exceptions.best_match(wire_validator(schema).iter_errors(output))
    if error is not None:
        # The validator's message quotes the output; the caller gets the path and keyword only.
        where = f"output does not match the schema at {error.json_path[:_PATH_CHARS]}"
        raise BadOutput(
            f"{where}: {error.message[:_PROBLEM_CHARS]}", public=f"{where} ({error.validator})"
        )
    problems = check(output)
    if problems:
        # Task checks may name values from the output or the request: kept from the caller.
        raise BadOutput(
            "; ".join(problems),
            public=f"output failed {len(problems)} of the task's checks",
            rule="; ".join(problems),
        )
    return output


def _unicode(output: JsonObject) -> bool:
    """Whether every string in ``output`` is text UTF-8 can carry."""
    return is_text(json.dumps(output, ensure_ascii=False))


def _json_object(text: str) -> JsonObject | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        found = json.loads(text)
    except json.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def output_invalid(
    bad: BadOutput, previous: BadOutput | None, at_limit: bool, billed_calls: int
) -> errors.OutputInvalid:
    """OUTPUT_INVALID, with RetryInfo only when another try may help."""
    repeated = previous is not None and previous.rule == bad.rule
    hopeless = at_limit or repeated
    return errors.OutputInvalid(
        f"the model's output was unusable after {billed_calls} billed calls: {bad.public}"
        + (" (the same problem every time)" if repeated else "")
        + (" (at the model's largest output)" if at_limit else ""),
        retry_after_s=None if hopeless else errors.DEFAULT_RETRY_AFTER_S,
    )


def reask_params(
    params: dict[str, Any], message: Message, bad: BadOutput, facts: ModelFacts
) -> dict[str, Any]:
    """The next billed call: more room when truncated, else a correction after the bad answer."""
    if bad.truncated:
        return {**params, "max_tokens": min(params["max_tokens"] * 2, facts.max_output_tokens)}
    first = params["messages"][0]
    correction = {
        "type": "text",
        "text": f"That answer was not usable: {bad.problem}. Answer again with only a JSON"
        " object that follows the schema and the instructions.",
    }
    answer = answer_text(message) or ""
    if not answer.strip():
        # The API rejects blank text blocks: a blank answer is not echoed; the correction
        # follows the request in the same user turn, after the last breakpoint.
        return {**params, "messages": [{**first, "content": [*first["content"], correction]}]}
    return {
        **params,
        "messages": [
            first,
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
            {"role": "user", "content": [correction]},
        ],
    }
