"""The HTML report, rendered in a real headless Chromium: page size and the chart's presence."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy
import pytest
from matplotlib import image

from tiergate.evaluation.report import CHART_SIZE_PX, render_html, write_report
from tiergate.evaluation.verdict import TierResult, Verdict, recommend
from tiergate.tiers import Tier

CHROMIUM = shutil.which("chromium")
WINDOW = (1280, 1000)
# matplotlib's first three colours: the fast, balanced and frontier points and bars.
TIER_COLOURS = {"fast": (31, 119, 180), "balanced": (255, 127, 14), "frontier": (44, 160, 44)}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)"
)


def verdict(model: str = "claude-haiku-4-5") -> Verdict:
    tiers = [
        TierResult(Tier.FAST, model, 40, 33, {"UNAVAILABLE": 1}, 20_000_000, (5.0, 9.0)),
        TierResult(Tier.BALANCED, "claude-sonnet-4-6", 41, 37, {}, 61_000_000, (6.0, 8.0)),
        TierResult(Tier.FRONTIER, "claude-opus-4-7", 41, 38, {}, 102_000_000, (7.0, 12.0)),
    ]
    return Verdict("Classify", 41, tiers, recommend(tiers), "exact_label", False)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


class TestRenderedReport:
    def test_screenshot_has_the_page_size_and_every_tier_in_the_chart(self, tmp_path: Path) -> None:
        """The screenshot is the window's size, and the chart region holds each tier's colour."""
        page = write_report(verdict(), tmp_path / "report")
        shot = tmp_path / "shot.png"
        done = chromium(
            f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", page.as_uri()
        )
        assert done.returncode == 0, done.stderr
        pixels = (image.imread(shot)[..., :3] * 255).round().astype(int)
        assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
        # The chart sits below the table: its points are the only coloured pixels there.
        chart = pixels[300:, : CHART_SIZE_PX[0] + 40]
        for tier, colour in TIER_COLOURS.items():
            close = numpy.abs(chart - numpy.array(colour)).sum(axis=2) < 30
            assert close.sum() > 50, f"no {tier} point in the chart"
        assert not (
            numpy.abs(pixels[:300] - numpy.array(TIER_COLOURS["balanced"])).sum(axis=2) < 30
        ).any()

    def test_chart_image_loads_at_its_drawn_size(self, tmp_path: Path) -> None:
        """In the browser the page's <img> has loaded: its natural size is the PNG's."""
        page = write_report(verdict(), tmp_path / "report")
        # A probe beside the page, which itself carries no script, writes what the browser saw.
        probe = page.with_name("probe.html")
        script = (
            "<script>window.addEventListener('load', () => { const c ="
            " document.getElementById('chart'); document.body.setAttribute('data-chart',"
            " c.complete + 'x' + c.naturalWidth + 'x' + c.naturalHeight); });</script></body>"
        )
        probe.write_text(page.read_text().replace("</body>", script))
        done = chromium("--dump-dom", "--virtual-time-budget=5000", probe.as_uri())
        assert done.returncode == 0, done.stderr
        found = re.search(r'data-chart="(\w+)x(\d+)x(\d+)"', done.stdout)
        assert found is not None, done.stdout[-500:]
        assert found.groups() == ("true", str(CHART_SIZE_PX[0]), str(CHART_SIZE_PX[1]))


class TestPage:
    def test_values_are_escaped_and_the_recommendation_marked(self) -> None:
        """Configured names never become markup; the recommended tier's row is marked."""
        html = render_html(verdict(model="<b>haiku</b>"))
        assert "<b>haiku</b>" not in html
        assert "&lt;b&gt;haiku&lt;/b&gt;" in html
        assert html.count('class="chosen"') == 1
        assert "<script" not in html
