"""Mutation testing: break the modules under test one small change at a time, see what survives.

    python scripts/mutate.py                        # every module in [tool.mutmut] only_mutate
    python scripts/mutate.py 'tiergate.ledger.*'    # only mutants whose name matches
    python scripts/mutate.py --again                # re-test what the last run did not kill
    python scripts/mutate.py --again 'tiergate.ledger.*'   # ... of those, only these

The modules and the test selection are ``[tool.mutmut]`` in pyproject.toml. mutmut finds
sources under ``src/``, so the run happens in ``build/mutate/`` where ``src`` is ``server/``;
paths in ``only_mutate`` are relative to it. Every run starts from a fresh copy, so no stale
mutant or result survives an edit. The run ends with the score and the diff of every surviving
mutant (and of every mutant no selected test reaches). ``--again`` keeps the last run and
re-tests only its survivors against the current tests: the quick loop while writing tests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "build" / "mutate"
MUTMUT = [sys.executable, "-m", "mutmut"]
# Detected: a test failed, or the tests ran out of CPU time (a mutant that loops or re-asks
# without end). Everything else needs a test, or a reason to be accepted.
DETECTED = ("killed", "caught by type check", "timeout")
_SHOW_ALL = """
import sys
from mutmut.__main__ import show
for name in sys.argv[1:]:
    show.callback(name)
    print()
"""


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _stage_pyproject() -> str:
    """The two sections the run needs, copied from the project's own pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lines = []
    for section in ("mutmut", "pytest.ini_options"):
        table = project["tool"]
        for key in section.split("."):
            table = table[key]
        if section == "mutmut":
            # Fastest tests first (scripts/mutate_order.py, importable: see ``run``).
            table = {
                **table,
                "pytest_add_cli_args": [*table["pytest_add_cli_args"], "-p", "mutate_order"],
            }
        lines.append(f"[tool.{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
        lines.append("")
    return "\n".join(lines)


def stage() -> None:
    """A fresh ``build/mutate/``: ``src``, ``tests`` and ``clients`` point at the project's own."""
    shutil.rmtree(STAGE, ignore_errors=True)
    STAGE.mkdir(parents=True)
    (STAGE / "src").symlink_to(ROOT / "server", target_is_directory=True)
    (STAGE / "tests").symlink_to(ROOT / "tests", target_is_directory=True)
    # The tests run in ``mutants/``; the contract test reads the clients' sources and cases
    # from the folder above its own, which mutmut does not copy.
    (STAGE / "mutants").mkdir()
    (STAGE / "mutants" / "clients").symlink_to(ROOT / "clients", target_is_directory=True)
    (STAGE / "pyproject.toml").write_text(_stage_pyproject())


def statuses() -> dict[str, str]:
    """Every mutant's outcome, by mutant name."""
    listed = subprocess.run(
        [*MUTMUT, "results", "--all", "true"],
        cwd=STAGE,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = (re.match(r"\s*(\S+): (.+)$", line) for line in listed.splitlines())
    return {m[1]: m[2].strip() for m in found if m}


def report(outcomes: dict[str, str]) -> int:
    """Print the score and every mutant not killed; the number of those."""
    counts = Counter(outcomes.values())
    killed = sum(counts[status] for status in DETECTED)
    total = len(outcomes)
    unkilled = sorted(name for name, status in outcomes.items() if status not in DETECTED)
    # One process shows every diff: a `mutmut show` each would start Python once per mutant.
    subprocess.run([sys.executable, "-c", _SHOW_ALL, *unkilled], cwd=STAGE, check=False)
    score = 100 * killed / total if total else 0.0
    print(f"\nmutation score: {killed}/{total} killed ({score:.1f}%)")
    for status, n in sorted(counts.items()):
        print(f"  {status}: {n}")
    by_module: dict[str, Counter[bool]] = {}
    for name, status in outcomes.items():
        module = name.rsplit(".x", 1)[0]
        by_module.setdefault(module, Counter())[status in DETECTED] += 1
    for module, tally in sorted(by_module.items()):
        print(f"  {module}: {tally[True]}/{tally[True] + tally[False]} killed")
    return len(unkilled)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutants", nargs="*", help="mutant name patterns, e.g. 'tiergate.ledger.*'")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--again", action="store_true", help="re-test the last run's survivors")
    args = parser.parse_args()
    mutants = list(args.mutants)
    patterns = [re.compile(re.escape(p).replace(r"\*", ".*")) for p in args.mutants]
    if args.again:
        # Only what the last run tested and did not kill (narrowed by the patterns, if any).
        mutants = [
            name
            for name, status in statuses().items()
            if status not in (*DETECTED, "not checked")
            and (not patterns or any(p.fullmatch(name) for p in patterns))
        ]
        if not mutants:
            print("nothing to re-test: the last run left no survivor here")
            return 0
        (STAGE / "pyproject.toml").write_text(_stage_pyproject())
        # Which tests reach which function is measured again, with the tests as they are now.
        (STAGE / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    else:
        stage()
    run = [*MUTMUT, "run", "--max-children", str(args.max_children), *mutants]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT / "scripts"), os.environ.get("PYTHONPATH")])
        ),
    }
    # mutmut's exit code says nothing about the score; the report below does.
    subprocess.run(run, cwd=STAGE, env=env, check=False)
    outcomes = statuses()
    if args.again:
        outcomes = {k: v for k, v in outcomes.items() if k in set(mutants)}
    elif patterns:
        outcomes = {k: v for k, v in outcomes.items() if any(p.fullmatch(k) for p in patterns)}
    report(outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
