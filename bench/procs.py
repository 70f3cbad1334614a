"""The processes under test: the emulator and ``tiergate serve``, each its own OS process.

with EmulatorProcess(fixed_delay_s=2) as upstream:
    with ServerProcess(upstream.url, max_concurrency=10000) as server:
        server.startup_s, server.target, server.peak_rss_mb()
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

import grpc
from grpc_health.v1 import health_pb2

from tiergate.client import health_check

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
# Short reconnect backoff: the default (1 s) would dominate a start-up measured in milliseconds.
_FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 5),
    ("grpc.min_reconnect_backoff_ms", 5),
    ("grpc.max_reconnect_backoff_ms", 20),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def status_kb(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` memory line (``VmHWM``, ``VmRSS``) in KiB; 0 once gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used so far (``/proc/<pid>/stat``)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # The command name may hold spaces; the fields after its closing parenthesis do not.
            fields = stat.read().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Child:
    """A child process stopped with SIGTERM (then SIGKILL) when the ``with`` block ends."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            args,
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._stderr: list[bytes] = []
        # Drain stderr so a chatty process never blocks on a full pipe; keep the tail for errors.
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr = [*self._stderr[-30:], line]

    def stderr_tail(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")

    def cpu_s(self) -> float:
        return cpu_s(self.pid)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            self._reader.join(timeout=5)  # so the error below holds the process's last words
            raise RuntimeError(f"{self.process.args!r} exited:\n{self.stderr_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmulatorProcess(_Child):
    """``python -m tiergate.emulator`` on a free loopback port."""

    def __init__(
        self, fixed_delay_s: float = 0.0, latency: str = "none", latency_scale: float = 1.0
    ) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        args = [sys.executable, "-m", "tiergate.emulator", "--host", LOOPBACK]
        args += ["--port", str(self.port), "--fixed-delay-s", str(fixed_delay_s)]
        args += ["--latency", latency, "--latency-scale", str(latency_scale)]
        super().__init__(args, {})
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 30) -> None:
        until = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/_emulator/health", timeout=1):
                    return
            except OSError:
                if time.monotonic() > until:
                    raise
                time.sleep(0.02)

    def reset(self) -> None:
        """Empty its cache and its log of requests (which would otherwise grow with every call)."""
        reset = urllib.request.Request(f"{self.url}/_emulator/reset", method="POST")
        with urllib.request.urlopen(reset, timeout=10):
            pass


class FloorProcess(_Child):
    """``python -m bench.floor``: gRPC and the SDK call only, the floor of any gateway."""

    def __init__(self, upstream_url: str) -> None:
        self.port = free_port()
        self.target = f"{LOOPBACK}:{self.port}"
        args = [sys.executable, "-m", "bench.floor", "--upstream", upstream_url]
        super().__init__([*args, "--host", LOOPBACK, "--port", str(self.port)], {})
        _wait_listening(self.port, self)


def _wait_listening(port: int, child: _Child, timeout_s: float = 30) -> None:
    until = time.monotonic() + timeout_s
    while True:
        child.check_alive()
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > until:
                raise
            time.sleep(0.02)


class ServerProcess(_Child):
    """``tiergate serve`` on a free loopback port, calling ``upstream_url`` as the real API."""

    def __init__(self, upstream_url: str, **settings: object) -> None:
        self.port = free_port()
        self.target = f"{LOOPBACK}:{self.port}"
        env = {
            "ANTHROPIC_API_KEY": "bench",
            "ANTHROPIC_BASE_URL": upstream_url,
            **{f"TIERGATE_{name.upper()}": str(value) for name, value in settings.items()},
        }
        args = [str(BIN / "tiergate"), "serve", "--host", LOOPBACK, "--port", str(self.port)]
        super().__init__(args, env)
        self.startup_s = self._wait_serving()

    def _wait_serving(self, timeout_s: float = 60) -> float:
        """Seconds from spawning the process to its health check answering SERVING."""
        until = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.target, options=_FAST_RECONNECT) as channel:
            health = health_check(channel)
            while True:
                self.check_alive()
                try:
                    reply = health(
                        health_pb2.HealthCheckRequest(service=""), timeout=0.25, wait_for_ready=True
                    )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.perf_counter() - self.started
                except grpc.RpcError:
                    if time.monotonic() > until:
                        raise
                time.sleep(0.002)

    def peak_rss_mb(self) -> float:
        """The process's resident-set high-water mark so far."""
        return status_kb(self.pid, "VmHWM") / 1024

    def rss_mb(self) -> float:
        return status_kb(self.pid, "VmRSS") / 1024
