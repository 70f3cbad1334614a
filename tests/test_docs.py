"""The README's configuration table matches `Settings`: every field, its real default, no
variable that does not exist."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from tiergate.config import Settings, env_name

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# Variables the service reads through libraries, not through Settings.
LIBRARY_PREFIXES = ("ANTHROPIC_", "OTEL_")


def configuration_rows() -> dict[str, str]:
    """Variable name -> its default cell, from the table under "## Configuration"."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or cells[0] in ("variable", "---"):
            continue
        for name in re.findall(r"`([A-Z_*]+)`", cells[0]):
            rows[name] = cells[1]
    return rows


def rendered(default: object) -> str:
    """A default as the table writes it: `60` for 60.0, `true` for True, `unset` for None or
    empty text."""
    if default is None or default == "":
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    return f"`{default}`"


def documented(cell: str) -> str:
    """The default a cell states: its first code span, else the word it starts with."""
    code = re.match(r"`[^`]*`", cell)
    return code.group(0) if code else cell.split()[0]


class TestConfigurationTable:
    def test_every_setting_has_a_row_with_its_default(self) -> None:
        """Each Settings field's variable is in the table, stating the code's default."""
        rows = configuration_rows()
        for f in dataclasses.fields(Settings):
            name = env_name(f.name)
            assert name in rows, f"README's configuration table lacks {name}"
            assert documented(rows[name]) == rendered(f.default), (
                f"{name}: README says {rows[name]!r}, the code's default is {f.default!r}"
            )

    def test_no_row_names_a_variable_that_does_not_exist(self) -> None:
        """Every TIERGATE_ row is a Settings field; library variables keep their prefixes."""
        known = {env_name(f.name) for f in dataclasses.fields(Settings)}
        for name in configuration_rows():
            assert name in known or name.startswith(LIBRARY_PREFIXES), f"unknown variable {name}"

    def test_the_table_is_found(self) -> None:
        """The parser reads the table it checks: at least one row per Settings field."""
        assert len(configuration_rows()) >= len(dataclasses.fields(Settings))

    def test_defaults_render_as_the_table_writes_them(self) -> None:
        """Whole floats drop their point, unset values read `unset`, text stays as is."""
        assert rendered(60.0) == "`60`"
        assert rendered(0.5) == "`0.5`"
        assert rendered(None) == rendered("") == "unset"
        assert rendered("5m") == "`5m`"
        assert documented("`0` (off)") == "`0`"
        assert documented("unset (the SDK's default)") == "unset"
