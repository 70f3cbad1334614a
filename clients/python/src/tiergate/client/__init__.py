"""A thin typed client for tiergate's ``TaskService``.

    from tiergate.client import TaskClient
    from tiergate.v1 import task_service_pb2 as pb

    with TaskClient("localhost:50051") as client:
        reply = client.classify(pb.ClassifyRequest(text="I was charged twice", labels=[...]))
        print(reply.label, dollars(reply.usage.cost.total_nanos), reply.usage.from_cache)

Batches (``BatchService``, half price) use the same client::

    batch = client.create_batch([batch_item("t-1", pb.ClassifyRequest(...)), ...])
    client.get_batch(batch.name).state, list(client.batch_results(batch.name))

:class:`AsyncTaskClient` has the same methods for asyncio. Errors arrive as
:class:`TiergateError` with the rich details decoded. :func:`health_check` is the standard
gRPC health service's ``Check``, typed, for whatever waits for a server to serve.
"""

from __future__ import annotations

from tiergate.client._aio import AsyncTaskClient
from tiergate.client._batches import ENDED_STATES, batch_item
from tiergate.client._client import TaskClient
from tiergate.client._errors import FieldViolation, TiergateError
from tiergate.client._health import health_check
from tiergate.client._money import dollars
from tiergate.client._streams import STREAM_METHOD_NAMES
from tiergate.client._tasks import METHOD_NAMES

__all__ = [
    "ENDED_STATES",
    "METHOD_NAMES",
    "STREAM_METHOD_NAMES",
    "AsyncTaskClient",
    "FieldViolation",
    "TaskClient",
    "TiergateError",
    "batch_item",
    "dollars",
    "health_check",
]
