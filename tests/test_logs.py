"""One log stream: every library's lines as JSON through structlog, and an unreachable
collector costs one warning and never holds the process past its drain grace."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import structlog
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext

from harness import free_port, wait_serving
from samples import CLASSIFY
from tiergate import logs
from tiergate.v1 import task_service_pb2_grpc


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    logs.configure(json=True, stream=out)
    structlog.configure(cache_logger_on_first_use=False)
    yield out
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


class TestOneStream:
    @pytest.mark.parametrize(
        "name", ["grpc._cython.cygrpc", "aiohttp.server", "asyncio", "tiergate.emulator.app"]
    )
    def test_library_lines_are_json_with_level_and_logger(
        self, stream: io.StringIO, name: str
    ) -> None:
        """A standard-library log line of any library is one JSON object with its level and
        logger name, beside our own lines."""
        logging.getLogger(name).warning("something %s happened", "odd")
        structlog.get_logger("tiergate").info("ours", n=1)
        theirs, ours = lines(stream)
        assert theirs["event"] == "something odd happened"
        assert (theirs["level"], theirs["logger"]) == ("warning", name)
        assert (ours["event"], ours["level"], ours["logger"], ours["n"]) == (
            "ours",
            "info",
            "tiergate",
            1,
        )

    def test_a_traceback_stays_on_one_line(self, stream: io.StringIO) -> None:
        """A library's logged exception is one JSON line with the traceback as a field."""
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("asyncio").exception("Task exception was never retrieved")
        [error] = lines(stream)
        assert error["level"] == "error"
        assert "ValueError: boom" in error["exception"]

    def test_python_warnings_are_log_lines(self) -> None:
        """A Python warning is a JSON line of logger ``py.warnings`` on stdout, not text on
        stderr (run in a process of its own: pytest captures warnings itself)."""
        program = (
            "import warnings; from tiergate import logs; logs.configure(json=True);"
            " warnings.warn('deprecated thing', UserWarning, stacklevel=1)"
        )
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
        )
        [warned] = [json.loads(line) for line in done.stdout.splitlines()]
        assert (warned["logger"], warned["level"]) == ("py.warnings", "warning")
        assert "deprecated thing" in warned["event"]
        assert done.stderr == ""

    def test_per_request_http_lines_are_left_out(self, stream: io.StringIO) -> None:
        """The HTTP clients' per-request info lines would double every rpc line: dropped,
        their warnings kept."""
        logging.getLogger("httpx2").info("HTTP Request: POST ...")
        logging.getLogger("httpx2").warning("connection reset")
        [kept] = lines(stream)
        assert kept["event"] == "connection reset"

    def test_exporter_repeats_are_counted_not_logged(self, stream: io.StringIO) -> None:
        """Of a stream of exporter warnings one line is logged; the rest are counted."""
        exporter = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")
        for _ in range(50):
            exporter.warning("Transient error, retrying")
        assert len(lines(stream)) == 1

    def test_the_quiet_filter_reports_how_many_it_dropped(self) -> None:
        """After the interval, the next line carries the count of the lines dropped."""
        quiet = logs.OncePerInterval(("opentelemetry",), interval_s=0.0)
        record = logging.LogRecord("opentelemetry.x", logging.WARNING, "", 0, "m", None, None)
        assert quiet.filter(record)
        loud = logs.OncePerInterval(("opentelemetry",), interval_s=3600)
        assert loud.filter(record)
        assert not loud.filter(record)
        assert not loud.filter(record)
        other = logging.LogRecord("grpc", logging.WARNING, "", 0, "m", None, None)
        assert loud.filter(other)

    def test_our_cached_loggers_follow_the_last_configuration(self) -> None:
        """Our loggers render straight to the stream, not through the standard library; a
        logger cached on first use still writes to the stream configured last, as a standard
        library logger would."""
        first, second = io.StringIO(), io.StringIO()
        try:
            logs.configure(json=True, stream=first)
            ours = structlog.get_logger("tiergate.rpc")
            ours.info("before")
            logs.configure(json=True, stream=second)
            records: list[logging.LogRecord] = []

            def spy(record: logging.LogRecord) -> bool:
                records.append(record)
                return True

            logging.getLogger().handlers[0].addFilter(spy)
            ours.info("after")
        finally:
            structlog.reset_defaults()
            logging.getLogger().handlers.clear()
        assert [line["event"] for line in lines(first)] == ["before"]
        [after] = lines(second)
        assert (after["event"], after["logger"], after["level"]) == (
            "after",
            "tiergate.rpc",
            "info",
        )
        assert records == []  # no standard-library record was made for it

    def test_an_unrecorded_span_still_gives_its_trace_ids(self, stream: io.StringIO) -> None:
        """Without an exporter spans are not recorded; a line logged inside one still carries
        its trace and span ids, so lines of one RPC can be found together."""
        context = SpanContext(
            trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7, is_remote=False
        )
        with trace.use_span(NonRecordingSpan(context)):
            structlog.get_logger("tiergate").info("inside")
        structlog.get_logger("tiergate").info("outside")
        inside, outside = lines(stream)
        assert inside["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert inside["span_id"] == "00f067aa0ba902b7"
        assert "trace_id" not in outside

    def test_configuring_twice_writes_each_line_once(self, stream: io.StringIO) -> None:
        """Configuring again replaces the root handler: no line is written twice."""
        logs.configure(json=True, stream=stream)
        structlog.configure(cache_logger_on_first_use=False)
        logging.getLogger("grpc").warning("once")
        assert len(lines(stream)) == 1


class TestUnreachableCollector:
    def test_one_warning_and_a_clean_exit_within_the_grace(self) -> None:
        """OTLP to a closed port on loopback: the server serves, logs at most one exporter
        warning, and on SIGTERM exits 0 with every line JSON, ``stopped`` last."""
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ANTHROPIC_", "OTEL_", "TIERGATE_"))
        }
        env.update(
            TIERGATE_UPSTREAM="emulator",
            TIERGATE_HOST="127.0.0.1",
            TIERGATE_PORT=str(port),
            TIERGATE_DRAIN_GRACE_S="2",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_METRIC_EXPORT_INTERVAL="200",
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "tiergate.cli", "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_serving(port)
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = task_service_pb2_grpc.TaskServiceStub(channel)
                for _ in range(5):
                    assert stub.Classify(CLASSIFY, timeout=10).label
            time.sleep(1)  # several export rounds fail meanwhile
            server.send_signal(signal.SIGTERM)
            out, err = server.communicate(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        assert server.returncode == 0, err
        entries = [json.loads(line) for line in out.splitlines()]
        assert all({"level", "logger", "event"} <= set(e) for e in entries)
        exporter = [e for e in entries if e["logger"].startswith("opentelemetry")]
        assert len(exporter) <= 1
        assert entries[-1]["event"] == "stopped"
        assert err.strip() == ""
