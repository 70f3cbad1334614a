"""The formats a caller's schema may name, checked without backtracking; in process, over
hand-written values at each format's edges."""

from __future__ import annotations

import pytest

from tiergate.schema import patterns
from tiergate.schema.patterns import FORMAT_CHECKER, PatternError, is_simple

CASES: dict[str, tuple[list[str], list[str]]] = {
    # format: (conforming, not conforming)
    "date": (["2024-02-29", "2026-12-31"], ["2026-02-29", "2026-1-01", "2026-13-01", "x"]),
    "date-time": (
        ["2024-02-29T10:00:00Z", "2026-01-01 10:00:00.5+01:00", "2026-01-01t10:00:00z"],
        ["2026-02-30T10:00:00Z", "2026-01-01T10:00:00", "2026-01-01"],
    ),
    "time": (["10:00:00Z", "23:59:59.9-05:00"], ["10:00", "10:00:00"]),
    "duration": (["P1W", "P1Y2M3D", "PT1.5S", "P1DT2H"], ["P", "PT", "P1DT", "1D", "P1.5D"]),
    "email": (["a@b", "first.last@example.com"], ["a b@c", "a@@b", "ab"]),
    "uri": (["https://example.com/a?b", "urn:isbn:1"], ["example.com", "1a:b", "a: b"]),
    "uri-reference": (["/a/b", ""], ["a b"]),
    "uri-template": (["/users/{id}", "/a"], ["/users/{id", "/{}"]),
    "uuid": (["123e4567-e89b-12d3-a456-426614174000"], ["123e4567e89b12d3a456426614174000"]),
    "json-pointer": (["", "/a/0", "/a~1b"], ["a", "/a~2"]),
    "relative-json-pointer": (["0", "1/a", "2#"], ["-1", "01", "/a"]),
    "hostname": (
        ["example.com", "a-b.c.", "x", "X", "a" * 63 + ".com"],
        ["", "-a.com", "a-.com", "a..b", "a" * 64 + ".com", "a_b.com", ("a" * 63 + ".") * 4],
    ),
    "idn-hostname": (
        ["bücher.de", "例え.jp", "a.b", "ü" * 63 + ".de"],
        ["", "a b.de", "a..b", "ü" * 64 + ".de"],
    ),
    "ipv4": (["192.0.2.1"], ["::1", "256.0.0.1", "x"]),
    "ipv6": (["::1", "2001:db8::1"], ["192.0.2.1", "x"]),
    "regex": (["^a+$", "[a-z]{2,}"], ["(?=a)", "(a", "\\1(a)"]),
}


def _cases(index: int) -> list[tuple[str, str]]:
    return [(name, value) for name, pair in CASES.items() for value in pair[index]]


class TestFormats:
    @pytest.mark.parametrize(("name", "value"), _cases(0))
    def test_conforming_text_passes(self, name: str, value: str) -> None:
        """A value at the edge of what the format allows passes."""
        assert FORMAT_CHECKER.conforms(value, name)

    @pytest.mark.parametrize(("name", "value"), _cases(1))
    def test_non_conforming_text_fails(self, name: str, value: str) -> None:
        """A value just past the format's rules fails (a date that does not exist, a label
        of 64 characters, a duration with no amount, a pattern RE2 refuses)."""
        assert not FORMAT_CHECKER.conforms(value, name)

    @pytest.mark.parametrize("name", list(CASES))
    def test_formats_constrain_strings_only(self, name: str) -> None:
        """A number, a list or null is no string: every format lets it pass."""
        others: tuple[object, ...] = (3, [], None)
        assert all(FORMAT_CHECKER.conforms(value, name) for value in others)

    def test_a_long_hostname_is_refused_by_its_total_length(self) -> None:
        """253 characters at most, however short each label."""
        assert FORMAT_CHECKER.conforms("a." * 126 + "a", "hostname")
        assert not FORMAT_CHECKER.conforms("a." * 127, "hostname")


class TestSimplePatterns:
    @pytest.mark.parametrize(
        ("pattern", "simple"),
        [("^[a-z]+$", True), ("\\bword", False), ("a\\B", False), ("a" * 1000, True)],
    )
    def test_structured_outputs_take_re2_without_word_boundaries(
        self, pattern: str, simple: bool
    ) -> None:
        """Word boundaries and patterns over 1,000 characters stay out of the wire schema."""
        assert is_simple(pattern) is simple
        assert is_simple(pattern + "a") is (simple and len(pattern) < 1000)


class TestRe2Bounds:
    def test_a_pattern_past_the_memory_bound_is_refused(self) -> None:
        """RE2's default budget would take twenty Unicode-class runs; ours (256 KiB a
        pattern) refuses them, so 256 cached patterns stay within 64 MiB."""
        with pytest.raises(PatternError):
            patterns._compile("\\pL{20}" * 20)
        assert patterns._compile("[a-z]{20}").search("a" * 20) is not None

    def test_a_refused_pattern_writes_nothing_to_stderr(
        self, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """A caller's bad pattern is refused quietly: RE2's own error log stays off."""
        with pytest.raises(PatternError):
            patterns._compile("(?=a)")
        assert capfd.readouterr().err == ""
