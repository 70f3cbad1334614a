"""Command-line flags of the task commands, each bound to one request field.

A flag parses its argument and sets its field; text arguments go through :class:`TextSource`:
``-`` reads standard input (once), ``@path`` a UTF-8 file, ``@@`` starts a literal ``@``.
:class:`Built` remembers which flag (and which use of it) set each field, so the server's field
paths can be told back as flags.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from google.protobuf.message import Message


class UsageError(Exception):
    """A command line the CLI cannot turn into a request (exit status 2), said in one line."""


class TextSource:
    """Resolves text arguments: ``-`` reads standard input (once), ``@path`` a UTF-8 file."""

    def __init__(self, stdin: BinaryIO | None = None) -> None:
        self._stdin = stdin
        self._stdin_reader: str | None = None

    def read(self, flag: str, value: str) -> str:
        if value.startswith("@@"):
            return value[1:]
        if value == "-":
            return self._read_stdin(flag)
        if value.startswith("@"):
            return _read_file(flag, value[1:])
        return value

    def _read_stdin(self, flag: str) -> str:
        if self._stdin_reader is not None:
            raise UsageError(
                f"{flag} -: standard input is already read by {self._stdin_reader}; "
                "give one of them as @file"
            )
        self._stdin_reader = flag
        stream = self._stdin if self._stdin is not None else sys.stdin.buffer
        return _decode(flag, "standard input", stream.read())


def _read_file(flag: str, name: str) -> str:
    return _decode(flag, f"@{name}", _read_bytes(flag, name))


def _read_bytes(flag: str, name: str) -> bytes:
    path = Path(name)
    where = f"{flag} @{name}"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{where}: is a directory, not a file") from None
    except PermissionError:
        raise UsageError(f"{where}: permission denied") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot read it ({exc.strerror or exc})") from None


def _decode(flag: str, what: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{flag} {what}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


# --- the caller's bearer token ----------------------------------------------------------------

TOKEN_ENV = "TIERGATE_TOKEN"


def add_token_flag(parser: argparse.ArgumentParser) -> None:
    """``--token-file``, shared by every command that calls a server."""
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"file holding the bearer token sent with each call (default: env {TOKEN_ENV} "
        "when set, else no token)",
    )


def bearer_metadata(
    token_file: str | None, token_env: str = TOKEN_ENV
) -> tuple[tuple[str, str], ...]:
    """The ``authorization`` metadata of the token in ``token_file``, else in the environment
    variable ``token_env``; none without either. A token file that is unreadable or blank
    raises UsageError rather than send an anonymous call."""
    if token_file:
        token = _read_file("--token-file", token_file).strip()
        if not token:
            raise UsageError(f"--token-file {token_file}: the file is empty")
    else:
        token = os.environ.get(token_env, "").strip()
    return (("authorization", f"Bearer {token}"),) if token else ()


# --- flags -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """One command-line flag bound to one field of the request."""

    flag: str
    """The option, e.g. ``--text``."""
    field: str
    """The request field it sets."""
    help: str
    """What it means; the default is added to the help text."""
    required: bool = False

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag,
            dest=self.dest,
            required=self.required,
            default=None,
            metavar=self.metavar(),
            help=f"{self.help} ({'required' if self.required else self.default_help()})",
        )

    def metavar(self) -> str:
        return "TEXT"

    def default_help(self) -> str:
        return "default: empty"

    def apply(self, request: Message, value: Any, built: Built, source: TextSource) -> None:
        setattr(request, self.field, source.read(self.flag, value))
        built.fields[self.field] = self.flag


@dataclass(frozen=True)
class Text(Flag):
    """A string field: the text itself, ``-`` or ``@file``."""


@dataclass(frozen=True)
class Number(Flag):
    """An integer field."""

    default: int = 0

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag,
            dest=self.dest,
            type=int,
            default=self.default,
            metavar="N",
            help=f"{self.help} (default: {self.default})",
        )

    def apply(self, request: Message, value: Any, built: Built, source: TextSource) -> None:
        setattr(request, self.field, value)
        built.fields[self.field] = self.flag


@dataclass(frozen=True)
class Choice(Flag):
    """An enum field, chosen by a short name."""

    choices: Mapping[str, int] = field(default_factory=dict)
    default: str = ""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag,
            dest=self.dest,
            choices=list(self.choices),
            default=self.default,
            help=f"{self.help} (default: {self.default})",
        )

    def apply(self, request: Message, value: Any, built: Built, source: TextSource) -> None:
        setattr(request, self.field, self.choices[value])
        built.fields[self.field] = self.flag


@dataclass(frozen=True)
class Switch(Flag):
    """A boolean field, true when the flag is given."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag, dest=self.dest, action="store_true", help=f"{self.help} (default: off)"
        )

    def apply(self, request: Message, value: Any, built: Built, source: TextSource) -> None:
        setattr(request, self.field, bool(value))
        built.fields[self.field] = self.flag


@dataclass(frozen=True)
class Entries(Flag):
    """A repeated message field, one entry per use of the flag: ``KEY`` + ``sep`` + ``VALUE``.

    The value (the entry's last part) is a text argument, so it takes ``-`` and ``@file`` too.
    """

    key: str = "name"
    value: str = "description"
    sep: str = ":"
    value_required: bool = False

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        need = "required" if self.required else "repeatable"
        parser.add_argument(
            self.flag,
            dest=self.dest,
            action="append",
            default=[],
            metavar=self.metavar(),
            help=f"{self.help} ({need}; default: none)",
        )

    def metavar(self) -> str:
        key, value = self.key.upper(), self.value.upper()
        return f"{key}{self.sep}{value}" if self.value_required else f"{key}[{self.sep}{value}]"

    def apply(self, request: Message, value: Any, built: Built, source: TextSource) -> None:
        entries = getattr(request, self.field)
        for n, raw in enumerate(value, start=1):
            key, sep, rest = raw.partition(self.sep)
            if self.value_required and not sep:
                raise UsageError(
                    f"{self.flag} {raw!r}: expected {self.metavar()}, "
                    f"e.g. {self.flag} {self._example()}"
                )
            label = f"{self.flag} #{n}"
            entries.add(**{self.key: key.strip(), self.value: source.read(label, rest.strip())})
            built.entries.setdefault(self.field, []).append(label)

    def _example(self) -> str:
        return f"refunds{self.sep}@refunds.txt" if self.key == "id" else f"billing{self.sep}TEXT"


@dataclass(frozen=True)
class DocumentFiles(Flag):
    """Documents from files: the file's stem is the id, its name the title."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag,
            dest=self.dest,
            action="append",
            default=[],
            metavar="PATH",
            help=f"{self.help} (repeatable; default: none)",
        )

    def apply(self, request: Message, value: Any, built: Built, source: TextSource) -> None:
        for n, name in enumerate(value, start=1):
            label = f"{self.flag} #{n}"
            text = _read_file(label, name)
            path = Path(name)
            getattr(request, self.field).add(id=path.stem, title=path.name, text=text)
            built.entries.setdefault(self.field, []).append(label)


MEDIA_TYPES: Mapping[str, str] = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
"""A file's media type by its extension; the service checks the bytes against it."""


class BinaryFiles(Flag):
    """Files sent as they are (PDFs, images): the media type by extension, the name kept."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag,
            dest=self.dest,
            action="append",
            metavar="PATH",
            required=self.required,
            help=f"{self.help} (required, repeatable: {' '.join(MEDIA_TYPES)})",
        )

    def apply(self, request: Message, value: Any, built: Built, source: TextSource) -> None:
        for n, name in enumerate(value, start=1):
            label = f"{self.flag} #{n}"
            path = Path(name)
            media_type = MEDIA_TYPES.get(path.suffix.lower())
            if media_type is None:
                raise UsageError(
                    f"{label} {name}: unknown file type; one of {', '.join(MEDIA_TYPES)}"
                )
            data = _read_bytes(label, name)
            getattr(request, self.field).add(data=data, media_type=media_type, name=path.name)
            built.entries.setdefault(self.field, []).append(label)


_PATH = re.compile(r"(?P<field>\w+)(?:\[(?P<index>\d+)\])?")


@dataclass
class Built:
    """A request and which flag set each of its fields (for messages that name fields)."""

    request: Message
    fields: dict[str, str] = field(default_factory=dict)
    """Request field -> the flag that set it."""
    entries: dict[str, list[str]] = field(default_factory=dict)
    """Repeated field -> the flag use behind each entry, e.g. ``['--doc #1', '--doc-file #1']``."""

    def flag_for(self, path: str) -> str | None:
        """The flag behind a field path such as ``labels[0].name``, when one set it."""
        match = _PATH.match(path)
        if match is None:
            return None
        name, index = match["field"], match["index"]
        if index is not None and int(index) < len(self.entries.get(name, [])):
            return self.entries[name][int(index)]
        return self.fields.get(name) or _first(self.entries.get(name, []))


def _first(labels: list[str]) -> str | None:
    return labels[0].split(" #")[0] if labels else None
