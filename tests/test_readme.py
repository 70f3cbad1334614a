"""The README's examples, run against a live ``tiergate serve`` on the embedded emulator.

An example is a ``$ tiergate ...`` or ``$ .tools/bin/grpcurl ...`` line in a ```console block
(continued by lines ending in ``\\``, optionally ending in ``< FILE`` for standard input),
followed by what it prints, up to the next ``$`` line or the end of the block. Commands run in
order, from the repository root, against one fresh server, so the caching example sees the write
of the call before it; grpcurl calls that server instead of ``localhost:50051``. Output is
compared exactly, with upstream request ids masked.

After a change that moves the emulator's numbers, refresh the README from a live run:

    .venv/bin/python tests/test_readme.py --update      (or: make readme)
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import free_port, wait_serving

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TIERGATE = [sys.executable, "-m", "tiergate.cli"]
# grpcurl as `make grpcurl` builds it (`make test` builds it too), and the address the README's
# grpcurl examples call.
GRPCURL = ".tools/bin/grpcurl"
README_TARGET = "localhost:50051"
_VOLATILE = [(re.compile(r"req_emu_[0-9a-f]+"), "req_emu_<id>")]


@dataclass(frozen=True)
class Example:
    """One command of the README and the output the README shows for it."""

    line: int
    """Where the command starts (0-based line of the README)."""
    command: str
    """The command as shown, continuation lines joined."""
    output: str
    """What the README says it prints."""
    output_lines: tuple[int, int]
    """The README lines (start, end) that hold the output."""

    @property
    def argv(self) -> list[str]:
        words = shlex.split(self.command)
        if "<" in words:
            words = words[: words.index("<")]
        return words[1:]

    @property
    def stdin(self) -> str:
        words = shlex.split(self.command)
        if "<" not in words:
            return ""
        return (ROOT / words[words.index("<") + 1]).read_text(encoding="utf-8")


def examples(text: str) -> list[Example]:
    """Every ``$ tiergate`` and ``$ .tools/bin/grpcurl`` command of the ```console blocks of
    ``text``, in order."""
    lines = text.split("\n")
    found: list[Example] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        end = lines.index("```", i + 1)
        found.extend(_block(lines, i + 1, end))
        i = end + 1
    return found


def _block(lines: list[str], start: int, end: int) -> Iterator[Example]:
    i = start
    while i < end:
        if not lines[i].startswith("$ "):
            i += 1
            continue
        first, parts = i, [lines[i][2:]]
        while parts[-1].endswith("\\") and i + 1 < end:
            i += 1
            parts[-1] = parts[-1][:-1].rstrip()
            parts.append(lines[i].strip())
        command = " ".join(parts)
        out_start = i + 1
        i = out_start
        while i < end and not lines[i].startswith("$ "):
            i += 1
        out_end = i
        while out_end > out_start and not lines[out_end - 1].strip():
            out_end -= 1
        if command.startswith(("tiergate ", f"{GRPCURL} ")):
            output = "\n".join(lines[out_start:out_end])
            yield Example(first, command, output, (out_start, out_end))


def mask(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


class Server:
    """``tiergate serve`` as ``make run`` starts it: loopback, the embedded emulator, a batch
    store (in a scratch folder here, not the checkout's .tiergate/)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._batches = tempfile.TemporaryDirectory(prefix="tiergate-readme-")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OTEL_"))}
        env.update(
            TIERGATE_HOST="127.0.0.1",
            TIERGATE_PORT=str(self.port),
            TIERGATE_UPSTREAM="emulator",
            TIERGATE_BATCH_DIR=self._batches.name,
        )
        self.process = subprocess.Popen(
            [*TIERGATE, "serve", "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_serving(self.port)

    def run(self, example: Example) -> str:
        """What the example's command prints (stdout, then stderr), as a terminal shows it."""
        env = {**os.environ, "TIERGATE_TARGET": f"127.0.0.1:{self.port}"}
        if example.command.startswith(GRPCURL):
            # The README calls the address `make run` serves on; this server has its own port.
            target = f"127.0.0.1:{self.port}"
            argv = [
                str(ROOT / GRPCURL),
                *(target if w == README_TARGET else w for w in example.argv),
            ]
        else:
            argv = [*TIERGATE, *example.argv]
        done = subprocess.run(
            argv,
            input=example.stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
            check=False,
        )
        return (done.stdout + done.stderr).rstrip("\n")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self._batches.cleanup()


def update(readme: Path = README) -> int:
    """Rewrite every example's output in ``readme`` from a live run; returns how many changed."""
    text = readme.read_text(encoding="utf-8")
    found = examples(text)
    lines = text.split("\n")
    server = Server()
    try:
        outputs = [server.run(example) for example in found]
    finally:
        server.close()
    changed = 0
    for example, output in reversed(list(zip(found, outputs, strict=True))):
        if mask(output) != mask(example.output):
            changed += 1
            start, end = example.output_lines
            lines[start:end] = output.split("\n")
    readme.write_text("\n".join(lines), encoding="utf-8")
    return changed


@pytest.fixture(scope="module")
def outputs() -> Iterator[list[tuple[Example, str]]]:
    found = examples(README.read_text(encoding="utf-8"))
    server = Server()
    try:
        yield [(example, server.run(example)) for example in found]
    finally:
        server.close()


class TestParser:
    SAMPLE = "\n".join(
        [
            "text",
            "```console",
            '$ tiergate classify --text "a b" \\',
            "    --label x --label y",
            "label  x",
            "",
            "$ grpcurl -plaintext localhost:50051 list",
            "tiergate.v1.TaskService",
            "",
            "$ tiergate summarize --text - < examples/meeting.txt",
            "summary  s",
            "```",
            "```sh",
            "$ tiergate reason --question q",
            "```",
        ]
    )

    def test_finds_commands_with_continuations_and_their_output(self) -> None:
        """Continuation lines join into one command; output runs to the next command."""
        found = examples(self.SAMPLE)
        assert [e.argv for e in found] == [
            ["classify", "--text", "a b", "--label", "x", "--label", "y"],
            ["summarize", "--text", "-"],
        ]
        assert [e.output for e in found] == ["label  x", "summary  s"]
        assert found[1].stdin == (ROOT / "examples/meeting.txt").read_text(encoding="utf-8")

    def test_skips_other_commands_and_other_blocks(self) -> None:
        """Only tiergate commands of console blocks are examples."""
        assert [e.line for e in examples(self.SAMPLE)] == [2, 9]

    def test_masks_request_ids_only(self) -> None:
        """Request ids differ per run; everything else is compared."""
        assert mask('"request_id": "req_emu_0bb7423"') == '"request_id": "req_emu_<id>"'
        assert mask("cost $0.000421") == "cost $0.000421"


@pytest.mark.slow
class TestReadmeExamples:
    def test_the_readme_has_examples_of_every_task(self) -> None:
        """Every task command appears in the README with its output."""
        found = examples(README.read_text(encoding="utf-8"))
        commands = {e.argv[0] for e in found}
        assert {"classify", "summarize", "extract", "answer", "moderate", "reason"} <= commands
        assert all(e.output for e in found)

    def test_every_example_prints_what_the_readme_shows(
        self, outputs: list[tuple[Example, str]]
    ) -> None:
        """Each example's live output equals the README's, ids masked (refresh: --update)."""
        for example, output in outputs:
            assert mask(output) == mask(example.output), (
                f"README line {example.line + 1}: `{example.command}` printed:\n{output}\n"
                "(after an intended change: .venv/bin/python tests/test_readme.py --update)"
            )


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/test_readme.py --update")
    print(f"README.md: {update()} example outputs rewritten")
