"""The proto is the contract, the task registry its one implementation: every RPC of the
service has a task (with its tier and types), a handler, a place in the batch oneofs, a test,
a sample, a CLI command, a method in every client (Python sync and asyncio, Go, TypeScript,
Java; generated from the service descriptor by ``scripts/gen_client_methods.py``) and a
conformance case."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import anthropic
import grpc
import pytest
from google.rpc import error_details_pb2

from harness import rich_status
from samples import SAMPLES
from tiergate.calls.runner import TaskRunner
from tiergate.cli import commands
from tiergate.cli.main import COMMANDS
from tiergate.client import AsyncTaskClient, TaskClient
from tiergate.client._tasks import AsyncTaskMethods, TaskMethods
from tiergate.config import Settings
from tiergate.ledger import PriceTable
from tiergate.serving.app import App
from tiergate.serving.task_service import SERVICE as SERVED
from tiergate.serving.task_service import TaskServicer, task_handlers
from tiergate.tasks import TASKS
from tiergate.tiers import Tier
from tiergate.upstream.model_client import ModelClient
from tiergate.v1 import batch_service_pb2, stream_service_pb2, task_service_pb2, usage_pb2

ROOT = Path(__file__).resolve().parent.parent
SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"]
RPCS = [method.name for method in SERVICE.methods]
BATCH_REQUESTS = batch_service_pb2.BatchItem.DESCRIPTOR.oneofs_by_name["request"]
BATCH_RESULTS = batch_service_pb2.BatchResult.DESCRIPTOR.oneofs_by_name["result"]
TASK_TESTS = ast.parse((Path(__file__).parent / "test_tasks.py").read_text())
CASES = json.loads((ROOT / "clients" / "conformance" / "cases.json").read_text())["cases"]
GO_SOURCES = "\n".join(p.read_text() for p in sorted((ROOT / "clients/go/tiergate").glob("*.go")))
TS_SOURCES = "\n".join(
    p.read_text() for p in sorted((ROOT / "clients/typescript/src").glob("*.ts"))
)
JAVA_SOURCES = "\n".join(
    p.read_text() for p in sorted((ROOT / "clients/java/src/main/java/tiergate").rglob("*.java"))
)


def snake_case(rpc: str) -> str:
    """The Python method of an RPC (``CountWords``: ``count_words``)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", rpc).lower()


class TestTheRegistry:
    def test_is_the_service(self) -> None:
        """The registry holds exactly the service's RPCs: no RPC without a task, no task
        without an RPC (so no count of tasks is written anywhere)."""
        assert SERVICE.full_name == "tiergate.v1.TaskService"
        assert sorted(TASKS) == sorted(RPCS)
        assert all(rpc == task.rpc for rpc, task in TASKS.items())

    def test_handlers_are_made_for_every_rpc(self) -> None:
        """The generic registration makes one handler per RPC of the descriptor, no more."""
        settings = Settings()
        # Never called: only the handler table is read, so the SDK points nowhere.
        sdk = anthropic.AsyncAnthropic(api_key="unused", base_url="http://127.0.0.1:9")
        runner = TaskRunner(settings, PriceTable.load(), ModelClient(sdk, settings))
        assert sorted(task_handlers(TaskServicer(runner))) == sorted(RPCS)

    def test_samples_cover_the_service(self) -> None:
        """tests/samples.py has one sample per RPC, no more."""
        assert sorted(SAMPLES) == sorted(RPCS)

    def test_cli_commands_cover_the_service(self) -> None:
        """Every CLI command calls an RPC, and there is one command per RPC."""
        assert sorted(c.rpc for c in commands.commands()) == sorted(RPCS)
        assert sorted(rpc for _, rpc in COMMANDS.values()) == sorted(RPCS)

    def test_client_methods_are_the_service(self) -> None:
        """The generated Python methods are one per RPC, no more: a method outlives no RPC."""
        expected = sorted(snake_case(rpc) for rpc in RPCS)
        for methods in (TaskMethods, AsyncTaskMethods):
            public = [name for name in vars(methods) if not name.startswith("_")]
            assert sorted(public) == expected, methods.__name__

    def test_batch_oneofs_hold_only_tasks(self) -> None:
        """``BatchItem.request`` has one field per RPC, no more; ``BatchResult.result`` the
        same plus the item's ``error``."""
        tasks = sorted(map(snake_case, RPCS))
        assert sorted(f.name for f in BATCH_REQUESTS.fields) == tasks
        assert sorted(f.name for f in BATCH_RESULTS.fields) == sorted([*tasks, "error"])

    def test_conformance_cases_name_only_rpcs(self) -> None:
        """Every conformance case calls an RPC of the task service or of the stream service,
        or is a batch case (a CreateBatch through the BatchService, then its results)."""
        streams = stream_service_pb2.DESCRIPTOR.services_by_name["StreamService"].methods
        assert {case["rpc"] for case in CASES} <= {*RPCS, *(m.name for m in streams), "Batch"}


@pytest.mark.parametrize("rpc", RPCS)
class TestEveryRpc:
    def test_has_a_handler(self, rpc: str, app: App) -> None:
        """The running server handles the RPC with its task: an empty request reaches the
        task's validation (INVALID_ARGUMENT naming a field), not UNIMPLEMENTED."""
        assert SERVED is SERVICE
        with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                f"/{SERVICE.full_name}/{rpc}"
            )
            with pytest.raises(grpc.RpcError) as caught:
                call(b"", timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rich_status(caught.value)
        assert status is not None
        bad = error_details_pb2.BadRequest()
        assert any(detail.Unpack(bad) for detail in status.details)
        assert all(v.field for v in bad.field_violations)

    def test_has_a_tier_and_a_task(self, rpc: str) -> None:
        """The RPC has a task in the registry, and the task states its tier."""
        assert TASKS[rpc].rpc == rpc
        assert isinstance(TASKS[rpc].tier, Tier)
        method = SERVICE.methods_by_name[rpc]
        assert type(SAMPLES[rpc]).DESCRIPTOR.full_name == method.input_type.full_name

    def test_task_types_are_the_rpc_messages(self, rpc: str) -> None:
        """The task's request and response types are the RPC's messages: every layer finds
        them on the task (handlers, batches, CLI, eval), so they must be the contract's."""
        method = SERVICE.methods_by_name[rpc]
        assert TASKS[rpc].request_type.DESCRIPTOR is method.input_type
        assert TASKS[rpc].response_type.DESCRIPTOR is method.output_type

    def test_is_in_the_batch_oneofs(self, rpc: str) -> None:
        """batch_service.proto can carry the task: ``BatchItem.request`` has a field named as
        the client method holding the RPC's request, ``BatchResult.result`` one holding its
        response (the batch intake, results and clients find them so)."""
        method = SERVICE.methods_by_name[rpc]
        name = snake_case(rpc)
        requests = {f.name: f.message_type for f in BATCH_REQUESTS.fields}
        results = {f.name: f.message_type for f in BATCH_RESULTS.fields}
        assert requests.get(name) is method.input_type, f"BatchItem.request lacks {name}"
        assert results.get(name) is method.output_type, f"BatchResult.result lacks {name}"

    def test_response_carries_usage(self, rpc: str) -> None:
        """The response type has the contract's usage field of type Usage."""
        output = SERVICE.methods_by_name[rpc].output_type
        assert output.fields_by_name["usage"].message_type == usage_pb2.Usage.DESCRIPTOR

    def test_has_a_test(self, rpc: str) -> None:
        """test_tasks.py has a TestRpc class with at least one test calling the RPC."""
        classes = [n for n in TASK_TESTS.body if isinstance(n, ast.ClassDef)]
        tests = next((c for c in classes if c.name == f"Test{rpc}"), None)
        assert tests is not None, f"no Test{rpc} in test_tasks.py"
        calls = [
            node.func.attr
            for node in ast.walk(tests)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        ]
        assert rpc in calls

    def test_has_a_cli_command(self, rpc: str) -> None:
        """`tiergate <rpc>` exists (``count-words`` for ``CountWords``) and calls the RPC."""
        command = snake_case(rpc).replace("_", "-")
        assert command in COMMANDS
        assert COMMANDS[command][1] == rpc

    def test_has_a_method_in_each_python_client(self, rpc: str) -> None:
        """The sync and the asyncio Python clients have the RPC's typed method, in snake_case."""
        method = SERVICE.methods_by_name[rpc]
        name = snake_case(rpc)
        for client in (TaskClient, AsyncTaskClient):
            typed = getattr(client, name, None)
            assert callable(typed), f"{client.__name__}.{name} is missing"
            hints = typed.__annotations__
            assert hints["request"] == f"pb.{method.input_type.name}"
            assert hints["return"] == f"pb.{method.output_type.name}"

    def test_has_a_go_helper(self, rpc: str) -> None:
        """The Go client has ``func (c *Client) <Rpc>`` over the RPC's request and response."""
        method = SERVICE.methods_by_name[rpc]
        signature = (
            rf"func \(c \*Client\) {rpc}\(ctx context\.Context, "
            rf"req \*tiergatev1\.{method.input_type.name},[^)]*\) "
            rf"\(\*tiergatev1\.{method.output_type.name}, error\)"
        )
        assert re.search(signature, GO_SOURCES), f"no Go helper for {rpc}"

    def test_has_a_typescript_helper(self, rpc: str) -> None:
        """The TypeScript client has a method named after the RPC, from its request's init shape
        to its response."""
        name = rpc[0].lower() + rpc[1:]
        method = SERVICE.methods_by_name[rpc]
        signature = (
            rf"^\s*{name}\(\s*request: MessageInitShape<typeof {method.input_type.name}Schema>,"
            rf"[^)]*\): Promise<{method.output_type.name}>"
        )
        assert re.search(signature, TS_SOURCES, re.MULTILINE), f"no TypeScript helper for {rpc}"

    def test_has_a_java_helper(self, rpc: str) -> None:
        """The Java client has a blocking method named after the RPC, from its request to its
        response, and a future-based one beside it."""
        name = rpc[0].lower() + rpc[1:]
        method = SERVICE.methods_by_name[rpc]
        request, response = method.input_type.name, method.output_type.name
        blocking = rf"public {response} {name}\({request} request\)"
        future = rf"public CompletableFuture<{response}> {name}Async\(\s*{request} request\)"
        assert re.search(blocking, JAVA_SOURCES), f"no blocking Java helper for {rpc}"
        assert re.search(future, JAVA_SOURCES), f"no future-based Java helper for {rpc}"

    def test_has_a_conformance_case(self, rpc: str) -> None:
        """clients/conformance/cases.json runs the RPC at least once, successfully."""
        assert any(c["rpc"] == rpc and c["expect"]["code"] == "OK" for c in CASES)


def test_tier_binding_matches_the_design() -> None:
    """Reason, which needs depth, is on the balanced tier; Read, which needs vision, on the
    frontier tier; every other task is on the fast tier, whatever their number."""
    binding = {rpc: task.tier for rpc, task in TASKS.items()}
    assert binding.pop("Reason") is Tier.BALANCED
    assert binding.pop("Read") is Tier.FRONTIER
    assert set(binding.values()) == {Tier.FAST}
