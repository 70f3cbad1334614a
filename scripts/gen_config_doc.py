"""Write ``docs/configuration.md`` from the ``Settings`` dataclass (``make docs``), or check it.

Every setting is a field of :class:`tiergate.config.Settings` with its docstring right below it;
this script reads those docstrings from the source (attribute docstrings are not kept at run
time) and the defaults from the dataclass, and renders one table row per field, in declaration
order. ``--check`` renders into memory and fails when the committed file differs, so the page
cannot drift from the code (``tests/test_docs.py`` runs the same check).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import re
import sys
import textwrap
from pathlib import Path

from tiergate import config

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "configuration.md"

HEADER = """\
# Configuration

<!-- Generated from the Settings docstrings in server/tiergate/config.py by `make docs`;
edit those, not this file. -->

`tiergate serve` reads its settings from environment variables at start-up. Each one is also a
flag of `tiergate serve`, the variable's name without `TIERGATE_`, in lower case with dashes
(`TIERGATE_FAST_MODEL` is `--fast-model`); flags win. Secrets (`ANTHROPIC_API_KEY`,
`TIERGATE_REDIS_URL`) have no flag, so they never show in a process listing. `tiergate serve
--help` lists the flags. A value the service cannot use stops it at start-up with one line
naming the setting.

`make run` sets `TIERGATE_HOST=127.0.0.1` and `TIERGATE_UPSTREAM=emulator`; everything else
keeps the defaults below.

| variable | default | meaning |
|---|---|---|
"""

FOOTER = """
The service also reads the OpenTelemetry SDK's standard `OTEL_*` variables (export endpoint,
sampling, resource); export is off until an endpoint is set. [observability.md](observability.md)
lists the ones that matter.
"""

_KIB = 1024
_DAY = 24 * 3600


def docstrings(cls: type) -> dict[str, str]:
    """Field name -> the string literal right below its annotation in ``cls``'s source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = next(node for node in tree.body if isinstance(node, ast.ClassDef)).body
    found: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[node.target.id] = inspect.cleandoc(following.value.value)
    return found


def default_cell(name: str, default: object) -> str:
    """A default as a reader wants it: `60` for 60.0, `true` for True, unset for None or empty
    text, and sizes and long durations also in their unit."""
    if default is None or default == "":
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    cell = f"`{default}`"
    if isinstance(default, int) and name.endswith("_bytes") and default >= _KIB:
        cell += f" ({_size(default)})"
    if isinstance(default, int) and name.endswith("_s") and default >= _DAY:
        days = default / _DAY
        cell += f" ({days:g} days)"
    return cell


def _size(n: int) -> str:
    for unit, scale in (("GiB", _KIB**3), ("MiB", _KIB**2), ("KiB", _KIB)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


def meaning(doc: str, variable: str, fields: set[str]) -> str:
    """A docstring as one table cell: one line, Markdown code spans, other settings named by
    their variables."""
    text = " ".join(doc.split())
    if text.startswith(f"{variable}: "):
        text = text.removeprefix(f"{variable}: ")
        text = text[0].upper() + text[1:]
    text = text.replace("``", "`")
    # Field names with an underscore are unambiguous, and so is `upstream=emulator`; plain
    # words (port, upstream) stay words.
    names = sorted(fields, key=len, reverse=True)
    pattern = re.compile(r"`?\b(" + "|".join(map(re.escape, names)) + r")\b(=\w+)?`?")

    def variable_of(m: re.Match[str]) -> str:
        name, value = m.group(1), m.group(2) or ""
        if "_" not in name and not value:
            return m.group(0)
        return f"`{config.env_name(name)}{value}`"

    return pattern.sub(variable_of, text).replace("|", "\\|")


def render() -> str:
    """The whole page."""
    docs = docstrings(config.Settings)
    fields = dataclasses.fields(config.Settings)
    missing = [f.name for f in fields if f.name not in docs]
    if missing:
        raise SystemExit(f"Settings fields without a docstring: {', '.join(missing)}")
    names = {f.name for f in fields}
    rows = []
    for f in fields:
        variable = config.env_name(f.name)
        rows.append(
            f"| `{variable}` | {default_cell(f.name, f.default)} |"
            f" {meaning(docs[f.name], variable, names)} |"
        )
    return HEADER + "\n".join(rows) + "\n" + FOOTER


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args()
    text = render()
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
    if args.check:
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run make docs", file=sys.stderr)
            return 1
        return 0
    if current != text:
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
