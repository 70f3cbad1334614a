"""Batch items for ``BatchService``: one task request each, under the caller's id."""

from __future__ import annotations

from google.protobuf.message import Message

from tiergate.v1 import batch_service_pb2 as bpb

ENDED_STATES = frozenset(
    {bpb.Batch.STATE_SUCCEEDED, bpb.Batch.STATE_FAILED, bpb.Batch.STATE_CANCELLED}
)
"""States a batch never leaves."""


def batch_item(custom_id: str, request: Message) -> bpb.BatchItem:
    """The item for ``request`` (any task request), e.g.
    ``batch_item("t-1", pb.ClassifyRequest(...))``."""
    oneof = bpb.BatchItem.DESCRIPTOR.oneofs_by_name["request"]
    # The field holding this request type (``count_words`` for ``CountWordsRequest``).
    fields = [f.name for f in oneof.fields if f.message_type is type(request).DESCRIPTOR]
    if not fields:
        raise TypeError(f"{type(request).__name__} is not a task request")
    field = fields[0]
    item = bpb.BatchItem(custom_id=custom_id)
    getattr(item, field).CopyFrom(request)
    return item
