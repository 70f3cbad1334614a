"""The assistant message an answer becomes: the scripted reply or the heuristic one, and the
``message`` object with its usage.

A scripted reply (:mod:`.scripts`) is sent verbatim; otherwise the responder's answer
(:mod:`.responder`), broken by an output fault when one applies, stopped at the context
window when the prompt left less room than ``max_tokens``.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .cache import CachePlan
from .evidence import Evidence
from .faults import Fault, apply_output_fault
from .responder import Output, respond
from .scripts import Script
from .tokens import truncate_to_tokens
from .validation import MessageRequest


@dataclass(frozen=True)
class Reply:
    """What the assistant message says, before usage is added."""

    content: list[dict[str, Any]]
    stop_reason: str
    stop_details: dict[str, Any] | None
    output_tokens: int
    stop_sequence: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    """Usage fields that replace the computed ones."""
    headers: Mapping[str, str] = field(default_factory=dict)

    def as_tool_use(self, name: str) -> Reply:
        """The answer as the forced tool's call: a JSON object text becomes its input."""
        texts = [block["text"] for block in self.content if block.get("type") == "text"]
        try:
            value = json.loads(texts[0]) if len(texts) == 1 else None
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict) or self.stop_reason != "end_turn":
            return self  # a broken answer stays broken text, for the caller to judge
        block = {"type": "tool_use", "id": f"toolu_emu_{uuid.uuid4().hex[:24]}", "name": name}
        return dataclasses.replace(
            self, content=[{**block, "input": value}], stop_reason="tool_use"
        )

    @classmethod
    def heuristic(cls, output: Output) -> Reply:
        content = [] if output.text is None else [{"type": "text", "text": output.text}]
        return cls(content, output.stop_reason, output.stop_details, output.output_tokens)

    @classmethod
    def scripted(cls, script: Script) -> Reply:
        details = None if script.stop_details is None else dict(script.stop_details)
        return cls(
            script.blocks(),
            script.stop_reason,
            details,
            script.output_tokens(),
            script.stop_sequence,
            script.usage,
            script.headers,
        )


def reply_for(message: MessageRequest, fault: Fault | None, script: Script | None) -> Reply:
    """The scripted reply verbatim, else the heuristic answer within the model's limits."""
    if script is not None:
        return Reply.scripted(script)
    prompt = message.prompt
    evidence = Evidence(prompt.request_text, prompt.context_text, prompt.question)
    output = apply_output_fault(fault, respond(message.schema, evidence, message.max_tokens))
    room = message.room_tokens
    if output.text is not None and output.output_tokens > room:
        # The prompt fit but prompt + max_tokens did not: the answer stops at the window.
        output = Output(truncate_to_tokens(output.text, room), "model_context_window_exceeded")
    return Reply.heuristic(output)


def message_body(
    message: MessageRequest, plan: CachePlan, reply: Reply, default_geo: str
) -> dict[str, Any]:
    """The ``message`` object of ``reply``: usage from the cache plan, the reply's own usage
    fields over it; ``inference_geo`` is the request's, else the workspace's default."""
    usage: dict[str, Any] = {
        "input_tokens": plan.input_tokens,
        "output_tokens": reply.output_tokens,
        "cache_creation_input_tokens": plan.creation_tokens,
        "cache_read_input_tokens": plan.read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": plan.creation_5m_tokens,
            "ephemeral_1h_input_tokens": plan.creation_1h_tokens,
        },
        "service_tier": "standard",
        "inference_geo": message.inference_geo or default_geo,
    }
    return {
        "id": f"msg_emu_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": message.model,
        "content": reply.content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "stop_details": reply.stop_details,
        "usage": {**usage, **reply.usage},
    }
