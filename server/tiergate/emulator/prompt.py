"""A Messages API request seen as the ordered segments the prefix cache and the counter use.

Segments come in prefix order: the structured-output schema (if any), then tools, system blocks and
every content block of every message (string content is one text block). Each segment knows its
token cost, so the prompt total is the sum of the segments and the usage split always adds up.

    >>> prompt = build_prompt({"messages": [{"role": "user", "content": "Hi"}]})
    >>> prompt.total_tokens
    8
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from .errors import invalid_request
from .files import FileBlock, is_file_block, read_block
from .tokens import (
    BLOCK_OVERHEAD_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    SCHEMA_OVERHEAD_TOKENS,
    TOOL_OVERHEAD_TOKENS,
    canonical_json,
    count_tokens,
)

Ttl = Literal["5m", "1h"]
SegmentKind = Literal["schema", "tool", "system", "message"]
MAX_BREAKPOINTS = 4


@dataclass(frozen=True)
class Segment:
    """One cacheable unit of the prompt."""

    kind: SegmentKind
    identity: str
    """Canonical JSON of the segment without ``cache_control``: what the cache matches on."""
    tokens: int
    """Token cost, overheads included."""
    ttl: Ttl | None
    """The breakpoint TTL when this segment ends a cache breakpoint, else None."""
    text: str
    """Plain text the responder reads (empty for tools and the schema)."""
    role: str | None = None
    message_index: int | None = None
    file: FileBlock | None = None
    """What an image or document block holds (its text layer joins the request text)."""


@dataclass(frozen=True)
class Prompt:
    """The segments of a request plus the texts the responder reads."""

    segments: tuple[Segment, ...]
    request_text: str
    """The per-request text: the last user message after its last breakpoint."""
    context_text: str
    """Stable context: system and every other user block."""
    question: str
    """The last text block of the last user message."""

    @property
    def files(self) -> list[tuple[str, FileBlock]]:
        """Every image and document block, with where it is (``messages.0.content.1``)."""
        found = []
        for segment in self.segments:
            if segment.file is not None:
                found.append((f"messages.{segment.message_index}", segment.file))
        return found

    @property
    def total_tokens(self) -> int:
        """The whole prompt: input + cache write + cache read tokens always sum to this."""
        return sum(segment.tokens for segment in self.segments)

    @property
    def breakpoints(self) -> list[int]:
        """Indices of the segments that end a cache breakpoint, in prompt order."""
        return [i for i, segment in enumerate(self.segments) if segment.ttl is not None]


def _ttl_of(cache_control: Any, where: str) -> Ttl | None:
    if cache_control is None:
        return None
    if not isinstance(cache_control, dict) or cache_control.get("type") != "ephemeral":
        raise invalid_request(f"{where}.cache_control: type must be 'ephemeral'")
    ttl = cache_control.get("ttl", "5m")
    if ttl not in ("5m", "1h"):
        raise invalid_request(f"{where}.cache_control.ttl: must be '5m' or '1h', got {ttl!r}")
    return cast(Ttl, ttl)


def _without_cache_control(block: dict[str, Any]) -> dict[str, Any]:
    # Matching is byte-exact on content: moving a breakpoint must not change identities.
    return {key: value for key, value in block.items() if key != "cache_control"}


def _block_text(block: dict[str, Any]) -> str:
    if block.get("type") == "text":
        text = block.get("text")
        return text if isinstance(text, str) else ""
    source = block.get("source")
    if block.get("type") == "document" and isinstance(source, dict):
        data = source.get("data")
        if source.get("type") == "text" and isinstance(data, str):
            return data
    return ""


def _block_tokens(block: dict[str, Any]) -> int:
    if block.get("type") == "text":
        return count_tokens(_block_text(block)) + BLOCK_OVERHEAD_TOKENS
    # Non-text blocks (images, documents, tool results) cost their serialised form.
    return count_tokens(canonical_json(_without_cache_control(block))) + BLOCK_OVERHEAD_TOKENS


def _title_tokens(block: dict[str, Any]) -> int:
    title = block.get("title")
    return count_tokens(title) if isinstance(title, str) else 0


BLANK_TEXT = "text content blocks must contain non-whitespace text"


def _content_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        if not content.strip():
            raise invalid_request(f"{where}: {BLANK_TEXT}")
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        raise invalid_request(f"{where}: must be a non-empty string or list of blocks")
    blocks: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid_request(f"{where}.{i}: each block must be an object with a type")
        if block["type"] == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise invalid_request(f"{where}.{i}.text: Field required")
            if not text.strip():
                raise invalid_request(f"{where}.{i}.text: {BLANK_TEXT}")
        blocks.append(block)
    return blocks


def _schema_segment(body: dict[str, Any]) -> Segment | None:
    output_config = body.get("output_config")
    if not isinstance(output_config, dict) or output_config.get("format") is None:
        return None
    fmt = output_config["format"]
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    identity = canonical_json({"kind": "schema", "schema": schema})
    tokens = count_tokens(canonical_json(schema)) + SCHEMA_OVERHEAD_TOKENS
    return Segment("schema", identity, tokens, None, "")


def _tool_segments(body: dict[str, Any]) -> list[Segment]:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise invalid_request("tools: must be a list")
    segments = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid_request(f"tools.{i}: must be an object")
        bare = _without_cache_control(tool)
        tokens = count_tokens(canonical_json(bare)) + TOOL_OVERHEAD_TOKENS
        ttl = _ttl_of(tool.get("cache_control"), f"tools.{i}")
        identity = canonical_json({"kind": "tool", "tool": bare})
        segments.append(Segment("tool", identity, tokens, ttl, ""))
    return segments


def _system_segments(body: dict[str, Any]) -> list[Segment]:
    system = body.get("system")
    if system is None or system == []:
        return []
    blocks = _content_blocks(system, "system")
    segments = []
    for i, block in enumerate(blocks):
        ttl = _ttl_of(block.get("cache_control"), f"system.{i}")
        identity = canonical_json({"kind": "system", "block": _without_cache_control(block)})
        segments.append(Segment("system", identity, _block_tokens(block), ttl, _block_text(block)))
    return segments


def _message_segments(messages: list[Any]) -> list[Segment]:
    segments = []
    for m, message in enumerate(messages):
        where = f"messages.{m}"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise invalid_request(f"{where}.role: must be 'user' or 'assistant'")
        role = str(message["role"])
        for b, block in enumerate(_content_blocks(message.get("content"), f"{where}.content")):
            ttl = _ttl_of(block.get("cache_control"), f"{where}.content.{b}")
            bare = _without_cache_control(block)
            identity = canonical_json({"kind": "message", "m": m, "role": role, "block": bare})
            # The per-message overhead rides on the first block so segments sum to the total.
            overhead = MESSAGE_OVERHEAD_TOKENS if b == 0 else 0
            file = read_block(block, f"{where}.content.{b}") if is_file_block(block) else None
            if file is not None:
                tokens = file.tokens + _title_tokens(block) + BLOCK_OVERHEAD_TOKENS + overhead
                segment = Segment("message", identity, tokens, ttl, file.text, role, m, file)
            else:
                tokens = _block_tokens(block) + overhead
                segment = Segment("message", identity, tokens, ttl, _block_text(block), role, m)
            segments.append(segment)
    return segments


def _with_automatic_breakpoint(segments: list[Segment], cache_control: Any) -> list[Segment]:
    ttl = _ttl_of(cache_control, "cache_control")
    if ttl is None or not segments or segments[-1].ttl is not None:
        return segments
    last = segments[-1]
    automatic = Segment(
        last.kind, last.identity, last.tokens, ttl, last.text, last.role, last.message_index
    )
    return [*segments[:-1], automatic]


def _check_breakpoints(segments: list[Segment]) -> None:
    ttls = [segment.ttl for segment in segments if segment.ttl is not None]
    if len(ttls) > MAX_BREAKPOINTS:
        raise invalid_request(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(ttls)}."
        )
    seen_5m = False
    for ttl in ttls:
        seen_5m = seen_5m or ttl == "5m"
        if ttl == "1h" and seen_5m:
            raise invalid_request(
                "A 'ttl'='1h' cache_control block must not come after a 'ttl'='5m' "
                "cache_control block (1h breakpoints must come before 5m ones)."
            )


def _texts(segments: list[Segment]) -> tuple[str, str, str]:
    user_blocks = [
        i for i, s in enumerate(segments) if s.kind == "message" and s.role == "user" and s.text
    ]
    if not user_blocks:
        context = "\n\n".join(s.text for s in segments if s.text)
        return "", context, ""
    last_message = segments[user_blocks[-1]].message_index
    in_last = [i for i in user_blocks if segments[i].message_index == last_message]
    # The per-request part of a cache-friendly prompt follows the last breakpoint.
    after = [i for i in in_last if i > max((j for j in in_last if segments[j].ttl), default=-1)]
    # The files of the last user message are what it asks about, cached or not.
    files = [i for i in in_last if segments[i].file is not None and i not in after]
    request = files + after or in_last[-1:]
    context_ids = [
        i
        for i, s in enumerate(segments)
        if s.text and i not in request and (s.kind == "system" or s.role == "user")
    ]
    request_text = "\n\n".join(segments[i].text for i in request)
    context_text = "\n\n".join(segments[i].text for i in context_ids)
    return request_text, context_text, segments[in_last[-1]].text


def build_prompt(body: dict[str, Any]) -> Prompt:
    """Split a request body into segments; raise a 400 ``ApiError`` on malformed parts."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("messages: Field required (a non-empty list of messages)")
    segments: list[Segment] = []
    schema = _schema_segment(body)
    if schema is not None:
        segments.append(schema)
    segments += _tool_segments(body)
    segments += _system_segments(body)
    segments += _message_segments(messages)
    segments = _with_automatic_breakpoint(segments, body.get("cache_control"))
    _check_breakpoints(segments)
    request_text, context_text, question = _texts(segments)
    return Prompt(tuple(segments), request_text, context_text, question)
