"""The metric names and labels that PromQL queries use, read with a real PromQL parser.

``promql_parser`` (the Python binding of a Rust PromQL parser) gives the syntax tree; walking
it yields every vector selector (its metric name and label matchers) and every label named by
``by``/``without``, ``on``/``ignoring`` and ``group_left``/``group_right``. Grafana's variables
are not PromQL: ``$__rate_interval`` and friends become a duration and ``$var`` a regex value
before parsing (variables only stand in matcher values and ranges here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import promql_parser

_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b")
_VARIABLE = re.compile(r"\$\{?[A-Za-z_]\w*\}?")
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


@dataclass
class Selector:
    """One vector selector: ``name{label op value, ...}``."""

    name: str
    matchers: list[tuple[str, str, str]]
    """(label, operator, value) with operator one of ``=``, ``!=``, ``=~``, ``!~``."""


@dataclass
class Refs:
    """What one query needs of the scraped metrics."""

    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)
    """Labels named by by/without/on/ignoring/group_left/group_right."""


_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def grafana_to_promql(query: str) -> str:
    """A Grafana query as PromQL: interval variables become 5m, other variables ``.*``."""
    return _VARIABLE.sub(".*", _INTERVALS.sub("5m", query))


def refs(query: str) -> Refs:
    """The selectors and grouping labels of ``query`` (PromQL, or Grafana's ``label_values``)."""
    found = Refs()
    values = _LABEL_VALUES.match(query.strip())
    if values is not None:
        # Grafana's variable query: label_values(selector, label) lists the label's values.
        selector = values.group("selector")
        if selector:
            _walk(promql_parser.parse(grafana_to_promql(selector)), found)
        found.grouping.add(values.group("label"))
        return found
    _walk(promql_parser.parse(grafana_to_promql(query)), found)
    return found


def _walk(node: Any, found: Refs) -> None:
    kind = type(node).__name__
    if kind == "VectorSelector":
        found.selectors.append(_selector(node))
    elif kind == "MatrixSelector":
        found.selectors.append(_selector(node.vector_selector))
    elif kind == "AggregateExpr":
        if node.modifier is not None:
            found.grouping.update(node.modifier.labels)
        _walk(node.expr, found)
        if node.param is not None:
            _walk(node.param, found)
    elif kind == "BinaryExpr":
        modifier = node.modifier
        if modifier is not None:
            if modifier.matching is not None:
                found.grouping.update(modifier.matching.labels)
            found.grouping.update(modifier.group_labels or ())
        _walk(node.lhs, found)
        _walk(node.rhs, found)
    elif kind == "Call":
        for arg in node.args:
            _walk(arg, found)
    elif kind in ("ParenExpr", "UnaryExpr", "SubqueryExpr"):
        _walk(node.expr, found)
    elif kind not in ("NumberLiteral", "StringLiteral"):
        raise ValueError(f"unhandled PromQL node {kind}")


def _selector(node: Any) -> Selector:
    matchers = [
        (m.name, _OPS[_op_name(m.op)], m.value)
        for m in node.matchers.matchers
        if m.name != "__name__"
    ]
    return Selector(name=node.name or "", matchers=matchers)


def _op_name(op: Any) -> str:
    return str(op).rsplit(".", 1)[-1]
