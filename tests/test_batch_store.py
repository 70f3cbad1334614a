"""The batch store contract, held by both stores: SQLite on disk and Redis (a real
``redis-server``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conftest import start_app
from harness import BackgroundLoop, Upstream, free_port
from samples import SAMPLES
from tiergate.batches.redis_store import RedisBatchStore
from tiergate.batches.store import (
    BatchRecord,
    BatchStore,
    Chunk,
    ItemOutcome,
    ItemRecord,
    SqliteBatchStore,
)
from tiergate.client import ENDED_STATES, TaskClient, batch_item


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BatchStore]:
    made: BatchStore
    if request.param == "sqlite":
        made = SqliteBatchStore(tmp_path)
    else:
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
        made = RedisBatchStore(url)
    yield made
    made.close()


def batch(store: BatchStore, batch_id: str = "b1", created: float = 100.0) -> None:
    items = [ItemRecord(i, f"c{i}", "Moderate", f"req{i}".encode(), i // 2) for i in range(3)]
    chunks = [Chunk(0, 0, 1), Chunk(1, 2, 2)]
    store.create(BatchRecord(batch_id, "RUNNING", 3, created, created), items, chunks)


def outcome(index: int, kind: str = "succeeded", calls: int = 1) -> ItemOutcome:
    return ItemOutcome(
        index,
        kind,  # type: ignore[arg-type]
        f"result{index}".encode(),
        model="claude-haiku-4-5",
        inference_geo="global",
        tokens=(10, 1, 0, 5, 3) if calls else (0, 0, 0, 0, 0),
        billed_calls=calls,
    )


class TestStoreContract:
    def test_requests_chunks_and_outcomes_round_trip(self, store: BatchStore) -> None:
        """Items come back per chunk with their exact bytes; recorded outcomes are counted
        once, summed per model and geo, and listed in index order after a cursor."""
        batch(store)
        assert [i.custom_id for i in store.items("b1", 0)] == ["c0", "c1"]
        assert store.items("b1", 1)[0].request == b"req2"
        assert store.counts("b1").get("pending", 3) == 3
        store.record("b1", 1, [outcome(2, "failed", calls=1)])
        store.record("b1", 0, [outcome(0), outcome(1, "expired", calls=0)])
        counts = store.counts("b1")
        assert (counts["succeeded"], counts["failed"], counts["expired"]) == (1, 1, 1)
        assert counts.get("pending", 0) == 0
        [billed] = store.billed("b1")
        assert (billed.tokens, billed.billed_calls) == ((20, 2, 0, 10, 6), 2)
        assert store.results("b1", -1, 2) == [(0, b"result0"), (1, b"result1")]
        assert store.results("b1", 1, 10) == [(2, b"result2")]
        assert all(c.state == "collected" for c in store.chunks("b1"))

    def test_leases_cancel_finish_and_purge(self, store: BatchStore) -> None:
        """A lease keeps a batch from other owners until it lapses; a cancel applies only to a
        running batch; an ended batch leaves the claimable set and is purged after retention."""
        batch(store)
        assert store.claim("a", 1000.0, 30.0) == ["b1"]
        assert store.claim("b", 1010.0, 30.0) == []  # a's lease runs until 1030
        assert store.claim("a", 1010.0, 30.0) == ["b1"]  # the owner renews
        assert store.claim("b", 1041.0, 30.0) == ["b1"]  # lapsed: taken over
        cancelling = store.request_cancel("b1", 1050.0)
        assert cancelling is not None
        assert (cancelling.state, cancelling.cancel_requested) == ("CANCELLING", True)
        store.update_chunk("b1", Chunk(0, 0, 1, "submitted", "up-1", cancel_sent=True))
        assert store.chunks("b1")[0] == Chunk(0, 0, 1, "submitted", "up-1", True)
        store.finish("b1", "CANCELLED", 1060.0)
        assert store.claim("b", 2000.0, 30.0) == []
        again = store.request_cancel("b1", 1070.0)
        assert again is not None
        assert again.state == "CANCELLED"
        assert store.purge(1060.0) == 0  # ended at 1060, not before
        assert store.purge(1061.0) == 1
        assert store.get("b1") is None
        assert store.results("b1", -1, 10) == []


class TestRedisStoreEndToEnd:
    def test_a_batch_runs_on_the_shared_store(
        self, background: BackgroundLoop, upstream: Upstream, redis_url: str
    ) -> None:
        """With ``batch_redis_url`` the service keeps its batches in Redis: a batch of two
        tasks ends SUCCEEDED with both results, and a second replica on the same store
        answers for it."""
        redis.Redis.from_url(redis_url).flushdb()
        first = start_app(background, upstream, batch_redis_url=redis_url, batch_poll_s=0.05)
        second = start_app(background, upstream, batch_redis_url=redis_url, batch_poll_s=0.05)
        try:
            items = [batch_item("a", SAMPLES["Classify"]), batch_item("b", SAMPLES["Reason"])]
            with TaskClient(f"127.0.0.1:{first.port}") as client:
                created = client.create_batch(items)
            with TaskClient(f"127.0.0.1:{second.port}") as client:
                give_up = time.monotonic() + 30
                while (found := client.get_batch(created.name)).state not in ENDED_STATES:
                    assert time.monotonic() < give_up, "the batch never ended"
                    time.sleep(0.02)
                results = list(client.batch_results(created.name))
        finally:
            background.run(first.stop(grace=1))
            background.run(second.stop(grace=1))
        assert found.counts.succeeded == 2
        assert [r.WhichOneof("result") for r in results] == ["classify", "reason"]
        assert len(upstream.emulator.batches.batches) == 1  # one replica sent it, once

    def test_an_unreachable_store_stops_start_up(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """Fail closed: a Redis URL nobody answers refuses to start, naming the setting."""
        with pytest.raises(OSError, match="TIERGATE_BATCH_REDIS_URL"):
            start_app(background, upstream, batch_redis_url=f"redis://127.0.0.1:{free_port()}/0")
