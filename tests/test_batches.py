"""BatchService end to end: a real server, its SQLite store, the emulator's Batches API."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from conftest import start_app
from harness import BackgroundLoop, Processes, Upstream, eventually, rich_status, wait_serving
from samples import READ, SAMPLES, TICKET_LABELS, long_policy
from tiergate.batches.redis_store import RedisBatchStore
from tiergate.batches.store import BatchStore, SqliteBatchStore
from tiergate.client import ENDED_STATES, AsyncTaskClient, TaskClient, batch_item
from tiergate.config import Settings
from tiergate.emulator import Emulator, EmulatorConfig, Script
from tiergate.serving.app import App
from tiergate.v1 import batch_service_pb2 as bpb
from tiergate.v1 import batch_service_pb2_grpc, task_service_pb2_grpc
from tiergate.v1 import task_service_pb2 as pb

ENDED = (bpb.Batch.STATE_SUCCEEDED, bpb.Batch.STATE_CANCELLED, bpb.Batch.STATE_FAILED)


@pytest.fixture
def batch_app(background: BackgroundLoop, upstream: Upstream, tmp_path: Path) -> Iterator[App]:
    # A fixed 5-minute lifetime, so batch items and interactive calls write the same entries
    # (with the automatic lifetime, batches write 1-hour entries).
    app = start_app(
        background,
        upstream,
        batch_dir=str(tmp_path / "store"),
        batch_poll_s=0.05,
        cache_ttl="5m",
    )
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
    batch_item = bpb.BatchItem(custom_id=custom_id)
    getattr(batch_item, field).CopyFrom(request)
    return batch_item


def wait_ended(stub: batch_service_pb2_grpc.BatchServiceStub, name: str) -> bpb.Batch:
    """The batch once it has ended; the bound is a failure, not a timing."""
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        batch: bpb.Batch = stub.GetBatch(bpb.GetBatchRequest(name=name))
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
        """A batch with one item of each task ends SUCCEEDED, each result carrying
        the task's own typed response and batch-billed usage, in item order, across pages."""
        items = [item(f"id-{rpc}", request) for rpc, request in SAMPLES.items()]
        created = batches.CreateBatch(bpb.CreateBatchRequest(items=items))
        assert created.name.startswith("batches/")
        assert created.item_count == len(SAMPLES)
        batch = wait_ended(batches, created.name)
        assert batch.state == bpb.Batch.STATE_SUCCEEDED
        assert batch.counts.succeeded == len(SAMPLES)
        assert batch.counts.pending == 0
        results = all_results(batches, created.name)
        assert [r.custom_id for r in results] == [i.custom_id for i in items]
        for result, rpc in zip(results, SAMPLES, strict=True):
            assert result.WhichOneof("result") == rpc.lower()
            usage = getattr(result, rpc.lower()).usage
            assert usage.service_tier == "batch"
            assert usage.billed_calls == 1
            assert result.usage == usage
        sent = [r for r in upstream.requests]
        assert len(sent) == len(SAMPLES)


def details(status: status_pb2.Status) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for packed in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            message = kind()
            if packed.Unpack(message):
                found[kind.__name__] = message
    return found


class TestBatchPrice:
    def test_every_category_costs_exactly_half_the_interactive_price(
        self,
        batches: batch_service_pb2_grpc.BatchServiceStub,
        channel_to: grpc.Channel,
        upstream: Upstream,
    ) -> None:
        """Two items sharing a long cached prefix, from the same (empty) cache state: the batch
        bills the same tokens as two interactive calls (a write, then a read: caching applies
        inside the batch) and exactly half the nanos in every category; the batch's total is
        the sum of its items."""
        requests = [
            pb.ClassifyRequest(text=text, labels=TICKET_LABELS, instructions=long_policy())
            for text in ("I was charged twice.", "The app crashes on start.")
        ]
        tasks = task_service_pb2_grpc.TaskServiceStub(channel_to)
        interactive = [tasks.Classify(request).usage for request in requests]
        assert interactive[0].cache_creation_input_tokens > 0
        assert interactive[1].cache_read_input_tokens > 0
        upstream.reset()
        items = [item(f"c{i}", request) for i, request in enumerate(requests)]
        created = batches.CreateBatch(bpb.CreateBatchRequest(items=items))
        batch = wait_ended(batches, created.name)
        results = all_results(batches, created.name)
        for result, full in zip(results, interactive, strict=True):
            usage = result.classify.usage
            for tokens in (
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_creation_5m_input_tokens",
                "cache_read_input_tokens",
                "output_tokens",
            ):
                assert getattr(usage, tokens) == getattr(full, tokens), tokens
            for nanos in (
                "input_nanos",
                "cache_write_nanos",
                "cache_write_5m_nanos",
                "cache_read_nanos",
                "output_nanos",
                "total_nanos",
                "cache_savings_nanos",
                "cache_write_premium_nanos",
            ):
                assert getattr(usage.cost, nanos) * 2 == getattr(full.cost, nanos), nanos
            assert usage.service_tier == "batch"
            assert full.service_tier == ""
        total = sum(r.classify.usage.cost.total_nanos for r in results)
        assert batch.usage.cost.total_nanos == total > 0
        assert batch.usage.service_tier == "batch"

    def test_the_batch_total_is_the_sum_of_its_items(
        self, batches: batch_service_pb2_grpc.BatchServiceStub
    ) -> None:
        """Across tiers and items, ``Batch.usage`` is the exact sum of every item's usage."""
        items = [item(f"n{i}", request) for i, request in enumerate(SAMPLES.values())]
        created = batches.CreateBatch(bpb.CreateBatchRequest(items=items))
        batch = wait_ended(batches, created.name)
        results = all_results(batches, created.name, size=100)
        assert batch.usage.cost.total_nanos == sum(r.usage.cost.total_nanos for r in results)
        assert batch.usage.output_tokens == sum(r.usage.output_tokens for r in results)
        assert batch.usage.billed_calls == len(SAMPLES)
        assert batch.usage.model == ""  # two tiers: no single model to name


class TestInvalidItems:
    def test_an_invalid_item_refuses_the_whole_batch_naming_each_field(
        self, batches: batch_service_pb2_grpc.BatchServiceStub, upstream: Upstream
    ) -> None:
        """Every bad item is named by index and field path; nothing reaches upstream."""
        bad_labels = pb.ClassifyRequest(
            text="hello", labels=[pb.Label(name=""), *TICKET_LABELS[:1]]
        )
        items = [
            item("ok", SAMPLES["Classify"]),
            item("bad", bad_labels),
            bpb.BatchItem(custom_id="empty"),
            item("ok", SAMPLES["Moderate"]),
            item("no spaces allowed", SAMPLES["Moderate"]),
        ]
        with pytest.raises(grpc.RpcError) as caught:
            batches.CreateBatch(bpb.CreateBatchRequest(items=items))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rich_status(caught.value)
        assert status is not None
        fields = [v.field for v in details(status)["BadRequest"].field_violations]
        assert "items[1].request.classify.labels[0].name" in fields
        assert "items[2].request" in fields
        assert "items[3].custom_id" in fields  # a repeated custom_id
        assert "items[4].custom_id" in fields
        assert not any(f.startswith("items[0]") for f in fields)
        assert upstream.emulator.batches.batches == {}
        assert upstream.requests == []

    def test_a_read_item_with_a_bad_file_is_named(
        self, batches: batch_service_pb2_grpc.BatchServiceStub, upstream: Upstream
    ) -> None:
        """A Read item's files are checked at intake as the RPC checks them."""
        bad = pb.ReadRequest()
        bad.CopyFrom(READ)
        bad.documents[0].media_type = "image/png"
        with pytest.raises(grpc.RpcError) as caught:
            batches.CreateBatch(bpb.CreateBatchRequest(items=[item("r", bad)]))
        status = rich_status(caught.value)
        assert status is not None
        fields = [v.field for v in details(status)["BadRequest"].field_violations]
        assert fields == ["items[0].request.read.documents[0].data"]
        assert upstream.requests == []

    def test_an_empty_batch_and_an_unknown_name_are_refused(
        self, batches: batch_service_pb2_grpc.BatchServiceStub
    ) -> None:
        """No items is INVALID_ARGUMENT; a name that never existed is NOT_FOUND; a malformed
        name or page token is INVALID_ARGUMENT."""
        with pytest.raises(grpc.RpcError) as empty:
            batches.CreateBatch(bpb.CreateBatchRequest())
        assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as missing:
            batches.GetBatch(bpb.GetBatchRequest(name="batches/abc123"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as malformed:
            batches.GetBatch(bpb.GetBatchRequest(name="abc123"))
        assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        created = batches.CreateBatch(
            bpb.CreateBatchRequest(items=[item("a", SAMPLES["Moderate"])])
        )
        with pytest.raises(grpc.RpcError) as token:
            batches.ListBatchResults(
                bpb.ListBatchResultsRequest(parent=created.name, page_token="garbage")
            )
        assert token.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def run_in_loop(background: BackgroundLoop, action: Any) -> None:
    async def call() -> None:
        action()

    background.run(call())


class TestItemOutcomes:
    def test_expired_errored_and_unusable_items_end_with_their_own_status(
        self,
        batches: batch_service_pb2_grpc.BatchServiceStub,
        upstream: Upstream,
        background: BackgroundLoop,
    ) -> None:
        """Upstream answers out of order; an expired item is DEADLINE_EXCEEDED, an errored one
        UNAVAILABLE with RetryInfo-free ErrorInfo UPSTREAM_UNAVAILABLE, an unusable output
        OUTPUT_INVALID with its billed usage; the rest succeed. Every item is counted once."""
        run_in_loop(
            background,
            lambda: upstream.emulator.batches.script(
                "succeeded", "expired", "errored", "succeeded"
            ),
        )
        upstream.script(
            Script(text='{"label": "billing", "confidence": 0.75}'), Script(text="not json at all")
        )
        request = SAMPLES["Classify"]
        items = [item(f"i{i}", request) for i in range(4)]
        created = batches.CreateBatch(bpb.CreateBatchRequest(items=items))
        batch = wait_ended(batches, created.name)
        assert batch.state == bpb.Batch.STATE_SUCCEEDED
        counts = batch.counts
        assert (counts.succeeded, counts.expired, counts.failed, counts.pending) == (1, 1, 2, 0)
        ok, expired, errored, unusable = all_results(batches, created.name)
        assert (ok.classify.label, ok.classify.confidence) == ("billing", 0.75)
        assert expired.error.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
        assert not expired.HasField("usage")
        assert errored.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
        assert details(errored.error)["ErrorInfo"].reason == "UPSTREAM_UNAVAILABLE"
        assert details(unusable.error)["ErrorInfo"].reason == "OUTPUT_INVALID"
        assert unusable.usage.billed_calls == 1
        assert unusable.usage.cost.total_nanos > 0
        assert batch.usage.billed_calls == 2
        assert batch.usage.cost.total_nanos == (
            ok.usage.cost.total_nanos + unusable.usage.cost.total_nanos
        )


class TestSplitting:
    def test_a_batch_beyond_the_upstream_limit_is_split(
        self, background: BackgroundLoop, upstream: Upstream, tmp_path: Path
    ) -> None:
        """Five items with at most two per upstream batch make three upstream batches, and
        the results come back as one batch in item order."""
        app = start_app(
            background,
            upstream,
            batch_dir=str(tmp_path),
            batch_poll_s=0.05,
            batch_upstream_max_items=2,
        )
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                stub = batch_service_pb2_grpc.BatchServiceStub(channel)
                items = [item(f"s{i}", SAMPLES["Moderate"]) for i in range(5)]
                created = stub.CreateBatch(bpb.CreateBatchRequest(items=items))
                batch = wait_ended(stub, created.name)
                results = all_results(stub, created.name, size=100)
        finally:
            background.run(app.stop(grace=1))
        assert batch.counts.succeeded == 5
        assert [r.index for r in results] == [0, 1, 2, 3, 4]
        sizes = sorted(len(b.requests) for b in upstream.emulator.batches.batches.values())
        assert sizes == [1, 2, 2]


class TestCancel:
    def test_cancelling_ends_the_batch_with_every_unanswered_item_cancelled(
        self, background: BackgroundLoop, tmp_path: Path
    ) -> None:
        """A cancel while upstream has not answered: the batch reports CANCELLING at once,
        then ends CANCELLED with every item cancelled (status CANCELLED) and nothing billed;
        cancelling it again changes nothing."""
        slow = Emulator(EmulatorConfig(batch_delay_s=600))
        url = background.run(slow.start())
        app = App(
            Settings(
                host="127.0.0.1",
                port=0,
                upstream="emulator",
                batch_dir=str(tmp_path),
                batch_poll_s=0.05,
            ),
            emulator_url=url,
        )
        background.run(app.start())
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                stub = batch_service_pb2_grpc.BatchServiceStub(channel)
                items = [item(f"x{i}", SAMPLES["Summarize"]) for i in range(3)]
                created = stub.CreateBatch(bpb.CreateBatchRequest(items=items))
                cancelling = stub.CancelBatch(bpb.CancelBatchRequest(name=created.name))
                assert cancelling.state == bpb.Batch.STATE_CANCELLING
                batch = wait_ended(stub, created.name)
                again = stub.CancelBatch(bpb.CancelBatchRequest(name=created.name))
                results = all_results(stub, created.name, size=10)
        finally:
            background.run(app.stop(grace=1))
            background.run(slow.stop())
        assert batch.state == bpb.Batch.STATE_CANCELLED
        assert again.state == bpb.Batch.STATE_CANCELLED
        assert batch.counts.cancelled == 3
        assert batch.counts.pending == 0
        assert all(r.error.code == grpc.StatusCode.CANCELLED.value[0] for r in results)
        assert batch.usage.cost.total_nanos == 0
        assert batch.HasField("end_time")
        assert batch.HasField("expire_time")


def upstream_batches(processes: Processes) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{processes.emulator_url}/v1/messages/batches") as reply:
        data: list[dict[str, Any]] = json.load(reply)["data"]
    return data


def store_at(kind: str, tmp_path: Path, redis_url: str) -> BatchStore:
    return SqliteBatchStore(tmp_path) if kind == "sqlite" else RedisBatchStore(redis_url)


class TestKilledReplica:
    @pytest.mark.parametrize("kind", ["sqlite", "redis"])
    def test_a_replica_killed_mid_batch_loses_nothing(
        self, kind: str, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        """``tiergate serve`` killed with SIGKILL while upstream is still working on its batch,
        then started again on the same store (SQLite on disk, or Redis): the new process takes
        the batch over (its lease lapsed), collects it without sending it again, and every
        item is accounted for exactly once."""
        redis_url = request.getfixturevalue("redis_url") if kind == "redis" else ""
        if redis_url:
            redis.Redis.from_url(redis_url).flushdb()  # no batch of another test to take over
        where = (
            {"TIERGATE_BATCH_DIR": str(tmp_path)}
            if kind == "sqlite"
            else {"TIERGATE_BATCH_REDIS_URL": redis_url}
        )
        processes = Processes(
            emulator_args=("--batch-delay-s", "4"),
            TIERGATE_BATCH_POLL_S="0.1",
            TIERGATE_BATCH_LEASE_S="1",
            **where,
        )
        try:
            wait_serving(processes.port)
            target = f"127.0.0.1:{processes.port}"
            items = [item(f"k{i}", SAMPLES["Classify"]) for i in range(20)]
            with grpc.insecure_channel(target) as channel:
                stub = batch_service_pb2_grpc.BatchServiceStub(channel)
                created = stub.CreateBatch(bpb.CreateBatchRequest(items=items))
            # Kill once the store says the upstream batch was sent (what a restart resumes).
            store = store_at(kind, tmp_path, redis_url)
            batch_id = created.name.removeprefix("batches/")
            try:
                eventually(
                    lambda: store.chunks(batch_id)[0].state == "submitted" or None,
                    "the upstream batch recorded",
                )
            finally:
                store.close()
            processes.server.send_signal(signal.SIGKILL)
            processes.server.wait()
            [sent] = upstream_batches(processes)
            assert sent["processing_status"] == "in_progress"  # the kill was mid-batch
            processes.server = processes.start_server()
            wait_serving(processes.port)
            with grpc.insecure_channel(target) as channel:
                stub = batch_service_pb2_grpc.BatchServiceStub(channel)
                batch = wait_ended(stub, created.name)
                results = all_results(stub, created.name, size=7)
            assert batch.state == bpb.Batch.STATE_SUCCEEDED
            assert batch.counts.succeeded == 20
            assert sorted(r.custom_id for r in results) == sorted(i.custom_id for i in items)
            assert len(upstream_batches(processes)) == 1  # collected, not sent again
        finally:
            processes.close()


class TestPythonClient:
    def test_sync_and_async_helpers_cover_every_batch_rpc(
        self, batch_app: App, background: BackgroundLoop
    ) -> None:
        """``create_batch``, ``get_batch``, ``batch_results`` (every page) and ``cancel_batch``
        on both clients; a request that is no task request is refused before sending."""
        target = f"127.0.0.1:{batch_app.port}"
        items = [batch_item(f"p{i}", SAMPLES["Moderate"]) for i in range(3)]
        with TaskClient(target) as client:
            created = client.create_batch(items)
            give_up = time.monotonic() + 30
            while client.get_batch(created.name).state not in ENDED_STATES:
                assert time.monotonic() < give_up, "the batch never ended"
                time.sleep(0.02)
            results = list(client.batch_results(created.name, page_size=2))
            ended = client.cancel_batch(created.name)  # too late: nothing changes
        assert [r.custom_id for r in results] == ["p0", "p1", "p2"]
        assert all(r.WhichOneof("result") == "moderate" for r in results)
        assert ended.state == bpb.Batch.STATE_SUCCEEDED

        async def run_async() -> tuple[bpb.Batch, list[bpb.BatchResult]]:
            async with AsyncTaskClient(target) as client:
                made = await client.create_batch(items[:1])
                cancelled = await client.cancel_batch(made.name)
                got = await client.get_batch(made.name)
                assert got.name == made.name
                return cancelled, [r async for r in client.batch_results(made.name)]

        cancelled, _ = background.run(run_async())
        assert cancelled.state in (bpb.Batch.STATE_CANCELLING, bpb.Batch.STATE_SUCCEEDED)
        with pytest.raises(TypeError):
            batch_item("x", bpb.GetBatchRequest())


def tiergate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tiergate.cli", "batch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestBatchCommands:
    def test_submit_wait_status_results_and_cancel(self, batch_app: App, tmp_path: Path) -> None:
        """``submit --wait`` sends every line (custom ids from the file or the line number),
        waits and prints the summary; ``results --json`` prints one JSON line per item in
        order; ``status`` and ``cancel`` print the batch."""
        data = tmp_path / "tickets.jsonl"
        labels = [{"name": label.name} for label in TICKET_LABELS]
        lines = [
            {"custom_id": "t-1", "text": "I was charged twice.", "labels": labels},
            {"text": "The app crashes when I log in.", "labels": labels},
        ]
        data.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
        target = f"127.0.0.1:{batch_app.port}"
        submitted = tiergate(
            "submit",
            "Classify",
            "--data",
            str(data),
            "--wait",
            "--poll",
            "0.05",
            "--target",
            target,
        )
        assert submitted.returncode == 0, submitted.stderr
        name, summary = submitted.stdout.splitlines()
        assert name.startswith("batches/")
        assert "SUCCEEDED" in summary
        assert "2 succeeded" in summary
        results = tiergate("results", name, "--json", "--target", target)
        assert results.returncode == 0, results.stderr
        rows = [json.loads(line) for line in results.stdout.splitlines()]
        assert [row["custom_id"] for row in rows] == ["t-1", "line-2"]
        assert all(row["classify"]["usage"]["service_tier"] == "batch" for row in rows)
        status = tiergate("status", name, "--json", "--target", target)
        assert json.loads(status.stdout)["state"] == "STATE_SUCCEEDED"
        cancel = tiergate("cancel", name, "--target", target)
        assert cancel.returncode == 0
        assert "SUCCEEDED" in cancel.stdout

    def test_a_bad_line_and_an_invalid_item_are_named(self, batch_app: App, tmp_path: Path) -> None:
        """A line that is no request stops before sending (exit 2, naming file and line); an
        item the server refuses is named by its custom_id and field (exit 1)."""
        target = f"127.0.0.1:{batch_app.port}"
        broken = tmp_path / "broken.jsonl"
        broken.write_text('{"text": "ok", "labels": [{"name": "a"}]}\n{"nonsense": 1}\n')
        refused = tiergate("submit", "Classify", "--data", str(broken), "--target", target)
        assert refused.returncode == 2
        assert f"{broken}:2:" in refused.stderr
        invalid = tmp_path / "invalid.jsonl"
        invalid.write_text('{"custom_id": "bad-one", "text": "hi", "labels": [{"name": ""}]}\n')
        rejected = tiergate("submit", "Classify", "--data", str(invalid), "--target", target)
        assert rejected.returncode == 1
        assert "bad-one: items[0].request.classify.labels[0].name" in rejected.stderr


class TestRetention:
    def test_an_ended_batch_is_deleted_after_the_retention_period(
        self, background: BackgroundLoop, upstream: Upstream, tmp_path: Path
    ) -> None:
        """With a retention of a millisecond, the worker's next pass deletes the ended batch,
        results and all: the name is then NOT_FOUND."""
        app = start_app(
            background,
            upstream,
            batch_dir=str(tmp_path),
            batch_poll_s=0.05,
            batch_retention_s=0.001,
        )
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                stub = batch_service_pb2_grpc.BatchServiceStub(channel)
                created = stub.CreateBatch(
                    bpb.CreateBatchRequest(items=[item("r", SAMPLES["Moderate"])])
                )

                def gone() -> bool | None:
                    try:
                        stub.GetBatch(bpb.GetBatchRequest(name=created.name))
                    except grpc.RpcError as err:
                        return True if err.code() == grpc.StatusCode.NOT_FOUND else None
                    return None

                eventually(gone, "the batch deleted")
                assert app.batch_store is not None
                assert app.batch_store.results(created.name.removeprefix("batches/"), -1, 10) == []
        finally:
            background.run(app.stop(grace=1))
        assert len(upstream.emulator.batches.batches) == 1  # it did run before it was deleted


class TestProgressBar:
    def test_the_bar_shows_items_done_and_cost_so_far(self) -> None:
        """Done is every item no longer pending; the bar fills in proportion; the cost is the
        batch's total so far in dollars."""
        from tiergate.cli.batch import _bar

        batch = bpb.Batch(item_count=4, counts=bpb.BatchCounts(pending=3, succeeded=1))
        batch.usage.cost.total_nanos = 1_500_000
        line = _bar(batch)
        assert line.startswith("[" + "#" * 7 + "." * 23 + "]")
        assert "1/4 items" in line
        assert line.endswith("  $0.0015")
        batch.counts.pending = 0
        batch.counts.failed = 3
        assert _bar(batch).startswith("[" + "#" * 30 + "]")
