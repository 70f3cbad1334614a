"""The durable batch store: batches, their original requests, their progress and results.

Replicas keep nothing of a batch in memory that a restart would lose: every step the worker
takes is written here first. :class:`BatchStore` is the interface; :class:`SqliteBatchStore`
is the embedded default on local disk (``TIERGATE_BATCH_DIR``), for one replica; several
replicas share :class:`~tiergate.batches.redis_store.RedisBatchStore`.
Leases say which replica works on a batch: one whose lease lapsed is taken over.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

State = Literal["RUNNING", "CANCELLING", "SUCCEEDED", "FAILED", "CANCELLED"]
Outcome = Literal["pending", "succeeded", "failed", "cancelled", "expired"]
ChunkState = Literal["new", "submitted", "collected"]
ENDED: frozenset[str] = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


@dataclass(frozen=True)
class BatchRecord:
    """A batch as stored; times are Unix seconds."""

    id: str
    state: State
    item_count: int
    created: float
    updated: float
    ended: float | None = None
    cancel_requested: bool = False
    error: bytes = b""
    """A serialized ``google.rpc.Status`` when the batch failed."""


@dataclass(frozen=True)
class ItemRecord:
    """One item's original request, as the task needs it for checks and the response."""

    index: int
    custom_id: str
    task: str
    request: bytes
    chunk: int


@dataclass(frozen=True)
class Chunk:
    """One upstream message batch: the items ``first`` to ``last`` (inclusive)."""

    number: int
    first: int
    last: int
    state: ChunkState = "new"
    upstream_id: str = ""
    cancel_sent: bool = False


@dataclass(frozen=True)
class ItemOutcome:
    """How an item ended: its serialized ``BatchResult`` and the tokens it billed."""

    index: int
    outcome: Outcome
    result: bytes
    model: str = ""
    inference_geo: str = ""
    tokens: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    """input, 5-minute cache write, 1-hour cache write, cache read, output."""
    billed_calls: int = 0


@dataclass(frozen=True)
class BilledTokens:
    """The tokens a batch's items billed on one model in one geo."""

    model: str
    inference_geo: str
    tokens: tuple[int, int, int, int, int]
    billed_calls: int


class BatchStore(Protocol):
    """What the batch service and worker need from a durable store."""

    def create(
        self, batch: BatchRecord, items: Sequence[ItemRecord], chunks: Sequence[Chunk]
    ) -> None: ...
    def get(self, batch_id: str) -> BatchRecord | None: ...
    def counts(self, batch_id: str) -> dict[str, int]: ...
    def billed(self, batch_id: str) -> list[BilledTokens]: ...
    def results(self, batch_id: str, after: int, limit: int) -> list[tuple[int, bytes]]: ...
    def items(self, batch_id: str, chunk: int) -> list[ItemRecord]: ...
    def chunks(self, batch_id: str) -> list[Chunk]: ...
    def update_chunk(self, batch_id: str, chunk: Chunk) -> None: ...
    def record(self, batch_id: str, chunk: int, outcomes: Sequence[ItemOutcome]) -> None: ...
    def request_cancel(self, batch_id: str, now: float) -> BatchRecord | None: ...
    def finish(self, batch_id: str, state: State, now: float, error: bytes = b"") -> None: ...
    def claim(self, owner: str, now: float, lease_s: float) -> list[str]: ...
    def purge(self, ended_before: float) -> int: ...
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, item_count INTEGER NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL, ended REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0, error BLOB NOT NULL DEFAULT x'',
    lease_owner TEXT NOT NULL DEFAULT '', lease_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS chunks (
    batch_id TEXT NOT NULL, number INTEGER NOT NULL, first INTEGER NOT NULL,
    last INTEGER NOT NULL, state TEXT NOT NULL, upstream_id TEXT NOT NULL DEFAULT '',
    cancel_sent INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (batch_id, number)
);
CREATE TABLE IF NOT EXISTS items (
    batch_id TEXT NOT NULL, idx INTEGER NOT NULL, custom_id TEXT NOT NULL,
    task TEXT NOT NULL, request BLOB NOT NULL, chunk INTEGER NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'pending', result BLOB, model TEXT NOT NULL DEFAULT '',
    geo TEXT NOT NULL DEFAULT '', input INTEGER NOT NULL DEFAULT 0,
    write_5m INTEGER NOT NULL DEFAULT 0, write_1h INTEGER NOT NULL DEFAULT 0,
    read INTEGER NOT NULL DEFAULT 0, output INTEGER NOT NULL DEFAULT 0,
    billed_calls INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (batch_id, idx)
);
"""


class SqliteBatchStore:
    """The embedded store: one SQLite file in ``directory`` (write-ahead log, synchronous
    commits), safe for one process; every write is one transaction."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "batches.sqlite3"
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def create(
        self, batch: BatchRecord, items: Sequence[ItemRecord], chunks: Sequence[Chunk]
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO batches (id, state, item_count, created, updated) VALUES (?,?,?,?,?)",
                (batch.id, batch.state, batch.item_count, batch.created, batch.updated),
            )
            db.executemany(
                "INSERT INTO chunks (batch_id, number, first, last, state) VALUES (?,?,?,?,?)",
                [(batch.id, c.number, c.first, c.last, c.state) for c in chunks],
            )
            db.executemany(
                "INSERT INTO items (batch_id, idx, custom_id, task, request, chunk)"
                " VALUES (?,?,?,?,?,?)",
                [(batch.id, i.index, i.custom_id, i.task, i.request, i.chunk) for i in items],
            )

    def get(self, batch_id: str) -> BatchRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, state, item_count, created, updated, ended, cancel_requested, error"
                " FROM batches WHERE id = ?",
                (batch_id,),
            ).fetchone()
        if row is None:
            return None
        return BatchRecord(
            row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), bytes(row[7])
        )

    def counts(self, batch_id: str) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT outcome, COUNT(*) FROM items WHERE batch_id = ? GROUP BY outcome",
                (batch_id,),
            ).fetchall()
        return {outcome: count for outcome, count in rows}

    def billed(self, batch_id: str) -> list[BilledTokens]:
        with self._lock:
            rows = self._db.execute(
                "SELECT model, geo, SUM(input), SUM(write_5m), SUM(write_1h), SUM(read),"
                " SUM(output), SUM(billed_calls) FROM items"
                " WHERE batch_id = ? AND billed_calls > 0 GROUP BY model, geo ORDER BY model, geo",
                (batch_id,),
            ).fetchall()
        return [BilledTokens(r[0], r[1], (r[2], r[3], r[4], r[5], r[6]), r[7]) for r in rows]

    def results(self, batch_id: str, after: int, limit: int) -> list[tuple[int, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, result FROM items WHERE batch_id = ? AND idx > ?"
                " AND outcome != 'pending' ORDER BY idx LIMIT ?",
                (batch_id, after, limit),
            ).fetchall()
        return [(idx, bytes(result)) for idx, result in rows]

    def items(self, batch_id: str, chunk: int) -> list[ItemRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, custom_id, task, request, chunk FROM items"
                " WHERE batch_id = ? AND chunk = ? ORDER BY idx",
                (batch_id, chunk),
            ).fetchall()
        return [ItemRecord(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    def chunks(self, batch_id: str) -> list[Chunk]:
        with self._lock:
            rows = self._db.execute(
                "SELECT number, first, last, state, upstream_id, cancel_sent FROM chunks"
                " WHERE batch_id = ? ORDER BY number",
                (batch_id,),
            ).fetchall()
        return [Chunk(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def update_chunk(self, batch_id: str, chunk: Chunk) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE chunks SET state = ?, upstream_id = ?, cancel_sent = ?"
                " WHERE batch_id = ? AND number = ?",
                (chunk.state, chunk.upstream_id, int(chunk.cancel_sent), batch_id, chunk.number),
            )

    def record(self, batch_id: str, chunk: int, outcomes: Sequence[ItemOutcome]) -> None:
        """Every outcome of ``chunk`` and the chunk collected, in one transaction."""
        with self._tx() as db:
            db.executemany(
                "UPDATE items SET outcome = ?, result = ?, model = ?, geo = ?, input = ?,"
                " write_5m = ?, write_1h = ?, read = ?, output = ?, billed_calls = ?"
                " WHERE batch_id = ? AND idx = ?",
                [_outcome_row(batch_id, o) for o in outcomes],
            )
            db.execute(
                "UPDATE chunks SET state = 'collected' WHERE batch_id = ? AND number = ?",
                (batch_id, chunk),
            )

    def request_cancel(self, batch_id: str, now: float) -> BatchRecord | None:
        with self._tx() as db:
            db.execute(
                "UPDATE batches SET cancel_requested = 1, state = 'CANCELLING', updated = ?"
                " WHERE id = ? AND state = 'RUNNING'",
                (now, batch_id),
            )
        return self.get(batch_id)

    def finish(self, batch_id: str, state: State, now: float, error: bytes = b"") -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE batches SET state = ?, updated = ?, ended = ?, error = ?,"
                " lease_owner = '' WHERE id = ?",
                (state, now, now, error, batch_id),
            )

    def claim(self, owner: str, now: float, lease_s: float) -> list[str]:
        """Running batches this replica owns or whose lease lapsed, leased for ``lease_s``."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT id FROM batches WHERE state IN ('RUNNING', 'CANCELLING')"
                " AND (lease_owner = ? OR lease_until < ?) ORDER BY created",
                (owner, now),
            ).fetchall()
            ids = [row[0] for row in rows]
            db.executemany(
                "UPDATE batches SET lease_owner = ?, lease_until = ? WHERE id = ?",
                [(owner, now + lease_s, batch_id) for batch_id in ids],
            )
        return ids

    def purge(self, ended_before: float) -> int:
        """Delete the batches that ended before ``ended_before``, results and all."""
        with self._tx() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM batches WHERE ended IS NOT NULL AND ended < ?",
                    (ended_before,),
                ).fetchall()
            ]
            for table, column in (("items", "batch_id"), ("chunks", "batch_id"), ("batches", "id")):
                db.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(i,) for i in ids])
        return len(ids)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _outcome_row(batch_id: str, o: ItemOutcome) -> tuple[object, ...]:
    return (
        o.outcome,
        o.result,
        o.model,
        o.inference_geo,
        *o.tokens,
        o.billed_calls,
        batch_id,
        o.index,
    )
