"""The CloudWatch dashboard of `dashboards/`, answered from the local stack's data for `/_ops`.

The body is the one CloudFormation receives: `cloudformation/monitoring.yaml` rendered as packaging
renders it (`deploy/templates.py`) and its `Fn::Sub` resolved with the stage's parameters, so resource
names, region and stage are substituted exactly as in AWS. Each widget is then answered as the
CloudWatch console answers it:

- `metric`: every row's statistic per period from the `MetricStore` (GetMetricData), metric math
  evaluated over the rows' ids, hidden rows kept for the math only;
- `alarm`: the listed alarms' states from the local alarm evaluation;
- `text`: the markdown as HTML (CommonMark, raw HTML off, as the console renders it);
- `log`: the Logs Insights query over the local log groups (`logs_insights.py`).

A widget that cannot be answered carries its `error` instead of failing the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt

from deploy.templates import TEMPLATES, parse_template, render_template, resources_of_type
from local.cloudformation.resolver import resolver_for
from local.cloudwatch.alarms import AlarmEvaluator
from local.cloudwatch.logs import LogEvent
from local.cloudwatch.logs_insights import run_query
from local.cloudwatch.metric_math import Datapoint, expression
from local.cloudwatch.metric_store import MetricId, MetricStore

MONITORING = TEMPLATES / "monitoring.yaml"
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def dashboard_body(parameters: Mapping[str, str]) -> dict[str, Any]:
    """The operations dashboard's body as CloudFormation would create it for these parameters."""
    template = parse_template(render_template(MONITORING), str(MONITORING))
    own = {key: value for key, value in parameters.items() if key in template.get("Parameters", {})}
    (dashboard,) = resources_of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = resolver_for(template, own).resolve(dashboard["Properties"]["DashboardBody"])
    return dict(json.loads(str(body)))


def markdown_html(text: str) -> str:
    return str(_MARKDOWN.render(text))


@dataclass(frozen=True)
class Sources:
    """Where the widgets' data comes from on the local stack."""

    metrics: MetricStore
    alarms: AlarmEvaluator | None
    log_groups: Mapping[str, Callable[[], Iterable[LogEvent]]]


def render(body: Mapping[str, Any], sources: Sources, start: float, end: float) -> list[dict[str, Any]]:
    """Every widget with its layout and its data for the time range [start, end)."""
    rendered = []
    for widget in body.get("widgets", []):
        properties = widget.get("properties", {})
        answer: dict[str, Any] = {
            "type": widget["type"],
            "title": properties.get("title", ""),
            "x": widget.get("x", 0),
            "y": widget.get("y", 0),
            "width": widget.get("width", 6),
            "height": widget.get("height", 6),
        }
        try:
            answer |= _ANSWERS[widget["type"]](properties, sources, start, end)
        except (KeyError, ValueError, TypeError) as error:
            answer["error"] = f"{type(error).__name__}: {error}"
        rendered.append(answer)
    return rendered


# --- metric widgets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    id: str
    label: str
    options: dict[str, Any]
    metric: MetricId | None = None  # None for an expression
    expression: str | None = None


def _rows(properties: Mapping[str, Any]) -> list[_Row]:
    """The widget's `metrics` rows in CloudWatch's compact form (`"."` repeats the previous row's field)."""
    rows: list[_Row] = []
    previous: list[Any] = []
    for index, raw in enumerate(properties.get("metrics", [])):
        if isinstance(raw, dict):  # an expression row
            text = str(raw["expression"])
            rows.append(_Row(str(raw.get("id", f"e{index}")), str(raw.get("label", text)), raw, None, text))
            continue
        options = raw[-1] if raw and isinstance(raw[-1], dict) else {}
        fields = [field for field in raw if not isinstance(field, dict)]
        fields = [previous[i] if field == "." and i < len(previous) else field for i, field in enumerate(fields)]
        previous = fields
        namespace, name, dimensions = fields[0], fields[1], fields[2:]
        if len(dimensions) % 2:
            raise ValueError(f"metric row {index} has a dimension name without a value")
        metric = MetricId.of(namespace, name, dict(zip(dimensions[::2], dimensions[1::2], strict=True)))
        rows.append(_Row(str(options.get("id", f"m{index}")), str(options.get("label", name)), options, metric))
    return rows


def _metric(properties: Mapping[str, Any], sources: Sources, start: float, end: float) -> dict[str, Any]:
    default_stat = properties.get("stat", "Average")
    rows = _rows(properties)
    values: dict[str, list[Datapoint]] = {}
    times: list[float] = []
    for row in rows:
        if row.metric is not None:
            period = int(row.options.get("period", properties.get("period", 300)))
            stat = row.options.get("stat", default_stat)
            points = sources.metrics.datapoints(row.metric, stat, period, start, end)
            times = [at for at, _ in points]
            values[row.id] = [value for _, value in points]
    for row in rows:
        if row.expression is not None:
            values[row.id] = expression(row.expression, values) if values else []
    series = [
        {
            "id": row.id,
            "label": row.label,
            "x": [at * 1000 for at in times],
            "y": values[row.id],
            "yAxis": row.options.get("yAxis", "left"),
            "color": row.options.get("color"),
        }
        for row in rows
        if row.options.get("visible", True)
    ]
    return {
        "view": properties.get("view", "timeSeries"),
        "stacked": bool(properties.get("stacked", False)),
        "series": series,
        "points": sum(1 for line in series for value in line["y"] if value is not None),
        "annotations": properties.get("annotations", {}).get("horizontal", []),
        "yAxis": properties.get("yAxis", {}),
        "period": properties.get("period", 300),
    }


# --- alarm, text and log widgets -------------------------------------------------------------------


def _alarm(properties: Mapping[str, Any], sources: Sources, _start: float, _end: float) -> dict[str, Any]:
    known = {alarm["name"]: alarm for alarm in (sources.alarms.status() if sources.alarms else [])}
    listed = []
    for arn in properties.get("alarms", []):
        name = str(arn).rsplit(":alarm:", 1)[-1]
        alarm = known.get(name)
        listed.append(
            {
                "name": name,
                "state": alarm["state"] if alarm else "UNKNOWN",
                "reason": alarm["reason"] if alarm else "not defined in the local stack's templates",
                "since": alarm["history"][-1]["timestamp"] if alarm and alarm["history"] else None,
            }
        )
    return {"alarms": listed}


def _text(properties: Mapping[str, Any], _sources: Sources, _start: float, _end: float) -> dict[str, Any]:
    return {"html": markdown_html(str(properties.get("markdown", "")))}


def _log(properties: Mapping[str, Any], sources: Sources, start: float, end: float) -> dict[str, Any]:
    result = run_query(str(properties["query"]), sources.log_groups, start, end)
    return {"columns": result.columns, "rows": result.as_table(), "matched": result.matched}


_ANSWERS: dict[str, Callable[[Mapping[str, Any], Sources, float, float], dict[str, Any]]] = {
    "metric": _metric,
    "alarm": _alarm,
    "text": _text,
    "log": _log,
}


def log_groups(streams: Sequence[tuple[str, Callable[[], Iterable[tuple[float, str, str]]]]]) -> dict[str, Any]:
    """Log groups for the queries from the functions' recent lines: (group, lines) → group → events."""

    def events(group: str, lines: Callable[[], Iterable[tuple[float, str, str]]]) -> Callable[[], list[LogEvent]]:
        return lambda: [LogEvent(at, group, stream, text) for at, stream, text in lines()]

    return {group: events(group, lines) for group, lines in streams}
