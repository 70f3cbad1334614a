"""``tiergate spend``: what callers have spent against their budgets, from a running server.

tiergate spend                          # every budget the server shows
tiergate spend --caller billing-service --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import grpc

from tiergate.cli import flags, render
from tiergate.shared.budgets import usd
from tiergate.v1 import spend_service_pb2, spend_service_pb2_grpc

DEFAULT_TARGET = "localhost:50051"


def add_parser(commands: Any) -> None:
    """Register ``spend`` on the ``tiergate`` command's subparsers."""
    sub: argparse.ArgumentParser = commands.add_parser(
        "spend", help="show budgets: spent, reserved by calls in flight, and left (UTC periods)"
    )
    sub.add_argument("--caller", default="", help="one caller's budgets (default: all shown)")
    sub.add_argument(
        "--target",
        default=os.environ.get("TIERGATE_TARGET") or DEFAULT_TARGET,
        metavar="HOST:PORT",
        help=f"the tiergate server (default: {DEFAULT_TARGET}; env TIERGATE_TARGET)",
    )
    sub.add_argument(
        "--token-env",
        default="TIERGATE_TOKEN",
        metavar="NAME",
        help="environment variable holding the bearer token, if any (default: TIERGATE_TOKEN)",
    )
    flags.add_token_flag(sub)
    sub.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    sub.add_argument("--json", action="store_true", help="print the budgets as JSON")
    sub.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        metadata = flags.bearer_metadata(args.token_file, args.token_env)
    except flags.UsageError as exc:
        print(f"tiergate: {exc}", file=sys.stderr)
        return 2
    with grpc.insecure_channel(args.target) as channel:
        stub = spend_service_pb2_grpc.SpendServiceStub(channel)
        try:
            reply = stub.GetSpend(
                spend_service_pb2.GetSpendRequest(caller=args.caller),
                timeout=args.timeout,
                metadata=metadata,
            )
        except grpc.RpcError as err:
            print(f"tiergate: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    rows = [
        {
            "scope": p.scope,
            "period": p.period,
            "limit_usd": usd(p.limit_nanos),
            "spent_usd": usd(p.spent_nanos),
            "reserved_usd": usd(p.reserved_nanos),
            "left_usd": usd(p.left_nanos),
        }
        for p in reply.periods
    ]
    if args.json:
        print(json.dumps({"budgets": rows}, indent=2))
        return 0
    if not rows:
        print("no budgets (TIERGATE_BUDGETS_FILE is not set, or none for this caller)")
        return 0
    print(f"{'scope':<24} {'period':<18} {'limit':>16} {'spent':>16} {'reserved':>16} {'left':>16}")
    for p in reply.periods:
        amounts = (p.limit_nanos, p.spent_nanos, p.reserved_nanos, p.left_nanos)
        cells = " ".join(f"{render.dollars(nanos):>16}" for nanos in amounts)
        print(f"{p.scope:<24} {p.period:<18} {cells}")
    return 0
