"""``tiergate batch``: submit a JSONL file of task requests as one batch, follow it, read it.

    tiergate batch submit Classify --data tickets.jsonl --wait
    tiergate batch status batches/3f2a...
    tiergate batch results batches/3f2a... --json > answers.jsonl
    tiergate batch cancel batches/3f2a...

Each line of the data file is one request of the task in its proto JSON form, plus an optional
``custom_id`` (default ``line-N``). While waiting on a terminal, a progress bar on stderr shows
the items done and the cost so far.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.rpc import error_details_pb2  # noqa: F401 (registers the detail types for JSON)

from tiergate.cli import flags, render
from tiergate.client import ENDED_STATES, TaskClient, TiergateError, batch_item
from tiergate.tasks import TASKS
from tiergate.v1 import batch_service_pb2 as bpb

MAX_DATA_BYTES = 256 * 1024 * 1024
"""Largest data file read (the largest batch the service accepts by default)."""
_BAR_WIDTH = 30
_ITEM_PATH = re.compile(r"^items\[(\d+)\]")


class UsageError(Exception):
    """A data file or argument that cannot make a batch."""


def add_parser(commands: Any, target: str, timeout_s: float) -> None:
    """Register ``batch`` and its four commands on the ``tiergate`` subparsers."""
    batch: argparse.ArgumentParser = commands.add_parser(
        "batch", help="typed tasks in bulk at half price: submit, status, results, cancel"
    )
    actions = batch.add_subparsers(dest="batch_command", required=True, metavar="ACTION")
    submit = actions.add_parser("submit", help="send a JSONL file of requests as one batch")
    submit.add_argument("task", choices=list(TASKS), help="the task of every line")
    submit.add_argument("--data", type=Path, required=True, help="JSONL: one request per line")
    submit.add_argument("--wait", action="store_true", help="wait until the batch ends")
    submit.set_defaults(run=_submit)
    status = actions.add_parser("status", help="a batch's state, counts and cost so far")
    status.set_defaults(run=_status)
    results = actions.add_parser("results", help="the finished items' results")
    results.set_defaults(run=_results)
    cancel = actions.add_parser("cancel", help="cancel the items not yet answered")
    cancel.set_defaults(run=_cancel)
    for sub in (status, results, cancel):
        sub.add_argument("name", help="the batch, batches/ID")
    for sub in (submit, status, results, cancel):
        sub.add_argument("--target", default=target, metavar="HOST:PORT", help="the server")
        sub.add_argument("--timeout", type=float, default=timeout_s, help="deadline per call")
        sub.add_argument("--json", action="store_true", help="JSON output (results: JSON lines)")
        flags.add_token_flag(sub)
    submit.add_argument("--poll", type=float, default=1.0, help="seconds between polls (--wait)")


def read_items(task: str, path: Path) -> list[bpb.BatchItem]:
    """The batch items of a JSONL file; ``UsageError`` names the first bad line."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    if size > MAX_DATA_BYTES:
        raise UsageError(f"{path}: larger than {MAX_DATA_BYTES} bytes; split it")
    request_type = TASKS[task].request_type
    items: list[bpb.BatchItem] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                custom_id = str(data.pop("custom_id", f"line-{number}"))
                request = json_format.ParseDict(data, request_type())
            except (ValueError, json_format.ParseError) as exc:
                raise UsageError(f"{path}:{number}: {exc}") from None
            items.append(batch_item(custom_id, request))
    if not items:
        raise UsageError(f"{path}: no requests")
    return items


def _submit(args: argparse.Namespace) -> int:
    try:
        items = read_items(args.task, args.data)
        client = _client(args)
    except (UsageError, flags.UsageError) as exc:
        return _fail(args, "USAGE", str(exc), status=2)
    with client:
        try:
            batch = client.create_batch(items)
        except TiergateError as err:
            return _fail(args, err.code.name, _error_line(err, items))
        if not args.json:
            print(batch.name)
        if args.wait:
            try:
                batch = _wait(client, batch, args.poll)
            except TiergateError as err:
                return _fail(args, err.code.name, _error_line(err, items))
            except KeyboardInterrupt:
                print(f"\nstill running; follow it with: tiergate batch status {batch.name}")
                return 130
            if not args.json:
                print(_summary(batch))
    if args.json:
        print(json.dumps(render.as_json(batch), ensure_ascii=False))
    return 0


def _wait(client: TaskClient, batch: bpb.Batch, poll_s: float) -> bpb.Batch:
    bar = sys.stderr.isatty()
    while batch.state not in ENDED_STATES:
        if bar:
            print(_bar(batch), end="\r", file=sys.stderr, flush=True)
        time.sleep(poll_s)
        batch = client.get_batch(batch.name)
    if bar:
        print(_bar(batch), file=sys.stderr)
    return batch


def _bar(batch: bpb.Batch) -> str:
    total = max(batch.item_count, 1)
    done = batch.item_count - batch.counts.pending
    filled = _BAR_WIDTH * done // total
    return (
        f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done}/{batch.item_count} items"
        f"  {render.dollars(batch.usage.cost.total_nanos)}"
    )


def _summary(batch: bpb.Batch) -> str:
    state = bpb.Batch.State.Name(batch.state).removeprefix("STATE_")
    c = batch.counts
    return (
        f"{batch.name}  {state}  {batch.item_count} items: {c.succeeded} succeeded,"
        f" {c.failed} failed, {c.expired} expired, {c.cancelled} cancelled, {c.pending} pending"
        f"  cost {render.dollars(batch.usage.cost.total_nanos)} (batch price)"
    )


def _status(args: argparse.Namespace) -> int:
    return _one(args, lambda client: client.get_batch(args.name))


def _cancel(args: argparse.Namespace) -> int:
    return _one(args, lambda client: client.cancel_batch(args.name))


def _client(args: argparse.Namespace) -> TaskClient:
    """A client sending the caller's token (``--token-file``, else ``TIERGATE_TOKEN``)."""
    metadata = flags.bearer_metadata(args.token_file)
    return TaskClient(args.target, timeout_s=args.timeout, metadata=metadata)


def _one(args: argparse.Namespace, call: Any) -> int:
    try:
        client = _client(args)
    except flags.UsageError as exc:
        return _fail(args, "USAGE", str(exc), status=2)
    with client:
        try:
            batch: bpb.Batch = call(client)
        except TiergateError as err:
            return _fail(args, err.code.name, _error_line(err, []))
    print(json.dumps(render.as_json(batch), ensure_ascii=False) if args.json else _summary(batch))
    return 0


def _results(args: argparse.Namespace) -> int:
    try:
        client = _client(args)
    except flags.UsageError as exc:
        return _fail(args, "USAGE", str(exc), status=2)
    with client:
        try:
            for result in client.batch_results(args.name):
                print(_result_line(result, as_json=args.json), flush=False)
        except TiergateError as err:
            return _fail(args, err.code.name, _error_line(err, []))
    return 0


def _result_line(result: bpb.BatchResult, *, as_json: bool) -> str:
    kind = result.WhichOneof("result")
    if as_json:
        data: dict[str, Any] = {"custom_id": result.custom_id, "index": result.index}
        if kind == "error":
            data["error"] = json_format.MessageToDict(result.error)
        elif kind is not None:
            data[kind] = render.as_json(getattr(result, kind))
        return json.dumps(data, ensure_ascii=False)
    if kind == "error":
        return f"{result.custom_id}\tERROR {result.error.code}: {result.error.message}"
    response = getattr(result, kind or "")
    first = render.text(response).splitlines()[0] if kind else ""
    return f"{result.custom_id}\t{' '.join(first.split())}"


def _error_line(err: TiergateError, items: list[bpb.BatchItem]) -> str:
    """The error with its reason, each violation also naming the data file's item by its
    custom_id."""
    head = f"{err.code.name} ({err.reason})" if err.reason else err.code.name
    if not err.violations:
        return f"{head}: {err.message}"
    named = []
    for v in err.violations:
        found = _ITEM_PATH.match(v.field)
        who = f"{items[int(found[1])].custom_id}: " if found and int(found[1]) < len(items) else ""
        named.append(f"{who}{v.field}: {v.description}")
    return f"{head}: " + "; ".join(named)


def _fail(args: argparse.Namespace, code: str, message: str, *, status: int = 1) -> int:
    if args.json:
        print(json.dumps({"error": {"code": code, "message": message}}), file=sys.stderr)
    else:
        print(f"tiergate: {message}", file=sys.stderr)
    return status


__all__ = ["add_parser", "read_items"]
