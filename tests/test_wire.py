"""Whatever bytes arrive: malformed requests get INVALID_ARGUMENT, error details stay under
gRPC's trailer limit, and no call ends in UNKNOWN."""

from __future__ import annotations

import json
import re
import resource
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import Upstream, rich_status, trailers
from samples import SAMPLES
from tiergate import errors
from tiergate.serving import status
from tiergate.serving.app import App
from tiergate.v1 import task_service_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["TaskService"]
RPCS = [method.name for method in SERVICE.methods]
TRAILER_LIMIT = 16 * 1024


@pytest.fixture(scope="module")
def raw(app: App) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield channel


def call_raw(channel: grpc.Channel, rpc: str, data: bytes) -> grpc.RpcError | None:
    """``data`` sent as the request of ``rpc``, as is: no serializer on either side."""
    method: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/{SERVICE.full_name}/{rpc}"
    )
    try:
        method(data, timeout=20)
    except grpc.RpcError as error:
        return error
    return None


def bad_request(error: grpc.RpcError) -> tuple[str, error_details_pb2.BadRequest]:
    """The ErrorInfo reason and the BadRequest of a failed call (both must be there)."""
    found = rich_status(error)
    assert found is not None
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert found.details[0].Unpack(info)
    assert any(detail.Unpack(bad) for detail in found.details[1:])
    return info.reason, bad


def trailer_bytes(error: grpc.RpcError) -> int:
    metadata = trailers(error)
    return sum(len(key) + len(value) for key, value in metadata) + len(error.details() or "")


def invalid_utf8(rpc: str) -> bytes:
    # Field 1 of every request is a string (text or question); 0xff never occurs in UTF-8.
    return bytes([0x0A, 3]) + b"a\xff\xfe"


def truncated(rpc: str) -> bytes:
    return SAMPLES[rpc].SerializeToString()[:-5]


GARBAGE: dict[str, Callable[[str], bytes]] = {
    "truncated": truncated,
    "invalid UTF-8": invalid_utf8,
    "a length past the end": lambda rpc: bytes([0x0A, 0x7F]) + b"short",
    "a bad wire type": lambda rpc: b"\x0f\xff\xff\xff\xff",
    "random": lambda rpc: bytes(range(256)) * 3,
}


class TestMalformedBytes:
    @pytest.mark.parametrize("rpc", RPCS)
    @pytest.mark.parametrize("kind", list(GARBAGE))
    def test_garbage_gets_invalid_argument_and_no_model_call(
        self, raw: grpc.Channel, upstream: Upstream, rpc: str, kind: str
    ) -> None:
        """Bytes that are no valid request: INVALID_ARGUMENT with ErrorInfo and BadRequest,
        never UNKNOWN, and the model is never called."""
        error = call_raw(raw, rpc, GARBAGE[kind](rpc))
        assert error is not None
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
        reason, bad = bad_request(error)
        assert reason == "INVALID_REQUEST"
        assert bad.field_violations
        assert upstream.requests == []

    def test_undecodable_bytes_name_no_field(self, raw: grpc.Channel) -> None:
        """Bytes that do not parse claim no field path: one violation with an empty field
        naming the expected message; the bytes themselves are not quoted."""
        error = call_raw(raw, "Classify", invalid_utf8("Classify"))
        assert error is not None
        _, bad = bad_request(error)
        [violation] = bad.field_violations
        assert violation.field == ""
        assert "tiergate.v1.ClassifyRequest" in violation.description
        assert "\ufffd" not in (error.details() or "")


class TestBoundedDetails:
    def test_256_blank_labels_fit_the_trailers(self, raw: grpc.Channel) -> None:
        """256 blank label names (hundreds of violations): INVALID_ARGUMENT with a parseable
        BadRequest of a bounded number of violations plus a count of the rest, not gRPC's
        bare RESOURCE_EXHAUSTED for oversized trailers."""
        request = pb.ClassifyRequest(text="hello", labels=[pb.Label(name="")] * 256)
        error = call_raw(raw, "Classify", request.SerializeToString())
        assert error is not None
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        _, bad = bad_request(error)
        *named, rest = bad.field_violations
        assert len(named) == status.MAX_VIOLATIONS
        assert all(re.fullmatch(r"labels\[\d+\]\.name", v.field) for v in named)
        counted = re.fullmatch(r"and (\d+) more violations", rest.description)
        assert counted is not None
        assert int(counted.group(1)) >= 256 - status.MAX_VIOLATIONS
        assert trailer_bytes(error) < TRAILER_LIMIT

    def test_a_huge_invalid_schema_fits_the_trailers(self, raw: grpc.Channel) -> None:
        """An Extract schema whose errors could quote 60 KB of it: the details still fit."""
        schema = {"type": "object", "properties": {"x": {"type": "\u00e9" * 30_000}}}
        request = pb.ExtractRequest(text="hello", json_schema=json.dumps(schema))
        error = call_raw(raw, "Extract", request.SerializeToString())
        assert error is not None
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        bad_request(error)
        assert trailer_bytes(error) < TRAILER_LIMIT

    @pytest.mark.parametrize("char", ["x", "\u00e9", "\U0001f600"])
    def test_any_violations_encode_under_the_limit(self, char: str) -> None:
        """A thousand violations with 100 KB field paths and descriptions, in 1- to 4-byte
        characters: the encoded status stays under the limit and parses back."""
        huge = char * 100_000
        err = errors.InvalidRequest([errors.FieldViolation(huge, huge)] * 1000)
        encoded = status.grpc_status(err)
        size = sum(len(k) + len(v) for k, v in encoded.trailing_metadata)
        assert size + len(encoded.details.encode()) * 3 < TRAILER_LIMIT
        bad = error_details_pb2.BadRequest()
        assert status.to_status(err).details[1].Unpack(bad)
        assert len(bad.field_violations) == status.MAX_VIOLATIONS + 1
        assert bad.field_violations[-1].description == "and 984 more violations"


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def mutations(rpc: str) -> st.SearchStrategy[bytes]:
    """Random bytes, and a valid request cut short or with one byte changed."""
    valid = SAMPLES[rpc].SerializeToString()
    cut = st.integers(0, len(valid)).map(lambda n: valid[:n])
    flipped = st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)).map(
        lambda change: valid[: change[0]] + bytes([change[1]]) + valid[change[0] + 1 :]
    )
    return st.one_of(st.binary(max_size=600), cut, flipped)


class TestFuzzedBytes:
    @pytest.mark.parametrize("rpc", RPCS)
    def test_random_bytes_never_end_unknown_or_internal(
        self, raw: grpc.Channel, app: App, rpc: str
    ) -> None:
        """50 generated byte strings per RPC: every call ends (call timeout), in a typed reply
        or a clean status, never UNKNOWN or INTERNAL; the server's memory stays bounded and it
        still serves afterwards."""
        before = _rss_kib()

        @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
        @given(data=mutations(rpc))
        def check(data: bytes) -> None:
            error = call_raw(raw, rpc, data)
            if error is not None:
                assert error.code() not in (
                    grpc.StatusCode.UNKNOWN,
                    grpc.StatusCode.INTERNAL,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ), f"{rpc} -> {error.code()}: {error.details()}"

        check()
        # The server runs in this process: its peak RSS may not grow by more than 64 MiB.
        assert _rss_kib() - before < 64 * 1024
        request: Message = SAMPLES[rpc]
        assert call_raw(raw, rpc, request.SerializeToString()) is None


class TestServedServices:
    def test_reflection_describes_the_generic_handlers_service(self, raw: grpc.Channel) -> None:
        """With the handlers made from the descriptor, reflection still lists TaskService with
        every one of its methods, beside health and reflection."""
        database = ProtoReflectionDescriptorDatabase(raw)
        services = set(database.get_services())
        assert {SERVICE.full_name, "grpc.health.v1.Health"} <= services
        pool = DescriptorPool(database)
        served = pool.FindServiceByName(SERVICE.full_name)
        assert sorted(m.name for m in served.methods) == sorted(RPCS)
