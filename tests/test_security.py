"""TLS and mTLS, bearer-token auth with caller identity, and nothing secret in logs."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from conftest import start_app
from harness import BackgroundLoop, Processes, Trailers, Upstream, rich_status, wait_serving
from samples import CLASSIFY, TICKET_LABELS
from tiergate import logs
from tiergate.client import health_check
from tiergate.emulator import Fault
from tiergate.serving.app import App
from tiergate.serving.auth import MAX_NAME_CHARS, load_tokens, sanitize
from tiergate.telemetry import Telemetry
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "billing-service")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "1", "-extfile", "san.cnf",
                 "-out", f"{name}.pem", cwd=d)  # fmt: skip
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")


def secure_channel(app: App, pki: Pki, *, client_cert: bool) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes() if client_cert else None,
        certificate_chain=pki.client_cert.read_bytes() if client_cert else None,
    )
    return grpc.secure_channel(f"127.0.0.1:{app.port}", credentials)


class TestTls:
    @pytest.fixture
    def tls_app(self, background: BackgroundLoop, upstream: Upstream, pki: Pki) -> Iterator[App]:
        app = start_app(
            background,
            upstream,
            tls_cert_file=str(pki.server_cert),
            tls_key_file=str(pki.server_key),
        )
        yield app
        background.run(app.stop(grace=1))

    @pytest.fixture
    def mtls_app(self, background: BackgroundLoop, upstream: Upstream, pki: Pki) -> Iterator[App]:
        app = start_app(
            background,
            upstream,
            tls_cert_file=str(pki.server_cert),
            tls_key_file=str(pki.server_key),
            tls_client_ca_file=str(pki.ca),
        )
        yield app
        background.run(app.stop(grace=1))

    def test_tls_serves_tls_clients_and_refuses_plaintext(self, tls_app: App, pki: Pki) -> None:
        """With a certificate the server answers over TLS and not in plaintext."""
        with secure_channel(tls_app, pki, client_cert=False) as channel:
            assert Stub(channel).Classify(CLASSIFY, timeout=10).label == "billing"
        with (
            grpc.insecure_channel(f"127.0.0.1:{tls_app.port}") as plain,
            pytest.raises(grpc.RpcError) as caught,
        ):
            Stub(plain).Classify(CLASSIFY, timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

    def test_mtls_requires_a_client_certificate(self, mtls_app: App, pki: Pki) -> None:
        """With a client CA, a caller without a certificate signed by it cannot connect."""
        with secure_channel(mtls_app, pki, client_cert=True) as channel:
            assert Stub(channel).Classify(CLASSIFY, timeout=10).label == "billing"
        with (
            secure_channel(mtls_app, pki, client_cert=False) as channel,
            pytest.raises(grpc.RpcError) as caught,
        ):
            Stub(channel).Classify(CLASSIFY, timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


class TestBearerAuth:
    @pytest.fixture
    def auth_app(
        self, background: BackgroundLoop, upstream: Upstream, tmp_path: Path
    ) -> Iterator[App]:
        tokens = tmp_path / "tokens"
        tokens.write_text("# caller=token\nbilling-service=s3cret-billing\nsearch=s3cret-search\n")
        app = start_app(background, upstream, auth_tokens_file=str(tokens))
        yield app
        background.run(app.stop(grace=1))

    def _call(self, app: App, token: str | None) -> grpc.RpcError | None:
        metadata: Trailers = (("authorization", f"Bearer {token}"),) if token else ()
        with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            try:
                Stub(channel).Classify(CLASSIFY, timeout=10, metadata=metadata)
            except grpc.RpcError as error:
                return error
        return None

    @pytest.mark.parametrize("token", [None, "wrong", "s3cret-billin", "s3cret-billing2"])
    def test_missing_or_wrong_token_is_unauthenticated(
        self, auth_app: App, upstream: Upstream, token: str | None
    ) -> None:
        """No token or a wrong one: UNAUTHENTICATED with ErrorInfo, and no model call."""
        error = self._call(auth_app, token)
        assert error is not None
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        status = rich_status(error)
        assert status is not None
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        assert (info.reason, info.domain) == ("UNAUTHENTICATED", "tiergate")
        assert upstream.requests == []

    def test_valid_token_passes_and_health_needs_none(self, auth_app: App) -> None:
        """A known token is served; the health check answers without one (for probes)."""
        assert self._call(auth_app, "s3cret-search") is None
        with grpc.insecure_channel(f"127.0.0.1:{auth_app.port}") as channel:
            reply = health_check(channel)(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    def test_token_file_parsing(self, tmp_path: Path) -> None:
        """caller=token lines name the caller; bare tokens get a numbered name; empty is refused."""
        path = tmp_path / "tokens"
        path.write_text("ops=abc\n\nxyz\n")
        assert load_tokens(path) == {"abc": "ops", "xyz": "token-3"}
        path.write_text("# nothing\n")
        with pytest.raises(ValueError, match="no tokens"):
            load_tokens(path)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The in-process server's log lines, as JSON."""
    stream = io.StringIO()
    logs.configure(json=True, stream=stream)
    structlog.configure(cache_logger_on_first_use=False)
    yield stream
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def rpc_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in entries if e["event"] == "rpc"]


class TestCallerIdentity:
    def test_the_mtls_subject_is_the_caller(
        self, background: BackgroundLoop, upstream: Upstream, pki: Pki, log_lines: io.StringIO
    ) -> None:
        """With mTLS the client certificate's subject CN is the caller; the name the caller
        claims in its header is only logged beside it."""
        app = start_app(
            background,
            upstream,
            tls_cert_file=str(pki.server_cert),
            tls_key_file=str(pki.server_key),
            tls_client_ca_file=str(pki.ca),
        )
        try:
            with secure_channel(app, pki, client_cert=True) as channel:
                Stub(channel).Classify(
                    CLASSIFY, timeout=10, metadata=(("x-tiergate-caller", "spoofed"),)
                )
        finally:
            background.run(app.stop(grace=1))
        [rpc] = rpc_lines(log_lines)
        assert (rpc["caller"], rpc["claimed_caller"]) == ("billing-service", "spoofed")

    def test_the_tokens_caller_is_the_caller(
        self, background: BackgroundLoop, upstream: Upstream, tmp_path: Path, log_lines: io.StringIO
    ) -> None:
        """With bearer tokens the token's caller name is the caller, whatever the header
        claims; a refused call is counted under one fixed label."""
        tokens = tmp_path / "tokens"
        tokens.write_text("search=s3cret-search\n")
        app = start_app(background, upstream, auth_tokens_file=str(tokens))
        claim = ("x-tiergate-caller", "billing-service")
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                stub = Stub(channel)
                good = (("authorization", "Bearer s3cret-search"), claim)
                stub.Classify(CLASSIFY, timeout=10, metadata=good)
                with pytest.raises(grpc.RpcError):
                    stub.Classify(CLASSIFY, timeout=10, metadata=(claim,))
        finally:
            background.run(app.stop(grace=1))
        served, refused = rpc_lines(log_lines)
        assert (served["caller"], served["claimed_caller"]) == ("search", "billing-service")
        assert (refused["caller"], refused["status"]) == ("unauthenticated", "UNAUTHENTICATED")

    def test_self_named_callers_share_one_metric_label(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """Thirty callers naming themselves differently add one cost series, ``unverified``;
        a caller naming nobody is ``anonymous``."""
        reader = InMemoryMetricReader()
        telemetry = Telemetry(meter_provider=MeterProvider(metric_readers=[reader]))
        app = start_app(background, upstream, telemetry=telemetry)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                stub = Stub(channel)
                for i in range(30):
                    meta = (("x-tiergate-caller", f"team-{i}"),)
                    stub.Classify(CLASSIFY, timeout=10, metadata=meta)
                stub.Classify(CLASSIFY, timeout=10)
        finally:
            background.run(app.stop(grace=1))
        data = reader.get_metrics_data()
        assert data is not None
        callers = {
            dict(point.attributes or {})["tiergate.caller"]
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "tiergate.cost"
            for point in metric.data.data_points
        }
        assert callers == {"unverified", "anonymous"}

    @pytest.mark.parametrize(
        ("claimed", "logged"),
        [
            ("billing-service", "billing-service"),
            ('evil\n{"level": "error"}\u202e', 'evil?{"level": "error"}?'),
            ("x" * 10_000, "x" * MAX_NAME_CHARS),
            (b"caf\xc3\xa9\xff", "caf??"),
        ],
    )
    def test_claimed_names_are_sanitized_and_truncated(
        self, claimed: str | bytes, logged: str
    ) -> None:
        """A claimed name is logged as printable ASCII of bounded length, whatever was sent."""
        assert sanitize(claimed) == logged


class TestNothingSecretInLogs:
    def test_logs_carry_caller_but_never_request_text_or_api_key(self) -> None:
        """A real server process with a key, a self-named caller, a success and failures: its
        log counts the caller as unverified, names the claimed caller beside it, and has the
        costs, never the text, the token or the key."""
        secret_text = "Patient Jane Roe, SSN 078-05-1120, was charged twice."
        processes = Processes()
        try:
            wait_serving(processes.port)
            with grpc.insecure_channel(f"127.0.0.1:{processes.port}") as channel:
                stub = Stub(channel)
                meta = (("x-tiergate-caller", "claims-pipeline"),)
                request = pb.ClassifyRequest(text=secret_text, labels=TICKET_LABELS)
                assert stub.Classify(request, timeout=10, metadata=meta).label
                # Chatter around a bare label is read; an injected answer is not.
                processes.inject(Fault("unauthorized"), Fault("off_schema", count=2))
                for _ in range(2):
                    with pytest.raises(grpc.RpcError) as caught:
                        stub.Classify(request, timeout=10, metadata=meta)
                    assert secret_text not in (caught.value.details() or "")
                with pytest.raises(grpc.RpcError):
                    stub.Classify(pb.ClassifyRequest(text=secret_text), timeout=10)
        finally:
            processes.server.terminate()
            processes.server.wait(timeout=30)
            log = processes.output()
            processes.close()
        entries = [json.loads(line) for line in log.splitlines()]
        rpcs = [e for e in entries if e["event"] == "rpc"]
        assert [e["status"] for e in rpcs] == ["OK", "INTERNAL", "UNAVAILABLE", "INVALID_ARGUMENT"]
        assert {e["caller"] for e in rpcs[:3]} == {"unverified"}
        assert {e["claimed_caller"] for e in rpcs[:3]} == {"claims-pipeline"}
        assert rpcs[3]["caller"] == "anonymous"
        assert rpcs[0]["cost_nanos"] > 0
        for secret in ("Jane Roe", "078-05-1120", "charged twice", "sk-ant-test-key-do-not-log"):
            assert secret not in log
