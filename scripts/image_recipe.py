"""Prove the Containerfile's recipe without a container engine.

Replays the stages the final stage needs into one temporary directory that stands in for the
image's filesystem: the same files are copied (honouring .dockerignore) and the same RUN commands
run with the same environment, every container path relocated under the temporary directory.
Then it checks what the final stage left behind (a fresh virtual environment with the service, its
generated code and no installer, readable by any user), starts the ENTRYPOINT with the image's
environment, and passes only when gRPC health answers SERVING, a Classify call succeeds, and
SIGTERM drains the server to exit status 0.

    python scripts/image_recipe.py            # Containerfile at the repository root
    python scripts/image_recipe.py --keep     # leave the replayed filesystem for a look

Only what a Containerfile needs for this recipe is understood (ARG, FROM, ENV, WORKDIR, COPY,
RUN with cache and bind mounts, USER, EXPOSE, ENTRYPOINT); anything else stops the check, so the
recipe cannot drift past what is proven here. RUN commands must name container paths through
ENV variables (``"$VIRTUAL_ENV"``), never as literals, because literals could not be relocated.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Directories of the base image's PATH: the base image is "this machine's Python".
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
# The build's network and TLS configuration, which a container build gets from its builder.
NETWORK_ENV = (
    "HOME",
    "PIP_CERT",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)
# What a final stage must never carry: compilers, system package installs, the dev toolchain.
BUILD_TOOLS = re.compile(r"\b(apt-get|apt|apk|gcc|g\+\+|cc|make|build-essential|clang)\b")
FORBIDDEN_IN_RUNTIME = ("pip", "setuptools", "grpc_tools", "mypy", "pytest", "ruff", "hypothesis")
PINNED_SLIM_PYTHON = re.compile(r"^python:(\d+)\.(\d+)\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")


class RecipeError(Exception):
    """The recipe is not what the image needs, or does not do what it claims."""


@dataclass
class Instruction:
    keyword: str
    text: str
    line: int


@dataclass
class Stage:
    name: str
    image: str
    env: dict[str, str] = field(default_factory=lambda: {"PATH": BASE_PATH})
    workdir: str = "/"
    user: str = "0"
    entrypoint: list[str] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)
    runs: list[Instruction] = field(default_factory=list)


def parse(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    buffer, start = "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, rest = buffer.partition(" ")
        if "<<" in rest and keyword.upper() in ("RUN", "COPY"):
            raise RecipeError(f"line {start}: heredocs are not replayed")
        out.append(Instruction(keyword.upper(), rest.strip(), start))
        buffer = ""
    return out


def expand(text: str, env: dict[str, str]) -> str:
    """Dockerfile-style ``$NAME`` / ``${NAME}`` substitution from ARG and ENV values."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in env:
            raise RecipeError(f"${name} is not defined where it is used")
        return env[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def env_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for token in shlex.split(text):
        name, sep, value = token.partition("=")
        if not sep:
            raise RecipeError(f"ENV {text!r}: use the NAME=value form")
        pairs.append((name, value))
    return pairs


def flags(text: str) -> tuple[dict[str, list[str]], str]:
    """Leading ``--name=value`` options of COPY and RUN, and the rest of the line."""
    found: dict[str, list[str]] = {}
    rest = text
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        name, _, value = option[2:].partition("=")
        found.setdefault(name, []).append(value)
        rest = rest.lstrip()
    return found, rest


class Replay:
    """The container filesystem of every stage, relocated under ``root``."""

    def __init__(self, root: Path, context: Path) -> None:
        self.root = root
        self.context = context
        self.shim = root.parent / "base-bin"
        self.shim.mkdir()
        # The base image's interpreter, under the names the image gives it.
        minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
        for name in ("python", "python3", minor):
            (self.shim / name).symlink_to(sys._base_executable)  # type: ignore[attr-defined]  # CPython's venv base interpreter, not in the stubs
        self.ignore = _ignore_patterns(context / ".dockerignore")

    def host(self, container_path: str) -> Path:
        if container_path == "/usr/local/bin":
            return self.shim
        if container_path in BASE_PATH.split(":") or container_path == "/dev/null":
            return Path(container_path)
        return self.root / container_path.lstrip("/")

    def host_env(self, env: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, value in env.items():
            parts = value.split(":")
            if value.startswith("/") and all(p.startswith("/") for p in parts):
                value = ":".join(str(self.host(p)) for p in parts)
            out[name] = value
        return out

    def copy(self, stage: Stage, text: str, stages: dict[str, Stage]) -> None:
        options, rest = flags(text)
        *sources, dest = shlex.split(expand(rest, stage.env))
        if not sources:
            raise RecipeError(f"COPY {text!r} names no source")
        target = self.host(dest if dest.startswith("/") else f"{stage.workdir}/{dest}")
        if "from" in options:
            if options["from"][0] not in stages:
                raise RecipeError(f"COPY --from={options['from'][0]}: no such stage")
            # Every stage shares this filesystem, so a copy between stages is a copy in place.
            bases = [self.host(s) for s in sources]
        else:
            bases = [self.context / s for s in sources]
        for source in bases:
            if not source.exists():
                raise RecipeError(f"COPY source {source} does not exist")
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True, ignore=self._ignored)
            else:
                into = target / source.name if dest.endswith("/") or len(bases) > 1 else target
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, into)

    def _ignored(self, directory: str, names: list[str]) -> set[str]:
        rel = Path(directory).resolve()
        ignored = set()
        for name in names:
            try:
                path = (rel / name).relative_to(self.context).as_posix()
            except ValueError:
                path = name
            if any(_matches(pattern, path) for pattern in self.ignore):
                ignored.add(name)
        return ignored

    def run(self, stage: Stage, instruction: Instruction) -> None:
        options, command = flags(instruction.text)
        literal = [
            p
            for p in re.findall(r"""(?:^|[\s="'])(/[\w.-][\w./-]*)""", command)
            if p != "/dev/null"
        ]
        if literal:
            raise RecipeError(
                f"line {instruction.line}: RUN names {literal} literally; use an ENV variable"
            )
        links = []
        for mount in options.get("mount", []):
            spec = dict(part.partition("=")[::2] for part in mount.split(","))
            if spec.get("type") == "cache":
                continue  # a cache only saves time; the builder's own cache plays its part here
            if spec.get("type") != "bind" or "from" not in spec:
                raise RecipeError(f"line {instruction.line}: mount {mount!r} is not replayed")
            source, target = self.host(spec["source"]), self.host(spec["target"])
            if not source.exists():
                raise RecipeError(f"line {instruction.line}: {spec['source']} was never built")
            if source != target:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(source)
                links.append(target)
        env = {k: os.environ[k] for k in NETWORK_ENV if k in os.environ}
        env.update(self.host_env(stage.env))
        cwd = self.host(stage.workdir)
        cwd.mkdir(parents=True, exist_ok=True)
        print(f"+ [{stage.name}] RUN {command}", flush=True)
        try:
            # Quiet unless it fails: the installers' progress would drown the test log.
            done = subprocess.run(
                ["/bin/sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
                raise RecipeError(f"line {instruction.line}: RUN failed with {done.returncode}")
        finally:
            for link in links:
                link.unlink()


def _ignore_patterns(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _matches(pattern: str, path: str) -> bool:
    if pattern.startswith("**/"):
        return fnmatch.fnmatch(Path(path).name, pattern[3:])
    return fnmatch.fnmatch(path, pattern.rstrip("/"))


def replay(containerfile: Path, context: Path, root: Path) -> tuple[Replay, Stage]:
    """Run every stage in order; return the final stage with what it configured."""
    fs = Replay(root, context)
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for ins in parse(containerfile):
        if ins.keyword == "ARG":
            name, _, default = ins.text.partition("=")
            (stage.env if stage else global_args)[name.strip()] = default.strip()
        elif ins.keyword == "FROM":
            image, _, name = ins.text.partition(" AS ")
            stage = Stage(
                name=name.strip() or f"stage{len(stages)}", image=expand(image, global_args)
            )
            stages[stage.name] = stage
        elif stage is None:
            raise RecipeError(f"line {ins.line}: {ins.keyword} before FROM")
        elif ins.keyword == "ENV":
            for name, value in env_pairs(ins.text):
                stage.env[name] = expand(value, stage.env)
        elif ins.keyword == "WORKDIR":
            stage.workdir = expand(ins.text, stage.env)
            fs.host(stage.workdir).mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "COPY":
            fs.copy(stage, ins.text, stages)
        elif ins.keyword == "RUN":
            stage.runs.append(ins)
            fs.run(stage, ins)
        elif ins.keyword == "USER":
            stage.user = ins.text
        elif ins.keyword == "EXPOSE":
            stage.exposed = [int(p.split("/")[0]) for p in ins.text.split()]
        elif ins.keyword == "ENTRYPOINT":
            stage.entrypoint = json.loads(ins.text)
        else:
            raise RecipeError(f"line {ins.line}: {ins.keyword} is not replayed")
    if stage is None:
        raise RecipeError("no FROM")
    check_recipe(list(stages.values()))
    return fs, stage


def check_recipe(stages: list[Stage]) -> None:
    """What the image promises: a pinned slim Python, nothing to build with, a non-root user."""
    final = stages[-1]
    for stage in stages:
        match = PINNED_SLIM_PYTHON.match(stage.image)
        if match is None:
            raise RecipeError(f"stage {stage.name}: {stage.image} is not a pinned slim Python")
        if (int(match.group(1)), int(match.group(2))) != sys.version_info[:2]:
            raise RecipeError(f"{stage.image} is not the Python replaying it ({sys.version})")
    if len({s.image for s in stages}) != 1:
        raise RecipeError("every stage must share one base, or the venv's interpreter moves")
    for ins in final.runs:
        if BUILD_TOOLS.search(flags(ins.text)[1]):
            raise RecipeError(f"line {ins.line}: the final stage must not install build tools")
    uid = final.user.split(":")[0]
    if not uid.isdigit() or int(uid) == 0:
        raise RecipeError(f"USER {final.user}: use a numeric non-root uid")
    if final.entrypoint[1:] != ["serve"] or Path(final.entrypoint[0]).name != "tiergate":
        raise RecipeError(f"ENTRYPOINT {final.entrypoint} does not run `tiergate serve`")
    if final.env.get("TIERGATE_HOST") != "0.0.0.0":
        raise RecipeError("the image must listen on all interfaces (TIERGATE_HOST=0.0.0.0)")
    if int(final.env.get("TIERGATE_PORT", "0")) not in final.exposed:
        raise RecipeError("the gRPC port is not EXPOSEd")


def check_environment(fs: Replay, final: Stage) -> Path:
    """The final stage's virtual environment: the service and its generated code, no installer."""
    venv = fs.host(final.env["VIRTUAL_ENV"])
    site = next(venv.glob("lib/python*/site-packages"))
    present = {p.name.split("-")[0].lower() for p in site.iterdir()}
    carried = sorted(present & set(FORBIDDEN_IN_RUNTIME))
    if carried:
        raise RecipeError(f"the runtime environment carries {carried}")
    for part in (
        "tiergate/serving/app.py",
        "tiergate/models.toml",
        "tiergate/v1/task_service_pb2.py",
        # The bedrock and vertex extras: SigV4 from the AWS credential chain (IRSA) and
        # Google's application default credentials (Workload Identity), no keys needed.
        "boto3/session.py",
        "botocore/auth.py",
        "google/auth/compute_engine/credentials.py",
    ):
        if not (site / part).is_file():
            raise RecipeError(f"the runtime environment lacks {part}")
    if (site / "tiergate" / "__init__.py").exists():
        raise RecipeError("tiergate must stay a namespace package")
    # Installed as root, run as uid 10001: everything must be readable by others.
    for path in venv.rglob("*"):
        mode = path.lstat().st_mode
        if not path.is_symlink() and not mode & 0o004:
            raise RecipeError(f"{path} is not readable by the image's non-root user")
    return venv


def start_and_probe(fs: Replay, final: Stage) -> dict[str, float]:
    """Start the ENTRYPOINT with the image's environment; health, one call, SIGTERM, exit 0."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from tiergate.v1 import task_service_pb2 as pb
    from tiergate.v1 import task_service_pb2_grpc

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = fs.host_env(final.env)
    # Only loopback here; the image's 0.0.0.0 is checked above.
    env.update(TIERGATE_HOST="127.0.0.1", TIERGATE_PORT=str(port), HOME=str(fs.root))
    argv = [str(fs.host(final.entrypoint[0])), *final.entrypoint[1:]]
    # Fail closed: without a key for the real API the image refuses to start, in one line.
    refused = subprocess.run(
        argv, env=env, cwd=fs.host(final.workdir), capture_output=True, text=True, timeout=60
    )
    if refused.returncode != 2 or "ANTHROPIC_API_KEY" not in refused.stderr:
        raise RecipeError(f"without a key the image must exit 2, not {refused.returncode}")
    # Then the embedded emulator, chosen explicitly as the dev overlay does.
    env.update(TIERGATE_UPSTREAM="emulator")
    started = time.monotonic()
    server = subprocess.Popen(
        argv,
        env=env,
        cwd=fs.host(final.workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    figures: dict[str, float] = {}
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            _wait_ready(channel, server)
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "tiergate.v1.TaskService"):
                status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                if status.status != health_pb2.HealthCheckResponse.SERVING:
                    raise RecipeError(f"health of {service!r} is {status.status}, not SERVING")
            figures["ready_s"] = time.monotonic() - started
            reply = task_service_pb2_grpc.TaskServiceStub(channel).Classify(
                pb.ClassifyRequest(
                    text="I was charged twice this month",
                    labels=[pb.Label(name="billing"), pb.Label(name="technical")],
                ),
                timeout=30,
            )
            if reply.label not in ("billing", "technical") or reply.usage.cost.total_nanos <= 0:
                raise RecipeError(f"Classify answered {reply}")
        figures["rss_mib"] = _rss_mib(server.pid)
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
    except (grpc.RpcError, RecipeError) as exc:
        server.kill()
        print(server.communicate()[0], file=sys.stderr)
        raise RecipeError(f"the server did not answer: {exc!r}") from exc
    finally:
        if server.poll() is None:
            server.kill()
    output = server.communicate()[0]
    if code != 0:
        print(output, file=sys.stderr)
        raise RecipeError(f"tiergate serve exited {code} after SIGTERM, not 0")
    if '"emulator.started"' not in output and "emulator.started" not in output:
        raise RecipeError("the server did not say it runs on the embedded emulator")
    return figures


def _wait_ready(channel: object, server: subprocess.Popen[str]) -> None:
    """Wait for the port to accept, failing at once if the server process dies first."""
    import grpc

    assert isinstance(channel, grpc.Channel)
    for _ in range(120):
        if server.poll() is not None:
            raise RecipeError(f"tiergate serve exited {server.returncode} before serving")
        try:
            grpc.channel_ready_future(channel).result(timeout=0.5)
            return
        except grpc.FutureTimeoutError:
            continue
    raise RecipeError("tiergate serve did not accept connections within a minute")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containerfile", type=Path, default=REPO / "Containerfile")
    parser.add_argument("--keep", action="store_true", help="keep the replayed filesystem")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tiergate-image-"))
    started = time.monotonic()
    try:
        root = scratch / "rootfs"
        root.mkdir()
        fs, final = replay(args.containerfile, REPO, root)
        check_environment(fs, final)
        figures = start_and_probe(fs, final)
    except RecipeError as exc:
        print(f"image recipe: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"replayed filesystem kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"image recipe: ok in {time.monotonic() - started:.1f}s; serving {figures['ready_s']:.1f}s"
        f" after start, RSS {figures['rss_mib']:.0f} MiB, exit 0 after SIGTERM"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
