"""The tiergate command: serve in a real process, and every task command against a server.

Rendering and request building are pinned over hand-written responses and command lines; what
involves a call runs the real CLI in a subprocess against a real server on the emulator.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2

from harness import Upstream, free_port, wait_serving
from tiergate.cli import commands, render
from tiergate.cli import main as cli
from tiergate.cli.commands import TextSource, UsageError
from tiergate.ledger import dollars
from tiergate.serving.app import App
from tiergate.tasks import TASKS
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import usage_pb2

TIERGATE = [sys.executable, "-m", "tiergate.cli"]
SERVICE = pb.DESCRIPTOR.services_by_name["TaskService"]
LABELS = ["--label", "billing:charges", "--label", "technical:errors"]


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TIERGATE, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def build(argv: list[str], stdin: bytes = b"") -> commands.Built:
    """The request the CLI would send for ``argv``, built in process."""
    args = cli._parser().parse_args(argv)
    command: commands.Command = args.task
    return command.build(args, TextSource(io.BytesIO(stdin)))


def usage(**fields: Any) -> usage_pb2.Usage:
    return usage_pb2.Usage(model="claude-haiku-4-5", tier=usage_pb2.TIER_FAST, **fields)


@pytest.fixture
def target(app: App) -> str:
    return f"127.0.0.1:{app.port}"


class TestTaskCommands:
    def test_classify_prints_label_tokens_and_cost(self, target: str) -> None:
        """A person reads the label, the usage line and the exact cost."""
        done = run(
            "classify",
            "--target",
            target,
            "--text",
            "I was charged twice this month",
            "--label",
            "billing:charges and refunds",
            "--label",
            "technical:errors and outages",
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split() == ["label", "billing"]
        assert any(line.startswith("usage") and "claude-haiku-4-5 (fast)" in line for line in lines)
        assert any(line.startswith("cost") and "$0.000" in line for line in lines)

    @pytest.mark.parametrize(
        ("command", "args"),
        [
            ("summarize", ["--text", "-", "--format", "bullets"]),
            (
                "extract",
                [
                    "--text",
                    "-",
                    "--schema",
                    '{"type":"object","properties":{"email":{"type":"string"}}}',
                ],
            ),
            (
                "answer",
                [
                    "--question",
                    "How long do refunds take?",
                    "--doc",
                    "refunds=Refunds take 14 days.",
                ],
            ),
            ("moderate", ["--text", "-"]),
            ("reason", ["--question", "What is 2 plus 2?"]),
            ("classify", ["--text", "-", "--label", "a", "--label", "b"]),
        ],
    )
    def test_json_prints_every_field(self, target: str, command: str, args: list[str]) -> None:
        """--json prints every field of the response and of its usage, zero values included,
        with int64 as JSON numbers."""
        stdin = "Mail bob@example.com. Dana will send the report by Friday."
        done = run(command, "--target", target, "--json", *args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        reply = json.loads(done.stdout)
        output = SERVICE.methods_by_name[command.capitalize()].output_type
        assert list(reply) == [f.name for f in output.fields]
        assert list(reply["usage"]) == [f.name for f in usage_pb2.Usage.DESCRIPTOR.fields]
        assert list(reply["usage"]["cost"]) == [f.name for f in usage_pb2.Cost.DESCRIPTOR.fields]
        assert isinstance(reply["usage"]["cost"]["total_nanos"], int)
        assert reply["usage"]["cost"]["total_nanos"] > 0
        assert reply["usage"]["cache_read_input_tokens"] == 0

    def test_read_prints_the_data_of_the_example_files(self, target: str) -> None:
        """tiergate read --file invoice.pdf --file receipt.png --schema @invoice.schema.json."""
        done = run(
            "read",
            "--target",
            target,
            "--file",
            "examples/invoice.pdf",
            "--file",
            "examples/receipt.png",
            "--schema",
            "@examples/invoice.schema.json",
        )
        assert done.returncode == 0, done.stderr
        assert "invoice_number  INV-2041" in done.stdout
        assert "claude-opus-4-7 (frontier)" in done.stdout

    def test_read_refuses_an_unknown_file_type(self) -> None:
        with pytest.raises(UsageError, match=r"--file #1 notes.txt: unknown file type"):
            build(["read", "--file", "notes.txt", "--schema", "{}"])

    def test_read_names_the_file_the_server_refuses(self, target: str, tmp_path: Path) -> None:
        """A text file called .png is refused by the server, naming the flag's file."""
        fake = tmp_path / "scan.png"
        fake.write_text("not an image")
        done = run("read", "--target", target, "--file", str(fake), "--schema", "{}")
        assert done.returncode != 0
        assert "--file #1" in done.stderr or "documents[0].data" in done.stderr

    def test_target_comes_from_the_environment(self, target: str) -> None:
        """Without --target, TIERGATE_TARGET names the server."""
        env = {**os.environ, "TIERGATE_TARGET": target}
        done = run("classify", "--text", "hello", *LABELS, env=env)
        assert done.returncode == 0, done.stderr


class TestTextArguments:
    """Every text flag takes the text, - (standard input) or @file."""

    def test_question_and_context_read_files_and_stdin(self, tmp_path: Path) -> None:
        """--question @file and --context - read their sources; nothing is sent literally."""
        (tmp_path / "q.txt").write_text("Why is the sky blue?\n", encoding="utf-8")
        built = build(
            ["reason", "--question", f"@{tmp_path / 'q.txt'}", "--context", "-"],
            stdin=b"Light scatters.",
        )
        assert built.request == pb.ReasonRequest(
            question="Why is the sky blue?\n", context="Light scatters."
        )

    def test_every_text_flag_takes_a_file(self, tmp_path: Path) -> None:
        """--text, --instructions, --schema, --focus, --doc ID=@file, --example L:@file all read
        the file."""
        note = tmp_path / "note.txt"
        note.write_text("from a file", encoding="utf-8")
        at = f"@{note}"
        argv = ["classify", "--text", at, "--instructions", at, "--label", f"a:{at}"]
        classify = build([*argv, "--label", "b", "--example", f"a:{at}"]).request
        assert isinstance(classify, pb.ClassifyRequest)
        assert {classify.text, classify.instructions, classify.labels[0].description} == {
            "from a file"
        }
        assert classify.examples[0] == pb.ClassifyExample(label="a", text="from a file")
        summarize = build(["summarize", "--text", at, "--focus", at]).request
        assert isinstance(summarize, pb.SummarizeRequest)
        assert summarize.focus == summarize.text == "from a file"
        answer = build(["answer", "--question", at, "--doc", f"notes={at}"]).request
        assert isinstance(answer, pb.AnswerRequest)
        assert answer.documents[0] == pb.Document(id="notes", text="from a file")
        extract = build(["extract", "--text", "x", "--schema", at]).request
        assert isinstance(extract, pb.ExtractRequest)
        assert extract.json_schema == "from a file"

    def test_doc_file_takes_its_id_from_the_file_name(self, tmp_path: Path) -> None:
        """--doc-file refunds.txt is the document refunds, titled with the file name."""
        (tmp_path / "refunds.txt").write_text("14 days", encoding="utf-8")
        built = build(["answer", "--question", "q", "--doc-file", str(tmp_path / "refunds.txt")])
        assert isinstance(built.request, pb.AnswerRequest)
        assert built.request.documents[0] == pb.Document(
            id="refunds", title="refunds.txt", text="14 days"
        )

    def test_double_at_is_a_literal_at(self) -> None:
        """@@handle sends '@handle', for texts that start with @."""
        built = build(["reason", "--question", "@@team what now?"])
        assert isinstance(built.request, pb.ReasonRequest)
        assert built.request.question == "@team what now?"

    def test_standard_input_is_read_once(self) -> None:
        """Two flags cannot both read -; the error names both."""
        with pytest.raises(
            UsageError, match="--context -: standard input is already read by --question"
        ):
            build(["reason", "--question", "-", "--context", "-"], stdin=b"x")

    def test_file_reaches_the_model(self, target: str, upstream: Upstream, tmp_path: Path) -> None:
        """A question from @file and a document from - arrive in the model's prompt."""
        question = tmp_path / "question.txt"
        question.write_text("How long do refunds take?", encoding="utf-8")
        done = run(
            "answer",
            "--target",
            target,
            "--question",
            f"@{question}",
            "--doc",
            "refunds=-",
            stdin="Refunds are issued within 14 days.",
        )
        assert done.returncode == 0, done.stderr
        body = json.dumps(upstream.requests[-1])
        assert "How long do refunds take?" in body
        assert "Refunds are issued within 14 days." in body
        assert "@" + str(question) not in body


class TestFileProblems:
    """An unreadable file is one line naming the flag and the file, exit status 2."""

    @pytest.mark.parametrize(
        ("make", "expected"),
        [
            (lambda d: d / "missing.txt", "no such file"),
            (lambda d: d, "is a directory, not a file"),
            (
                lambda d: _write(d / "latin1.txt", "café".encode("latin-1")),
                "not UTF-8 text (byte 0xe9 at offset 3)",
            ),
        ],
    )
    def test_one_line_naming_the_file(self, tmp_path: Path, make: Any, expected: str) -> None:
        """Missing files, directories and non-UTF-8 files stop the command before any call."""
        path = make(tmp_path)
        done = run("extract", "--target", "127.0.0.1:1", "--text", "x", "--schema", f"@{path}")
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr == f"tiergate: --schema @{path}: {expected}\n"

    def test_missing_doc_file(self, tmp_path: Path) -> None:
        """--doc-file names its occurrence and the file."""
        done = run("answer", "--question", "q", "--doc-file", str(tmp_path / "nope.txt"))
        assert done.returncode == 2
        assert done.stderr == f"tiergate: --doc-file #1 @{tmp_path / 'nope.txt'}: no such file\n"

    def test_non_utf8_standard_input(self) -> None:
        """Bytes that are not UTF-8 on stdin are refused, naming the flag."""
        done = subprocess.run(
            [*TIERGATE, "summarize", "--text", "-"], input=b"\xff", capture_output=True, check=False
        )
        assert done.returncode == 2
        assert done.stderr.decode() == (
            "tiergate: --text standard input: not UTF-8 text (byte 0xff at offset 0)\n"
        )

    def test_json_mode_reports_it_as_json(self, tmp_path: Path) -> None:
        """With --json, the same problem is one JSON object on stderr."""
        done = run("reason", "--json", "--question", f"@{tmp_path / 'q.txt'}")
        assert done.returncode == 2
        assert json.loads(done.stderr) == {
            "error": {"code": "USAGE", "message": f"--question @{tmp_path / 'q.txt'}: no such file"}
        }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class TestCommandLineMistakes:
    def test_doc_without_an_id(self) -> None:
        """--doc TEXT without ID= says what it expects, naming the flag."""
        with pytest.raises(UsageError, match=r"^--doc 'Refunds take 14 days': expected ID=TEXT"):
            build(["answer", "--question", "q", "--doc", "Refunds take 14 days"])

    def test_example_without_a_label(self) -> None:
        """--example needs LABEL:TEXT."""
        with pytest.raises(UsageError, match=r"^--example 'just text': expected LABEL:TEXT"):
            build(
                [
                    "classify",
                    "--text",
                    "t",
                    "--label",
                    "a",
                    "--label",
                    "b",
                    "--example",
                    "just text",
                ]
            )

    @pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "soon"])
    def test_timeout_must_be_positive(self, timeout: str) -> None:
        """--timeout 0 (or negative, or not a number) is refused in one line, exit status 2."""
        done = run("reason", "--question", "q", "--timeout", timeout)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1
        assert "--timeout: must be a number of seconds above 0" in done.stderr

    def test_json_mode_reports_mistakes_as_json(self) -> None:
        """With --json, a refused command line is one JSON object on stderr too."""
        done = run("reason", "--json", "--question", "q", "--timeout", "0")
        assert done.returncode == 2
        error = json.loads(done.stderr)["error"]
        assert error["code"] == "USAGE"
        assert error["message"].startswith("tiergate reason: argument --timeout: must be")

    def test_missing_required_flag_is_one_line(self) -> None:
        """argparse's mistakes are one line pointing at --help, not the whole usage."""
        done = run("classify", "--label", "a")
        assert done.returncode == 2
        assert done.stderr == (
            "tiergate classify: the following arguments are required: --text "
            "(see tiergate classify --help)\n"
        )


class TestCallErrors:
    def test_validation_names_flags_and_prints_once(self, target: str) -> None:
        """Each field violation names the flag (and its use) and the server's path, once, in
        one line; exit status 1."""
        done = run("classify", "--target", target, "--text", " ", "--label", "a", "--label", "")
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr == (
            "tiergate: INVALID_ARGUMENT (INVALID_REQUEST): --text (text): must not be empty or "
            "blank; --label #2 (labels[1].name): must not be empty or blank\n"
        )

    def test_documents_from_both_flags_are_told_apart(self, target: str, tmp_path: Path) -> None:
        """A violation on the third document names the --doc-file that made it."""
        (tmp_path / "a.txt").write_text("text", encoding="utf-8")
        done = run(
            "answer",
            "--target",
            target,
            "--question",
            "q",
            "--doc",
            "a=first",
            "--doc",
            "b=second",
            "--doc-file",
            str(tmp_path / "a.txt"),
        )
        assert done.returncode == 1
        assert "--doc-file #1 (documents[2].id): duplicates documents[0].id" in done.stderr

    def test_json_errors_go_to_stderr_as_one_object(self, target: str) -> None:
        """With --json an error is one JSON object on stderr with the flag of each violation."""
        done = run("classify", "--json", "--target", target, "--text", "x", "--label", "only")
        assert done.returncode == 1
        assert done.stdout == ""
        error = json.loads(done.stderr)["error"]
        assert (error["code"], error["reason"]) == ("INVALID_ARGUMENT", "INVALID_REQUEST")
        assert error["violations"] == [
            {
                "field": "labels",
                "flag": "--label",
                "description": "needs at least 2 entries (got 1)",
            }
        ]

    def test_connection_refused_hints_at_make_run(self) -> None:
        """With nothing listening, the one line says to start the server or check --target."""
        address = f"127.0.0.1:{free_port()}"
        done = run("reason", "--target", address, "--question", "q")
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1
        assert done.stderr.startswith(
            f"tiergate: UNAVAILABLE: no tiergate server answers at {address}: start one with "
            "`make run` in another terminal, or check --target"
        )

    def test_deadline_hints_at_timeout(self, target: str) -> None:
        """A deadline that passes (in the client or the server, whichever sees it first)
        suggests a longer --timeout, in one line."""
        done = run("reason", "--target", target, "--question", "q", "--timeout", "0.000001")
        assert done.returncode == 1
        assert done.stderr.startswith("tiergate: DEADLINE_EXCEEDED")
        assert ": no answer within --timeout 1e-06 s: try a longer --timeout" in done.stderr
        assert done.stderr.count("\n") == 1

    def test_server_errors_without_advice_stay_plain(self, target: str) -> None:
        """A refused request from the server carries no connection hint."""
        done = run("reason", "--target", target, "--question", " ")
        assert done.returncode == 1
        assert "make run" not in done.stderr


class TestTextOutput:
    """Text output shows every field, zero and false values included."""

    def test_zero_and_false_values_are_shown(self) -> None:
        """An unanswerable answer shows answerable false, an empty answer and no citations."""
        lines = render.text(pb.AnswerResponse(answerable=False, usage=usage())).splitlines()
        assert lines[:3] == ['answer      ""', "answerable  false", "citations   (none)"]
        classify = render.text(pb.ClassifyResponse(label="a", confidence=0.0, usage=usage()))
        assert "confidence  0\n" in classify

    def test_moderate_is_a_table(self) -> None:
        """Moderate prints flagged, then a row per category under a header."""
        response = pb.ModerateResponse(
            flagged=True,
            categories=[
                pb.CategoryVerdict(name="spam", flagged=True, rationale="Sells pills."),
                pb.CategoryVerdict(name="harassment", flagged=False, rationale="No insult."),
            ],
            usage=usage(),
        )
        assert render.text(response).splitlines()[:4] == [
            "flagged     true",
            "categories  name        flagged  rationale",
            "            spam        true     Sells pills.",
            "            harassment  false    No insult.",
        ]

    def test_extract_data_is_indented_with_whole_numbers(self) -> None:
        """Nested data is indented, lists are bulleted and 34.0 prints as 34."""
        data = struct_pb2.Struct()
        data.update(
            {
                "total": 34.0,
                "rate": 0.5,
                "customer": {"name": "Ana", "vip": False},
                "lines": [{"qty": 2.0, "sku": "W-1"}],
                "tags": [],
            }
        )
        assert render.text(pb.ExtractResponse(data=data, usage=usage())).splitlines()[:9] == [
            "data   customer",
            "         name  Ana",
            "         vip   false",
            "       lines",
            "         - qty  2",
            "           sku  W-1",
            "       rate      0.5",
            "       tags      []",
            "       total     34",
        ]

    def test_usage_and_cost_close_the_output(self) -> None:
        """The last two lines are the usage and the exact cost."""
        cost = usage_pb2.Cost(input_nanos=1000, output_nanos=5000, total_nanos=6000)
        text = render.text(pb.ReasonResponse(answer="4", usage=usage(input_tokens=1, cost=cost)))
        assert text.splitlines()[-2:] == [
            "usage       claude-haiku-4-5 (fast): 1 input, 0 cache write, 0 cache read, "
            "0 output tokens",
            "cost        $0.000006 (input $0.000001, cache write $0.00, cache read $0.00, "
            "output $0.000005)",
        ]


class TestJsonOutput:
    def test_int64_are_numbers_up_to_two_to_the_53(self) -> None:
        """Exact int64 values are JSON numbers; beyond 2**53 they stay strings."""
        cost = usage_pb2.Cost(total_nanos=2**53, input_nanos=2**53 + 1)
        reply = render.as_json(pb.ReasonResponse(usage=usage(cost=cost)))
        assert reply["usage"]["cost"]["total_nanos"] == 2**53
        assert reply["usage"]["cost"]["input_nanos"] == str(2**53 + 1)

    def test_defaults_are_present(self) -> None:
        """False, zero, empty and unset fields all appear."""
        reply = render.as_json(pb.AnswerResponse(usage=usage_pb2.Usage()))
        assert (reply["answer"], reply["answerable"], reply["citations"]) == ("", False, [])
        assert reply["usage"]["cost"] is None
        assert reply["usage"]["input_tokens"] == 0
        assert render.as_json(pb.AnswerResponse())["usage"] is None

    def test_struct_numbers_are_whole_where_they_can_be(self) -> None:
        """Extract data keeps 0.5, prints 34.0 as 34, and sorts keys."""
        data = struct_pb2.Struct()
        data.update({"b": 34.0, "a": [1.0, 0.5]})
        reply = render.as_json(pb.ExtractResponse(data=data))
        assert json.dumps(reply["data"]) == '{"a": [1, 0.5], "b": 34}'


class TestHelpAndVersion:
    def test_version_is_the_package_version(self) -> None:
        """--version prints the installed package's version."""
        done = run("--version")
        assert done.returncode == 0
        assert done.stdout == f"tiergate {metadata.version('tiergate')}\n"

    def test_the_command_list_describes_every_command(self) -> None:
        """tiergate --help lists every task command with its summary."""
        done = run("--help")
        for command in commands.commands():
            assert f"    {command.name}" in done.stdout
            assert command.summary in " ".join(done.stdout.split())

    @pytest.mark.parametrize("command", [c.name for c in commands.commands()])
    def test_every_option_has_its_default(self, command: str) -> None:
        """Each command's help has its description and every option says its default (or
        that it is required); --target names TIERGATE_TARGET."""
        done = run(command, "--help")
        text = " ".join(done.stdout.split())
        spec = next(c for c in commands.commands() if c.name == command)
        assert " ".join(spec.description.split()) in text
        options = re.split(r"\n  (?=-)", done.stdout.split("options:")[1])[1:]
        # --help, --target, --timeout, --json, --token-file, and --stream where a task streams
        streams = spec.rpc in ("Summarize", "Answer", "Reason")
        assert len(options) == len(spec.flags) + 5 + streams
        for option in options:
            if not option.startswith("-h"):
                assert "default" in option or "required" in option, option
        assert "env TIERGATE_TARGET" in text
        assert "env TIERGATE_TOKEN" in text


class TestRegistry:
    """The task commands come from the one task registry."""

    def test_a_command_per_task_and_per_rpc(self) -> None:
        """Every task of TASKS, and every RPC of the service, has a command calling it."""
        assert [c.rpc for c in commands.commands()] == list(TASKS)
        assert {c.rpc for c in commands.commands()} == {m.name for m in SERVICE.methods}

    @pytest.mark.parametrize("rpc", list(TASKS))
    def test_every_request_field_has_a_flag(self, rpc: str) -> None:
        """No request field is out of the CLI's reach, and no flag names a missing field."""
        command = next(c for c in commands.commands() if c.rpc == rpc)
        fields = {f.name for f in SERVICE.methods_by_name[rpc].input_type.fields}
        assert {flag.field for flag in command.flags} == fields

    def test_a_task_without_a_command_gets_one_from_its_request(self) -> None:
        """derived() makes a flag per scalar request field, so a new task works at once."""
        flags = {flag.flag: type(flag).__name__ for flag in commands.derived("Summarize").flags}
        assert flags == {
            "--text": "Text",
            "--max-words": "Number",
            "--focus": "Text",
            "--include-key-points": "Switch",
            "--include-action-items": "Switch",
        }


class TestDollars:
    @pytest.mark.parametrize(
        ("nanos", "text"),
        [(0, "$0.00"), (557_000, "$0.000557"), (525_000_000, "$0.525"), (3_000_000_000, "$3.00")],
    )
    def test_exact_rendering(self, nanos: int, text: str) -> None:
        """Nano-dollars render exactly, without float rounding."""
        assert dollars(nanos) == text


class TestServe:
    @pytest.fixture
    def server(self) -> Iterator[tuple[subprocess.Popen[str], int]]:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        env["TIERGATE_PORT"] = str(port)
        env["TIERGATE_UPSTREAM"] = "emulator"
        process = subprocess.Popen(
            [*TIERGATE, "serve", "--host", "127.0.0.1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_serving(port)
            yield process, port
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    def test_serves_on_the_emulator_and_stops_on_sigterm(
        self, server: tuple[subprocess.Popen[str], int]
    ) -> None:
        """With the emulator chosen it says so; SIGTERM ends it with exit code 0."""
        process, port = server
        done = run(
            "classify",
            "--target",
            f"127.0.0.1:{port}",
            "--text",
            "hi",
            "--label",
            "a",
            "--label",
            "b",
            "--json",
        )
        assert done.returncode == 0, done.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert process.stdout is not None
        logs = [json.loads(line) for line in process.stdout.read().splitlines() if line.strip()]
        events = [entry["event"] for entry in logs]
        assert "emulator.started" in events
        assert "not a language model" in next(e["note"] for e in logs if "note" in e)
        assert events[-1] == "stopped"
        rpc = next(entry for entry in logs if entry["event"] == "rpc")
        assert rpc["task"] == "Classify"
        assert rpc["status"] == "OK"

    def test_refuses_to_start_on_an_unpriced_model(self) -> None:
        """A tier model missing from the price table stops start-up with exit code 2."""
        done = run("serve", "--port", str(free_port()), "--fast-model", "claude-unknown-9")
        assert done.returncode == 2
        assert "claude-unknown-9" in done.stderr
