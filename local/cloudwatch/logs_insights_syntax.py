"""The Logs Insights query language, read: commands, tokens and `filter` expressions.

A query is commands separated by `|` (outside quotes and regexes); each command is tokens (strings,
`/regex/`es, numbers, operators and field names, backquoted or not). `Parser` reads them by
recursive descent, and a `filter` expression becomes a predicate over a row of fields, with Logs
Insights' comparisons: numbers compare as numbers, strings as strings, a missing field matches
nothing but `not`. `logs_insights.py` runs the commands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from local.cloudwatch.logs import Value


class QueryError(ValueError):
    """The query is not valid Logs Insights, or uses a part this module does not answer."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<regex>/(?:[^/\\]|\\.)+/)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|=|<|>|\(|\)|\[|\]|,|\*)
      | (?P<name>[@A-Za-z_][\w.@]*|`[^`]+`)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokenize(text: str) -> list[Token]:
    found, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise QueryError(f"cannot read the query at: {text[position:].strip()[:40]!r}")
        kind = match.lastgroup or ""
        found.append(Token(kind, match.group(kind)))
        position = match.end()
    return found


def split_commands(query: str) -> list[str]:
    """The query's commands: split on `|` outside quotes and regexes."""
    commands, current, quote = [], "", ""
    for char in query:
        if quote:
            current += char
            if char == quote and not current.endswith("\\" + char):
                quote = ""
        elif char in "\"'":
            quote, current = char, current + char
        elif char == "|":
            commands.append(current.strip())
            current = ""
        else:
            current += char
    commands.append(current.strip())
    return [command for command in commands if command]


class Parser:
    """Recursive descent over one command's tokens."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.position = tokens, 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, text: str | None = None) -> Token:
        token = self.peek()
        if token is None or (text is not None and token.text.lower() != text):
            raise QueryError(f"expected {text or 'more'}, found {token.text if token else 'the end'}")
        self.position += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.text.lower() == text:
            self.position += 1
            return True
        return False

    def done(self) -> bool:
        return self.position >= len(self.tokens)

    def name(self) -> str:
        token = self.take()
        if token.kind != "name":
            raise QueryError(f"expected a field name, found {token.text}")
        return token.text.strip("`")

    # filter expressions -----------------------------------------------------------------------

    def expression(self) -> Callable[[Mapping[str, Value]], bool]:
        left = self.conjunction()
        while self.accept("or"):
            right, previous = self.conjunction(), left
            left = _either(previous, right)
        return left

    def conjunction(self) -> Callable[[Mapping[str, Value]], bool]:
        left = self.negation()
        while self.accept("and"):
            right, previous = self.negation(), left
            left = _both(previous, right)
        return left

    def negation(self) -> Callable[[Mapping[str, Value]], bool]:
        if self.accept("not"):
            inner = self.negation()
            return lambda row: not inner(row)
        if self.accept("("):
            inner = self.expression()
            self.take(")")
            return inner
        return self.comparison()

    def comparison(self) -> Callable[[Mapping[str, Value]], bool]:
        left = self.operand()
        token = self.peek()
        if token is None or token.text in {")"} or token.text.lower() in {"and", "or"}:
            return lambda row: _truthy(left(row))
        operator = self.take().text.lower()
        if operator == "like":
            pattern = self.take()
            regex = _like(pattern)
            return lambda row: isinstance(value := left(row), str) and regex.search(value) is not None
        if operator == "in":
            self.take("[")
            choices = [self.literal()]
            while self.accept(","):
                choices.append(self.literal())
            self.take("]")
            return lambda row: any(_equal(left(row), choice) for choice in choices)
        if operator not in _COMPARISONS:
            raise QueryError(f"unknown operator {operator!r} in filter")
        right = self.operand()
        compare = _COMPARISONS[operator]
        return lambda row: compare(left(row), right(row))

    def operand(self) -> Callable[[Mapping[str, Value]], Value]:
        token = self.peek()
        if token is not None and token.kind in {"string", "number"}:
            value = self.literal()
            return lambda _row: value
        name = self.name()
        return lambda row: row.get(name)

    def literal(self) -> Value:
        token = self.take()
        if token.kind == "string":
            return str(json.loads('"' + token.text[1:-1].replace('"', '\\"') + '"'))
        if token.kind == "number":
            return float(token.text)
        raise QueryError(f"expected a literal, found {token.text}")


def _either(
    left: Callable[[Mapping[str, Value]], bool], right: Callable[[Mapping[str, Value]], bool]
) -> Callable[[Mapping[str, Value]], bool]:
    return lambda row: left(row) or right(row)


def _both(
    left: Callable[[Mapping[str, Value]], bool], right: Callable[[Mapping[str, Value]], bool]
) -> Callable[[Mapping[str, Value]], bool]:
    return lambda row: left(row) and right(row)


def _like(token: Token) -> re.Pattern[str]:
    if token.kind == "regex":
        return re.compile(token.text[1:-1])
    if token.kind == "string":
        return re.compile(re.escape(token.text[1:-1]))
    raise QueryError(f"like needs a string or a /regex/, found {token.text}")


def _truthy(value: Value) -> bool:
    return value not in (None, "", 0, False)


def as_number(value: Value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return None


def _equal(left: Value, right: Value) -> bool:
    if left is None or right is None:
        return False
    numbers = as_number(left), as_number(right)
    if None not in numbers and not (isinstance(left, str) and isinstance(right, str)):
        return numbers[0] == numbers[1]
    return str(left).lower() == str(right).lower() if isinstance(left, bool) else str(left) == str(right)


def _ordered(check: Callable[[float, float], bool]) -> Callable[[Value, Value], bool]:
    def compare(left: Value, right: Value) -> bool:
        a, b = as_number(left), as_number(right)
        if a is not None and b is not None:
            return check(a, b)
        if isinstance(left, str) and isinstance(right, str):
            return check(0, 0) if left == right else check(-1, 1) if left < right else check(1, -1)
        return False

    return compare


_COMPARISONS: dict[str, Callable[[Value, Value], bool]] = {
    "=": _equal,
    "!=": lambda left, right: left is not None and not _equal(left, right),
    "<": _ordered(lambda a, b: a < b),
    "<=": _ordered(lambda a, b: a <= b),
    ">": _ordered(lambda a, b: a > b),
    ">=": _ordered(lambda a, b: a >= b),
}
