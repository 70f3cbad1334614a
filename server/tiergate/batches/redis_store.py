"""The batch store in Redis, shared by every replica (``TIERGATE_BATCH_REDIS_URL``).

The same :class:`~tiergate.batches.store.BatchStore` contract as the SQLite store. Keys, all
under ``tiergate:batch:``: a hash per batch (its record and lease), and per batch a hash of
chunks, a hash of items (original requests), a hash of outcomes, a sorted set of the ended
items' indexes, and hashes of counts and billed tokens. ``running`` and ``ended`` are sorted
sets over every batch. Writes that must be atomic (an outcome and its counts, a lease, a
cancel) run in MULTI transactions or Lua scripts, so replicas never see half a step.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from typing import Any, cast

import redis

from .store import BatchRecord, BilledTokens, Chunk, ItemOutcome, ItemRecord, State

_PREFIX = "tiergate:batch:"
_RUNNING = _PREFIX + "running"
_ENDED = _PREFIX + "ended"
_TOKENS = ("input", "write_5m", "write_1h", "read", "output", "calls")
_SEP = "\x1f"  # between model and geo in a billed field: neither can contain it

# Owned by this replica, or its owner's lease lapsed: take it for another lease.
_CLAIM = """
local owner = redis.call('HGET', KEYS[1], 'lease_owner')
local until_ = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0')
if owner == ARGV[1] or until_ < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'lease_owner', ARGV[1], 'lease_until', ARGV[3])
  return 1
end
return 0
"""
_CANCEL = """
if redis.call('HGET', KEYS[1], 'state') == 'RUNNING' then
  redis.call('HSET', KEYS[1], 'state', 'CANCELLING', 'cancel_requested', '1', 'updated', ARGV[1])
end
return 1
"""


def _key(batch_id: str, part: str = "") -> str:
    return f"{_PREFIX}{batch_id}" + (f":{part}" if part else "")


class RedisBatchStore:
    """Batches in Redis at ``url`` (``redis://host:port/db``)."""

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url)
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            # Fail closed at start-up, in one line that names the setting but not the URL
            # (it may hold a password).
            raise OSError(
                f"cannot reach the batch store (TIERGATE_BATCH_REDIS_URL): {exc}"
            ) from None
        self._claim = self._redis.register_script(_CLAIM)
        self._cancel = self._redis.register_script(_CANCEL)

    def create(
        self, batch: BatchRecord, items: Sequence[ItemRecord], chunks: Sequence[Chunk]
    ) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
            _key(batch.id),
            mapping={
                "state": batch.state,
                "item_count": batch.item_count,
                "created": batch.created,
                "updated": batch.updated,
                "cancel_requested": 0,
                "lease_until": 0,
                "lease_owner": "",
            },
        )
        pipe.hset(_key(batch.id, "chunks"), mapping={c.number: _chunk_json(c) for c in chunks})
        pipe.hset(_key(batch.id, "items"), mapping={i.index: _item_json(i) for i in items})
        pipe.zadd(_RUNNING, {batch.id: batch.created})
        pipe.execute()

    def get(self, batch_id: str) -> BatchRecord | None:
        raw = cast(dict[bytes, bytes], self._redis.hgetall(_key(batch_id)))
        if not raw:
            return None
        row = {k.decode(): v for k, v in raw.items()}
        ended = row.get("ended")
        return BatchRecord(
            id=batch_id,
            state=cast(State, row["state"].decode()),
            item_count=int(row["item_count"]),
            created=float(row["created"]),
            updated=float(row["updated"]),
            ended=float(ended) if ended else None,
            cancel_requested=row.get("cancel_requested", b"0") == b"1",
            error=row.get("error", b""),
        )

    def counts(self, batch_id: str) -> dict[str, int]:
        raw = cast(dict[bytes, bytes], self._redis.hgetall(_key(batch_id, "counts")))
        counts = {k.decode(): int(v) for k, v in raw.items()}
        total = int(cast(bytes, self._redis.hget(_key(batch_id), "item_count")) or 0)
        counts["pending"] = total - sum(counts.values())
        return counts

    def billed(self, batch_id: str) -> list[BilledTokens]:
        raw = cast(dict[bytes, bytes], self._redis.hgetall(_key(batch_id, "billed")))
        sums: dict[tuple[str, str], dict[str, int]] = {}
        for field, value in raw.items():
            model, geo, name = field.decode().split(_SEP)
            sums.setdefault((model, geo), {})[name] = int(value)
        return [
            BilledTokens(
                model,
                geo,
                tuple(parts.get(name, 0) for name in _TOKENS[:5]),  # type: ignore[arg-type]
                parts.get("calls", 0),
            )
            for (model, geo), parts in sorted(sums.items())
            if parts.get("calls", 0) > 0
        ]

    def results(self, batch_id: str, after: int, limit: int) -> list[tuple[int, bytes]]:
        found = cast(
            list[bytes],
            self._redis.zrangebyscore(_key(batch_id, "done"), f"({after}", "+inf", 0, limit),
        )
        indexes = [int(i) for i in found]
        if not indexes:
            return []
        raw = cast(list[bytes], self._redis.hmget(_key(batch_id, "outcomes"), indexes))
        return list(zip(indexes, raw, strict=True))

    def items(self, batch_id: str, chunk: int) -> list[ItemRecord]:
        raw = self._redis.hget(_key(batch_id, "chunks"), chunk)
        if raw is None:
            return []
        span = _chunk(chunk, cast(bytes, raw))
        indexes = list(range(span.first, span.last + 1))
        rows = cast(list[bytes], self._redis.hmget(_key(batch_id, "items"), indexes))
        return [_item(index, row) for index, row in zip(indexes, rows, strict=True)]

    def chunks(self, batch_id: str) -> list[Chunk]:
        raw = cast(dict[bytes, bytes], self._redis.hgetall(_key(batch_id, "chunks")))
        return sorted((_chunk(int(k), v) for k, v in raw.items()), key=lambda c: c.number)

    def update_chunk(self, batch_id: str, chunk: Chunk) -> None:
        self._redis.hset(_key(batch_id, "chunks"), chunk.number, _chunk_json(chunk))

    def record(self, batch_id: str, chunk: int, outcomes: Sequence[ItemOutcome]) -> None:
        """Every outcome of ``chunk``, its counts and tokens, and the chunk collected, in one
        transaction; a chunk already collected is not counted twice."""
        chunks = _key(batch_id, "chunks")
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.watch(chunks)  # type: ignore[no-untyped-call]
            raw = pipe.hget(chunks, chunk)
            if raw is None or _chunk(chunk, cast(bytes, raw)).state == "collected":
                pipe.unwatch()
                return
            collected = _chunk(chunk, cast(bytes, raw))
            pipe.multi()
            for o in outcomes:
                pipe.hset(_key(batch_id, "outcomes"), o.index, o.result)
                pipe.zadd(_key(batch_id, "done"), {str(o.index): o.index})
                pipe.hincrby(_key(batch_id, "counts"), o.outcome, 1)
                if o.billed_calls:
                    for name, value in zip(_TOKENS, (*o.tokens, o.billed_calls), strict=True):
                        field = _SEP.join((o.model, o.inference_geo, name))
                        pipe.hincrby(_key(batch_id, "billed"), field, value)
            pipe.hset(chunks, chunk, _chunk_json(dataclasses.replace(collected, state="collected")))
            pipe.execute()

    def request_cancel(self, batch_id: str, now: float) -> BatchRecord | None:
        self._cancel(keys=[_key(batch_id)], args=[now])
        return self.get(batch_id)

    def finish(self, batch_id: str, state: State, now: float, error: bytes = b"") -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
            _key(batch_id),
            mapping={"state": state, "updated": now, "ended": now, "error": error},
        )
        pipe.hset(_key(batch_id), "lease_owner", "")
        pipe.zrem(_RUNNING, batch_id)
        pipe.zadd(_ENDED, {batch_id: now})
        pipe.execute()

    def claim(self, owner: str, now: float, lease_s: float) -> list[str]:
        running = [b.decode() for b in cast(list[bytes], self._redis.zrange(_RUNNING, 0, -1))]
        return [
            batch_id
            for batch_id in running
            if self._claim(keys=[_key(batch_id)], args=[owner, now, now + lease_s])
        ]

    def purge(self, ended_before: float) -> int:
        ended = cast(list[bytes], self._redis.zrangebyscore(_ENDED, "-inf", f"({ended_before}"))
        for raw in ended:
            batch_id = raw.decode()
            parts = ("", "chunks", "items", "outcomes", "done", "counts", "billed")
            self._redis.delete(*(_key(batch_id, part) for part in parts))
            self._redis.zrem(_ENDED, batch_id)
        return len(ended)

    def close(self) -> None:
        self._redis.close()


def _chunk_json(chunk: Chunk) -> str:
    return json.dumps(
        {
            "first": chunk.first,
            "last": chunk.last,
            "state": chunk.state,
            "upstream_id": chunk.upstream_id,
            "cancel_sent": chunk.cancel_sent,
        }
    )


def _chunk(number: int, raw: bytes) -> Chunk:
    data: dict[str, Any] = json.loads(raw)
    return Chunk(number, **data)


def _item_json(item: ItemRecord) -> str:
    return json.dumps(
        {
            "custom_id": item.custom_id,
            "task": item.task,
            "request": base64.b64encode(item.request).decode(),
            "chunk": item.chunk,
        }
    )


def _item(index: int, raw: bytes) -> ItemRecord:
    data = json.loads(raw)
    return ItemRecord(
        index, data["custom_id"], data["task"], base64.b64decode(data["request"]), data["chunk"]
    )
