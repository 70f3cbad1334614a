"""The ``tiergate`` command: ``serve`` runs the service; one command per task calls it.

tiergate serve --port 50051
tiergate classify --text "I was charged twice" --label billing --label technical
tiergate summarize --text - --format bullets < notes.txt
tiergate extract --text @examples/invoice.txt --schema @examples/invoice.schema.json --json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message

from tiergate import config, logs
from tiergate.cli import batch as cli_batch
from tiergate.cli import commands, flags, render
from tiergate.cli import eval as cli_eval
from tiergate.cli import spend as cli_spend
from tiergate.client import (
    METHOD_NAMES,
    STREAM_METHOD_NAMES,
    FieldViolation,
    TaskClient,
    TiergateError,
)

DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT_S = 60.0
# Settings that are or may hold secrets (a Redis URL carries its password) stay out of argv
# (visible in process listings).
_NO_FLAG = {"anthropic_api_key", "redis_url"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except _CommandLineError as exc:
        raw = sys.argv[1:] if argv is None else list(argv)
        if "--json" in raw:
            print(json.dumps({"error": {"code": "USAGE", "message": str(exc)}}), file=sys.stderr)
        else:
            print(exc, file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(args)
    if hasattr(args, "run"):
        return int(args.run(args))
    try:
        return _call(args)
    except KeyboardInterrupt:
        return 130


# --- serve ---------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from tiergate.serving.app import serve

    logs.configure(level=args.log_level)
    try:
        settings = config.from_env().replace(
            **{f.name: getattr(args, f.name) for f in _flag_fields()}
        )
        asyncio.run(serve(settings))
    except (ValueError, LookupError, OSError) as exc:
        # A misconfigured service stops here with one line saying why (exit 2).
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

_TASKS_EPILOG = """\
Text arguments take the text itself, - to read standard input, or @PATH to read a UTF-8 file
(@@ starts a literal text with @). Exit status: 0 done, 1 the call failed, 2 a bad command line
or an unreadable file. With --json the response prints with every field, defaults included;
64-bit integers are JSON numbers up to 2**53 and strings beyond, whole numbers in Extract's data
print without '.0'."""


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {value!r}")
    return seconds


def _add_tasks(subcommands: Any) -> None:
    target = os.environ.get("TIERGATE_TARGET") or DEFAULT_TARGET
    for command in commands.commands():
        sub: argparse.ArgumentParser = subcommands.add_parser(
            command.name,
            help=command.summary,
            description=textwrap.fill(command.description, 88),
            epilog=_TASKS_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for flag in command.flags:
            flag.add_to(sub)
        sub.add_argument(
            "--target",
            default=target,
            metavar="HOST:PORT",
            help=f"the tiergate server (default: {DEFAULT_TARGET}; env TIERGATE_TARGET)",
        )
        sub.add_argument(
            "--timeout",
            type=_seconds,
            default=DEFAULT_TIMEOUT_S,
            metavar="SECONDS",
            help=f"deadline of the call, above 0 (default: {DEFAULT_TIMEOUT_S:g})",
        )
        sub.add_argument(
            "--json",
            action="store_true",
            help="print the response as JSON with every field, errors as JSON on stderr "
            "(default: off)",
        )
        if f"Stream{command.rpc}" in STREAM_METHOD_NAMES:
            sub.add_argument(
                "--stream",
                action="store_true",
                help=f"print the {_STREAMED_TEXT[command.rpc]} as it is written, then the whole"
                " response; with --json, every message as one JSON line (default: off)",
            )
        flags.add_token_flag(sub)
        sub.set_defaults(task=command)


def _builder(command: commands.Command) -> Callable[[argparse.Namespace], Message]:
    return lambda args: command.build(args).request


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], Message], str]] = {
    command.name: (_builder(command), command.rpc) for command in commands.commands()
}
"""CLI command -> (request builder, RPC name), one per task of the registry."""


def _call(args: argparse.Namespace) -> int:
    command: commands.Command = args.task
    try:
        built = command.build(args)
        metadata = flags.bearer_metadata(args.token_file)
    except commands.UsageError as exc:
        return _fail(args, {"code": "USAGE", "message": str(exc)}, str(exc), status=2)
    with TaskClient(args.target, timeout_s=args.timeout, metadata=metadata) as client:
        try:
            if getattr(args, "stream", False):
                response = _streamed(client, command.rpc, built.request, as_json=args.json)
            else:
                response = getattr(client, METHOD_NAMES[command.rpc])(built.request)
        except TiergateError as err:
            if getattr(args, "stream", False) and not args.json:
                print()  # end the partial text's line before the error
            return _fail(args, _error_json(err, built, args), _error_line(err, built, args))
    if args.json and getattr(args, "stream", False):
        return 0  # every message, the last included, is printed already
    if args.json:
        print(json.dumps(render.as_json(response), indent=2, ensure_ascii=False))
    else:
        print(render.text(response, request=built.request))
    return 0


_STREAMED_TEXT = {"Summarize": "summary", "Answer": "answer", "Reason": "answer"}
"""The text field ``--stream`` prints as it grows."""


def _streamed(client: TaskClient, rpc: str, request: Message, *, as_json: bool) -> Message:
    """Read the RPC's stream, printing as it comes; return the complete response."""
    name = _STREAMED_TEXT[rpc]
    shown = ""
    response: Message | None = None
    for message in getattr(client, STREAM_METHOD_NAMES[f"Stream{rpc}"])(request):
        if as_json:
            print(json.dumps(render.as_json(message), ensure_ascii=False), flush=True)
        elif not message.complete:
            # Each message extends the last: only the new end of the text is printed.
            text: str = getattr(message.response, name)
            print(text[len(shown) :], end="", flush=True)
            shown = text
        response = message.response
    if response is None:  # pragma: no cover - a stream ends with its complete message
        raise TiergateError(grpc.StatusCode.INTERNAL, "the stream ended without a response")
    if shown and not as_json:
        print("\n")
    return response


def _fail(args: argparse.Namespace, error: dict[str, Any], line: str, *, status: int = 1) -> int:
    if args.json:
        print(json.dumps({"error": error}, ensure_ascii=False), file=sys.stderr)
    else:
        print(f"tiergate: {line}", file=sys.stderr)
    return status


def _hint(err: TiergateError, args: argparse.Namespace) -> str:
    """Advice for a server that cannot be reached and for a deadline that passed (in the
    client or, just before, in the server: either way --timeout was too short)."""
    if err.code == grpc.StatusCode.UNAVAILABLE and not err.reason:
        return (
            f"no tiergate server answers at {args.target}: start one with `make run` in "
            "another terminal, or check --target (env TIERGATE_TARGET)"
        )
    if err.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer within --timeout {args.timeout:g} s: try a longer --timeout"
    return ""


def _violation(v: FieldViolation, built: commands.Built) -> str:
    flag = built.flag_for(v.field)
    return f"{flag} ({v.field}): {v.description}" if flag else f"{v.field}: {v.description}"


def _error_line(err: TiergateError, built: commands.Built, args: argparse.Namespace) -> str:
    head = f"{err.code.name} ({err.reason})" if err.reason else err.code.name
    if err.violations:
        detail = "; ".join(_violation(v, built) for v in err.violations)
    else:
        detail = " ".join(err.message.split())
    hint = _hint(err, args)
    line = f"{head}: {hint} [{detail}]" if hint else f"{head}: {detail}"
    if err.retry_after_s is not None:
        line += f"; retry after {duration(err.retry_after_s)}"
    return line


def duration(seconds: float) -> str:
    """A wait as a person reads it: '1.5 s' up to two minutes, then '20 h 5 min'."""
    if seconds < 120:
        return f"{seconds:g} s"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min"]
    return " ".join(part for part in parts if part and not part.startswith("0 "))


def _error_json(
    err: TiergateError, built: commands.Built, args: argparse.Namespace
) -> dict[str, Any]:
    return {
        "code": err.code.name,
        "reason": err.reason,
        "message": err.message,
        "violations": [
            {"field": v.field, "flag": built.flag_for(v.field), "description": v.description}
            for v in err.violations
        ],
        "retry_after_s": err.retry_after_s,
        "hint": _hint(err, args),
    }


class _CommandLineError(Exception):
    """A command line argparse refused, said in one line."""


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes in one line, with where to look, instead of the whole usage."""

    def error(self, message: str) -> NoReturn:
        raise _CommandLineError(f"{self.prog}: {message} (see {self.prog} --help)")


class _CommandListFormatter(argparse.HelpFormatter):
    """Keeps each command's summary on its line: argparse measures the command names without
    the indent it then prints them with."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action.choices, dict):
            longest = max(map(len, action.choices)) + self._current_indent + self._indent_increment
            self._action_max_length = max(self._action_max_length, longest)


def _version() -> str:
    try:
        return metadata.version("tiergate")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tiergate",
        description="Typed LLM tasks over gRPC: serve them, or call a running server.",
        epilog="tiergate COMMAND --help describes each command and its options.",
        formatter_class=_CommandListFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tiergate {_version()}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(subcommands)
    _add_tasks(subcommands)
    cli_eval.add_parser(subcommands)
    cli_spend.add_parser(subcommands)
    target = os.environ.get("TIERGATE_TARGET") or DEFAULT_TARGET
    cli_batch.add_parser(subcommands, target, DEFAULT_TIMEOUT_S)
    return parser


if __name__ == "__main__":
    sys.exit(main())
