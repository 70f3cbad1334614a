"""The ``tiergate`` command: ``serve`` runs the service; one command per task calls it.

tiergate serve --port 50051
tiergate classify --text "I was charged twice" --label billing --label technical
tiergate summarize --text - --format bullets < notes.txt
tiergate extract --text "..." --schema @invoice.schema.json --json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from tiergate import cli_eval, config, logs
from tiergate.client import TaskClient, TiergateError
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import usage_pb2

DEFAULT_TARGET = "localhost:50051"
# Settings that are secrets stay out of argv (visible in process listings).
_NO_FLAG = {"anthropic_api_key"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if hasattr(args, "run"):
        return int(args.run(args))
    return _call(args)


# --- serve ---------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from tiergate.app import serve

    logs.configure(level=args.log_level)
    try:
        settings = config.from_env().replace(
            **{f.name: getattr(args, f.name) for f in _flag_fields()}
        )
        asyncio.run(serve(settings))
    except (ValueError, LookupError) as exc:
        print(f"tiergate: {exc}", file=sys.stderr)
        return 2
    return 0


def _flag_fields() -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(config.Settings) if f.name not in _NO_FLAG]


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the gRPC service")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    for f in _flag_fields():
        kind = type(f.default) if f.default is not None else str
        serve.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=kind,
            default=None,
            help=f"(env {config.env_name(f.name)}, default {f.default!r})",
        )


# --- task commands -------------------------------------------------------------------------


def _text(value: str) -> str:
    """``-`` reads standard input, ``@path`` reads a file, anything else is the text."""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        return Path(value[1:]).read_text(encoding="utf-8")
    return value


def _pair(value: str, sep: str = ":") -> tuple[str, str]:
    name, _, rest = value.partition(sep)
    return name.strip(), rest.strip()


def _classify(args: argparse.Namespace) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(
        text=args.text,
        labels=[pb.Label(name=n, description=d) for n, d in map(_pair, args.label)],
        instructions=args.instructions,
        examples=[pb.ClassifyExample(label=lb, text=t) for lb, t in map(_pair, args.example)],
        multi_label=args.multi_label,
    )


def _summarize(args: argparse.Namespace) -> pb.SummarizeRequest:
    formats = {"paragraph": pb.SUMMARY_FORMAT_PARAGRAPH, "bullets": pb.SUMMARY_FORMAT_BULLETS}
    return pb.SummarizeRequest(
        text=args.text, max_words=args.max_words, format=formats[args.format], focus=args.focus
    )


def _extract(args: argparse.Namespace) -> pb.ExtractRequest:
    return pb.ExtractRequest(
        text=args.text, json_schema=args.schema, instructions=args.instructions
    )


def _answer(args: argparse.Namespace) -> pb.AnswerRequest:
    documents = [pb.Document(id=i, text=t) for i, t in (_pair(d, "=") for d in args.doc)]
    documents += [
        pb.Document(id=Path(p).stem, title=Path(p).name, text=Path(p).read_text(encoding="utf-8"))
        for p in args.doc_file
    ]
    return pb.AnswerRequest(question=args.question, documents=documents)


def _moderate(args: argparse.Namespace) -> pb.ModerateRequest:
    categories = [
        pb.ModerationCategory(name=n, description=d) for n, d in map(_pair, args.category)
    ]
    return pb.ModerateRequest(text=args.text, categories=categories)


def _reason(args: argparse.Namespace) -> pb.ReasonRequest:
    return pb.ReasonRequest(question=args.question, context=args.context)


Builder = Callable[[argparse.Namespace], Message]
COMMANDS: dict[str, tuple[Builder, str]] = {
    "classify": (_classify, "Classify"),
    "summarize": (_summarize, "Summarize"),
    "extract": (_extract, "Extract"),
    "answer": (_answer, "Answer"),
    "moderate": (_moderate, "Moderate"),
    "reason": (_reason, "Reason"),
}
"""CLI command -> (request builder, RPC name)."""


def _add_tasks(commands: Any) -> None:
    def task(name: str, help_: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=help_)
        sub.add_argument("--target", default=os.environ.get("TIERGATE_TARGET", DEFAULT_TARGET))
        sub.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds")
        sub.add_argument("--json", action="store_true", help="print the response as JSON")
        return sub

    c = task("classify", "assign one of your labels to a text")
    c.add_argument("--text", type=_text, required=True, help="the text, - for stdin, @file")
    c.add_argument("--label", action="append", default=[], help="NAME or NAME:DESCRIPTION")
    c.add_argument("--example", action="append", default=[], help="LABEL:TEXT")
    c.add_argument("--instructions", type=_text, default="", help="text, or @file")
    c.add_argument("--multi-label", action="store_true")

    s = task("summarize", "summarize a text")
    s.add_argument("--text", type=_text, required=True, help="the text, - for stdin, @file")
    s.add_argument("--max-words", type=int, default=0)
    s.add_argument("--format", choices=["paragraph", "bullets"], default="paragraph")
    s.add_argument("--focus", default="")

    e = task("extract", "extract data matching a JSON Schema")
    e.add_argument("--text", type=_text, required=True, help="the text, - for stdin, @file")
    e.add_argument("--schema", type=_text, required=True, help="JSON Schema, or @file")
    e.add_argument("--instructions", type=_text, default="", help="text, or @file")

    a = task("answer", "answer a question from documents, with citations")
    a.add_argument("--question", required=True)
    a.add_argument("--doc", action="append", default=[], help="ID=TEXT")
    a.add_argument("--doc-file", action="append", default=[], help="a file; its stem is the id")

    m = task("moderate", "check a text against a moderation policy")
    m.add_argument("--text", type=_text, required=True, help="the text, - for stdin, @file")
    m.add_argument("--category", action="append", default=[], help="NAME or NAME:DESCRIPTION")

    r = task("reason", "reason step by step to an answer")
    r.add_argument("--question", required=True)
    r.add_argument("--context", type=_text, default="", help="background, or @file")


def _call(args: argparse.Namespace) -> int:
    build, rpc = COMMANDS[args.command]
    with TaskClient(args.target, timeout_s=args.timeout) as client:
        try:
            response: Message = getattr(client, rpc.lower())(build(args))
        except TiergateError as err:
            _print_error(err)
            return 1
    if args.json:
        print(json_format.MessageToJson(response, preserving_proto_field_name=True, indent=2))
    else:
        print(render(response))
    return 0


def _print_error(err: TiergateError) -> None:
    print(f"error: {err.code.name} {err.reason}: {err.message}", file=sys.stderr)
    for v in err.violations:
        print(f"  {v.field}: {v.description}", file=sys.stderr)
    if err.retry_after_s is not None:
        print(f"  retry after {err.retry_after_s:g} s", file=sys.stderr)


# --- human-readable output -----------------------------------------------------------------


def dollars(nanos: int) -> str:
    """Exact dollars from nano-dollars: 557000 -> '$0.000557'."""
    whole, frac = divmod(nanos, 1_000_000_000)
    digits = f"{frac:09d}".rstrip("0")
    return f"${whole}.{digits.ljust(2, '0')}"


def render(response: Message) -> str:
    """Every field but usage as 'name  value' lines, then the usage and cost lines."""
    rows: list[tuple[str, str]] = []
    data = json_format.MessageToDict(response, preserving_proto_field_name=True)
    data.pop("usage", None)
    for name, value in data.items():
        if isinstance(value, list) and value and not isinstance(value[0], dict):
            rows.extend((name if i == 0 else "", f"- {item}") for i, item in enumerate(value))
        elif isinstance(value, str):
            lines = value.splitlines() or [""]
            rows.extend((name if i == 0 else "", line) for i, line in enumerate(lines))
        else:
            rows.append((name, json.dumps(value, ensure_ascii=False)))
    usage: usage_pb2.Usage = getattr(response, "usage")  # noqa: B009  (every response has one)
    width = max([len(n) for n, _ in rows] + [5])
    lines = [f"{n:<{width}}  {v}" for n, v in rows]
    lines.append(f"{'usage':<{width}}  {render_usage(usage)}")
    lines.append(f"{'cost':<{width}}  {render_cost(usage.cost)}")
    return "\n".join(lines)


def render_usage(usage: usage_pb2.Usage) -> str:
    tier = usage_pb2.Tier.Name(usage.tier).removeprefix("TIER_").lower()
    return (
        f"{usage.model} ({tier}): {usage.input_tokens} input, "
        f"{usage.cache_creation_input_tokens} cache write, "
        f"{usage.cache_read_input_tokens} cache read, {usage.output_tokens} output tokens"
    )


def render_cost(cost: usage_pb2.Cost) -> str:
    parts = [
        f"input {dollars(cost.input_nanos)}",
        f"cache write {dollars(cost.cache_write_nanos)}",
        f"cache read {dollars(cost.cache_read_nanos)}",
        f"output {dollars(cost.output_nanos)}",
    ]
    saved = f", cache saved {dollars(cost.cache_savings_nanos)}" if cost.cache_savings_nanos else ""
    return f"{dollars(cost.total_nanos)} ({', '.join(parts)}){saved}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tiergate", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_serve(commands)
    _add_tasks(commands)
    cli_eval.add_parser(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
