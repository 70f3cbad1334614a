"""The examples of the README and the docs, run against a live ``tiergate serve`` on the
embedded emulator.

An example is a ``$ tiergate ...`` or ``$ .tools/bin/grpcurl ...`` line in a ```console block
(continued by lines ending in ``\\``, optionally ending in ``< FILE`` for standard input),
followed by what it prints, up to the next ``$`` line or the end of the block; a ``$ export
NAME=VALUE`` line sets a variable for the page's later commands. The pages are the
README, ``docs/*.md``, ``bench/README.md`` and ``CONTRIBUTING.md``. Each page's commands run in
order, from the repository root, against a fresh server of its own, as a reader who starts
``make run`` and follows that page sees them (the README's caching example sees the write of the
call before it); grpcurl calls that server instead of ``localhost:50051``. Output is what a
terminal shows, standard output and error in the order written, compared exactly but for what
differs per run: upstream request ids and the latencies of ``tiergate eval``.

After a change that moves the emulator's numbers, refresh every page from a live run:

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


def pages() -> list[Path]:
    """Every page whose examples are run: the README first, then the other docs."""
    docs = sorted((ROOT / "docs").glob("*.md"))
    return [README, *docs, ROOT / "bench" / "README.md", ROOT / "CONTRIBUTING.md"]


TIERGATE = [sys.executable, "-m", "tiergate.cli"]
# grpcurl as `make grpcurl` builds it (`make test` builds it too), and the address the README's
# grpcurl examples call.
GRPCURL = ".tools/bin/grpcurl"
README_TARGET = "localhost:50051"
_VOLATILE = [(re.compile(r"req_emu_[0-9a-f]+"), "req_emu_<id>")]
# A row of `tiergate eval`'s table: its p50 and p95 latencies are the numbers with one decimal,
# no unit and no sign (70.8% and $0.0038 are not), each padded to its column.
_EVAL_ROW = re.compile(r"^(?:fast|balanced|frontier)  ", re.MULTILINE)
_LATENCY = re.compile(r"(?<![\d.$-])\d+\.\d(?![\d%.-]) *")


@dataclass(frozen=True)
class Example:
    """One command of a page and the output the page shows for it."""

    line: int
    """Where the command starts (0-based line of its page)."""
    command: str
    """The command as shown, continuation lines joined."""
    output: str
    """What the page says it prints."""
    output_lines: tuple[int, int]
    """The lines (start, end) of the page that hold the output."""
    env: tuple[tuple[str, str], ...] = ()
    """The variables the page exported before this command."""

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
    exported: dict[str, str] = {}
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        end = lines.index("```", i + 1)
        found.extend(_block(lines, i + 1, end, exported))
        i = end + 1
    return found


def _block(lines: list[str], start: int, end: int, exported: dict[str, str]) -> Iterator[Example]:
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
        if command.startswith("export "):
            for assignment in shlex.split(command)[1:]:
                name, _, value = assignment.partition("=")
                exported[name] = value
        if command.startswith(("tiergate ", f"{GRPCURL} ")):
            output = "\n".join(lines[out_start:out_end])
            env = tuple(exported.items())
            yield Example(first, command, output, (out_start, out_end), env)


def mask(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return "\n".join(
        _LATENCY.sub("<ms> ", line) if _EVAL_ROW.match(line) else line for line in text.split("\n")
    )


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
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OTEL_"))}
        # Unbuffered, so standard output and error interleave as on a terminal.
        env.update(example.env, TIERGATE_TARGET=f"127.0.0.1:{self.port}", PYTHONUNBUFFERED="1")
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
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
            check=False,
        )
        return done.stdout.rstrip("\n")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self._batches.cleanup()


def update(page: Path) -> int:
    """Rewrite every example's output in ``page`` from a live run; returns how many changed."""
    text = page.read_text(encoding="utf-8")
    found = examples(text)
    if not found:
        return 0
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
    page.write_text("\n".join(lines), encoding="utf-8")
    return changed


def run_page(page: Path) -> list[tuple[Example, str]]:
    """Each example of ``page`` with what it printed, against a fresh server."""
    found = examples(page.read_text(encoding="utf-8"))
    if not found:
        return []
    server = Server()
    try:
        return [(example, server.run(example)) for example in found]
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
        assert mask("summary  15.7  39.4") == "summary  15.7  39.4"

    def test_masks_the_latencies_of_eval_rows(self) -> None:
        """An eval row keeps every figure but its p50 and p95, whatever their width."""
        row = "fast      m  24  70.8%  50.8-85.1%  0  $0.003789  $0.000222882  {}  {}  0.708"
        assert mask(row.format("15.7  ", "39.4  ")) == mask(row.format("104.8 ", "9.0   "))
        assert "70.8%  50.8-85.1%  0  $0.003789  $0.000222882" in mask(row.format("1.0", "2.0"))
        assert mask(row.format("1.0", "2.0")) != mask(row.format("1.0", "2.0").replace("24", "25"))

    def test_exports_reach_the_later_commands_of_the_page(self) -> None:
        """`$ export` lines set variables for what follows, across blocks."""
        text = "\n".join(
            [
                "```console",
                "$ tiergate classify --text a",
                "x",
                "$ export TIERGATE_UPSTREAM=emulator",
                "```",
                "```console",
                "$ tiergate eval classify --data f.jsonl",
                "y",
                "```",
            ]
        )
        first, second = examples(text)
        assert first.env == ()
        assert second.env == (("TIERGATE_UPSTREAM", "emulator"),)
        assert second.output == "y"


class TestPages:
    def test_the_pages_hold_runnable_examples(self) -> None:
        """The README and the CLI guide hold examples, so the runner below is never idle."""
        for page in (README, ROOT / "docs" / "cli.md"):
            assert examples(page.read_text(encoding="utf-8")), page

    def test_the_readme_has_an_example_of_every_task(self) -> None:
        """Every task command appears in the README with its output."""
        found = examples(README.read_text(encoding="utf-8"))
        commands = {e.argv[0] for e in found}
        assert {"classify", "summarize", "extract", "answer", "moderate", "reason"} <= commands
        assert all(e.output for e in found)


@pytest.mark.slow
@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_example_prints_what_its_page_shows(page: Path) -> None:
    """Each example's live output equals its page's, ids masked (refresh: --update)."""
    name = page.relative_to(ROOT).as_posix()
    for example, output in run_page(page):
        assert mask(output) == mask(example.output), (
            f"{name} line {example.line + 1}: `{example.command}` printed:\n{output}\n"
            "(after an intended change: .venv/bin/python tests/test_readme.py --update)"
        )


def python_blocks(text: str) -> list[str]:
    """The code of every ```python block of ``text``."""
    return re.findall(r"^```python\n(.*?)^```$", text, re.DOTALL | re.MULTILINE)


@pytest.mark.slow
def test_the_readme_client_snippet_runs() -> None:
    """The README's Python client example classifies against a live server and prints the
    label and a cost."""
    [snippet] = python_blocks(README.read_text(encoding="utf-8"))
    server = Server()
    try:
        code = snippet.replace(README_TARGET, f"127.0.0.1:{server.port}")
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    label, nanos = done.stdout.split()
    assert label == "billing"
    assert int(nanos) > 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/test_readme.py --update")
    for page in pages():
        changed = update(page)
        if changed:
            print(f"{page.relative_to(ROOT)}: {changed} example outputs rewritten")
