"""The task commands of ``tiergate``: one per RPC of :data:`tiergate.tasks.TASKS`.

A command is its flags (:mod:`tiergate.cli.flags`), each bound to one request field; the request is
built from the flags alone, so a new task needs a :class:`Command` with its flags and nothing
else (a task without one gets a flag per scalar field of its request). Its summary and tier come
from the task.

    command = COMMANDS["Classify"]
    built = command.build(args)          # the request, and which flag set which field
    built.flag_for("labels[1].name")     # '--label #2'
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from tiergate.cli.flags import (
    BinaryFiles,
    Built,
    Choice,
    DocumentFiles,
    Entries,
    Flag,
    Number,
    Switch,
    Text,
    TextSource,
    UsageError,
)
from tiergate.client import METHOD_NAMES
from tiergate.tasks import TASKS
from tiergate.v1 import task_service_pb2 as pb

__all__ = ["COMMANDS", "Built", "Command", "TextSource", "UsageError", "commands", "derived"]


@dataclass(frozen=True)
class Command:
    """``tiergate <name>``: calls one RPC with a request built from its flags."""

    rpc: str
    prints: str
    """What it prints, for its help (after the task's summary and tier)."""
    flags: tuple[Flag, ...]

    @property
    def summary(self) -> str:
        """One line, for the list of commands: the task's own."""
        return TASKS[self.rpc].summary

    @property
    def description(self) -> str:
        """What it does, on which tier, and what it prints, for its help."""
        task = TASKS[self.rpc]
        what = task.summary[:1].upper() + task.summary[1:]
        return f"{what} ({task.tier.label} tier). {self.prints}"

    @property
    def name(self) -> str:
        """The command: the client method's name, words joined by hyphens (``count-words``)."""
        return METHOD_NAMES[self.rpc].replace("_", "-")

    @property
    def request_type(self) -> type[Message]:
        message: type[Message] = TASKS[self.rpc].request_type
        return message

    def build(self, args: argparse.Namespace, source: TextSource | None = None) -> Built:
        """The request from the parsed flags; raises UsageError naming the flag at fault."""
        built = Built(self.request_type())
        source = source or TextSource()
        for flag in self.flags:
            value = getattr(args, flag.dest)
            if value is not None:
                flag.apply(built.request, value, built, source)
        return built


def derived(rpc: str) -> Command:
    """A command for a task that has none written: a flag per scalar field of its request."""
    message: Descriptor = TASKS[rpc].request_type.DESCRIPTOR
    flags: list[Flag] = []
    for f in message.fields:
        option, what = f"--{f.name.replace('_', '-')}", f.name.replace("_", " ")
        if f.is_repeated:
            continue
        if f.type == FieldDescriptor.TYPE_STRING:
            flags.append(Text(option, f.name, f"the {what}, - for stdin or @file"))
        elif f.type == FieldDescriptor.TYPE_BOOL:
            flags.append(Switch(option, f.name, what))
        elif f.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64):
            flags.append(Number(option, f.name, what))
    return Command(rpc, "Prints the response.", tuple(flags))


def commands() -> list[Command]:
    """One command per task of the registry, in the registry's order."""
    return [COMMANDS.get(rpc) or derived(rpc) for rpc in TASKS]


_TEXT = "the text, - for stdin or @file"

COMMANDS: Mapping[str, Command] = {
    command.rpc: command
    for command in (
        Command(
            "Classify",
            "Prints the label, the labels (with --multi-label), the confidence (with "
            "--confidence), then the usage and the exact cost.",
            (
                Text("--text", "text", _TEXT, required=True),
                Entries("--label", "labels", "a label and what it covers; at least 2"),
                Entries(
                    "--example",
                    "examples",
                    "a labelled example text",
                    key="label",
                    value="text",
                    value_required=True,
                ),
                Text("--instructions", "instructions", "stable guidance, cached; - or @file"),
                Switch("--multi-label", "multi_label", "also list every label that applies"),
                Switch("--confidence", "include_confidence", "also ask for a confidence"),
            ),
        ),
        Command(
            "Summarize",
            "Prints the summary, its key points and action items when asked for, then the "
            "usage and the exact cost.",
            (
                Text("--text", "text", _TEXT, required=True),
                Number("--max-words", "max_words", "longest summary in words; 0 = 120"),
                Choice(
                    "--format",
                    "format",
                    "a paragraph or bullet points",
                    choices={
                        "paragraph": pb.SUMMARY_FORMAT_PARAGRAPH,
                        "bullets": pb.SUMMARY_FORMAT_BULLETS,
                    },
                    default="paragraph",
                ),
                Text("--focus", "focus", "what the summary should focus on; - or @file"),
                Switch("--key-points", "include_key_points", "also list the key points"),
                Switch("--action-items", "include_action_items", "also list the action items"),
            ),
        ),
        Command(
            "Extract",
            "Prints the data indented, then the usage and the exact cost.",
            (
                Text("--text", "text", _TEXT, required=True),
                Text("--schema", "json_schema", "a JSON Schema of an object, or @file", True),
                Text("--instructions", "instructions", "stable guidance, cached; - or @file"),
            ),
        ),
        Command(
            "Read",
            "Prints the data indented, then the usage and the exact cost.",
            (
                BinaryFiles("--file", "documents", "a PDF or an image to read", True),
                Text("--schema", "json_schema", "a JSON Schema of an object, or @file", True),
                Text("--instructions", "instructions", "stable guidance, cached; - or @file"),
            ),
        ),
        Command(
            "Answer",
            "Prints the answer, whether the documents hold it, the verbatim citations, the "
            "usage and the cost.",
            (
                Text("--question", "question", "the question, - for stdin or @file", True),
                Entries(
                    "--doc",
                    "documents",
                    "a document: its id, =, its text (or @file)",
                    key="id",
                    value="text",
                    sep="=",
                    value_required=True,
                ),
                DocumentFiles("--doc-file", "documents", "a document file; its stem is the id"),
            ),
        ),
        Command(
            "Moderate",
            "Uses your categories, or the built-in policy without any. Prints whether it "
            "is flagged and a verdict per category (with --rationale, why), usage and cost.",
            (
                Text("--text", "text", _TEXT, required=True),
                Entries("--category", "categories", "a policy category and what it covers"),
                Switch("--rationale", "include_rationale", "also ask why, per category"),
            ),
        ),
        Command(
            "Reason",
            "Prints the answer, the steps, the confidence (with --confidence), then the usage "
            "and the exact cost.",
            (
                Text("--question", "question", "the question, - for stdin or @file", True),
                Text("--context", "context", "background, cached when long; - or @file"),
                Switch("--confidence", "include_confidence", "also ask for a confidence"),
            ),
        ),
    )
}
"""The written commands, by RPC name."""
