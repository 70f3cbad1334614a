"""Caller regular expressions and formats, evaluated in linear time.

Every pattern a caller writes (``pattern``, the keys of ``patternProperties``) runs on RE2,
which has no backtracking: ``^(a+)+$`` against 50,000 characters takes microseconds, where
Python's ``re`` takes longer than the age of the universe. The validators built here replace
jsonschema's ``re``-based keywords with RE2 ones, check formats without backtracking, and
resolve ``$ref`` only inside the document: a remote reference is refused, never fetched.

    >>> validator = output_validator({"type": "string", "pattern": "^(a+)+$"})
    >>> validator.is_valid("a" * 50_000 + "b")
    False
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import re2
import referencing
import referencing.exceptions
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

# RE2 bounds its own memory per expression (compiled program and DFA cache); past it a
# pattern is refused at compile time, or matching falls back to the linear NFA. With the
# cache's 256 patterns that bounds compiled patterns to 64 MiB.
_RE2_MAX_MEM = 256 * 1024


class PatternError(ValueError):
    """A pattern RE2 cannot compile (lookaround, backreferences, or too large)."""


@functools.lru_cache(maxsize=256)
def compiled(pattern: str) -> Any:
    """``pattern`` compiled by RE2 (cached); :class:`PatternError` when RE2 cannot take it."""
    return _compile(pattern)


def _compile(pattern: str) -> Any:
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise PatternError(str(exc)) from None
    except (TypeError, ValueError) as exc:  # e.g. NUL bytes in the pattern
        raise PatternError(str(exc)) from None


def is_simple(pattern: str) -> bool:
    """Whether structured outputs take ``pattern``: RE2 syntax, no word boundaries."""
    # RE2 already refuses lookaround and backreferences; it accepts \b and \B.
    return "\\b" not in pattern and "\\B" not in pattern and len(pattern) <= 1000


def _search(pattern: str, text: str) -> bool:
    return compiled(pattern).search(text) is not None


# -- jsonschema keywords on RE2 ------------------------------------------------------------


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError("does not match the pattern")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in declared and not any(_search(p, key) for p in patterns)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        yield ValidationError("has properties the schema does not allow")


_RE2_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}

# -- formats, without backtracking ----------------------------------------------------------

_FORMAT_PATTERNS = {
    "date-time": r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
    "time": r"^\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
    "duration": r"^P(\d+W|(\d+Y)?(\d+M)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?)$",
    "email": r"^[^@\s]+@[^@\s]+$",
    "idn-email": r"^[^@\s]+@[^@\s]+$",
    "uri": r"^[A-Za-z][A-Za-z0-9+.\-]*:\S*$",
    "iri": r"^[A-Za-z][A-Za-z0-9+.\-]*:\S*$",
    "uri-reference": r"^\S*$",
    "iri-reference": r"^\S*$",
    "uri-template": r"^[^\s{}]*(\{[^\s{}]+\}[^\s{}]*)*$",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "json-pointer": r"^(/([^~/]|~[01])*)*$",
    "relative-json-pointer": r"^(0|[1-9][0-9]*)(#|(/([^~/]|~[01])*)*)$",
}
_HOSTNAME_LABEL = r"^[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?$"


def _shaped(fmt: str, text: str) -> bool:
    return _search(_FORMAT_PATTERNS[fmt], text)


def _date(text: str) -> bool:
    if not _search(r"^\d{4}-\d{2}-\d{2}$", text):
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _date_time(text: str) -> bool:
    return _shaped("date-time", text) and _date(text[:10])


def _duration(text: str) -> bool:
    return _shaped("duration", text) and text != "P" and not text.endswith("T")


def _hostname(text: str, *, idn: bool = False) -> bool:
    if not text or len(text) > 253:
        return False
    labels = text.rstrip(".").split(".")
    if idn:
        return all(0 < len(label) <= 63 and not _search(r"\s", label) for label in labels)
    return all(_search(_HOSTNAME_LABEL, label) for label in labels)


def _ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def _regex(text: str) -> bool:
    try:
        _compile(text)  # the model's text: checked, not cached
    except PatternError:
        return False
    return True


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())
    plain = {name: functools.partial(_shaped, name) for name in _FORMAT_PATTERNS}
    checks = {
        **plain,
        "date": _date,
        "date-time": _date_time,
        "duration": _duration,
        "hostname": _hostname,
        "idn-hostname": functools.partial(_hostname, idn=True),
        "ipv4": functools.partial(_ip, version=4),
        "ipv6": functools.partial(_ip, version=6),
        "regex": _regex,
    }
    for name, check in checks.items():
        # Formats constrain strings only; other types pass, as the specification says.
        checker.checks(name)(lambda value, check=check: not isinstance(value, str) or check(value))
    return checker


FORMAT_CHECKER = _format_checker()


# -- references: inside the document only ----------------------------------------------------


def _refuse_retrieval(uri: str) -> referencing.Resource[Any]:
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs field


# Without a registry jsonschema falls back to a deprecated resolver that fetches remote
# references with urllib; this one knows the metaschemas and fetches nothing.
OFFLINE_REGISTRY: referencing.Registry[Any] = referencing.Registry(
    retrieve=_refuse_retrieval  # type: ignore[call-arg]  # attrs field: the stubs lack it
)

_BASES: dict[str, type[Validator]] = {
    "2020-12": jsonschema.Draft202012Validator,
    "2019-09": jsonschema.Draft201909Validator,
    "draft-07": jsonschema.Draft7Validator,
}
_DIALECTS: dict[str, type[Validator]] = {
    name: jsonschema.validators.extend(base, _RE2_KEYWORDS)  # type: ignore[no-untyped-call]  # jsonschema's extend is untyped
    for name, base in _BASES.items()
}


def validator(schema: Any, dialect: str = "2020-12") -> Validator:
    """A validator of ``schema``: RE2 patterns, linear formats, no reference fetched."""
    return _DIALECTS[dialect](schema, registry=OFFLINE_REGISTRY, format_checker=FORMAT_CHECKER)


def output_validator(schema: Any) -> Validator:
    """A 2020-12 validator for a schema the service sends (``output_config``)."""
    return validator(schema)
