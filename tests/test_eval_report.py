"""The HTML report, rendered in a real headless Chromium: page size and the chart's presence."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy
import pytest
from matplotlib import image

from tiergate.evaluation.report import CHART_SIZE_PX, chart, render_html, write_report
from tiergate.evaluation.verdict import TierResult, Verdict, average_dollars, recommend
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


def probe(page: Path, script: str, *, width: int = 1200) -> str:
    """Run ``script`` on ``page`` after it loads, in a ``width`` px window; it returns what the
    browser saw as a string (the page itself carries no script)."""
    beside = page.with_name("probe.html")
    hook = (
        "<script>window.addEventListener('load', () => { document.body.setAttribute("
        f"'data-probe', (() => {{ {script} }})()); }});</script></body>"
    )
    beside.write_text(page.read_text().replace("</body>", hook))
    done = chromium(
        "--dump-dom", "--virtual-time-budget=5000", f"--window-size={width},900", beside.as_uri()
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert found is not None, done.stdout[-500:]
    return found[1]


class TestLayout:
    def test_the_table_fits_a_1200_px_window(self, tmp_path: Path) -> None:
        """At 1200 px the table's right edge stays inside the window and the page does not
        scroll sideways, with the longest default model ids and errors in a cell."""
        page = write_report(verdict(model="claude-haiku-4-5-20251001"), tmp_path / "report")
        seen = probe(
            page,
            "const t = document.querySelector('table').getBoundingClientRect();"
            " return [Math.ceil(t.right), document.documentElement.scrollWidth,"
            " window.innerWidth].join('x');",
        )
        right, scroll, inner = map(int, seen.split("x"))
        assert inner == 1200
        assert right <= inner, seen
        assert scroll <= inner, seen

    def test_the_legend_covers_no_point_nor_its_interval(self) -> None:
        """The legend's box, in the drawn figure, overlaps no tier's marker or error bar,
        also with every tier at the bottom right (where a legend inside the axes would sit)."""
        from matplotlib import pyplot

        tiers = [
            TierResult(Tier.FAST, "claude-haiku-4-5", 12, 0, {}, 9_361_000, (7.0, 26.0)),
            TierResult(Tier.FRONTIER, "claude-opus-4-7", 12, 0, {}, 46_805_000, (6.6, 25.0)),
        ]
        for case in (verdict(), Verdict("Extract", 12, tiers, recommend(tiers), "f", False)):
            figure = chart(case)
            try:
                figure.canvas.draw()
                renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
                (axes,) = figure.axes
                legend = figure.legends[0] if figure.legends else axes.get_legend()
                assert legend is not None
                box = legend.get_window_extent(renderer)
                extents = [a.get_window_extent(renderer) for a in [*axes.lines, *axes.collections]]
                drawn = [e for e in extents if numpy.isfinite(e.get_points()).all()]
                assert len(drawn) >= len(case.tiers)  # a marker per tier, and their bars
                for extent in drawn:
                    assert not box.overlaps(extent), (box, extent)
                assert box.y1 <= axes.get_window_extent(renderer).y0
            finally:
                pyplot.close(figure)


class TestPage:
    def test_averages_print_to_four_significant_digits(self) -> None:
        """Per 1,000 calls and per correct answer are quotients: four significant digits,
        where the amounts billed print to the nano-dollar."""
        assert [average_dollars(n) for n in (780_083_333, 222_882, 501, 3_900_416_667, 0)] == [
            "$0.7801", "$0.0002229", "$0.000000501", "$3.90", "$0.00",
        ]  # fmt: skip
        html = render_html(verdict())
        assert "<td>$0.4878</td>" in html  # 20_000_000 nanos over 41 calls, per 1,000

    def test_values_are_escaped_and_the_recommendation_marked(self) -> None:
        """Configured names never become markup; the recommended tier's row is marked."""
        html = render_html(verdict(model="<b>haiku</b>"))
        assert "<b>haiku</b>" not in html
        assert "&lt;b&gt;haiku&lt;/b&gt;" in html
        assert html.count('class="chosen"') == 1
        assert "<script" not in html
