"""The floor of the overhead benchmark: a gRPC server that does nothing but the SDK call.

It serves ``TaskService.Classify`` by sending the very request tiergate would send through the
SDK client tiergate builds (``upstream_client``: aiohttp transport, the SDK's own tracing off)
and answering with the bare label: no validation, prompt, sizing, pacing, admission, ledger,
spans, metrics or log line. Its throughput against the direct call is what gRPC and one Python
event loop leave for any gateway; tiergate's own work is the gap between it and tiergate.

    python -m bench.floor --upstream http://127.0.0.1:PORT --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc

from bench.workloads import OVERHEAD_REQUEST
from tiergate.calls.prompt import render_params
from tiergate.config import Settings
from tiergate.ledger import PriceTable
from tiergate.tasks import TASKS
from tiergate.upstream.transport import upstream_client
from tiergate.v1 import task_service_pb2 as pb

MODEL = "claude-haiku-4-5"


async def serve(upstream: str, host: str, port: int) -> None:
    client = upstream_client(api_key="bench", base_url=upstream, settings=Settings())
    prompt = TASKS["Classify"].prompt(OVERHEAD_REQUEST)
    params = render_params(prompt, facts=PriceTable.load().facts(MODEL), ttl="5m")

    async def classify(_raw: bytes, _context: Any) -> pb.ClassifyResponse:
        message = await client.messages.create(**params, timeout=120)
        text = next(block.text for block in message.content if block.type == "text")
        return pb.ClassifyResponse(label=text.strip())

    handler: grpc.RpcMethodHandler[bytes, pb.ClassifyResponse] = (
        grpc.unary_unary_rpc_method_handler(
            classify, response_serializer=pb.ClassifyResponse.SerializeToString
        )
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("tiergate.v1.TaskService", {"Classify": handler}),)
    )
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.upstream, args.host, args.port))


if __name__ == "__main__":
    main()
