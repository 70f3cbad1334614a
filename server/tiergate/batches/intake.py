"""A ``CreateBatch`` checked and laid out before anything goes upstream.

Every item is validated by its own task, as the unary RPC would validate it; one invalid item
refuses the whole batch (INVALID_ARGUMENT), each violation named by item index, e.g.
``items[3].request.classify.labels[0].name``, so a caller fixes everything in one round trip and
never pays for half a batch. Valid items are rendered exactly as the unary path renders them
(same breakpoints, so caching applies) and split into upstream batches within the API's limits.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tiergate import errors
from tiergate.calls import sizing
from tiergate.calls.prompt import render_params
from tiergate.config import Settings
from tiergate.ledger import PriceTable
from tiergate.tasks import TASKS, Task
from tiergate.tasks.task import Serving
from tiergate.v1 import batch_service_pb2

from .store import Chunk, ItemRecord

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Upstream custom ids are the item's index: the caller's own id never needs to meet the API's
# pattern twice, and a result maps back to its item without a lookup table.
UPSTREAM_ID_PREFIX = "item-"
# JSON framing of one request in the upstream body, beyond its params and custom id.
_FRAMING_BYTES = 64


@dataclass(frozen=True)
class Intake:
    """A valid batch, ready for the store."""

    batch_id: str
    items: list[ItemRecord]
    chunks: list[Chunk]


def task_of(item: batch_service_pb2.BatchItem) -> tuple[str, Task[Any, Any], Any] | None:
    """The item's oneof field name, its task and its request; None when no request is set."""
    field = item.WhichOneof("request")
    if field is None:
        return None
    request = getattr(item, field)
    task = next(t for t in TASKS.values() if t.request_type is type(request))
    return field, task, request


def upstream_params(
    task: Task[Any, Any], request: Any, settings: Settings, prices: PriceTable
) -> dict[str, Any]:
    """The Messages API params of one item: what the unary RPC would send."""
    facts = prices.facts(settings.model_for(task.tier))
    # A batch's items may be answered over an hour or more, past a 5-minute entry's life:
    # with the automatic lifetime, batches write 1-hour entries.
    ttl = "1h" if settings.cache_ttl == "auto" else settings.cache_ttl
    return render_params(task.prompt(request), facts=facts, ttl=ttl)


def take(
    create: batch_service_pb2.CreateBatchRequest, settings: Settings, prices: PriceTable
) -> Intake:
    """Validate ``create`` whole and split it; raises ``InvalidRequest`` naming every bad item."""
    items = create.items
    if not items:
        raise errors.InvalidRequest([errors.FieldViolation("items", "at least one item")])
    if len(items) > settings.batch_max_items:
        raise errors.InvalidRequest(
            [errors.FieldViolation("items", f"at most {settings.batch_max_items} items")]
        )
    violations: list[errors.FieldViolation] = []
    seen: set[str] = set()
    records: list[ItemRecord] = []
    sizes: list[int] = []
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not _CUSTOM_ID.match(item.custom_id):
            violations.append(
                errors.FieldViolation(f"{where}.custom_id", "1 to 64 letters, digits, '_' or '-'")
            )
        elif item.custom_id in seen:
            violations.append(
                errors.FieldViolation(f"{where}.custom_id", "repeats an earlier item's custom_id")
            )
        seen.add(item.custom_id)
        found = task_of(item)
        if found is None:
            violations.append(errors.FieldViolation(f"{where}.request", "one task request"))
            continue
        field, task, request = found
        problems = _problems(task, request, settings, prices)
        if problems:
            violations.extend(
                errors.FieldViolation(_join(f"{where}.request.{field}", v.field), v.description)
                for v in problems
            )
            continue
        params = upstream_params(task, request, settings, prices)
        sizes.append(len(json.dumps(params, ensure_ascii=False).encode()) + _FRAMING_BYTES)
        records.append(
            ItemRecord(index, item.custom_id, task.rpc, request.SerializeToString(), chunk=0)
        )
    if violations:
        raise errors.InvalidRequest(violations)
    chunks = split(sizes, settings.batch_upstream_max_items, settings.batch_upstream_max_bytes)
    for chunk in chunks:
        for i in range(chunk.first, chunk.last + 1):
            records[i] = dataclasses.replace(records[i], chunk=chunk.number)
    return Intake(batch_id=uuid.uuid4().hex, items=records, chunks=chunks)


def split(sizes: Sequence[int], max_items: int, max_bytes: int) -> list[Chunk]:
    """Consecutive runs of items, each within ``max_items`` and ``max_bytes``."""
    chunks: list[Chunk] = []
    first, total = 0, 0
    for index, size in enumerate(sizes):
        if index > first and (index - first >= max_items or total + size > max_bytes):
            chunks.append(Chunk(len(chunks), first, index - 1))
            first, total = index, 0
        total += size
    chunks.append(Chunk(len(chunks), first, len(sizes) - 1))
    return chunks


def _problems(
    task: Task[Any, Any], request: Any, settings: Settings, prices: PriceTable
) -> list[errors.FieldViolation]:
    """The item's violations: its task's validation, its size, and a prompt too large."""
    limit = settings.upload_max_bytes if task.admit else settings.max_message_bytes
    if request.ByteSize() > limit:
        return [
            errors.FieldViolation(
                sizing.largest_field(request),
                f"the item exceeds {limit} bytes",
            )
        ]
    facts = prices.facts(settings.model_for(task.tier))
    try:
        task.validate(request)
        if task.admit is not None:
            task.admit(request, Serving(facts, settings.upload_max_bytes))
    except errors.InvalidRequest as err:
        return list(err.violations)
    prompt = task.prompt(request)
    if sizing.assess(prompt, facts) is sizing.Fit.TOO_LARGE:
        tokens = sizing.prompt_bounds(prompt, facts).low
        refusal = sizing.too_large(request, facts, prompt.max_tokens, tokens=tokens, counted=False)
        return list(refusal.violations)
    # An unsure estimate is left to the API: an item it finds too large errors alone.
    return []


def _join(prefix: str, path: str) -> str:
    return prefix if not path else f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"
