"""CloudWatch Logs Insights queries, answered from the local stack's log streams.

The dashboard's log widgets and the saved queries of `cloudformation/monitoring.yaml` are Logs Insights
queries; CloudWatch runs them in AWS, and nothing runs them offline (moto's `StartQuery` returns
nothing useful). This module runs the subset those queries use, with Logs Insights' semantics (the language itself is
read by `logs_insights_syntax.py`):

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
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from local.cloudwatch.logs import LogEvent, Value
from local.cloudwatch.logs_insights_syntax import Parser, QueryError, as_number, split_commands, tokenize

__all__ = ["DEFAULT_LIMIT", "Query", "QueryError", "QueryResult", "run_query"]

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000

Row = dict[str, Value]


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
            return pick(present, key=lambda row: as_number(row.get("@timestamp")) or 0).get(self.argument)
        numbers = [n for n in (as_number(row.get(self.argument)) for row in present) if n is not None]
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
        for command in split_commands(text):
            parser = Parser(tokenize(command))
            keyword = parser.take().text.lower()
            handler = getattr(query, f"_{keyword}", None)
            if keyword not in {"source", "fields", "filter", "stats", "sort", "limit"} or handler is None:
                raise QueryError(f"the command {keyword!r} is not supported locally")
            handler(parser)
            if not parser.done():
                raise QueryError(f"unexpected {parser.peek().text!r} in: {command}")  # type: ignore[union-attr]
        return query

    def _source(self, parser: Parser) -> None:
        token = parser.take()
        if token.kind != "string":
            raise QueryError("SOURCE needs a quoted log group name")
        self.sources.append(token.text[1:-1])

    def _fields(self, parser: Parser) -> None:
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
    def _projection(parser: Parser) -> tuple[str, str]:
        source = parser.name()
        return (source, parser.name()) if parser.accept("as") else (source, source)

    def _filter(self, parser: Parser) -> None:
        keep = parser.expression()
        self.steps.append(lambda rows: [row for row in rows if keep(row)])

    def _stats(self, parser: Parser) -> None:
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
    def _aggregate(parser: Parser) -> _Aggregate:
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

    def _sort(self, parser: Parser) -> None:
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

    def _limit(self, parser: Parser) -> None:
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
    number = as_number(value)
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
