"""The one table ``make bench`` prints, and its JSON and Markdown copies.

``bench/README.md`` holds the latest table between two marker comments, and the project's
README four headline rows of it between two others; ``publish`` rewrites both, and
``update_readme`` replaces only what lies between a pair of markers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench import plain, streaming

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
HEADLINE_START = "<!-- bench-headline:start -->"
HEADLINE_END = "<!-- bench-headline:end -->"
# The rows the project's README shows, in this order: what a newcomer weighs first.
HEADLINE = (
    re.compile(r"Added latency p50, concurrency 1"),
    re.compile(r"Throughput tiergate / direct, concurrency \d+"),
    re.compile(r"5,000 RPCs in flight, .*"),
    re.compile(r"Cost per 1,000: ticket classification .*"),
)


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measure, result, target, met) for every figure the issue asks for."""
    out: list[tuple[str, str, str, str]] = []
    o = results.get("overhead")
    if o:
        a, b = o["direct_c1"], o["tiergate_c1"]
        out.append(
            (
                "Added latency p50, concurrency 1",
                f"{o['added_p50_ms']:.2f} ms (direct {a['p50_ms']:.2f}, tiergate"
                f" {b['p50_ms']:.2f})",
                "<= 1 ms",
                _met(o["added_p50_ms"] <= 1.0),
            )
        )
        out.append(
            (
                "Added latency p99, concurrency 1",
                f"{o['added_p99_ms']:.2f} ms (direct {a['p99_ms']:.2f}, tiergate"
                f" {b['p99_ms']:.2f})",
                "",
                "",
            )
        )
        if "cached_c1" in o:
            out.append(
                (
                    "A repeat answered from the response cache, p50, concurrency 1",
                    f"{o['cached_c1']['p50_ms']:.2f} ms (the direct call {a['p50_ms']:.2f})",
                    "",
                    "",
                )
            )
        low, high = o["throughput_ratio_range"]
        out.append(
            (
                f"Throughput tiergate / direct, concurrency {o['concurrency']}",
                f"{o['throughput_ratio']:.2f} (range {low:.2f}-{high:.2f}; {o['tiergate_rps']:.0f}"
                f" vs {o['direct_rps']:.0f} calls/s)",
                ">= 0.9",
                _met(o["throughput_ratio"] >= 0.9),
            )
        )
    if o and "floor_ratio" in o:
        low, high = o["floor_ratio_range"]
        out.append(
            (
                f"Throughput of the floor (gRPC and the SDK call only) / direct, concurrency"
                f" {o['concurrency']}",
                f"{o['floor_ratio']:.2f} (range {low:.2f}-{high:.2f};"
                f" {o['floor_rps']:.0f} calls/s)",
                "",
                "",
            )
        )
    if o and "cpu_ms_per_call" in o:
        cpu = o["cpu_ms_per_call"]
        floor = f", the floor {cpu['floor']['server']:.2f}" if "floor" in cpu else ""
        out.append(
            (
                f"CPU per call, concurrency {o['concurrency']}",
                f"tiergate {cpu['tiergate']['server']:.2f} ms{floor}, the direct caller"
                f" {cpu['direct']['client']:.2f}",
                "",
                "",
            )
        )
    m = results.get("model_paced")
    if m:
        low, high = m["throughput_ratio_range"]
        out.append(
            (
                f"Throughput tiergate / direct, concurrency {m['concurrency']}, upstream answers"
                f" after {m['upstream_delay_s']:g} s",
                f"{m['throughput_ratio']:.2f} (range {low:.2f}-{high:.2f};"
                f" {m['tiergate_rps']:.0f} vs {m['direct_rps']:.0f} calls/s)",
                "",
                "",
            )
        )
    for f in results.get("in_flight", []):
        errors = ", ".join(f"{n} {code}" for code, n in f["errors"].items()) or "0"
        out.append(
            (
                f"{f['in_flight']:,} RPCs in flight, upstream answers after"
                f" {f['upstream_delay_s']:g} s",
                f"errors {errors}; p99 {f['p99_ms'] / 1000:.2f} s; peak RSS"
                f" {f['peak_rss_mb']:.0f} MB (idle {f['idle_rss_mb']:.0f})",
                "no error, < 300 MB" if f["in_flight"] == 5000 else "",
                _met(f["error_count"] == 0 and f["peak_rss_mb"] < 300)
                if f["in_flight"] == 5000
                else "",
            )
        )
    s = results.get("startup")
    if s:
        out.append(
            (
                "Process start to health SERVING",
                f"{s['median_s']:.2f} s (median of {s['runs']}, {s['min_s']:.2f}-{s['max_s']:.2f})",
                "< 1.5 s",
                _met(s["median_s"] < 1.5),
            )
        )
    for c in results.get("costs", []):
        out.append(
            (
                f"Cost per 1,000: {c['workload']} ({c['shape']})",
                f"${c['cached_usd_per_1000']:.4f} cached vs ${c['uncached_usd_per_1000']:.4f}"
                f" uncached: {c['saving_pct']:.1f}% saved",
                "",
                "",
            )
        )
    return out + _batch_rows(results)


def _batch_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    from bench.batch import rows as batch_rows

    return batch_rows(results.get("batch"))


def _met(ok: bool) -> str:
    return "yes" if ok else "no"


def markdown(results: dict[str, Any]) -> str:
    """The whole table, under the line saying when and where it was measured."""
    return _table(results, rows(results))


def headline(results: dict[str, Any]) -> str:
    """The README's four rows (those of ``HEADLINE`` this run measured), in ``HEADLINE``'s
    order."""
    chosen = [row for pattern in HEADLINE for row in rows(results) if pattern.fullmatch(row[0])]
    return _table(results, chosen)


def _table(results: dict[str, Any], table: list[tuple[str, str, str, str]]) -> str:
    meta = results["machine"]
    lines = [
        f"Measured {results['date']} on {meta['cpus']} cores ({meta['cpu_model']}),"
        f" {meta['memory_gib']} GiB, Python {meta['python']}, everything on loopback;"
        f" `make bench` took {results['elapsed_s']:.0f} s.",
        "",
        "| measure | result | target | met |",
        "|---|---|---|---|",
    ]
    lines += [f"| {m} | {r} | {t} | {ok} |" for m, r, t, ok in table]
    return "\n".join(lines) + "\n"


def text(results: dict[str, Any]) -> str:
    table = rows(results)
    widths = [max(len(row[i]) for row in table) for i in range(4)] if table else [0] * 4
    head = ("measure", "result", "target", "met")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [head, *table]
    ]
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "latest.json"
    md_path = out_dir / "latest.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    cost = results.get("plain")
    tail = "\n" + plain.section(cost, results.get("lifetime")) if cost else ""
    md_path.write_text(markdown(results) + tail, encoding="utf-8")
    return json_path, md_path


def publish(results: dict[str, Any], root: Path) -> list[str]:
    """Rewrite the tables of ``bench/README.md`` and the headline rows of ``README.md`` under
    ``root``; says what it did, one line per table."""
    page, readme = root / "bench" / "README.md", root / "README.md"
    done = []
    for path, table, start, end in (
        (page, markdown(results), README_START, README_END),
        (readme, headline(results), HEADLINE_START, HEADLINE_END),
    ):
        name = path.relative_to(root)
        if update_readme(path, table, start=start, end=end):
            done.append(f"updated the table of {name}")
        else:
            done.append(f"{name} has no {start} marker; left it alone")
    streamed = results.get("streaming")
    if streamed:
        table = streaming.markdown(streamed)
        if update_readme(page, table, start=streaming.README_START, end=streaming.README_END):
            done.append(f"updated the streaming table of {page.relative_to(root)}")
    cost = results.get("plain")
    if cost:
        section = plain.section(cost, results.get("lifetime"))
        if update_readme(page, section, start=plain.README_START, end=plain.README_END):
            done.append(f"updated the cost tables of {page.relative_to(root)}")
    return done


def update_readme(
    readme: Path, table: str, *, start: str = README_START, end: str = README_END
) -> bool:
    """Replace the table between the markers; False when the README has no markers."""
    content = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(content):
        return False
    replacement = f"{start}\n{table}{end}"
    readme.write_text(pattern.sub(lambda _: replacement, content, count=1), encoding="utf-8")
    return True
