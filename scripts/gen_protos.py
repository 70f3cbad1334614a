"""Regenerate the committed Python code for the protos (``make proto``), or check it is fresh.

Writes ``*_pb2.py``, ``*_pb2.pyi`` (mypy-protobuf) and ``*_pb2_grpc.py`` for every file under
``protos/`` into ``clients/python/src``, the home of the ``tiergate.v1`` package that both the
client library and the server import. ``--check`` generates into a scratch folder and fails
when the committed files differ.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "clients" / "python" / "src"
GENERATED = Path("tiergate") / "v1"


def generate(out: Path) -> None:
    # protoc finds the mypy-protobuf plugins on PATH; they live beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    package = out / GENERATED
    if package.exists():
        shutil.rmtree(package)
    package.mkdir(parents=True)
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"-I{ROOT / 'third_party'}",
        f"--python_out={out}",
        f"--mypy_out=quiet:{out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out=quiet:{out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (package / "__init__.py").write_text('"""Generated from protos/tiergate/v1 by make proto."""\n')


def stale(committed: Path, fresh: Path, pattern: str = "**/*") -> list[str]:
    """Files matching ``pattern`` that differ, are missing or are extra in ``committed``
    compared with ``fresh`` (also used by ``gen_clients.py``)."""
    names = {p.relative_to(committed) for p in committed.glob(pattern) if p.is_file()}
    names |= {p.relative_to(fresh) for p in fresh.glob(pattern) if p.is_file()}
    return sorted(
        str(n)
        for n in names
        if not (committed / n).exists()
        or not (fresh / n).exists()
        or not filecmp.cmp(committed / n, fresh / n, shallow=False)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    if not parser.parse_args().check:
        generate(OUT)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        generate(Path(scratch))
        # Only the generated sources: a committed tree may hold __pycache__ beside them.
        different = stale(OUT / GENERATED, Path(scratch) / GENERATED, pattern="*.py*")
    if different:
        print(f"generated Python code is stale (run make proto): {', '.join(different)}")
        return 1
    print("generated Python code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
