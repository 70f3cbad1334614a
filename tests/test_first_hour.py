"""A newcomer's first hour: tokens on every command, budgets that fail at once with their
reason, batches on or plainly off, output that says what happened and nothing unasked, money
printed one way. Real servers on loopback, the real CLI in a subprocess, the real clients."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from conftest import OVER_BUDGET_TOKEN as TOKEN
from conftest import start_app, start_over_budget
from harness import BackgroundLoop, Upstream, free_port, refusals, wait_serving
from samples import TICKET_LABELS
from tiergate.batches.service import SERVICE as BATCH_SERVICE
from tiergate.cli import batch as cli_batch
from tiergate.cli import main as cli
from tiergate.cli import render
from tiergate.client import AsyncTaskClient, TaskClient, TiergateError
from tiergate.serving.app import App
from tiergate.telemetry import Telemetry
from tiergate.v1 import batch_service_pb2 as bpb
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import usage_pb2

TIERGATE = [sys.executable, "-m", "tiergate.cli"]
TICKET = "I was charged twice for my subscription this month."
LABELS = ["--label", "billing:charges and refunds", "--label", "technical:errors and crashes"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
    return subprocess.run(
        [*TIERGATE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **(env or {})},
    )


@pytest.fixture(scope="module")
def guarded_metrics() -> InMemoryMetricReader:
    """The metrics of the ``guarded`` server: each refusal it answered is one RPC in them."""
    return InMemoryMetricReader()


@pytest.fixture(scope="module")
def guarded(
    background: BackgroundLoop,
    upstream: Upstream,
    tmp_path_factory: pytest.TempPathFactory,
    guarded_metrics: InMemoryMetricReader,
) -> Iterator[App]:
    """A server with bearer tokens, batches and a budget no call fits (a nano-dollar a month):
    every budgeted call is refused, with a retry delay until the month ends."""
    folder = tmp_path_factory.mktemp("guarded")
    app = start_over_budget(
        background,
        upstream,
        folder,
        batch_dir=str(folder / "batches"),
        batch_poll_s=0.05,
        response_cache_ttl_s=60.0,
        telemetry=Telemetry(meter_provider=MeterProvider(metric_readers=[guarded_metrics])),
    )
    yield app
    background.run(app.stop(grace=1))


def target(app: App) -> str:
    return f"127.0.0.1:{app.port}"


def classify(text: str = TICKET) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(text=text, labels=TICKET_LABELS)


class TestBudgetRefusals:
    """BUDGET_EXCEEDED arrives at once with its reason, whatever the retry policy."""

    def test_the_sync_client_gets_the_reason_at_once(
        self, guarded: App, guarded_metrics: InMemoryMetricReader, background: BackgroundLoop
    ) -> None:
        """The refusal's retry delay (until the month ends) outlasts the 20 s deadline: the
        client's automatic retry must not wait for it and report DEADLINE_EXCEEDED, nor ask
        again: the server saw the one call."""
        auth = [("authorization", f"Bearer {TOKEN}")]
        before = refusals(guarded_metrics, background)
        with (
            TaskClient(target(guarded), timeout_s=20, metadata=auth) as client,
            pytest.raises(TiergateError) as refused,
        ):
            client.classify(classify())
        assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused.value.reason == "BUDGET_EXCEEDED"
        assert refused.value.retry_after_s is not None
        assert refused.value.retry_after_s > 20
        assert refusals(guarded_metrics, background) - before == 1

    def test_the_asyncio_client_gets_the_reason_at_once(
        self, guarded: App, guarded_metrics: InMemoryMetricReader, background: BackgroundLoop
    ) -> None:
        """The same through the asyncio client and its channel's retry policy."""

        async def call() -> TiergateError:
            auth = [("authorization", f"Bearer {TOKEN}")]
            async with AsyncTaskClient(target(guarded), timeout_s=20, metadata=auth) as client:
                try:
                    await client.classify(classify())
                except TiergateError as err:
                    return err
            raise AssertionError("the call was served")

        before = refusals(guarded_metrics, background)
        err = asyncio.run(call())
        assert (err.code, err.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "BUDGET_EXCEEDED")
        assert refusals(guarded_metrics, background) - before == 1

    def test_the_cli_names_the_budget(
        self, guarded: App, guarded_metrics: InMemoryMetricReader, background: BackgroundLoop
    ) -> None:
        """`tiergate classify` with TIERGATE_TOKEN: the line names BUDGET_EXCEEDED and the
        wait, after the one call (no retry within --timeout)."""
        before = refusals(guarded_metrics, background)
        done = run(
            "classify", "--text", TICKET, *LABELS, "--target", target(guarded), "--timeout", "30",
            env={"TIERGATE_TOKEN": TOKEN},
        )  # fmt: skip
        assert done.returncode == 1
        assert done.stderr.startswith("tiergate: RESOURCE_EXHAUSTED (BUDGET_EXCEEDED): ")
        # Units that are zero are left out: "25 d 16 h" at a whole hour before the month ends.
        assert re.search(r"; retry after \d+ (d|h|min)( \d+ (h|min))*$", done.stderr.strip())
        assert refusals(guarded_metrics, background) - before == 1


class TestTokens:
    """Every command that calls a server sends the caller's token."""

    def test_task_commands_send_the_token_from_the_environment_or_a_file(
        self, guarded: App, tmp_path: Path
    ) -> None:
        """Without a token: UNAUTHENTICATED; with TIERGATE_TOKEN or --token-file: served."""
        args = ["classify", "--text", TICKET, *LABELS, "--target", target(guarded)]
        anonymous = run(*args)
        assert anonymous.returncode == 1
        assert "UNAUTHENTICATED" in anonymous.stderr
        assert run(*args, env={"TIERGATE_TOKEN": "s3cret-rich"}).returncode == 0, "env token"
        token = tmp_path / "token"
        token.write_text("s3cret-rich\n")
        from_file = run(*args, "--token-file", str(token), env={"TIERGATE_TOKEN": "wrong"})
        assert from_file.returncode == 0, from_file.stderr
        assert from_file.stdout.startswith("label")

    def test_a_blank_or_missing_token_file_is_a_usage_error(self, tmp_path: Path) -> None:
        """Exit 2 naming the file, instead of an anonymous call."""
        blank = tmp_path / "blank"
        blank.write_text("\n")
        for path, says in ((blank, "the file is empty"), (tmp_path / "none", "no such file")):
            done = run("classify", "--text", TICKET, *LABELS, "--token-file", str(path))
            assert done.returncode == 2
            assert says in done.stderr
            assert str(path) in done.stderr

    def test_batch_and_spend_commands_send_the_token(self, guarded: App, tmp_path: Path) -> None:
        """`batch submit` and `status` pass authentication with the token (and fail without);
        `spend --token-file` reads the caller's own budget, printed in dollars."""
        data = tmp_path / "items.jsonl"
        data.write_text(json.dumps({"text": TICKET, "labels": [{"name": "a"}, {"name": "b"}]}))
        submit = ["batch", "submit", "Classify", "--data", str(data), "--target", target(guarded)]
        refused = run(*submit)
        assert refused.returncode == 1
        assert "UNAUTHENTICATED (UNAUTHENTICATED)" in refused.stderr
        submitted = run(*submit, env={"TIERGATE_TOKEN": "s3cret-rich"})
        assert submitted.returncode == 0, submitted.stderr
        name = submitted.stdout.split()[0]
        status = run("batch", "status", name, "--target", target(guarded),
                     env={"TIERGATE_TOKEN": "s3cret-rich"})  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith(name)
        token = tmp_path / "token"
        token.write_text(TOKEN)
        spend = run("spend", "--target", target(guarded), "--token-file", str(token))
        assert spend.returncode == 0, spend.stderr
        row = spend.stdout.splitlines()[1].split()
        assert row[0] == "billing-service"
        assert row[-4:] == ["$0.000000001", "$0.00", "$0.00", "$0.000000001"]


class TestBatchesOff:
    """A server without a batch store says so, and reflection does not offer BatchService."""

    def test_a_call_is_failed_precondition_naming_the_setting(self, app: App) -> None:
        """FAILED_PRECONDITION (SERVICE_DISABLED) with metadata setting=TIERGATE_BATCH_DIR,
        never UNIMPLEMENTED "Method not found"."""
        with TaskClient(target(app)) as client, pytest.raises(TiergateError) as off:
            client.get_batch("batches/x")
        assert off.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert off.value.reason == "SERVICE_DISABLED"
        assert off.value.metadata == {"setting": "TIERGATE_BATCH_DIR"}
        assert "TIERGATE_BATCH_DIR" in off.value.message

    def test_the_cli_says_which_setting_turns_batches_on(self, app: App, tmp_path: Path) -> None:
        data = tmp_path / "items.jsonl"
        data.write_text(json.dumps({"text": TICKET, "labels": [{"name": "a"}, {"name": "b"}]}))
        done = run("batch", "submit", "Classify", "--data", str(data), "--target", target(app))
        assert done.returncode == 1
        assert done.stderr.startswith("tiergate: FAILED_PRECONDITION (SERVICE_DISABLED): ")
        assert "set TIERGATE_BATCH_DIR" in done.stderr

    def test_reflection_lists_only_the_services_that_answer(self, app: App, guarded: App) -> None:
        """Off: BatchService is not listed; on: it is."""
        listed = {}
        for name, server in (("off", app), ("on", guarded)):
            with grpc.insecure_channel(target(server)) as channel:
                listed[name] = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert BATCH_SERVICE.full_name not in listed["off"]
        assert BATCH_SERVICE.full_name in listed["on"]
        assert listed["on"] - listed["off"] == {BATCH_SERVICE.full_name}


class TestWhatIsPrinted:
    def test_unasked_fields_are_left_out_and_asked_ones_shown(self, app: App) -> None:
        """No `labels (none)` nor `confidence 0` unless --multi-label / --confidence."""
        plain = run("classify", "--text", TICKET, *LABELS, "--target", target(app))
        assert plain.returncode == 0, plain.stderr
        names = [line.split()[0] for line in plain.stdout.splitlines()]
        assert names == ["label", "usage", "cost"]
        asked = run("classify", "--text", TICKET, *LABELS, "--multi-label", "--confidence",
                    "--target", target(app))  # fmt: skip
        names = [line.split()[0] for line in asked.stdout.splitlines() if line[:1] != " "]
        assert names == ["label", "labels", "confidence", "usage", "cost"]

    def test_summarize_prints_key_points_only_when_asked(self, app: App) -> None:
        text = "The release moves to March 14. Dana must finish the migration by Friday."
        plain = run("summarize", "--text", text, "--target", target(app))
        assert plain.returncode == 0, plain.stderr
        assert "key_points" not in plain.stdout
        assert "action_items" not in plain.stdout

    def test_a_response_cache_hit_says_so(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """The same command twice: the second says it came from the response cache, with no
        token counts that read like a free model call."""
        cached = start_app(background, upstream, response_cache_ttl_s=60.0)
        try:
            args = ["classify", "--text", TICKET, *LABELS, "--target", target(cached)]
            first, second = run(*args), run(*args)
        finally:
            background.run(cached.stop(grace=1))
        assert render.FROM_CACHE not in first.stdout
        usage_line = next(line for line in second.stdout.splitlines() if line.startswith("usage"))
        assert usage_line.endswith(f"(fast): {render.FROM_CACHE}")
        assert "input" not in usage_line
        assert "cost   $0.00 (the response cache charges nothing)" in second.stdout

    def test_batch_status_prints_dollars_exactly(self) -> None:
        """Dollars to the nano-dollar, the way every command prints money; no raw nanos."""
        batch = bpb.Batch(name="batches/b1", item_count=1, state=bpb.Batch.STATE_SUCCEEDED)
        batch.counts.succeeded = 1
        batch.usage.cost.total_nanos = 163_500
        line = cli_batch._summary(batch)
        assert line.endswith("cost $0.0001635 (batch price)")
        assert "nanos" not in line

    def test_a_long_wait_reads_in_hours(self) -> None:
        """A budget's wait until the month ends is not printed as 2.23186e+06 s."""
        assert [cli.duration(s) for s in (0.2, 119, 120, 3600, 72_318.6, 2_231_862)] == [
            "0.2 s", "119 s", "2 min", "1 h", "20 h 5 min", "25 d 19 h 58 min",
        ]  # fmt: skip

    def test_money_has_one_format(self) -> None:
        """Exact, trailing zeros trimmed to cents, signed when negative."""
        assert [render.dollars(n) for n in (0, 1, 163_500, 25 * 10**9, -5)] == [
            "$0.00", "$0.000000001", "$0.0001635", "$25.00", "-$0.000000005",
        ]  # fmt: skip
        usage = usage_pb2.Usage(model="m", tier=usage_pb2.TIER_FAST, from_cache=True)
        assert render.render_usage(usage) == f"m (fast): {render.FROM_CACHE}"


class TestShutdown:
    def test_stopping_a_server_with_batches_leaves_no_unclosed_session(
        self, tmp_path: Path
    ) -> None:
        """SIGTERM on `tiergate serve` with a batch store, after a batch ran: it drains and
        exits 0, and nothing is logged about an unclosed aiohttp session (the batch worker's
        upstream client, opened by the batch)."""
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
        env.update(
            TIERGATE_UPSTREAM="emulator",
            TIERGATE_HOST="127.0.0.1",
            TIERGATE_PORT=str(port),
            TIERGATE_BATCH_DIR=str(tmp_path / "batches"),
            TIERGATE_BATCH_POLL_S="0.1",
        )
        server = subprocess.Popen(
            [*TIERGATE, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        data = tmp_path / "items.jsonl"
        data.write_text(json.dumps({"text": TICKET, "labels": [{"name": "a"}, {"name": "b"}]}))
        try:
            wait_serving(port)
            ran = run("batch", "submit", "Classify", "--data", str(data), "--wait", "--poll",
                      "0.1", "--target", f"127.0.0.1:{port}")  # fmt: skip
            assert "SUCCEEDED" in ran.stdout, ran.stderr
        finally:
            server.send_signal(signal.SIGTERM)
            output, _ = server.communicate(timeout=30)
        log = output.decode(errors="replace")
        assert server.returncode == 0, log
        assert '"event": "stopped"' in log
        assert "Unclosed" not in log
        assert '"level": "error"' not in log
