"""``tiergate eval``: run a task on several tiers over labelled data and say which to keep.

tiergate eval classify --data examples/eval/tickets.jsonl
tiergate eval extract --data examples/eval/invoices.jsonl --tiers fast,balanced --json
tiergate eval summarize --data notes.jsonl --report   # judged; the report in a new temp folder
tiergate eval classify --data tickets.jsonl --report reports/tickets   # ... or in a named one

Same configuration as ``tiergate serve`` (``TIERGATE_*``, ``ANTHROPIC_*``); no server needed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tiergate import config, logs
from tiergate.client import METHOD_NAMES
from tiergate.v1 import task_service_pb2

if TYPE_CHECKING:
    from tiergate.evaluation.dataset import Dataset
    from tiergate.evaluation.verdict import Verdict
    from tiergate.ledger import PriceTable
    from tiergate.tiers import Tier

_SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"]
_TASKS = {METHOD_NAMES[method.name].replace("_", "-"): method.name for method in _SERVICE.methods}
"""Command argument -> RPC name (from the proto, so the parser needs no task code)."""
_NEW_FOLDER = Path()
"""``--report`` without a folder: a new temporary one (never silently the working directory)."""


def add_parser(commands: Any) -> None:
    """Register ``eval`` on the ``tiergate`` command's subparsers."""
    sub: argparse.ArgumentParser = commands.add_parser(
        "eval", help="compare tiers on your labelled data: accuracy, cost per correct answer"
    )
    sub.add_argument("task", choices=sorted(_TASKS), help="the task, by its RPC name")
    sub.add_argument("--data", type=Path, required=True, help="JSONL: request and expected")
    sub.add_argument(
        "--tiers",
        default="",
        help="comma-separated tiers (default: the task's own tier and the next one up)",
    )
    sub.add_argument("--concurrency", type=int, default=4, help="calls in flight at once")
    sub.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    sub.add_argument(
        "--report",
        nargs="?",
        type=Path,
        const=_NEW_FOLDER,
        metavar="DIR",
        help="write an HTML report with a chart into DIR, or without DIR into a new temporary"
        " folder; the path is printed (default: no report)",
    )
    sub.set_defaults(run=run)


def _tiers(raw: str, rpc: str) -> tuple[Tier, ...]:
    from tiergate.evaluation import TIER_ORDER, default_tiers, parse_tier
    from tiergate.tasks import TASKS

    if not raw.strip():
        return default_tiers(TASKS[rpc])
    chosen = {parse_tier(label) for label in raw.split(",") if label.strip()}
    return tuple(tier for tier in TIER_ORDER if tier in chosen)


def run(args: argparse.Namespace) -> int:
    """The ``eval`` command; 0 when it ran, 1 when nothing could be evaluated, 2 on bad usage."""
    # Evaluation code loads only for this command: the others start faster without it.
    from tiergate.evaluation.dataset import load
    from tiergate.evaluation.runner import uses_emulator
    from tiergate.evaluation.scorers import scorer_for
    from tiergate.ledger import PriceTable
    from tiergate.tasks import TASKS

    rpc = _TASKS[args.task]
    task = TASKS[rpc]
    try:
        settings = config.from_env()
        prices = PriceTable.load()
        settings.check_priced(prices)
        settings.check_upstream()
        tiers = _tiers(args.tiers, rpc)
        if args.concurrency < 1:
            raise ValueError("--concurrency must be at least 1")
        if args.report is not None and importlib.util.find_spec("matplotlib") is None:
            # Checked before any call: a run must not be paid for and then lose its report.
            raise ValueError(
                "--report draws its chart with matplotlib, which is not installed; install it"
                f" with: {sys.executable} -m pip install 'tiergate[eval]'"
                " (`make run` installs it too)"
            )
        dataset = load(args.data, task, scorer_for(rpc))
    except (ValueError, LookupError, OSError) as exc:
        print(f"tiergate eval: {exc}", file=sys.stderr)
        return 2
    for bad in dataset.bad:
        print(f"{args.data}: {bad} (skipped)", file=sys.stderr)
    if not dataset.items:
        print(f"tiergate eval: {args.data} has no usable line", file=sys.stderr)
        return 1
    # Log lines (warnings only) go to stderr: stdout carries the verdict alone.
    logs.configure(level="warning", stream=sys.stderr)
    if uses_emulator(settings):
        print(
            "tiergate eval: TIERGATE_UPSTREAM=emulator: answers come from the embedded"
            " emulator, whose heuristics are not a language model",
            file=sys.stderr,
        )
    verdict = asyncio.run(_evaluate(args, settings, prices, tiers, dataset, sys.stderr))
    if args.json:
        print(json.dumps(verdict.to_json(), indent=2))
    else:
        print(render(verdict))
    if args.report is not None:
        from tiergate.evaluation.report import write_report

        folder = args.report
        if folder is _NEW_FOLDER:
            folder = Path(tempfile.mkdtemp(prefix=f"tiergate-eval-{args.task}-"))
        page = write_report(verdict, folder)
        print(f"report: {page}", file=sys.stderr)
    return 0


async def _evaluate(
    args: argparse.Namespace,
    settings: config.Settings,
    prices: PriceTable,
    tiers: tuple[Tier, ...],
    dataset: Dataset,
    progress: TextIO,
) -> Verdict:
    from tiergate.evaluation.runner import connect, evaluate
    from tiergate.tasks import TASKS

    async with connect(settings) as model_client:
        return await evaluate(
            TASKS[_TASKS[args.task]],
            dataset.items,
            tiers,
            settings,
            prices,
            model_client,
            concurrency=args.concurrency,
            progress=progress,
            skipped_lines=len(dataset.bad),
        )


def render(verdict: Verdict) -> str:
    """The verdict as a table a person reads."""
    from tiergate.evaluation.verdict import average_dollars
    from tiergate.ledger import dollars

    head = ("tier", "model", "scored", "correct", "accuracy", "95% CI", "errors", "cost",
            "per 1k calls", "per correct", "p50 ms", "p95 ms", f"{verdict.unit} F1")  # fmt: skip
    rows = [head]
    for result in verdict.tiers:
        data = result.to_json()
        lo, hi = data["ci95"]
        per_1k, per_correct = data["cost_per_1k_nanos"], data["cost_per_correct_nanos"]
        rows.append(
            (
                result.tier.label,
                result.model,
                str(result.scored),
                str(result.correct),
                f"{data['accuracy'] * 100:.1f}%",
                f"{lo * 100:.1f}-{hi * 100:.1f}%",
                ",".join(f"{k}:{v}" for k, v in data["errors"].items()) or "0",
                dollars(result.cost_nanos),
                average_dollars(per_1k) if per_1k is not None else "n/a",
                average_dollars(per_correct) if per_correct is not None else "n/a",
                f"{data['latency_ms']['p50']:.1f}",
                f"{data['latency_ms']['p95']:.1f}",
                f"{data['f1']:.3f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    scoring = f"scorer: {verdict.scorer}"
    if verdict.judged:
        scoring += (
            f" (judged by {verdict.judge_model} on the frontier tier;"
            f" judging cost {dollars(verdict.judge_cost_nanos)}, not in the tiers' costs)"
        )
    skipped = f", {verdict.skipped_lines} lines skipped" if verdict.skipped_lines else ""
    rec = verdict.recommendation
    return "\n".join(
        [
            f"{verdict.task}: {verdict.items} items{skipped}; {scoring}",
            *(line.rstrip() for line in lines),
            f"recommendation: {rec.tier.label} (gap {float(rec.gap_points):.1f} points):"
            f" {rec.reason}",
        ]
    )
