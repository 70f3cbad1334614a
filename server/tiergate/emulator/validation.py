"""Request validation with the Messages API's rules and messages.

Each rule raises an :class:`~tiergate.emulator.errors.ApiError` (400 ``invalid_request_error``, or
404 ``not_found_error`` for an unknown model) with a message saying what to change.

    >>> validate_schema({"type": "object", "properties": {}})
    Traceback (most recent call last):
    ...
    tiergate.emulator.errors.ApiError: 400 invalid_request_error: ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .cache import resolve_model
from .errors import invalid_request
from .prompt import Prompt, build_prompt

REJECTED_SAMPLING_PARAMETERS = ("temperature", "top_p", "top_k")
API_VERSION = "2026-10-21"


@dataclass(frozen=True)
class MessageRequest:
    """A validated ``POST /v1/messages`` (or ``count_tokens``) body."""

    model: str
    max_tokens: int
    schema: dict[str, Any] | None
    prompt: Prompt


def _walk_schema(node: Any, path: str, refs: dict[str, Any], stack: tuple[str, ...]) -> None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            _walk_schema(item, f"{path}/{i}", refs, stack)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#"):
            raise invalid_request(f"output_config.format.schema: only local $ref supported: {ref}")
        if ref in stack:
            raise invalid_request(
                f"output_config.format.schema: recursive schemas are not supported ({ref})"
            )
        target = _pointer(refs, ref)
        _walk_schema(target, ref, refs, (*stack, ref))
    if "enum" in node and not (isinstance(node["enum"], list) and node["enum"]):
        raise invalid_request(
            f"output_config.format.schema: enum must be a non-empty list ({path})"
        )
    is_object = node.get("type") == "object" or "properties" in node
    if is_object and node.get("additionalProperties") is not False:
        raise invalid_request(
            f"output_config.format.schema: 'additionalProperties' must be explicitly set to "
            f"false for object types (at {path or '#'})"
        )
    for key in ("properties", "$defs", "definitions"):
        value = node.get(key)
        if isinstance(value, dict):
            for name, sub in value.items():
                _walk_schema(sub, f"{path}/{key}/{name}", refs, stack)
    for key in ("items", "anyOf", "allOf", "oneOf"):
        if key in node:
            _walk_schema(node[key], f"{path}/{key}", refs, stack)


def _pointer(root: dict[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        if not part:
            continue
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            raise invalid_request(f"output_config.format.schema: unresolvable $ref {ref}")
        node = node[key]
    return node


def validate_schema(schema: Any) -> dict[str, Any]:
    """Check a structured-output schema against the API's supported subset."""
    if not isinstance(schema, dict):
        raise invalid_request("output_config.format.schema: must be a JSON schema object")
    _walk_schema(schema, "", schema, ())
    return schema


def _output_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    output_config = body.get("output_config")
    if output_config is None:
        return None
    if not isinstance(output_config, dict):
        raise invalid_request("output_config: must be an object")
    fmt = output_config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise invalid_request("output_config.format.type: must be 'json_schema'")
    return validate_schema(fmt.get("schema"))


def validate_request(
    body: Any,
    *,
    known_models: Mapping[str, int],
    max_output_tokens: int,
    context_window_tokens: int,
    count_only: bool = False,
) -> MessageRequest:
    """Validate a request body; ``count_only`` skips the rules count_tokens does not apply."""
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid_request("model: Field required")
    max_tokens = body.get("max_tokens")
    if not count_only:
        if body.get("stream"):
            raise invalid_request(
                "stream: this emulator does not stream; send stream=false (non-streaming calls)."
            )
        for name in REJECTED_SAMPLING_PARAMETERS:
            if name in body:
                raise invalid_request(
                    f"{name}: this parameter is not supported in API version {API_VERSION}; "
                    "remove it from the request."
                )
        if max_tokens is None:
            raise invalid_request("max_tokens: Field required")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise invalid_request("max_tokens: must be an integer greater than or equal to 1")
        if max_tokens > max_output_tokens:
            raise invalid_request(
                f"max_tokens: {max_tokens} > {max_output_tokens}, which is the maximum allowed "
                f"number of output tokens for {model}"
            )
    if "messages" not in body:
        raise invalid_request("messages: Field required")
    resolve_model(model, known_models)  # 404 before the heavier checks
    schema = _output_schema(body)
    prompt = build_prompt(body)
    if prompt.total_tokens > context_window_tokens:
        raise invalid_request(
            f"prompt is too long: {prompt.total_tokens} tokens > {context_window_tokens} maximum"
        )
    return MessageRequest(model, int(max_tokens or 0), schema, prompt)
