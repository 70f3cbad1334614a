"""The report: one HTML page with the verdict's table and a cost-against-accuracy chart.

The chart is a PNG drawn with matplotlib (the ``eval`` extra) on the Agg backend, so it needs no
display. The page is static: no script, no network, every value escaped.

    paths = write_report(verdict, Path("report/"))   # report/index.html, report/chart.png
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from tiergate.evaluation.verdict import TierResult, Verdict, average_dollars, wilson
from tiergate.ledger import dollars

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CHART_FILE = "chart.png"
CHART_SIZE_PX = (800, 500)
_DPI = 100


def draw_chart(verdict: Verdict, path: Path) -> None:
    """Accuracy (with its 95% interval) against cost per 1,000 calls, one point per tier."""
    from matplotlib import pyplot

    figure = chart(verdict)
    try:
        figure.savefig(path, format="png", dpi=_DPI)
    finally:
        pyplot.close(figure)


def chart(verdict: Verdict) -> Figure:
    """The chart's figure (close it with ``pyplot.close``). The legend sits below the axes,
    outside them, so it never covers a point, its interval or its label."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    width, height = CHART_SIZE_PX
    figure, axes = pyplot.subplots(
        figsize=(width / _DPI, height / _DPI), dpi=_DPI, layout="constrained"
    )
    costs = [(result.cost_per_1k_nanos or 0) / 1e9 for result in verdict.tiers]
    for result in verdict.tiers:
        x = (result.cost_per_1k_nanos or 0) / 1e9
        y = float(result.accuracy) * 100
        lo, hi = wilson(result.correct, result.calls)
        axes.errorbar(
            [x],
            [y],
            yerr=[[max(0.0, y - lo * 100)], [max(0.0, hi * 100 - y)]],
            fmt="o",
            markersize=9,
            capsize=6,
            label=f"{result.tier.label} ({result.model})",
        )
        axes.annotate(result.tier.label, (x, y), textcoords="offset points", xytext=(10, 6))
    axes.set_xlabel("cost per 1,000 calls (USD)")
    axes.set_ylabel("accuracy (%), with 95% interval")
    axes.set_ylim(-5, 105)
    # Room right of the dearest point for its label.
    axes.set_xlim(0, max(costs) * 1.2 or 1.0)
    axes.grid(True, alpha=0.3)
    axes.set_title(f"{verdict.task}: accuracy against cost, per tier")
    figure.legend(loc="outside lower center", ncols=max(len(verdict.tiers), 1), frameon=False)
    return figure


def _row(result: TierResult, recommended: bool) -> str:
    data = result.to_json()
    lo, hi = data["ci95"]
    errors = ", ".join(f"{k} {v}" for k, v in data["errors"].items()) or "none"
    per_1k, per_correct = data["cost_per_1k_nanos"], data["cost_per_correct_nanos"]
    cells = [
        result.tier.label + (" \N{CHECK MARK}" if recommended else ""),
        result.model,
        str(result.scored),
        str(result.correct),
        f"{data['accuracy'] * 100:.1f}%",
        f"{lo * 100:.1f} to {hi * 100:.1f}%",
        errors,
        dollars(result.cost_nanos),
        average_dollars(per_1k) if per_1k is not None else "n/a",
        average_dollars(per_correct) if per_correct is not None else "n/a",
        f"{data['latency_ms']['p50']:.1f} / {data['latency_ms']['p95']:.1f}",
        f"{data['f1']:.3f}",
    ]
    tds = "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
    return f'<tr class="{"chosen" if recommended else ""}">{tds}</tr>'


_HEAD = (
    "tier", "model", "scored", "correct", "accuracy", "95% interval", "errors", "cost",
    "per 1,000 calls", "per correct answer", "latency p50 / p95 (ms)", "F1",
)  # fmt: skip

# The table fits a 1200 px window: headings wrap, values do not, and an unusually wide table
# (long model ids) scrolls inside its own box instead of past the page's edge.
_STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; }
.table { max-width: 100%; overflow-x: auto; margin: 16px 0; }
table { border-collapse: collapse; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 6px; text-align: right; }
td { white-space: nowrap; }
th { vertical-align: bottom; }
th:first-child, td:first-child, td:nth-child(2) { text-align: left; }
tr.chosen { background: #e8f4e8; font-weight: bold; }
.note { color: #555; }
"""


def render_html(verdict: Verdict) -> str:
    """The page; the chart is ``chart.png`` beside it."""
    chosen = verdict.recommendation.tier
    rows = "\n".join(_row(result, result.tier is chosen) for result in verdict.tiers)
    f1_note = html.escape(f" F1 counts each {verdict.unit}.")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _HEAD)
    scoring = f"scored by {verdict.scorer}"
    if verdict.judged:
        scoring += (
            f", judged by {verdict.judge_model} (frontier tier) against the expected answers;"
            f" judging cost {dollars(verdict.judge_cost_nanos)}, not counted in any tier's cost"
        )
    rec = verdict.recommendation
    width, height = CHART_SIZE_PX
    data = html.escape(json.dumps(verdict.to_json(), indent=2))
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>tiergate eval: {html.escape(verdict.task)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{html.escape(verdict.task)} on {verdict.items} items</h1>
<p class="note">{html.escape(scoring)}. Accuracy counts an error as a wrong answer.{f1_note}</p>
<p><strong>Recommendation: {html.escape(rec.tier.label)}</strong>
(gap {float(rec.gap_points):.1f} points): {html.escape(rec.reason)}.</p>
<div class="table"><table>
<tr>{head}</tr>
{rows}
</table></div>
<img id="chart" src="{CHART_FILE}" width="{width}" height="{height}"
 alt="accuracy against cost per 1,000 calls, per tier">
<details><summary>JSON</summary><pre>{data}</pre></details>
</body>
</html>
"""


def write_report(verdict: Verdict, directory: Path) -> Path:
    """Write ``index.html`` and the chart into ``directory``; returns the page's path."""
    directory.mkdir(parents=True, exist_ok=True)
    draw_chart(verdict, directory / CHART_FILE)
    page = directory / "index.html"
    page.write_text(render_html(verdict), encoding="utf-8")
    return page
