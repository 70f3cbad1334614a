"""Prove every client against a live server (``make clients-test``).

Starts the emulator of the Messages API and a ``tiergate serve`` pointed at it (so the
conformance cases can inject faults through the emulator's control routes), waits until the
server reports SERVING, then runs the Python, Go, TypeScript and Java clients' tests and
conformance cases one suite after another (the emulator's fault queue is shared), and stops both
processes, also when a suite fails or the run is interrupted. Naming suites runs only those
(``scripts/clients_test.py java``).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2

from tiergate.client import health_check

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 60.0
SUITE_TIMEOUT_S = 600
"""A suite that has not ended by then has hung: it fails instead of holding the run."""
# Maven's downloads (plugins, protoc, protoc-gen-grpc-java, the libraries) stay in .tools, like
# the Go module cache, so a second run is offline and fast.
MAVEN_REPO = ROOT / ".tools" / "m2"

SUITES: dict[str, tuple[list[str], Path]] = {
    "python": (
        [
            sys.executable,
            "-m",
            "pytest",
            "-o",
            "pythonpath=clients/python/tests",
            "clients/python/tests",
        ],
        ROOT,
    ),
    # -count=1: the conformance results depend on the live server, which go test cannot see.
    "go": (["go", "test", "-count=1", "-v", "./..."], ROOT / "clients" / "go"),
    "typescript": (["npm", "test", "--silent"], ROOT / "clients" / "typescript"),
    # The build generates the stubs from protos/ first; -ntp keeps download progress out of logs.
    "java": (
        ["mvn", "-B", "-ntp", f"-Dmaven.repo.local={MAVEN_REPO}", "test"],
        ROOT / "clients" / "java",
    ),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def process(name: str, args: list[str], env: dict[str, str], logs: Path) -> Iterator[Path]:
    """Run ``args`` in the background for the block's duration; its output goes to a log."""
    log = logs / f"{name}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            yield log
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(ready: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, grpc.RpcError):
            pass
        time.sleep(0.2)
    sys.stdout.write(log.read_text(errors="replace")[-4000:])
    raise SystemExit(f"{what} did not become ready within {START_TIMEOUT_S:.0f} s")


def emulator_ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/_emulator/health", timeout=2) as reply:
        return bool(reply.status == 200)


def server_ready(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        reply = health_check(channel)(
            health_pb2.HealthCheckRequest(service="tiergate.v1.TaskService"), timeout=2
        )
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("suites", nargs="*", help=f"of {', '.join(SUITES)} (default: all)")
    chosen = parser.parse_args().suites or list(SUITES)
    unknown = sorted(set(chosen) - set(SUITES))
    if unknown:
        parser.error(f"no suite named {', '.join(unknown)}")
    emulator_port, server_port = free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    target = f"127.0.0.1:{server_port}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TIERGATE_", "ANTHROPIC_"))}
    server_env = {
        **base,
        # Any key makes the server use ANTHROPIC_BASE_URL: our emulator, whose faults we control.
        "ANTHROPIC_API_KEY": "conformance",
        "ANTHROPIC_BASE_URL": emulator_url,
        # The cases count upstream requests: three server attempts per client attempt.
        "TIERGATE_MAX_ATTEMPTS": "3",
        # The batch cases: a store in the scratch folder, polled often.
        "TIERGATE_BATCH_POLL_S": "0.05",
        # Every language repeats the same cases, and each case counts upstream requests: no
        # response cache, so a repeat is a fresh call (caching has its own tests).
        "TIERGATE_RESPONSE_CACHE_TTL_S": "0",
    }
    suite_env = {**base, "TIERGATE_TARGET": target, "TIERGATE_EMULATOR_URL": emulator_url}
    results: dict[str, tuple[int, float]] = {}
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tiergate-clients-")))
        server_env["TIERGATE_BATCH_DIR"] = str(logs / "batches")
        emulator_log = stack.enter_context(
            process(
                "emulator",
                [sys.executable, "-m", "tiergate.emulator", "--port", str(emulator_port)],
                base,
                logs,
            )
        )
        wait_until(lambda: emulator_ready(emulator_url), "the emulator", emulator_log)
        serve = [str(BIN / "tiergate"), "serve", "--host", "127.0.0.1", "--port", str(server_port)]
        server_log = stack.enter_context(process("server", serve, server_env, logs))
        wait_until(lambda: server_ready(target), "the server", server_log)
        print(f"server on {target}, emulator on {emulator_url}", flush=True)
        for name in chosen:
            args, cwd = SUITES[name]
            print(f"\n=== {name} client: tests and conformance", flush=True)
            started = time.monotonic()
            try:
                code = subprocess.run(
                    args, cwd=cwd, env=suite_env, check=False, timeout=SUITE_TIMEOUT_S
                ).returncode
            except subprocess.TimeoutExpired:
                print(f"{name}: no result after {SUITE_TIMEOUT_S} s", flush=True)
                code = 1
            results[name] = (code, time.monotonic() - started)
        if any(code for code, _ in results.values()):
            sys.stdout.write(f"\n--- server log (tail)\n{server_log.read_text()[-4000:]}")
    print("\nclient suites:")
    for name, (code, seconds) in results.items():
        print(f"  {name:<11} {'passed' if code == 0 else 'FAILED'} in {seconds:.1f} s")
    failed = sum(1 for code, _ in results.values() if code)
    print(f"clients: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
