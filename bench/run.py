"""``make bench``: run every scenario, print one table, write it under ``bench/results/``.

.venv/bin/python -m bench.run                 # the full run (a few minutes)
.venv/bin/python -m bench.run --quick         # small counts: checks the harness, not speed
.venv/bin/python -m bench.run --update-readme # also refresh bench/README.md and the README's rows
.venv/bin/python -m bench.plain               # the cost table alone (counted, no load)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import time
from pathlib import Path
from typing import Any

from bench import batch, lifetime, plain, profiling, report, scenarios, streaming
from bench.load import GatewayCall, closed_loop, describe
from bench.procs import ROOT, EmulatorProcess, FloorProcess, ServerProcess
from bench.workloads import OVERHEAD_REQUEST, cost_workloads

RESULTS = ROOT / "bench" / "results"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="refresh bench/README.md and the README's headline rows",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args()


def machine() -> dict[str, Any]:
    cpu_model = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(pages / 2**30),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


async def _profile_server(server: ServerProcess, seconds: float, out: Path) -> dict[str, Any]:
    """Sample the server while the gateway path runs at full concurrency."""
    collapsed = out / "profile-server.txt"
    spy = profiling.start(server.pid, seconds, collapsed)
    gateway = GatewayCall(server.target, OVERHEAD_REQUEST, response_cache=False)
    try:
        run = await closed_loop(gateway, scenarios.THROUGHPUT_CONCURRENCY, seconds)
    finally:
        await gateway.close()
    _, stderr = await asyncio.to_thread(spy.communicate)
    if spy.returncode != 0 or not collapsed.exists():
        return {"error": stderr.decode(errors="replace").strip()[-500:]}
    return {"under_load": describe(run), **profiling.summarise(collapsed)}


def main() -> None:
    args = _arguments()
    quick = args.quick
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "quick": quick,
    }
    print("cost against the plain call ...", flush=True)
    results["plain"] = plain.run()  # counted, not loaded: takes well under a second
    print("cache lifetime on a low-traffic day ...", flush=True)
    results["lifetime"] = lifetime.run(30 if quick else lifetime.CALLS)  # manual clock
    with EmulatorProcess() as upstream:
        print("startup ...", flush=True)
        results["startup"] = scenarios.startup(upstream, runs=2 if quick else 5)
        with ServerProcess(upstream.url) as server, FloorProcess(upstream.url) as floor:
            print("overhead ...", flush=True)
            results["overhead"] = asyncio.run(
                scenarios.overhead(
                    upstream,
                    server,
                    floor=floor,
                    pairs=100 if quick else 1500,
                    rounds=2 if quick else 4,
                    seconds=1 if quick else 5,
                )
            )
            if not args.no_profile and profiling.available():
                print("profile ...", flush=True)
                args.out.mkdir(parents=True, exist_ok=True)
                results["profile"] = asyncio.run(
                    _profile_server(server, 3 if quick else 10, args.out)
                )
                upstream.reset()
            print("cost per 1,000 requests ...", flush=True)
            workloads = cost_workloads(40 if quick else 1000)
            results["costs"] = asyncio.run(
                scenarios.cache_costs(upstream, server.target, workloads)
            )
    print("throughput at a model's pace ...", flush=True)
    results["model_paced"] = scenarios.model_paced(0.5, rounds=2, seconds=2 if quick else 6)
    print("in flight ...", flush=True)
    results["in_flight"] = scenarios.in_flight(
        (100, 500) if quick else (1000, 5000), delay_s=0.5 if quick else 2.0
    )
    print("streaming against the whole answer ...", flush=True)
    results["streaming"] = streaming.run(rounds=2 if quick else streaming.ROUNDS)
    print("batch ...", flush=True)
    results["batch"] = batch.batch_scenario(500 if quick else batch.ITEMS)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    json_path, md_path = report.write(results, args.out)
    print()
    print(report.text(results))
    print(plain.section(results["plain"], results["lifetime"]))
    print(streaming.section(results["streaming"]))
    _print_profile(results.get("profile"))
    print(f"wrote {json_path} and {md_path}")
    if args.update_readme:
        for line in report.publish(results, ROOT):
            print(line)


def _print_profile(found: dict[str, Any] | None) -> None:
    if not found:
        return
    if "error" in found:
        print(f"profile: py-spy failed: {found['error']}")
        return
    print(f"server profile, {found['samples']} samples, top functions by self time:")
    for entry in found["self"][:10]:
        print(f"  {entry['pct']:5.1f}%  {entry['function']}")
    print()


if __name__ == "__main__":
    main()
