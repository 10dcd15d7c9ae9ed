"""Logs Insights queries answered locally: the commands, hand-checked on a handful of log lines, and
every query the dashboard and the saved query definitions use."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

import pytest

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.cloudwatch.logs import LogEvent
from local.cloudwatch.logs_insights import Query, QueryError, run_query
from tests.conftest import ROOT

BOOKING = "/aws/lambda/appointments-local-booking"
AUDIT = "/aws/lambda/appointments-local-audit"


def line(at: float, group: str, **fields: object) -> LogEvent:
    return LogEvent(at, group, "2026/11/25/[$LATEST]abc", json.dumps(fields))


EVENTS = {
    BOOKING: [
        line(100, BOOKING, level="INFO", service="booking", message="booked", bookingId="bkg_1", correlation_id="r1"),
        line(101, BOOKING, level="ERROR", service="booking", message="boom", exception_name="KeyError"),
        line(102, BOOKING, type="platform.report", record={"requestId": "r1", "metrics": {"durationMs": 12.5}}),
        line(103, BOOKING, type="platform.report", record={"requestId": "r2", "metrics": {"durationMs": 250.0}}),
        LogEvent(104, BOOKING, "s", "START RequestId: r3 Version: $LATEST"),
        line(105, BOOKING, level="ERROR", service="booking", message="again", exception_name="KeyError"),
    ],
    AUDIT: [
        line(100.5, AUDIT, level="INFO", service="audit", message="archived", entityId="bkg_1", action="CREATED"),
        line(106, AUDIT, level="ERROR", service="audit", message="s3 down", exception_name="ClientError"),
    ],
}
GROUPS: dict[str, Callable[[], Iterable[LogEvent]]] = {name: events.copy for name, events in EVENTS.items()}


def run(text: str, start: float = 0, end: float = 1e12) -> list[list[str]]:
    return run_query(text, GROUPS, start, end, default_groups=[BOOKING, AUDIT]).as_table()


def test_filter_sort_and_limit_pick_the_matching_lines_in_order() -> None:
    rows = run('fields @timestamp, service, message | filter level = "ERROR" | sort @timestamp desc | limit 2')
    assert rows == [
        ["1970-01-01 00:01:46.000", "audit", "s3 down"],
        ["1970-01-01 00:01:45.000", "booking", "again"],
    ]


def test_nested_json_is_flattened_and_renamed_and_numbers_sort_numerically() -> None:
    rows = run(
        "fields record.requestId as requestId, record.metrics.durationMs as durationMs"
        ' | filter type = "platform.report" | sort durationMs desc'
    )
    assert rows == [["r2", "250"], ["r1", "12.5"]]


def test_source_restricts_the_groups_and_or_joins_conditions() -> None:
    text = f'SOURCE \'{AUDIT}\' | fields message | filter bookingId = "bkg_1" or entityId = "bkg_1"'
    assert run(text) == [["archived"]]
    both = 'fields message | filter bookingId = "bkg_1" or entityId = "bkg_1" | sort @timestamp asc'
    assert run(both) == [["booked"], ["archived"]]


def test_stats_count_and_latest_by_fields() -> None:
    rows = run(
        'filter level = "ERROR" | stats count(*) as errors, latest(message) as last by service, exception_name'
        " | sort errors desc"
    )
    assert rows == [["booking", "KeyError", "2", "again"], ["audit", "ClientError", "1", "s3 down"]]
    assert run("stats pct(record.metrics.durationMs, 50) as p50, avg(record.metrics.durationMs) as mean") == [
        ["12.5", "131.25"]
    ]


def test_like_in_not_comparisons_and_plain_text_lines() -> None:
    assert run("fields @message | filter @message like /^START/") == [["START RequestId: r3 Version: $LATEST"]]
    assert run('fields message | filter message like "oom"') == [["boom"]]
    assert run('fields message | filter exception_name in ["ClientError"]') == [["s3 down"]]
    assert run('fields message | filter level = "ERROR" and not (service = "audit")') == [["boom"], ["again"]]
    assert run("fields requestId | filter record.metrics.durationMs >= 100 | fields record.requestId as requestId") == [
        ["r2"]
    ]


def test_the_time_range_bounds_the_events_and_default_fields_are_timestamp_and_message() -> None:
    rows = run("filter level = 'INFO'", start=100.2, end=101)
    assert len(rows) == 1 and json.loads(rows[0][1])["service"] == "audit"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("fields a | display a", "'display' is not supported"),
        ("stats median(x)", "'median' is not supported"),
        ("filter a ~ 1", "cannot read the query"),
        ("limit 0", "limit must be between"),
        ("SOURCE '/aws/lambda/nope' | fields a", "no log group"),
        ("fields a b", "unexpected 'b'"),
    ],
)
def test_what_is_not_understood_is_refused_by_name(text: str, complaint: str) -> None:
    with pytest.raises(QueryError, match=re.escape(complaint)):
        run(text)


def dashboard_and_saved_queries() -> list[str]:
    body = json.loads((ROOT / "dashboards" / "operations.json").read_text())
    queries = [str(w["properties"]["query"]) for w in body["widgets"] if w["type"] == "log"]
    template = load_template(TEMPLATES / "monitoring.yaml")
    definitions = resources_of_type(template, "AWS::Logs::QueryDefinition").values()
    queries += [str(definition["Properties"]["QueryString"]) for definition in definitions]
    return queries


def test_every_query_of_the_dashboard_and_the_saved_queries_is_understood() -> None:
    queries = dashboard_and_saved_queries()
    assert len(queries) == 5
    for text in queries:
        Query.parse(text.replace("${Stage}", "local"))
