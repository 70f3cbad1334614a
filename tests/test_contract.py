"""The proto is the contract: every RPC has a handler, a tier, a task, a test and a CLI command."""

from __future__ import annotations

import ast
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from samples import SAMPLES
from tiergate.app import App
from tiergate.cli import COMMANDS
from tiergate.client import TaskClient
from tiergate.service import SERVICE as SERVED
from tiergate.tasks import TASKS
from tiergate.tiers import Tier
from tiergate.v1 import task_service_pb2, usage_pb2

SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"]
RPCS = [method.name for method in SERVICE.methods]
TASK_TESTS = ast.parse((Path(__file__).parent / "test_tasks.py").read_text())


def test_the_service_has_the_six_contract_rpcs() -> None:
    """The API is the six tasks of the contract, in the service's package."""
    assert SERVICE.full_name == "tiergate.v1.TaskService"
    assert sorted(RPCS) == sorted(
        ["Classify", "Summarize", "Extract", "Answer", "Moderate", "Reason"]
    )


@pytest.mark.parametrize("rpc", RPCS)
class TestEveryRpc:
    def test_has_a_handler(self, rpc: str, app: App) -> None:
        """The running server handles the RPC with its task: an empty request reaches the
        task's validation (INVALID_ARGUMENT naming a field), not UNIMPLEMENTED."""
        assert SERVED is SERVICE
        with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            call = channel.unary_unary(f"/{SERVICE.full_name}/{rpc}")
            with pytest.raises(grpc.RpcError) as caught:
                call(b"", timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(caught.value)
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

    def test_has_a_cli_command_and_a_client_method(self, rpc: str) -> None:
        """`tiergate <rpc>` exists and the Python client has the method it calls."""
        assert rpc.lower() in COMMANDS
        assert COMMANDS[rpc.lower()][1] == rpc
        assert callable(getattr(TaskClient, rpc.lower()))


def test_tier_binding_matches_the_design() -> None:
    """The registry binds five tasks to the fast tier and Reason to the balanced tier."""
    binding = {rpc: task.tier for rpc, task in TASKS.items()}
    assert binding == {
        "Classify": Tier.FAST,
        "Summarize": Tier.FAST,
        "Extract": Tier.FAST,
        "Answer": Tier.FAST,
        "Moderate": Tier.FAST,
        "Reason": Tier.BALANCED,
    }
