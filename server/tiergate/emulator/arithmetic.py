"""Arithmetic a question asks for, worked out step by step (a heuristic, not a model).

Reason's answers come from here when the question holds figures: an explicit expression
(``12 * (3 + 4)``, ``15% of 240``, ``7 plus 5``), a unit price times a count ("A ticket costs
0.05 cents; what do 1,000 tickets cost?"), a running total ("has 12, gives away 5, buys 3 bags
of 4") or an average. Numbers are read with regular expressions and computed with exact
fractions by a small recursive-descent parser: nothing is evaluated as code, the text read, the
figures kept, the nesting and the exponents are bounded, so hostile input costs little.

    >>> solve("What is 15% of 240?").answer
    '36'
    >>> solve("A ticket costs 0.05 cents; what do 1,000 tickets cost?").answer
    '1,000 tickets cost 50 cents.'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from fractions import Fraction

MAX_CHARS = 2000
"""Only the first characters of a question are read."""
MAX_FIGURES = 24
_MAX_TOKENS = 64
_MAX_NESTING = 8
_MAX_EXPONENT = 12
_MAX_DIGITS = 40
"""A result with more digits than this (numerator or denominator) is not worth showing."""

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d{1,15}(?:\.\d{1,8})?"
_NUMBER_RE = re.compile(rf"(?<![\w.,])(?:{_NUMBER})(?![\d])")
_WORD_OPS = {
    "plus": "+",
    "minus": "-",
    "times": "*",
    "multiplied by": "*",
    "divided by": "/",
    "over": "/",
    "to the power of": "^",
}
_EXPRESSION_TOKEN_RE = re.compile(
    rf"\s*(?:(?P<num>{_NUMBER})|(?P<op>[-+*/^()%\u00d7\u00f7\u2212x])"
    r"|(?P<word>multiplied by|divided by|to the power of|plus|minus|times|over|of)\b)",
    re.I,
)
_SYMBOLS = {"\u00d7": "*", "x": "*", "X": "*", "\u00f7": "/", "\u2212": "-"}
_CURRENCY_SIGNS = "$\u20ac\u00a3"
_UNITS = (
    "cents|cent|dollars|dollar|euros|euro|pounds|usd|eur|gbp|kg|g|grams|km|miles|m|meters|"
    "metres|minutes|minute|min|hours|hour|h|seconds|second|s|days|day|liters|litres|l|ml|"
    "tokens|calls|requests|bytes|gb|mb|tb"
)
_AMOUNT = rf"(?P<sign>[{_CURRENCY_SIGNS}])?\s?(?P<value>{_NUMBER})(?:\s?(?P<unit>{_UNITS})\b)?"
_RATE_RE = re.compile(
    r"\b(?:a|an|one|each|every|per|1)\s+(?P<noun>[a-z]+)\s+(?:costs?|is|was|weighs|takes|pays|"
    rf"earns|uses|holds|contains|sells for|goes for|runs)\s+{_AMOUNT}",
    re.I,
)
_PER_RE = re.compile(rf"{_AMOUNT}\s+(?:per|a|an|each|for each|for every|every)\s+(?P<noun>[a-z]+)")
_EACH_RE = re.compile(
    rf"\b(?P<noun>[a-z]+)\s+(?:are|is|cost|costs|sell for)\s+{_AMOUNT}\s+(?:each|apiece)\b", re.I
)
_GROUP_RE = re.compile(rf"(?P<n>{_NUMBER})\s+(?P<what>[a-z]+)\s+of\s+(?P<m>{_NUMBER})", re.I)
_MINUS_RE = re.compile(
    r"\b(?:gives?|gave|loses?|lost|spends?|spent|eats?|ate|sells?|sold|uses?|used|removes?|"
    r"takes? away|took away|drops?|dropped|pays?|paid|donates?|donated|breaks?|broke|subtracts?|"
    r"withdraws?|withdrew|minus|fewer|less)\b",
    re.I,
)
_PLUS_RE = re.compile(
    r"\b(?:buys?|bought|gets?|got|finds?|found|receives?|received|earns?|earned|adds?|added|"
    r"gains?|gained|collects?|collected|picks?|picked|deposits?|deposited|plus|more)\b",
    re.I,
)
_START_RE = re.compile(
    r"\b(?:has|had|have|starts? with|started with|there (?:are|were|is))\b", re.I
)
_CLAUSE_SPLIT_RE = re.compile(r"[,;.!?]\s+|[,;.!?]$|\s+(?:and|then|and then|but)\s+")
_DATE_LIKE_RE = re.compile(r"\d-\d+-\d")
_QUESTION_RE = re.compile(r"\bhow (?:many|much)\b", re.I)


@dataclass(frozen=True)
class Solution:
    """A worked answer: the steps shown, the final answer and its value."""

    steps: tuple[str, ...]
    answer: str
    value: Fraction


def figure(text: str) -> Fraction:
    """``'1,000'`` -> 1000, ``'0.05'`` -> 1/20 (exact)."""
    return Fraction(text.replace(",", ""))


def show(value: Fraction) -> str:
    """A value as a person writes it: ``1,000``, ``0.5``, ``1/3`` when it never ends."""
    if value.denominator == 1:
        return f"{value.numerator:,}"
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator == 1:
        with localcontext(Context(prec=_MAX_DIGITS * 2)):
            text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
        whole, _, fraction = text.partition(".")
        return f"{int(whole):,}.{fraction}" if abs(value) >= 1000 else text
    return f"about {float(value):,.4g}" if abs(value) < 10**15 else str(value)


def _bounded(value: Fraction) -> Fraction:
    if len(str(value.numerator)) > _MAX_DIGITS or len(str(value.denominator)) > _MAX_DIGITS:
        raise ArithmeticError("too large to show")
    return value


class _Parser:
    """``expr := term (('+'|'-') term)*``, ``term := power (('*'|'/'|'of') power)*``,
    ``power := unary ('^' power)?``, ``unary := '-' unary | atom '%'?``, ``atom := NUMBER |
    '(' expr ')'``."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.at = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op, right = self.take(), self.term()
            value = _bounded(value + right if op == "+" else value - right)
        return value

    def term(self) -> Fraction:
        value = self.power()
        while self.peek() in ("*", "/", "of"):
            op, right = self.take(), self.power()
            if op == "/" and right == 0:
                raise ZeroDivisionError("division by zero")
            value = _bounded(value / right if op == "/" else value * right)
        return value

    def power(self) -> Fraction:
        base = self.unary()
        if self.peek() != "^":
            return base
        self.take()
        exponent = self.power()
        if exponent.denominator != 1 or abs(exponent) > _MAX_EXPONENT or base == 0 > exponent:
            raise ArithmeticError("exponent out of range")
        return _bounded(base ** int(exponent))

    def unary(self) -> Fraction:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        value = self.atom()
        if self.peek() == "%":
            self.take()
            value /= 100
        return value

    def atom(self) -> Fraction:
        token = self.take() if self.peek() is not None else ""
        if token == "(":
            self.depth += 1
            if self.depth > _MAX_NESTING:
                raise ArithmeticError("nested too deeply")
            value = self.expr()
            if self.peek() != ")":
                raise ArithmeticError("unbalanced parenthesis")
            self.take()
            self.depth -= 1
            return value
        if not token or not token[0].isdigit():
            raise ArithmeticError(f"expected a number, got {token!r}")
        return figure(token)


def _expression_runs(text: str) -> list[tuple[str, list[str]]]:
    """Stretches of ``text`` made only of numbers, operators and operator words."""
    runs: list[tuple[str, list[str]]] = []
    at = 0
    while at < len(text) and len(runs) < MAX_FIGURES:
        start = _EXPRESSION_TOKEN_RE.match(text, at)
        if start is None or not (start.group("num") or start.group("op") == "("):
            at += 1
            continue
        tokens: list[str] = []
        end = at
        while (found := _EXPRESSION_TOKEN_RE.match(text, end)) and len(tokens) < _MAX_TOKENS:
            raw = found.group(0).strip()
            token = _SYMBOLS.get(raw, _WORD_OPS.get(raw.lower(), raw.lower()))
            if token == "*" and raw in "xX" and not (tokens and tokens[-1][0].isdigit()):
                break  # an "x" that does not follow a number is a letter, not a product
            tokens.append(token)
            end = found.end()
        runs.append((text[at:end].strip(), tokens))
        at = max(end, at + 1)
    return runs


def _explicit(text: str) -> Solution | None:
    for written, tokens in _expression_runs(text):
        while tokens and tokens[-1] not in (")", "%") and not tokens[-1][0].isdigit():
            tokens.pop()  # "12 plus 3 times" ends at the last operand
        operators = [t for t in tokens if t in ("+", "-", "*", "/", "^", "of", "%")]
        if sum(1 for t in tokens if t[0].isdigit()) < 2 or not operators:
            continue
        parser = _Parser(tokens)
        try:
            value = parser.expr()
        except (ArithmeticError, ZeroDivisionError, IndexError, ValueError):
            continue
        if parser.at != len(tokens):
            continue
        shown = " ".join(written.split()).rstrip("?.!,;: ")
        if _DATE_LIKE_RE.search(shown):
            continue  # 2026-11-02 or 555-0100-17 is not a subtraction
        return Solution((f"Compute {shown}.", f"{shown} = {show(value)}."), show(value), value)
    return None


def _amount_text(sign: str | None, value: Fraction, unit: str | None) -> str:
    return f"{sign or ''}{show(value)}" + (f" {unit}" if unit else "")


def _same_noun(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return a == b or a.rstrip("s") == b.rstrip("s") or a + "es" == b or b + "es" == a


def _unit_rate(text: str) -> Solution | None:
    rate = _RATE_RE.search(text) or _EACH_RE.search(text) or _PER_RE.search(text)
    if rate is None:
        return None
    noun, price = rate.group("noun"), figure(rate.group("value"))
    sign, unit = rate.group("sign"), rate.group("unit")
    for found in _NUMBER_RE.finditer(text):
        if rate.start("value") <= found.start() < rate.end("value"):
            continue
        after = re.match(r"\s+([A-Za-z]+)", text[found.end() : found.end() + 40])
        if after is None or not _same_noun(after.group(1), noun):
            continue
        count = figure(found.group(0))
        total = _bounded(count * price)
        things = f"{found.group(0)} {after.group(1)}"
        each = _amount_text(sign, price, unit)
        result = _amount_text(sign, total, unit)
        costs = re.search(r"\b(?:costs?|each|apiece)\b", rate.group(0), re.I)
        steps = (
            f"One {(noun.rstrip('s') if rate.re is _EACH_RE else noun).lower()}: {each}.",
            f"{things}: {show(count)} \u00d7 {each} = {result}.",
        )
        answer = f"{things} cost {result}." if costs else f"{things}: {result}."
        return Solution(steps, answer, total)
    return None


def _running_total(text: str) -> Solution | None:
    if not _QUESTION_RE.search(text):
        return None
    clauses = [c.strip() for c in _CLAUSE_SPLIT_RE.split(text) if c and c.strip()]
    total: Fraction | None = None
    unit = ""
    steps: list[str] = []
    for clause in clauses:
        group = _GROUP_RE.search(clause)
        numbers = [m.group(0) for m in _NUMBER_RE.finditer(clause)]
        if group is not None:
            amount = _bounded(figure(group.group("n")) * figure(group.group("m")))
            how = f"{group.group('n')} \u00d7 {group.group('m')} = {show(amount)}"
        elif len(numbers) == 1:
            amount, how = figure(numbers[0]), ""
        elif not numbers:
            continue
        else:
            return None  # two loose figures in one clause: which one counts is a guess
        if total is None:
            if not _START_RE.search(clause) and not _PLUS_RE.search(clause):
                return None
            total = amount
            noun = re.search(rf"{re.escape(numbers[0])}\s+([a-z]+)", clause)
            unit = noun.group(1) if noun else ""
            steps.append(f"Start with {show(amount)}{' ' + unit if unit else ''}.")
            continue
        sign = -1 if _MINUS_RE.search(clause) else 1 if _PLUS_RE.search(clause) else 0
        if sign == 0:
            return None
        before, total = total, _bounded(total + sign * amount)
        step = f"{show(before)} {'-' if sign < 0 else '+'} {show(amount)} = {show(total)}."
        if group is not None:
            step = f"{how}, and {step}"
        steps.append(f"{clause[:1].upper()}{clause[1:80]}: {step}")
    if total is None or len(steps) < 2:
        return None
    answer = f"{show(total)}{' ' + unit if unit else ''}"
    return Solution(tuple(steps), answer, total)


def _average(text: str) -> Solution | None:
    if not re.search(r"\b(?:average|mean)\b", text, re.I):
        return None
    numbers = [m.group(0) for m in _NUMBER_RE.finditer(text)]
    if len(numbers) < 2:
        return None
    total = sum((figure(n) for n in numbers), Fraction(0))
    mean = total / len(numbers)
    steps = (
        f"Add the {len(numbers)} figures: {' + '.join(numbers)} = {show(total)}.",
        f"Divide by {len(numbers)}: {show(total)} / {len(numbers)} = {show(mean)}.",
    )
    return Solution(steps, show(mean), mean)


def solve(text: str) -> Solution | None:
    """The arithmetic ``text`` asks for, worked out; None when it asks for none."""
    text = text[:MAX_CHARS]
    if len(_NUMBER_RE.findall(text)) > MAX_FIGURES:
        return None
    for method in (_unit_rate, _average, _explicit, _running_total):
        found = method(text)
        if found is not None:
            return found
    return None
