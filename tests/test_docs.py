"""The docs stay true to the code and to each other: docs/configuration.md is what the `Settings`
docstrings make, every setting has its real default there, every link between the docs lands on
a file and heading that exist, and the README stays short."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

import gen_config_doc as gen
from tiergate.config import Settings, env_name

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
README_MAX_LINES = 300
# Variables the service reads through libraries, not through Settings.
LIBRARY_PREFIXES = ("ANTHROPIC_", "OTEL_")
MARKDOWN = MarkdownIt("commonmark").enable("table")


def configuration_rows() -> dict[str, str]:
    """Variable name -> its default cell, from the table of docs/configuration.md."""
    rows: dict[str, str] = {}
    for line in CONFIGURATION.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if not line.startswith("|") or len(cells) != 3 or cells[0] in ("variable", "---|---"):
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


class TestConfigurationPage:
    def test_the_page_is_what_the_settings_docstrings_make(self) -> None:
        """docs/configuration.md is generated: edit Settings, then `make docs`."""
        assert CONFIGURATION.read_text(encoding="utf-8") == gen.render(), (
            "docs/configuration.md is stale: run make docs"
        )

    def test_every_setting_has_a_row_with_its_default(self) -> None:
        """Each Settings field's variable is in the table, stating the code's default."""
        rows = configuration_rows()
        for f in dataclasses.fields(Settings):
            name = env_name(f.name)
            assert name in rows, f"docs/configuration.md lacks {name}"
            assert documented(rows[name]) == rendered(f.default), (
                f"{name}: the page says {rows[name]!r}, the code's default is {f.default!r}"
            )

    def test_no_row_names_a_variable_that_does_not_exist(self) -> None:
        """Every row is a Settings field."""
        known = {env_name(f.name) for f in dataclasses.fields(Settings)}
        rows = configuration_rows()
        assert len(rows) == len(known)
        for name in rows:
            assert name in known or name.startswith(LIBRARY_PREFIXES), f"unknown variable {name}"

    def test_every_field_has_its_docstring_read(self) -> None:
        """The docstring below each field is found, whole and dedented."""
        docs = gen.docstrings(Settings)
        assert set(docs) == {f.name for f in dataclasses.fields(Settings)}
        assert docs["port"] == "gRPC port."
        assert docs["host"].startswith("Interface the gRPC server")
        assert "\n    " not in docs["host"]

    def test_a_field_without_a_docstring_is_not_documented(self) -> None:
        """Only a string right below a field is its docstring."""

        @dataclasses.dataclass
        class Sample:
            documented: int = 1
            """Said."""
            bare: int = 2

        assert gen.docstrings(Sample) == {"documented": "Said."}

    def test_other_settings_are_named_by_their_variables(self) -> None:
        """Field names in a docstring become variables; plain words stay words."""
        fields = {"port", "upstream", "tls_key_file"}
        text = gen.meaning(
            "with ``tls_key_file``, a port; only with upstream=emulator, the upstream batch",
            "TIERGATE_X",
            fields,
        )
        assert text == (
            "with `TIERGATE_TLS_KEY_FILE`, a port; only with `TIERGATE_UPSTREAM=emulator`,"
            " the upstream batch"
        )

    def test_defaults_render_with_their_units(self) -> None:
        """Whole floats drop their point, unset values read unset, sizes and days are spelled."""
        assert gen.default_cell("timeout_s", 60.0) == rendered(60.0) == "`60`"
        assert gen.default_cell("delay_s", 0.5) == rendered(0.5) == "`0.5`"
        assert gen.default_cell("file", None) == gen.default_cell("dir", "") == "unset"
        assert gen.default_cell("pacing", True) == "`true`"
        assert gen.default_cell("max_bytes", 64 * 1024 * 1024) == "`67108864` (64 MiB)"
        assert gen.default_cell("max_bytes", 1500) == "`1500` (1500 bytes)"
        assert gen.default_cell("retention_s", 29 * 24 * 3600.0) == "`2505600` (29 days)"
        assert documented("`0` (off)") == "`0`"
        assert documented("unset (the SDK's default)") == "unset"


# --- links between the docs ------------------------------------------------------------------


def linked_pages() -> list[Path]:
    """Every Markdown page of the project a reader lands on."""
    found = [README, ROOT / "CONTRIBUTING.md", ROOT / "bench" / "README.md"]
    found += sorted((ROOT / "docs").glob("*.md"))
    found += sorted((ROOT / "clients").glob("*/README.md"))
    return [p for p in found if p.exists()]


def _tokens(page: Path) -> list[Token]:
    return MARKDOWN.parse(page.read_text(encoding="utf-8"))


def links(page: Path) -> Iterator[str]:
    """The target of every link of ``page``, code blocks and spans left out."""
    for token in _tokens(page):
        for child in token.children or []:
            if child.type == "link_open":
                yield str(child.attrGet("href"))


def slug(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The fragments of every heading of ``page`` (a repeated heading gets -1, -2, ...)."""
    tokens = _tokens(page)
    found: set[str] = set()
    for opening, inline in itertools.pairwise(tokens):
        if opening.type != "heading_open":
            continue
        text = "".join(
            c.content for c in inline.children or [] if c.type in ("text", "code_inline")
        )
        base, n = slug(text), 0
        name = base
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


class TestLinks:
    @pytest.mark.parametrize("page", linked_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
    def test_every_link_lands(self, page: Path) -> None:
        """A relative link names a file or folder that exists, and its #fragment a heading."""
        for target in links(page):
            if re.match(r"[a-z]+:", target):
                continue  # another site: not checked offline
            path, _, fragment = target.partition("#")
            landing = (page.parent / path).resolve() if path else page
            assert landing.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
            if fragment:
                assert fragment in anchors(landing), (
                    f"{page.relative_to(ROOT)}: {target}: no such heading"
                )

    def test_links_and_anchors_are_read(self) -> None:
        """The reader sees links in prose and tables, and anchors as GitHub writes them."""
        assert "docs/cli.md" in set(links(README))
        assert "#pointing-at-the-real-api" in set(links(README))
        assert "pointing-at-the-real-api" in anchors(README)
        assert slug("`--json`, for scripts") == "--json-for-scripts"
        assert slug("API (resource-oriented, AIP-131/133/136)") == (
            "api-resource-oriented-aip-131133136"
        )


class TestReadme:
    def test_is_short(self) -> None:
        """A newcomer reads the README in minutes; the rest lives in docs/."""
        lines = README.read_text(encoding="utf-8").count("\n")
        assert lines <= README_MAX_LINES, f"README.md has {lines} lines"

    def test_maps_every_doc(self) -> None:
        """The README's documentation map links every page of docs/."""
        linked = set(links(README))
        for page in sorted((ROOT / "docs").glob("*.md")):
            assert f"docs/{page.name}" in linked, f"README.md does not link docs/{page.name}"
