"""Request validation with the Messages API's rules and messages.

Each rule raises an :class:`~tiergate.emulator.errors.ApiError` (400 ``invalid_request_error``, or
404 ``not_found_error`` for an unknown model) with a message saying what to change. Model limits
come from the emulator's own table (:mod:`.models`); schemas are checked against the structured
outputs subset by :mod:`.schema_subset`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import invalid_request
from .files import check_request as check_files
from .models import ModelLimits, resolve_model
from .prompt import Prompt, build_prompt
from .schema_subset import check_schemas

REJECTED_SAMPLING_PARAMETERS = ("temperature", "top_p", "top_k")
API_VERSION = "2026-10-21"
INFERENCE_GEOS = ("global", "us")
SCHEMA_WHERE = "output_config.format.schema"


@dataclass(frozen=True)
class MessageRequest:
    """A validated ``POST /v1/messages`` (or ``count_tokens``) body."""

    model: str
    max_tokens: int
    schema: dict[str, Any] | None
    prompt: Prompt
    limits: ModelLimits
    inference_geo: str | None = None
    """The request's own ``inference_geo``; None means the workspace default."""
    forced_tool: str | None = None
    """The tool ``tool_choice`` forces (``{"type": "tool", "name": ...}``): the answer is a
    ``tool_use`` block whose input follows that tool's ``input_schema``."""
    stream: bool = False
    """``stream: true``: the answer goes out as server-sent events."""

    @property
    def room_tokens(self) -> int:
        """Output tokens left in the context window after the prompt."""
        return self.limits.context_window_tokens - self.prompt.total_tokens


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
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise invalid_request(f"{SCHEMA_WHERE}: must be a JSON schema object")
    return schema


def _strict_tool_schemas(body: dict[str, Any]) -> list[tuple[str, Any]]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []  # build_prompt reports malformed tools
    return [
        (f"tools.{i}.input_schema", tool.get("input_schema"))
        for i, tool in enumerate(tools)
        if isinstance(tool, dict) and tool.get("strict") is True
    ]


def _check_schemas(body: dict[str, Any], schema: dict[str, Any] | None) -> None:
    """The subset and the complexity limits hold across every schema of the request."""
    schemas = _strict_tool_schemas(body)
    if schema is not None:
        schemas.append((SCHEMA_WHERE, schema))
    check_schemas(schemas)


def _max_tokens(body: dict[str, Any], model: str, limits: ModelLimits) -> int:
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise invalid_request("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise invalid_request("max_tokens: must be an integer greater than or equal to 1")
    if max_tokens > limits.max_output_tokens:
        raise invalid_request(
            f"max_tokens: {max_tokens} > {limits.max_output_tokens}, which is the maximum "
            f"allowed number of output tokens for {model}"
        )
    return max_tokens


def _forced_tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The forced tool's name and input schema, when ``tool_choice`` forces one."""
    choice = body.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "tool":
        return None
    name = choice.get("name")
    if not isinstance(name, str):
        raise invalid_request("tool_choice.name: Field required")
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name") == name:
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                raise invalid_request(f"tools: {name!r} has no input_schema object")
            return name, schema
    raise invalid_request(f"tool_choice.name: no tool is named {name!r}")


def _inference_geo(body: dict[str, Any]) -> str | None:
    geo = body.get("inference_geo")
    if geo is not None and geo not in INFERENCE_GEOS:
        raise invalid_request(f"inference_geo: must be one of {list(INFERENCE_GEOS)}, got {geo!r}")
    return geo


def validate_request(
    body: Any, *, models: Mapping[str, ModelLimits], count_only: bool = False
) -> MessageRequest:
    """Validate a request body; ``count_only`` skips the rules count_tokens does not apply.

    count_tokens counts a prompt of any length (it is how a caller finds out whether a prompt
    fits); ``/v1/messages`` refuses a prompt longer than the model's context window.
    """
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid_request("model: Field required")
    if not count_only:
        if not isinstance(body.get("stream", False), bool):
            raise invalid_request("stream: Input should be a valid boolean")
        for name in REJECTED_SAMPLING_PARAMETERS:
            if name in body:
                raise invalid_request(
                    f"{name}: this parameter is not supported in API version {API_VERSION}; "
                    "remove it from the request."
                )
        if body.get("max_tokens") is None:
            raise invalid_request("max_tokens: Field required")
    if "messages" not in body:
        raise invalid_request("messages: Field required")
    limits = models[resolve_model(model, models)]  # 404 before the heavier checks
    max_tokens = 0 if count_only else _max_tokens(body, model, limits)
    geo = _inference_geo(body)
    schema = _output_schema(body)
    _check_schemas(body, schema)
    forced = _forced_tool(body)
    if forced is not None and schema is None:
        schema = forced[1]
    prompt = build_prompt(body)
    window = limits.context_window_tokens
    check_files(prompt.files, window)
    if not count_only and prompt.total_tokens > window:
        raise invalid_request(
            f"prompt is too long: {prompt.total_tokens} tokens > {window} maximum"
        )
    tool = forced[0] if forced is not None else None
    stream = bool(body.get("stream", False)) and not count_only
    return MessageRequest(model, max_tokens, schema, prompt, limits, geo, tool, stream)
