"""Extract with caller schemas over real gRPC and the emulator: served or refused, never
INTERNAL; and the schema attacks (fetching, freezing, bloating, deep nesting, bad $ref)."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import jsonschema
import pytest
import referencing.exceptions
import structlog
from google.protobuf import json_format
from grpc_health.v1 import health_pb2

from api_subset import subset_problems
from harness import Upstream, rich_status
from schema_corpus import REFUSED, SERVED, Refused, Served, served
from test_validation import violations
from tiergate import logs
from tiergate.client import health_check
from tiergate.emulator import Script
from tiergate.schema import CACHE, compile_schema, wire_validator
from tiergate.schema.patterns import validator
from tiergate.serving.app import App
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub


def extract(stub: Stub, schema: Any, text: str = "Ana paid 12 EUR.") -> pb.ExtractResponse:
    raw = schema if isinstance(schema, str) else json.dumps(schema)
    reply: pb.ExtractResponse = stub.Extract(
        pb.ExtractRequest(text=text, json_schema=raw), timeout=30
    )
    return reply


def refused_fields(stub: Stub, schema: Any) -> list[str]:
    with pytest.raises(grpc.RpcError) as caught:
        extract(stub, schema)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    reason, fields = violations(caught.value)
    assert reason == "INVALID_REQUEST"
    return fields


def sent_schema(upstream: Upstream) -> dict[str, Any]:
    schema: dict[str, Any] = upstream.requests[-1]["output_config"]["format"]["schema"]
    return schema


class TestCorpusOverGrpc:
    @pytest.mark.parametrize("case", SERVED, ids=[c.name for c in SERVED])
    def test_wire_shaped_answer_comes_back_as_the_callers_data(
        self, stub: Stub, upstream: Upstream, case: Served
    ) -> None:
        """A model answer in the wire schema's shape (scripted) comes back OK, in one billed
        call, as exactly the hand-written data valid against the caller's original schema;
        the strict emulator accepted the schema sent."""
        upstream.script(Script(text=json.dumps(case.wire if case.wire is not None else case.valid)))
        reply = extract(stub, case.schema, case.text)
        data = json.loads(json.dumps(json_format.MessageToDict(reply.data)))
        assert data == case.valid
        jsonschema.validators.validator_for(case.schema)(case.schema).validate(data)
        assert reply.usage.billed_calls == 1
        assert subset_problems(sent_schema(upstream)) == []

    @pytest.mark.parametrize("case", SERVED, ids=[c.name for c in SERVED])
    def test_served_schema_returns_data_valid_against_the_original(
        self, stub: Stub, upstream: Upstream, case: Served
    ) -> None:
        """Whatever the (heuristic) model answers, a served schema ends OK with data valid
        against the caller's original schema, or OUTPUT_INVALID when the answer breaks a
        dropped rule twice; never another status; the schema sent is inside the subset."""
        failed: grpc.RpcError | None = None
        try:
            reply = extract(stub, case.schema, case.text)
        except grpc.RpcError as error:
            failed = error
        if failed is not None:
            assert failed.code() == grpc.StatusCode.UNAVAILABLE, failed.details()
            assert rich_status(failed) is not None
            assert "unusable" in (failed.details() or "")
        else:
            data = json_format.MessageToDict(reply.data)
            jsonschema.validators.validator_for(case.schema)(case.schema).validate(
                json.loads(json.dumps(data))
            )
        assert subset_problems(sent_schema(upstream)) == []

    @pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
    def test_refused_schema_names_its_pointer_before_any_model_call(
        self, stub: Stub, upstream: Upstream, case: Refused
    ) -> None:
        """A refused schema is INVALID_ARGUMENT with its pointer; nothing went upstream."""
        assert case.field in refused_fields(stub, case.schema)
        assert upstream.requests == []

    def test_schema_is_sent_once_as_the_output_schema(self, stub: Stub, upstream: Upstream) -> None:
        """The caller's schema reaches the model as the output schema only, not again as
        system text; the caller's instructions are the cached context."""
        invoice = served("invoice")
        schema = json.dumps(invoice.schema)
        request_ = pb.ExtractRequest(
            text=invoice.text, json_schema=schema, instructions="Amounts in EUR."
        )
        # The emulator ignores patterns, so the answer itself may be unusable: not the point.
        with contextlib.suppress(grpc.RpcError):
            stub.Extract(request_, timeout=30)
        request = upstream.requests[0]
        system = " ".join(block["text"] for block in request["system"])
        assert "INV-" not in system
        assert "Amounts in EUR." in system
        assert sent_schema(upstream)["properties"]["invoice_number"]["pattern"] == "^INV-[0-9]{4}$"


class _Counting(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("content-type", "application/schema+json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def schema_host() -> Iterator[str]:
    _Counting.hits = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/address.json"
    server.shutdown()
    server.server_close()


class TestRemoteReferences:
    def test_remote_ref_is_refused_and_never_fetched(
        self, stub: Stub, upstream: Upstream, schema_host: str
    ) -> None:
        """$ref to a URL (SSRF) is INVALID_ARGUMENT; the URL's host is never contacted."""
        schemas = [
            {"type": "object", "properties": {"a": {"$ref": schema_host}}},
            {"type": "object", "properties": {"a": {"not": {"$ref": schema_host}}}},
            {"type": "object", "$defs": {"x": {"$ref": schema_host}}},
        ]
        for schema in schemas:
            refused_fields(stub, schema)
        assert upstream.requests == []
        assert _Counting.hits == 0

    def test_validators_resolve_nothing_outside_the_document(self, schema_host: str) -> None:
        """Even a validator built directly on a remote $ref refuses to retrieve it."""
        schema = {"type": "object", "properties": {"a": {"$ref": schema_host}}}
        for made in (validator(schema), wire_validator(schema)):
            with pytest.raises(referencing.exceptions.Unresolvable):
                list(made.iter_errors({"a": "x"}))
        assert _Counting.hits == 0


class TestCatastrophicPatterns:
    def test_backtracking_pattern_neither_freezes_calls_nor_health(
        self, stub: Stub, app: App, upstream: Upstream
    ) -> None:
        """^(a+)+$ against the emulator's long answers (matching, then one that is not):
        both calls finish and health checks keep answering SERVING meanwhile. (A field named
        ``body`` echoes the text; one named ``code`` would look for an id and find none.)"""
        schema = {
            "type": "object",
            "properties": {"body": {"type": "string", "pattern": "^(a+)+$"}},
            "required": ["body"],
        }
        health = health_check(grpc.insecure_channel(f"127.0.0.1:{app.port}"))
        with ThreadPoolExecutor(2) as pool:
            matching = pool.submit(extract, stub, schema, "a" * 4000)
            failing = pool.submit(extract, stub, schema, "a" * 4000 + "b")
            answers = [health(health_pb2.HealthCheckRequest(), timeout=30) for _ in range(5)]
            assert json_format.MessageToDict(matching.result().data)["body"] == "a" * 4000
            with pytest.raises(grpc.RpcError) as caught:
                failing.result()
        assert all(a.status == health_pb2.HealthCheckResponse.SERVING for a in answers)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "pattern" in (caught.value.details() or "")

    def test_output_validation_uses_linear_time_patterns(self) -> None:
        """The caller's pattern runs on RE2 inside output validation, also for map keys."""
        compiled = compile_schema(
            json.dumps(
                {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string", "pattern": "^(a+)+$"},
                        "tags": {"type": "object", "patternProperties": {"^(a|aa)+$": {}}},
                    },
                }
            )
        )
        evil = "a" * 50_000 + "b"
        problems = compiled.problems({"code": evil, "tags": {evil: 1}})
        assert problems == ["$.code: must match the pattern"] or problems[0].startswith("$.code")
        assert compiled.problems({"code": "a" * 50_000, "tags": {"a" * 50_000: 1}}) == []


class TestCacheBounds:
    def test_rejected_multi_megabyte_schemas_are_not_kept(self, stub: Stub) -> None:
        """40 schemas of 2 MB each are refused without growing the cache at all."""
        before = (CACHE.bytes, len(CACHE))
        for i in range(40):
            padding = "x" * (2 * 1024 * 1024)
            big = json.dumps({"type": "object", "description": f"{i}{padding}"})
            assert refused_fields(stub, big) == ["json_schema"]
        assert (CACHE.bytes, len(CACHE)) == before

    def test_cache_stays_within_its_byte_bound(self) -> None:
        """Many distinct near-64 KiB schemas, compiled or refused: the cache's own byte
        accounting never passes its bound, and refusals are kept small."""
        CACHE.clear()
        for i in range(40):
            description = f"{i}" + "y" * 60_000
            refused = {"type": "object", "description": description, "required": ["missing"]}
            with pytest.raises(Exception, match="invalid request"):
                compile_schema(json.dumps(refused))
        assert CACHE.bytes <= 40 * 1024
        for i in range(100):  # about 50 MB of compiled schemas offered to a 32 MiB cache
            description = f"{i}" + "z" * 60_000
            compile_schema(json.dumps({"type": "object", "description": description}))
            assert CACHE.bytes <= CACHE.max_bytes
        assert len(CACHE) < 40 + 100  # the least recently used were evicted


def deep(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure(json=True, stream=stream)
    structlog.configure(cache_logger_on_first_use=False)
    yield stream
    structlog.reset_defaults()


class TestDepthAndReferences:
    def test_schema_nested_60_deep_is_refused_before_any_upstream_request(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """60 levels of objects: INVALID_ARGUMENT before any billed call (was billed, then
        INTERNAL when protobuf could not carry the data)."""
        assert refused_fields(stub, deep(60)) == ["json_schema"]
        fields = refused_fields(stub, deep(30))
        assert fields[0].startswith("json_schema/properties/a/properties/a")
        assert upstream.requests == []

    @pytest.mark.parametrize(
        ("reference", "field"),
        [("#", "json_schema/properties/p"), ("#/$defs/gone", "json_schema/properties/p")],
        ids=["self", "dangling"],
    )
    def test_bad_reference_is_refused_and_the_schema_stays_out_of_the_log(
        self,
        stub: Stub,
        upstream: Upstream,
        log_lines: io.StringIO,
        reference: str,
        field: str,
    ) -> None:
        """A self-referencing or dangling $ref: INVALID_ARGUMENT with its pointer (was
        INTERNAL), and neither the error nor the log quotes the caller's schema."""
        marker = "CALLER-SCHEMA-MARKER-7Q"
        schema = {"type": "object", "description": marker, "properties": {"p": {"$ref": reference}}}
        with pytest.raises(grpc.RpcError) as caught:
            extract(stub, schema)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(caught.value)[1] == [field]
        assert marker not in (caught.value.details() or "")
        # The RPC's log line is written as the call completes, possibly just after the reply.
        until = time.monotonic() + 10
        while '"INVALID_ARGUMENT"' not in log_lines.getvalue() and time.monotonic() < until:
            time.sleep(0.02)
        lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
        assert any(line.get("status") == "INVALID_ARGUMENT" for line in lines)
        assert marker not in log_lines.getvalue()
        assert upstream.requests == []
