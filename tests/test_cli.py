"""The tiergate command: serve in a real process, and every task command against a server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from harness import free_port, wait_serving
from tiergate.app import App
from tiergate.cli import dollars

TIERGATE = [sys.executable, "-m", "tiergate.cli"]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TIERGATE, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


class TestTaskCommands:
    @pytest.fixture
    def target(self, app: App) -> str:
        return f"127.0.0.1:{app.port}"

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
        ("command", "args", "field"),
        [
            ("summarize", ["--text", "-", "--format", "bullets"], "summary"),
            (
                "extract",
                [
                    "--text",
                    "-",
                    "--schema",
                    '{"type":"object","properties":{"email":{"type":"string"}}}',
                ],
                "data",
            ),
            (
                "answer",
                [
                    "--question",
                    "How long do refunds take?",
                    "--doc",
                    "refunds=Refunds take 14 days.",
                ],
                "answer",
            ),
            ("moderate", ["--text", "-"], "categories"),
            ("reason", ["--question", "What is 2 plus 2?"], "answer"),
            ("classify", ["--text", "-", "--label", "a", "--label", "b"], "label"),
        ],
    )
    def test_json_output_for_scripts(
        self, target: str, command: str, args: list[str], field: str
    ) -> None:
        """--json prints the typed response as JSON, usage and cost included."""
        stdin = "Mail bob@example.com. Dana will send the report by Friday."
        done = run(command, "--target", target, "--json", *args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        reply = json.loads(done.stdout)
        assert field in reply
        assert int(reply["usage"]["cost"]["total_nanos"]) > 0

    def test_invalid_request_prints_field_violations(self, target: str) -> None:
        """A bad request exits 1 and says which field is wrong, on stderr."""
        done = run("classify", "--target", target, "--text", "x", "--label", "only")
        assert done.returncode == 1
        assert "INVALID_ARGUMENT" in done.stderr
        assert "labels:" in done.stderr


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
