"""Regenerate the committed Go and TypeScript code for the protos (``make proto``), or check it.

Runs ``buf generate`` with local plugins only: ``buf.gen.go.yaml`` (protoc-gen-go and
protoc-gen-go-grpc, installed into ``.tools/bin``) writes ``clients/go/gen``; ``buf.gen.ts.yaml``
(the TypeScript client's own protoc-gen-es) writes ``clients/typescript/src/gen``, once for
``protos/`` and once for ``google/rpc/{status,error_details}.proto``, which the TypeScript client
needs to decode rich error details. Those two files come from the pinned
``googleapis-common-protos`` package, so no schema registry is involved. ``--check`` generates
into a scratch folder and fails when the committed files differ.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import google.rpc
from gen_protos import stale  # the same staleness rule for every language

ROOT = Path(__file__).resolve().parent.parent
BUF = ROOT / ".tools" / "node_modules" / ".bin" / "buf"
GENERATED = (Path("clients/go/gen"), Path("clients/typescript/src/gen"))
RPC_PROTOS = ("status.proto", "error_details.proto")


def buf_generate(template: str, out: Path, source: Path | None = None) -> None:
    # buf finds the Go plugins on PATH; the TypeScript plugin is named by path in its template.
    env = {**os.environ, "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    args = [str(BUF), "generate", *([str(source)] if source else []), "--template", template]
    subprocess.run([*args, "--output", str(out)], cwd=ROOT, env=env, check=True)


def generate(out: Path) -> None:
    for folder in GENERATED:
        if (out / folder).exists():
            shutil.rmtree(out / folder)
    buf_generate("buf.gen.go.yaml", out)
    buf_generate("buf.gen.ts.yaml", out)
    with tempfile.TemporaryDirectory() as scratch:
        rpc = Path(scratch) / "google" / "rpc"
        rpc.mkdir(parents=True)
        installed = Path(next(iter(google.rpc.__path__)))
        for name in RPC_PROTOS:
            shutil.copyfile(installed / name, rpc / name)
        buf_generate("buf.gen.ts.yaml", out, source=Path(scratch))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    if not parser.parse_args().check:
        generate(ROOT)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        generate(Path(scratch))
        different = [
            str(folder / name)
            for folder in GENERATED
            for name in stale(ROOT / folder, Path(scratch) / folder)
        ]
    if different:
        print(f"generated Go/TypeScript code is stale (run make proto): {', '.join(different)}")
        return 1
    print("generated Go and TypeScript code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
