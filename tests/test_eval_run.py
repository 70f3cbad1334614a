"""``tiergate eval`` end to end: the server's task code on every tier against the emulator, the
tally of correct answers, errors and costs, the judge, and the command itself."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness import BackgroundLoop, Upstream
from tiergate.calls.runner import TaskRunner
from tiergate.cli.main import main
from tiergate.config import Settings
from tiergate.emulator import Fault
from tiergate.evaluation.dataset import Item
from tiergate.evaluation.judge import RUBRIC
from tiergate.evaluation.runner import connect, evaluate
from tiergate.evaluation.scorers import Expected, scorer_for
from tiergate.evaluation.verdict import Verdict
from tiergate.ledger import PriceTable
from tiergate.tasks import TASKS
from tiergate.tiers import Tier
from tiergate.v1 import task_service_pb2 as pb


@pytest.fixture(autouse=True)
def emulator_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process command runs on the emulator, chosen explicitly as a user would."""
    monkeypatch.setenv("TIERGATE_UPSTREAM", "emulator")


EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "eval"
TEXTS = [
    "I was charged twice this month, please refund me",
    "The app crashes with an error on start",
    "My invoice shows the wrong amount",
    "I cannot log in since the password reset",
]
LABELS = [pb.Label(name=n) for n in ("billing", "technical", "account")]
HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"


def settings(upstream: Upstream, **changes: Any) -> Settings:
    return Settings(anthropic_api_key="test-key", anthropic_base_url=upstream.url, **changes)


def run_eval(
    background: BackgroundLoop,
    config: Settings,
    rpc: str,
    items: list[Item],
    tiers: tuple[Tier, ...],
    concurrency: int = 4,
) -> Verdict:
    async def go() -> Verdict:
        async with connect(config) as client:
            return await evaluate(
                TASKS[rpc], items, tiers, config, PriceTable.load(), client, concurrency=concurrency
            )

    return background.run(go())


def responses(background: BackgroundLoop, config: Settings, tier: Tier) -> list[Any]:
    """What the server's own code answers for each text on ``tier`` (the emulator's answers)."""

    async def go() -> list[Any]:
        async with connect(config) as client:
            runner = TaskRunner(config, PriceTable.load(), client)
            return [(await runner.execute(TASKS["Classify"], request(t), tier))[0] for t in TEXTS]

    return background.run(go())


def request(text: str) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(text=text, labels=LABELS)


def item(number: int, text: str, label: str) -> Item:
    return Item(
        number, request(text), Expected({"label": label, "labels": []}, frozenset({"label"}))
    )


def other(label: str) -> str:
    return next(lb.name for lb in LABELS if lb.name != label)


class TestTally:
    def test_correct_answers_and_costs_per_tier(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """Labels set to agree on two items and disagree on two: fast scores exactly 2 of 4,
        and each tier's cost is the sum of what its own responses billed."""
        config = settings(upstream)
        fast = responses(background, config, Tier.FAST)
        balanced = responses(background, config, Tier.BALANCED)
        labels = [fast[0].label, fast[1].label, other(fast[2].label), other(fast[3].label)]
        items = [item(i + 1, t, lb) for i, (t, lb) in enumerate(zip(TEXTS, labels, strict=True))]
        upstream.reset()
        verdict = run_eval(background, config, "Classify", items, (Tier.FAST, Tier.BALANCED))
        by_tier = {r.tier: r for r in verdict.tiers}
        assert by_tier[Tier.FAST].correct == 2
        assert by_tier[Tier.BALANCED].correct == sum(
            r.label == lb for r, lb in zip(balanced, labels, strict=True)
        )
        assert by_tier[Tier.FAST].cost_nanos == sum(r.usage.cost.total_nanos for r in fast)
        assert by_tier[Tier.BALANCED].cost_nanos == sum(r.usage.cost.total_nanos for r in balanced)
        assert by_tier[Tier.FAST].model == HAIKU
        # Every item on every tier, each model on its own tier: the binding is not the caller's.
        assert sorted(r["model"] for r in upstream.requests) == [HAIKU] * 4 + [SONNET] * 4

    def test_failed_calls_are_errors_by_status_and_still_cost(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """A 500 on one balanced call is an UNAVAILABLE error, not a crash; a call whose output
        stayed unusable after its re-ask (OUTPUT_INVALID, status UNAVAILABLE) still costs its
        two billed calls."""
        config = settings(upstream, max_attempts=1, max_reasks=1)
        items = [item(i + 1, t, "billing") for i, t in enumerate(TEXTS[:2])]
        upstream.inject(
            Fault("server_error", model=SONNET), Fault("off_schema", count=2, model=HAIKU)
        )
        verdict = run_eval(
            background, config, "Classify", items, (Tier.FAST, Tier.BALANCED), concurrency=1
        )
        fast, balanced = verdict.tiers
        assert (balanced.scored, balanced.errors) == (1, {"UNAVAILABLE": 1})
        assert (fast.scored, fast.errors) == (1, {"UNAVAILABLE": 1})
        clean = responses(background, settings(upstream), Tier.FAST)
        # The failed item billed two calls of the same prompt as its clean answer, at least.
        assert fast.cost_nanos > clean[0].usage.cost.total_nanos + clean[1].usage.cost.total_nanos
        assert verdict.to_json()["tiers"][1]["errors"] == {"UNAVAILABLE": 1}


class TestJudge:
    def test_reason_is_judged_on_the_frontier_tier_and_its_cost_kept_apart(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """Each Reason answer goes to the frontier model with the fixed rubric and schema; the
        judge's cost is reported on its own, never in the judged tier's cost."""
        config = settings(upstream)
        scorer = scorer_for("Reason")
        question = pb.ReasonRequest(question="Is 17 a prime number? Explain.")
        expected = scorer.expected(question, {"answer": "Yes, 17 is prime."})
        assert isinstance(expected, Expected)
        verdict = run_eval(
            background, config, "Reason", [Item(1, question, expected)], (Tier.BALANCED,)
        )
        judged = [r for r in upstream.requests if r["model"] == OPUS]
        answered = [r for r in upstream.requests if r["model"] == SONNET]
        assert len(judged) == 1
        assert len(answered) == 1
        assert judged[0]["system"][0]["text"] == RUBRIC
        assert judged[0]["system"][2]["text"] == "<reference>\nYes, 17 is prime.\n</reference>"
        schema = judged[0]["output_config"]["format"]["schema"]
        assert schema["properties"]["correct"] == {"type": "boolean"}
        assert verdict.judged
        assert verdict.judge_model == OPUS
        assert verdict.judge_cost_nanos > 0
        assert verdict.to_json()["scorer"]["judged"] is True

        async def alone() -> int:
            async with connect(config) as client:
                runner = TaskRunner(config, PriceTable.load(), client)
                response, _ = await runner.execute(TASKS["Reason"], question, Tier.BALANCED)
                return int(response.usage.cost.total_nanos)

        # The tier's cost is its own call, exactly: the judge's is not in it.
        assert verdict.tiers[0].cost_nanos == background.run(alone())


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "TIERGATE_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["TIERGATE_UPSTREAM"] = "emulator"
    return env


EVAL = [sys.executable, "-m", "tiergate.cli", "eval"]


class TestCommand:
    def test_json_output_on_the_embedded_emulator_with_bad_lines(self, tmp_path: Path) -> None:
        """The command runs on the embedded emulator, reports bad lines by number on stderr,
        prints one JSON object of the documented shape and no progress bar off a terminal."""
        data = tmp_path / "tickets.jsonl"
        lines = (EXAMPLES / "tickets.jsonl").read_text().splitlines()[:3]
        data.write_text("\n".join([lines[0], "{oops", lines[1], lines[2]]) + "\n")
        done = subprocess.run(
            [*EVAL, "classify", "--data", str(data), "--json", "--tiers", "fast,frontier"],
            capture_output=True, text=True, timeout=60, env=cli_env(), check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        verdict = json.loads(done.stdout)
        assert verdict["task"] == "Classify"
        assert verdict["items"] == 3
        assert [t["tier"] for t in verdict["tiers"]] == ["fast", "frontier"]
        assert [t["model"] for t in verdict["tiers"]] == [HAIKU, OPUS]
        assert all(t["scored"] + sum(t["errors"].values()) == 3 for t in verdict["tiers"])
        assert f"{data}: line 2: not JSON" in done.stderr
        assert "emulator" in done.stderr
        assert "\r" not in done.stderr

    def test_progress_bar_on_a_terminal_and_a_readable_table(self, tmp_path: Path) -> None:
        """With stderr on a terminal the bar counts every call; stdout is the table."""
        data = tmp_path / "two.jsonl"
        data.write_text("\n".join((EXAMPLES / "tickets.jsonl").read_text().splitlines()[:2]))
        leader, follower = pty.openpty()
        try:
            done = subprocess.run(
                [*EVAL, "classify", "--data", str(data)],
                stdout=subprocess.PIPE, stderr=follower, text=True, timeout=60, env=cli_env(),
                check=False,
            )  # fmt: skip
            os.close(follower)
            terminal = os.read(leader, 65536).decode()
        finally:
            os.close(leader)
        assert done.returncode == 0
        assert "\reval classify [" in terminal
        assert "] 4/4" in terminal  # 2 items x the default tiers (fast and balanced)
        table = done.stdout.splitlines()
        assert table[1].split()[:2] == ["tier", "model"]
        assert [row.split()[0] for row in table[2:4]] == ["fast", "balanced"]
        assert table[-1].startswith("recommendation: ")

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--tiers", "fast,huge"], "unknown tier 'huge'"),
            (["--concurrency", "0"], "--concurrency must be at least 1"),
            (["--data", "/nonexistent/x.jsonl"], "No such file"),
        ],
    )
    def test_bad_usage_is_one_line(
        self, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Bad flags or a missing file stop the command with exit 2 and one line, before any
        call."""
        code = main(["eval", "classify", "--data", str(EXAMPLES / "tickets.jsonl"), *args])
        out, err = capsys.readouterr()
        assert code == 2
        assert message in err
        assert len(err.strip().splitlines()) == 1
        assert out == ""

    def test_no_usable_line(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file of bad lines only ends with exit 1 and says so."""
        data = tmp_path / "bad.jsonl"
        data.write_text("nope\n")
        assert main(["eval", "extract", "--data", str(data)]) == 1
        assert "has no usable line" in capsys.readouterr().err


class TestReportFolder:
    def test_report_without_a_folder_goes_to_a_new_temporary_one(self, tmp_path: Path) -> None:
        """`--report` alone writes into a new folder under the temporary directory and says
        where; nothing lands in the working directory. `--report DIR` writes into DIR."""
        data = tmp_path / "two.jsonl"
        data.write_text("\n".join((EXAMPLES / "tickets.jsonl").read_text().splitlines()[:2]))
        work, scratch = tmp_path / "checkout", tmp_path / "tmp"
        work.mkdir()
        scratch.mkdir()
        env = {**cli_env(), "TMPDIR": str(scratch)}
        done = subprocess.run(
            [*EVAL, "classify", "--data", str(data), "--report"],
            capture_output=True, text=True, timeout=60, env=env, cwd=work, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        page = Path(done.stderr.split("report: ")[1].strip())
        assert page.parent.parent == scratch
        assert page.parent.name.startswith("tiergate-eval-classify-")
        assert {p.name for p in page.parent.iterdir()} == {"index.html", "chart.png"}
        assert list(work.iterdir()) == []
        named = subprocess.run(
            [*EVAL, "classify", "--data", str(data), "--report", "out/first"],
            capture_output=True, text=True, timeout=60, env=env, cwd=work, check=False,
        )  # fmt: skip
        assert named.returncode == 0, named.stderr
        assert named.stderr.strip().endswith(f"report: {Path('out/first/index.html')}")
        assert (work / "out" / "first" / "chart.png").is_file()

    def test_without_matplotlib_the_message_gives_the_command(self, tmp_path: Path) -> None:
        """With matplotlib not importable, `--report` stops before any call, exit 2, with the
        exact command that installs it into this interpreter."""
        # A site hook that hides matplotlib from this one subprocess, as Python's import
        # system does for a name whose sys.modules entry is None.
        (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['matplotlib'] = None\n")
        env = {**cli_env(), "PYTHONPATH": str(tmp_path)}
        done = subprocess.run(
            [*EVAL, "classify", "--data", str(EXAMPLES / "tickets.jsonl"), "--report"],
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert f"{sys.executable} -m pip install 'tiergate[eval]'" in done.stderr
        assert "emulator" not in done.stderr  # stopped before the run began
