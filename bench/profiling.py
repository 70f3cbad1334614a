"""Where the server spends its time under load: py-spy samples the running process.

py-spy attaches from outside (ptrace), so the server runs unmodified; ``--nonblocking`` keeps
it from pausing the process while sampling. The result is summarised by function: self time
(the frame on top of the stack) and inclusive time (anywhere on the stack).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PY_SPY = Path(sys.executable).parent / "py-spy"


def available() -> bool:
    return PY_SPY.exists() or shutil.which("py-spy") is not None


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Sample ``pid`` for ``seconds`` into ``out`` (collapsed stacks, one per line)."""
    exe = str(PY_SPY) if PY_SPY.exists() else "py-spy"
    args = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    args += ["--rate", "250", "--format", "raw", "--function", "--nonblocking"]
    args += ["--output", str(out)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def summarise(collapsed: Path, top: int = 15) -> dict[str, Any]:
    """Top functions by self and by inclusive share of the samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": name, "pct": round(100 * n / total, 1)}
            for name, n in counter.most_common(top)
        ]

    return {"samples": total, "self": share(own), "inclusive": share(inclusive)}


def _short(frame: str) -> str:
    """``fn (/long/path/site-packages/pkg/mod.py:12)`` -> ``fn (pkg/mod.py:12)``."""
    name, _, where = frame.partition(" (")
    if not where:
        return frame
    path = where.rstrip(")")
    for marker in ("site-packages/", "/server/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"
