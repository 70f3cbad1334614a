"""Batch items for ``BatchService``: one task request each, under the caller's id."""

from __future__ import annotations

from google.protobuf.message import Message

from tiergate.v1 import batch_service_pb2 as bpb

ENDED_STATES = frozenset(
    {bpb.Batch.STATE_SUCCEEDED, bpb.Batch.STATE_FAILED, bpb.Batch.STATE_CANCELLED}
)
"""States a batch never leaves."""


def batch_item(custom_id: str, request: Message) -> bpb.BatchItem:
    """The item for ``request`` (any of the six task requests), e.g.
    ``batch_item("t-1", pb.ClassifyRequest(...))``."""
    field = type(request).DESCRIPTOR.name.removesuffix("Request").lower()
    if field not in bpb.BatchItem.DESCRIPTOR.fields_by_name or field == "custom_id":
        raise TypeError(f"{type(request).__name__} is not a task request")
    item = bpb.BatchItem(custom_id=custom_id)
    getattr(item, field).CopyFrom(request)
    return item
