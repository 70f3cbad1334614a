"""Run the emulator standalone: ``python -m tiergate.emulator --port 8089 [--latency seed]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .app import Emulator, EmulatorConfig


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tiergate.emulator",
        description="Emulator of the Anthropic Messages API (heuristic answers, not a model).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--latency", choices=["none", "seed"], default="none")
    parser.add_argument("--latency-scale", type=float, default=1.0)
    parser.add_argument("--fixed-delay-s", type=float, default=0.0)
    parser.add_argument(
        "--batch-delay-s", type=float, default=0.0, help="wait before a batch is answered"
    )
    parser.add_argument("--api-key", default=None, help="require this key (default: accept any)")
    parser.add_argument(
        "--default-inference-geo",
        choices=["global", "us"],
        default="global",
        help="usage.inference_geo for requests that set none (the workspace default)",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    config = EmulatorConfig(
        api_key=args.api_key,
        latency=args.latency,
        latency_scale=args.latency_scale,
        fixed_delay_s=args.fixed_delay_s,
        batch_delay_s=args.batch_delay_s,
        default_inference_geo=args.default_inference_geo,
    )
    emulator = Emulator(config)
    url = await emulator.start(args.host, args.port)
    print(f"Anthropic Messages API emulator (not a language model) listening on {url}", flush=True)
    try:
        await asyncio.Event().wait()  # serve until interrupted
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
