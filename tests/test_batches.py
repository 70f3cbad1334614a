"""BatchService end to end: a real server, its SQLite store, the emulator's Batches API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from tests.harness import BackgroundLoop, Upstream
from tests.samples import SAMPLES, TICKET_LABELS
from tiergate.app import App
from tiergate.emulator import Script
from tiergate.v1 import batch_service_pb2 as bpb
from tiergate.v1 import batch_service_pb2_grpc, task_service_pb2_grpc
from tiergate.v1 import task_service_pb2 as pb

from .conftest import start_app

ENDED = (bpb.Batch.STATE_SUCCEEDED, bpb.Batch.STATE_CANCELLED, bpb.Batch.STATE_FAILED)


@pytest.fixture
def batch_app(background: BackgroundLoop, upstream: Upstream, tmp_path: Path) -> Iterator[App]:
    app = start_app(background, upstream, batch_dir=str(tmp_path / "store"), batch_poll_s=0.05)
    yield app
    background.run(app.stop(grace=1))


@pytest.fixture
def channel_to(batch_app: App) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{batch_app.port}") as channel:
        yield channel


@pytest.fixture
def batches(channel_to: grpc.Channel) -> batch_service_pb2_grpc.BatchServiceStub:
    return batch_service_pb2_grpc.BatchServiceStub(channel_to)


def item(custom_id: str, request: Message) -> bpb.BatchItem:
    field = type(request).DESCRIPTOR.name.removesuffix("Request").lower()
    return bpb.BatchItem(custom_id=custom_id, **{field: request})


def wait_ended(stub: batch_service_pb2_grpc.BatchServiceStub, name: str) -> bpb.Batch:
    """The batch once it has ended; the bound is a failure, not a timing."""
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        batch = stub.GetBatch(bpb.GetBatchRequest(name=name))
        if batch.state in ENDED:
            return batch
        time.sleep(0.02)
    raise AssertionError(f"{name} never ended")


def all_results(
    stub: batch_service_pb2_grpc.BatchServiceStub, name: str, size: int = 2
) -> list[bpb.BatchResult]:
    results: list[bpb.BatchResult] = []
    token = ""
    while True:
        page = stub.ListBatchResults(
            bpb.ListBatchResultsRequest(parent=name, page_size=size, page_token=token)
        )
        results.extend(page.results)
        token = page.next_page_token
        if not token:
            return results


class TestEveryTask:
    def test_each_task_type_answers_with_its_typed_response(
        self, batches: batch_service_pb2_grpc.BatchServiceStub, upstream: Upstream
    ) -> None:
        """A batch with one item of each of the six tasks ends SUCCEEDED, each result carrying
        the task's own typed response and batch-billed usage, in item order, across pages."""
        items = [item(f"id-{rpc}", request) for rpc, request in SAMPLES.items()]
        created = batches.CreateBatch(bpb.CreateBatchRequest(items=items))
        assert created.name.startswith("batches/")
        assert created.item_count == 6
        batch = wait_ended(batches, created.name)
        assert batch.state == bpb.Batch.STATE_SUCCEEDED
        assert batch.counts.succeeded == 6 and batch.counts.pending == 0
        results = all_results(batches, created.name)
        assert [r.custom_id for r in results] == [i.custom_id for i in items]
        for result, rpc in zip(results, SAMPLES, strict=True):
            assert result.WhichOneof("result") == rpc.lower()
            usage = getattr(result, rpc.lower()).usage
            assert usage.service_tier == "batch"
            assert usage.billed_calls == 1
            assert result.usage == usage
        sent = [r for r in upstream.requests]
        assert len(sent) == 6
