"""The dashboard body as CloudFormation creates it, and its widgets answered from local data:
hand-made metrics, an expression, hidden rows, the alarm and text widgets, and a widget that fails
alone."""

from __future__ import annotations

import json
import re
from typing import Any

from local.cloudwatch.dashboard import Sources, dashboard_body, render
from local.cloudwatch.logs import LogEvent
from local.cloudwatch.metric_store import MetricStore
from tests.conftest import ROOT

START = 1_800_000_000.0  # a minute boundary
RATE = "100 * FILL(conflicts, 0) / MAX([FILL(created, 0) + FILL(conflicts, 0), 1])"
GROUP = "/aws/lambda/appointments-local-booking"


def store() -> MetricStore:
    metrics = MetricStore(api_name="appointments-local", stage="local")
    for minute, (created, conflicts) in enumerate([(3, 1), (0, 0), (5, 5)]):
        at = START + minute * 60 + 1
        for name, count in (("BookingCreated", created), ("BookingConflict", conflicts)):
            for _ in range(count):
                metrics.put("Appointments", name, {"service": "booking", "stage": "local"}, 1, at)
    return metrics


def widget(kind: str, **properties: Any) -> dict[str, Any]:
    return {"type": kind, "x": 0, "y": 0, "width": 12, "height": 6, "properties": properties}


def answer(*widgets: dict[str, Any], events: list[LogEvent] | None = None) -> list[dict[str, Any]]:
    sources = Sources(store(), None, {GROUP: lambda: list(events or [])})
    return render({"widgets": list(widgets)}, sources, START, START + 180)


def test_metric_rows_math_and_hidden_rows_per_period() -> None:
    dimensions = ["service", "booking", "stage", "local"]
    (chart,) = answer(
        widget(
            "metric",
            title="Conflicts",
            period=60,
            metrics=[
                {"expression": RATE, "id": "rate", "label": "rate %"},
                ["Appointments", "BookingCreated", *dimensions, {"stat": "Sum", "id": "created", "visible": False}],
                [".", "BookingConflict", ".", ".", ".", ".", {"stat": "Sum", "id": "conflicts", "yAxis": "right"}],
            ],
        )
    )  # fmt: skip
    assert [series["label"] for series in chart["series"]] == ["rate %", "BookingConflict"]
    rate, conflicts = chart["series"]
    assert rate["y"] == [25.0, 0.0, 50.0] and conflicts["y"] == [1.0, None, 5.0]
    assert conflicts["yAxis"] == "right" and rate["x"] == [START * 1000, (START + 60) * 1000, (START + 120) * 1000]
    assert chart["points"] == 5


def test_alarm_text_and_log_widgets_and_a_widget_that_fails_alone() -> None:
    events = [LogEvent(START + 5, GROUP, "s", json.dumps({"level": "ERROR", "message": "boom"}))]
    alarm, text, log, broken = answer(
        widget("alarm", title="Alarms", alarms=["arn:aws:cloudwatch:us-east-1:123456789012:alarm:nope"]),
        widget("text", markdown="# Title\n[runbook](/_ops/runbooks/api-5xx.md) <script>x</script>"),
        widget("log", query=f"SOURCE '{GROUP}' | fields message | filter level = 'ERROR'"),
        widget("metric", metrics=[["Appointments", "BookingCreated", "service"]]),
        events=events,
    )
    assert alarm["alarms"] == [
        {"name": "nope", "state": "UNKNOWN", "reason": "not defined in the local stack's templates", "since": None}
    ]
    assert '<a href="/_ops/runbooks/api-5xx.md">runbook</a>' in text["html"] and "<script>" not in text["html"]
    assert log["columns"] == ["message"] and log["rows"] == [["boom"]]
    assert broken["error"].startswith("ValueError: metric row 0 has a dimension name without a value")


def test_the_body_is_substituted_as_cloudformation_does() -> None:
    body = dashboard_body({"Stage": "qa", "RunbookBaseUrl": "/_ops/runbooks"})
    text = json.dumps(body)
    assert "${" not in text and "appointments-qa-booking" in text and "arn:aws:cloudwatch:us-east-1:" in text
    assert "/_ops/runbooks/api-5xx.md" in text
    assert len(body["widgets"]) == len(json.loads((ROOT / "dashboards" / "operations.json").read_text())["widgets"])


def test_every_widget_of_the_real_dashboard_is_answered_without_data() -> None:
    body = dashboard_body({"Stage": "local"})
    queries = " ".join(w["properties"].get("query", "") for w in body["widgets"])
    groups = set(re.findall(r"SOURCE '([^']+)'", queries))
    sources = Sources(MetricStore("appointments-local", "local"), None, dict.fromkeys(groups, list))
    rendered = render(body, sources, START, START + 3600)
    assert [w.get("error") for w in rendered] == [None] * len(body["widgets"])
