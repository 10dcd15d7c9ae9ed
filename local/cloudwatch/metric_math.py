"""CloudWatch's statistics, metric-math expressions and alarm rules, computed locally.

moto stores alarms but never evaluates them and computes no percentiles or metric math, so the local
stack does it here, for the ops page and the local alarm evaluation (issue 7):

- `statistic`: Sum, Average, Minimum, Maximum, SampleCount and pNN (nearest rank) over one period's
  values; None when the period has no values (CloudWatch shows no datapoint).
- `expression`: the metric-math subset the templates and the dashboard use (+ - * /, comparisons,
  IF, MAX, MIN, SUM, AVG, FILL; `[a, b]` lists), evaluated datapoint by datapoint; a missing input makes
  a missing result, as in CloudWatch.
- `alarm_state`: a metric alarm's state from its last N datapoints, with M of N and the four
  missing-data treatments.
- `composite_state`: an `AlarmRule` (ALARM/OK/INSUFFICIENT_DATA of named alarms, AND, OR, NOT,
  TRUE, FALSE) over the current states.

Expressions and rules are parsed with Python's `ast` and only the node types above are allowed, so
no template text is ever executed.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

State = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
Missing = Literal["missing", "notBreaching", "breaching", "ignore"]
Datapoint = float | None

_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


def statistic(values: Sequence[float], name: str) -> float | None:
    """One statistic of one period's values."""
    if not values:
        return None
    if name == "Sum":
        return float(sum(values))
    if name == "Average":
        return float(sum(values)) / len(values)
    if name == "Minimum":
        return float(min(values))
    if name == "Maximum":
        return float(max(values))
    if name == "SampleCount":
        return float(len(values))
    match = _PERCENTILE.match(name)
    if match:
        rank = math.ceil(float(match.group(1)) / 100 * len(values))  # nearest rank
        return float(sorted(values)[max(rank, 1) - 1])
    raise ValueError(f"unknown statistic {name!r}")


# --- metric math ---------------------------------------------------------------------------------

_COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b if b else math.nan,  # CloudWatch: division by zero is no value
}


def _parse(text: str) -> ast.Expression:
    # Metric math's comparison is `==`, its lists are `[a, b]`: both are Python syntax already.
    return ast.parse(text.strip(), mode="eval")


def expression(text: str, series: Mapping[str, Sequence[Datapoint]]) -> list[Datapoint]:
    """Evaluate a metric-math expression over aligned series (one value per period, by metric id)."""
    tree = _parse(text)
    length = len(next(iter(series.values()))) if series else 1
    return [_value(tree.body, series, index) for index in range(length)]


def _value(node: ast.AST, series: Mapping[str, Sequence[Datapoint]], index: int) -> Datapoint:
    result = _evaluate(node, series, index)
    if isinstance(result, list):
        raise ValueError("a list is only an argument of MAX, MIN, SUM or AVG")
    return None if result is None or math.isnan(result) else result


def _evaluate(node: ast.AST, series: Mapping[str, Sequence[Datapoint]], index: int) -> Datapoint | list[Datapoint]:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in series:
            raise ValueError(f"unknown metric id {node.id!r}")
        return series[node.id][index]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        operand = _evaluate(node.operand, series, index)
        return None if operand is None or isinstance(operand, list) else -operand
    if isinstance(node, ast.List):
        return [_value(element, series, index) for element in node.elts]
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _value(node.left, series, index), _value(node.right, series, index)
        return None if left is None or right is None else _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        left, right = _value(node.left, series, index), _value(node.comparators[0], series, index)
        return None if left is None or right is None else float(_COMPARE[type(node.ops[0])](left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _function(node.func.id, node.args, series, index)
    raise ValueError(f"unsupported metric math: {ast.unparse(node)}")


def _function(name: str, args: list[ast.expr], series: Mapping[str, Sequence[Datapoint]], index: int) -> Datapoint:
    if name == "IF" and len(args) == 3:
        condition = _value(args[0], series, index)
        if condition is None:
            return None
        return _value(args[1] if condition else args[2], series, index)
    if name == "FILL" and len(args) == 2:
        value = _value(args[0], series, index)
        return value if value is not None else _value(args[1], series, index)
    if name in {"MAX", "MIN", "SUM", "AVG"} and len(args) == 1:
        items = _evaluate(args[0], series, index)
        present = [v for v in (items if isinstance(items, list) else [items]) if v is not None]
        if not present:
            return None
        aggregate: dict[str, Callable[[list[float]], float]] = {
            "MAX": max,
            "MIN": min,
            "SUM": sum,
            "AVG": lambda v: sum(v) / len(v),
        }
        return aggregate[name](present)
    raise ValueError(f"unsupported metric math function {name}")


# --- alarms --------------------------------------------------------------------------------------

_COMPARISON: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def alarm_state(
    datapoints: Sequence[Datapoint],
    *,
    threshold: float,
    comparison: str,
    datapoints_to_alarm: int,
    treat_missing: Missing = "missing",
    previous: State = "INSUFFICIENT_DATA",
) -> State:
    """A metric alarm's state from its last `evaluation periods` datapoints (oldest first).

    ALARM when at least M datapoints breach. Missing datapoints count as breaching (`breaching`) or
    not (`notBreaching`); with `missing` and `ignore` only the present ones are judged, and with none
    present the alarm is INSUFFICIENT_DATA (`missing`) or keeps its state (`ignore`).
    """
    breaches = _COMPARISON[comparison]
    present = [value for value in datapoints if value is not None]
    absent = len(datapoints) - len(present)
    if treat_missing in {"missing", "ignore"} and not present:
        return previous if treat_missing == "ignore" else "INSUFFICIENT_DATA"
    breaching = sum(1 for value in present if breaches(value, threshold))
    if treat_missing == "breaching":
        breaching += absent
    return "ALARM" if breaching >= datapoints_to_alarm else "OK"


_STATE_CALL = re.compile(r'\b(ALARM|OK|INSUFFICIENT_DATA)\(\s*"?([^")]+?)"?\s*\)')


def composite_state(rule: str, states: Mapping[str, State]) -> State:
    """A composite alarm's state: ALARM when its rule holds over the other alarms' states, else OK."""
    calls: dict[str, tuple[str, str]] = {}

    def placeholder(match: re.Match[str]) -> str:
        name = f"_c{len(calls)}"
        calls[name] = (match.group(1), match.group(2).strip())
        return name

    text = _STATE_CALL.sub(placeholder, rule)
    text = re.sub(r"\bAND\b", " and ", re.sub(r"\bOR\b", " or ", re.sub(r"\bNOT\b", " not ", text)))
    text = re.sub(r"\bTRUE\b", " True ", re.sub(r"\bFALSE\b", " False ", text))
    tree = ast.parse(text.strip(), mode="eval")

    def holds(node: ast.AST) -> bool:
        if isinstance(node, ast.BoolOp):
            results = [holds(value) for value in node.values]
            return all(results) if isinstance(node.op, ast.And) else any(results)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not holds(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name) and node.id in calls:
            wanted, alarm = calls[node.id]
            return states.get(alarm, "INSUFFICIENT_DATA") == wanted
        raise ValueError(f"unsupported alarm rule: {rule}")

    return "ALARM" if holds(tree.body) else "OK"
