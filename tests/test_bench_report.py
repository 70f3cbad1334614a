"""Where ``make bench`` publishes: every figure in bench/README.md, four headline rows in the
README, both from the run recorded in bench/results/latest.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench import plain, report

ROOT = Path(__file__).resolve().parent.parent
LATEST = ROOT / "bench" / "results" / "latest.json"


@pytest.fixture(scope="module")
def latest() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(LATEST.read_text(encoding="utf-8"))
    return result


def _between(text: str, start: str, end: str) -> str:
    found = re.search(re.escape(start) + r"\n(.*?)" + re.escape(end), text, re.DOTALL)
    assert found, f"no {start} marker"
    return found.group(1)


class TestHeadline:
    def test_four_rows_in_their_order(self, latest: dict[str, Any]) -> None:
        """The README shows latency, throughput, in-flight scale and the cache saving."""
        table = report.headline(latest)
        measures = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[4:]]
        assert len(measures) == 4
        assert measures[0] == "Added latency p50, concurrency 1"
        assert measures[1].startswith("Throughput tiergate / direct, concurrency ")
        assert measures[2].startswith("5,000 RPCs in flight")
        assert measures[3].startswith("Cost per 1,000: ticket classification")

    def test_rows_are_the_full_tables_rows(self, latest: dict[str, Any]) -> None:
        """A headline row is the same row as in the full table, under the same date line."""
        full = report.markdown(latest).splitlines()
        head = report.headline(latest).splitlines()
        assert head[0] == full[0]
        assert set(head[4:]) <= set(full[4:])
        assert len(full) > len(head)

    def test_a_run_without_a_measure_shows_fewer_rows(self, latest: dict[str, Any]) -> None:
        """A partial run leaves out what it did not measure rather than failing."""
        partial = {k: v for k, v in latest.items() if k not in ("in_flight", "costs")}
        assert len(report.headline(partial).splitlines()) == 4 + 2


class TestPublished:
    def test_the_pages_show_the_recorded_run(self, latest: dict[str, Any]) -> None:
        """bench/README.md and the README hold the tables of bench/results/latest.json."""
        page = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        assert _between(page, report.README_START, report.README_END) == report.markdown(latest)
        assert _between(page, plain.README_START, plain.README_END) == plain.section(
            latest["plain"], latest.get("lifetime")
        )
        assert _between(readme, report.HEADLINE_START, report.HEADLINE_END) == (
            report.headline(latest)
        )

    def test_publish_rewrites_only_between_the_markers(
        self, latest: dict[str, Any], tmp_path: Path
    ) -> None:
        """Both pages get their tables; the prose around the markers stays as it was."""
        (tmp_path / "bench").mkdir()
        page = tmp_path / "bench" / "README.md"
        readme = tmp_path / "README.md"
        page.write_text(
            f"before\n{report.README_START}\nold\n{report.README_END}\nmiddle\n"
            f"{plain.README_START}\nold\n{plain.README_END}\nafter\n",
            encoding="utf-8",
        )
        readme.write_text(
            f"intro\n{report.HEADLINE_START}\nold\n{report.HEADLINE_END}\nend\n", encoding="utf-8"
        )
        said = report.publish(latest, tmp_path)
        assert len(said) == 3
        assert all("updated" in line for line in said)
        text = page.read_text(encoding="utf-8")
        assert text.startswith("before\n")
        assert text.endswith("\nafter\n")
        assert "old" not in text
        assert _between(text, report.README_START, report.README_END) == report.markdown(latest)
        top = readme.read_text(encoding="utf-8")
        assert top.startswith("intro\n")
        assert top.endswith("\nend\n")
        assert _between(top, report.HEADLINE_START, report.HEADLINE_END) == (
            report.headline(latest)
        )

    def test_a_page_without_markers_is_left_alone(
        self, latest: dict[str, Any], tmp_path: Path
    ) -> None:
        """No marker, no change, and the run says so."""
        (tmp_path / "bench").mkdir()
        (tmp_path / "bench" / "README.md").write_text("no markers\n", encoding="utf-8")
        (tmp_path / "README.md").write_text("none either\n", encoding="utf-8")
        said = report.publish(latest, tmp_path)
        assert all("left it alone" in line for line in said)
        assert (tmp_path / "README.md").read_text(encoding="utf-8") == "none either\n"
