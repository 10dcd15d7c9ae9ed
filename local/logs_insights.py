"""CloudWatch Logs Insights queries, answered from the local stack's log streams.

The dashboard's log widgets and the saved queries of `cloudformation/monitoring.yaml` are Logs Insights
queries; CloudWatch runs them in AWS, and nothing runs them offline (moto's `StartQuery` returns
nothing useful). This module runs the subset those queries use, with Logs Insights' semantics:

- `SOURCE 'group'` (one or more) chooses the log groups; otherwise the caller's groups are used;
- `fields a, b.c as d, @timestamp, @message, @log, @logStream`: JSON log lines are flattened into
  dotted names (`record.metrics.durationMs`), as Logs Insights discovers them;
- `filter` with `=`, `!=`, `<`, `<=`, `>`, `>=`, `like "text"` or `like /regex/`, `in [...]`, `and`,
  `or`, `not` and parentheses;
- `stats count(*)`, `count(f)`, `sum`, `avg`, `min`, `max`, `latest`, `earliest`, `pct(f, n)` with
  `as` names and `by` fields;
- `sort f [asc|desc], ...` and `limit n` (1,000 rows when no limit is given, as the console).

Anything else raises `QueryError` naming the part it does not understand, so a dashboard query that
this module cannot answer fails a test rather than showing an empty table.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
ACCOUNT_ID = "123456789012"

Value = str | float | int | bool | None
Row = dict[str, Value]


class QueryError(ValueError):
    """The query is not valid Logs Insights, or uses a part this module does not answer."""


@dataclass(frozen=True)
class LogEvent:
    """One line of a log group, as CloudWatch Logs stores it."""

    timestamp: float  # seconds since the epoch
    log_group: str
    log_stream: str
    message: str

    def fields(self) -> dict[str, Value]:
        """The event's fields: the system fields and, for a JSON line, its keys flattened with dots."""
        found: dict[str, Value] = {
            "@timestamp": int(self.timestamp * 1000),
            "@message": self.message,
            "@log": f"{ACCOUNT_ID}:{self.log_group}",
            "@logStream": self.log_stream,
        }
        text = self.message.strip()
        if text.startswith("{"):
            try:
                document = json.loads(text)
            except ValueError:
                return found
            if isinstance(document, dict):
                _flatten(document, "", found)
        return found


def _flatten(document: Mapping[str, Any], prefix: str, into: dict[str, Value]) -> None:
    for key, value in document.items():
        if isinstance(value, dict):
            _flatten(value, f"{prefix}{key}.", into)
        elif isinstance(value, list):
            into[f"{prefix}{key}"] = json.dumps(value)
        else:
            into[f"{prefix}{key}"] = value


# --- the language ----------------------------------------------------------------------------------

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


def _tokens(text: str) -> list[Token]:
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


def _split_commands(query: str) -> list[str]:
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


class _Parser:
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


def _number(value: Value) -> float | None:
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
    numbers = _number(left), _number(right)
    if None not in numbers and not (isinstance(left, str) and isinstance(right, str)):
        return numbers[0] == numbers[1]
    return str(left).lower() == str(right).lower() if isinstance(left, bool) else str(left) == str(right)


def _ordered(check: Callable[[float, float], bool]) -> Callable[[Value, Value], bool]:
    def compare(left: Value, right: Value) -> bool:
        a, b = _number(left), _number(right)
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


# --- statistics ------------------------------------------------------------------------------------


@dataclass
class _Aggregate:
    function: str
    argument: str | None  # None for count(*)
    percentile: float | None
    name: str

    def value(self, rows: Sequence[Mapping[str, Value]]) -> Value:
        if self.function == "count":
            return len(rows) if self.argument is None else sum(1 for r in rows if r.get(self.argument) is not None)
        assert self.argument is not None
        present = [row for row in rows if row.get(self.argument) is not None]
        if self.function in {"latest", "earliest"}:
            if not present:
                return None
            pick = max if self.function == "latest" else min
            return pick(present, key=lambda row: _number(row.get("@timestamp")) or 0).get(self.argument)
        numbers = [n for n in (_number(row.get(self.argument)) for row in present) if n is not None]
        if not numbers:
            return None
        if self.function == "sum":
            return sum(numbers)
        if self.function == "avg":
            return sum(numbers) / len(numbers)
        if self.function == "min":
            return min(numbers)
        if self.function == "max":
            return max(numbers)
        assert self.percentile is not None  # pct: nearest rank, as CloudWatch's percentiles
        ordered = sorted(numbers)
        return ordered[max(0, math.ceil(self.percentile / 100 * len(ordered)) - 1)]


_AGGREGATES = {"count", "sum", "avg", "min", "max", "latest", "earliest", "pct"}


# --- the query -------------------------------------------------------------------------------------


@dataclass
class Query:
    sources: list[str] = field(default_factory=list)
    steps: list[Callable[[list[Row]], list[Row]]] = field(default_factory=list)
    columns: list[str] | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, text: str) -> Query:
        query = cls()
        for command in _split_commands(text):
            parser = _Parser(_tokens(command))
            keyword = parser.take().text.lower()
            handler = getattr(query, f"_{keyword}", None)
            if keyword not in {"source", "fields", "filter", "stats", "sort", "limit"} or handler is None:
                raise QueryError(f"the command {keyword!r} is not supported locally")
            handler(parser)
            if not parser.done():
                raise QueryError(f"unexpected {parser.peek().text!r} in: {command}")  # type: ignore[union-attr]
        return query

    def _source(self, parser: _Parser) -> None:
        token = parser.take()
        if token.kind != "string":
            raise QueryError("SOURCE needs a quoted log group name")
        self.sources.append(token.text[1:-1])

    def _fields(self, parser: _Parser) -> None:
        projections = [self._projection(parser)]
        while parser.accept(","):
            projections.append(self._projection(parser))

        def project(rows: list[Row]) -> list[Row]:
            for row in rows:
                for source, target in projections:
                    if target != source:
                        row[target] = row.get(source)
            return rows

        self.columns = [target for _, target in projections]
        self.steps.append(project)

    @staticmethod
    def _projection(parser: _Parser) -> tuple[str, str]:
        source = parser.name()
        return (source, parser.name()) if parser.accept("as") else (source, source)

    def _filter(self, parser: _Parser) -> None:
        keep = parser.expression()
        self.steps.append(lambda rows: [row for row in rows if keep(row)])

    def _stats(self, parser: _Parser) -> None:
        aggregates = [self._aggregate(parser)]
        while parser.accept(","):
            aggregates.append(self._aggregate(parser))
        groups: list[str] = []
        if parser.accept("by"):
            groups.append(parser.name())
            while parser.accept(","):
                groups.append(parser.name())

        def summarize(rows: list[Row]) -> list[Row]:
            buckets: dict[tuple[Value, ...], list[Row]] = {}
            for row in rows:
                buckets.setdefault(tuple(row.get(name) for name in groups), []).append(row)
            if not groups and not buckets:
                buckets[()] = []
            return [
                {**dict(zip(groups, key, strict=True)), **{a.name: a.value(members) for a in aggregates}}
                for key, members in buckets.items()
            ]

        self.columns = groups + [a.name for a in aggregates]
        self.steps.append(summarize)

    @staticmethod
    def _aggregate(parser: _Parser) -> _Aggregate:
        function = parser.name().lower()
        if function not in _AGGREGATES:
            raise QueryError(f"the stats function {function!r} is not supported locally")
        parser.take("(")
        argument: str | None = None
        percentile: float | None = None
        if parser.accept("*"):
            if function != "count":
                raise QueryError(f"{function}(*) is not a statistic")
        else:
            argument = parser.name()
        if function == "pct":
            parser.take(",")
            percentile = float(parser.take().text)
        parser.take(")")
        label = f"{function}({'*' if argument is None else argument})"
        name = parser.name() if parser.accept("as") else label
        return _Aggregate(function, argument, percentile, name)

    def _sort(self, parser: _Parser) -> None:
        keys: list[tuple[str, bool]] = []
        while True:
            name = parser.name()
            descending = parser.accept("desc")
            if not descending:
                parser.accept("asc")
            keys.append((name, descending))
            if not parser.accept(","):
                break

        def order(rows: list[Row]) -> list[Row]:
            for name, descending in reversed(keys):  # stable sorts, least significant key first
                present = [row for row in rows if row.get(name) is not None]
                missing = [row for row in rows if row.get(name) is None]
                present.sort(key=functools.partial(_sort_key_of, name), reverse=descending)
                rows = present + missing  # rows without the field come last either way
            return rows

        self.steps.append(order)

    def _limit(self, parser: _Parser) -> None:
        token = parser.take()
        if token.kind != "number" or not 1 <= float(token.text) <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        self.limit = int(float(token.text))

    def run(self, events: Iterable[LogEvent]) -> QueryResult:
        rows: list[Row] = [event.fields() for event in events]
        for step in self.steps:
            rows = step(rows)
        columns = self.columns if self.columns is not None else ["@timestamp", "@message"]
        shown = [{column: row.get(column) for column in columns} for row in rows[: self.limit]]
        return QueryResult(columns, shown, matched=len(rows))


def _sort_key_of(name: str, row: Row) -> tuple[int, float, str]:
    value = row.get(name)
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, str(value))


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[Row]
    matched: int

    def as_table(self) -> list[list[str]]:
        """The rows as the console shows them: `@timestamp` as UTC time, missing values empty."""
        return [[_shown(column, row.get(column)) for column in self.columns] for row in self.rows]


def _shown(column: str, value: Value) -> str:
    if value is None:
        return ""
    if column == "@timestamp" and isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def run_query(
    text: str,
    groups: Mapping[str, Callable[[], Iterable[LogEvent]]],
    start: float,
    end: float,
    default_groups: Sequence[str] = (),
) -> QueryResult:
    """Run `text` over the events of its SOURCE groups (else `default_groups`) between `start` and `end`."""
    query = Query.parse(text)
    names = query.sources or list(default_groups)
    unknown = [name for name in names if name not in groups]
    if unknown:
        raise QueryError(f"no log group {unknown[0]!r}")
    events = [event for name in names for event in groups[name]() if start <= event.timestamp <= end]
    events.sort(key=lambda event: event.timestamp)
    return query.run(events)
