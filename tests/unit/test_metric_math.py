"""CloudWatch's statistics, metric math and alarm evaluation, computed locally: hand-computed cases,
and every expression and rule the templates and the dashboard use."""

from __future__ import annotations

import json
import re

import pytest

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.cloudwatch.metric_math import alarm_state, composite_state, expression, statistic
from tests.conftest import ROOT

VALUES = [4.0, 1.0, 3.0, 2.0, 10.0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Sum", 20.0), ("Average", 4.0), ("Minimum", 1.0), ("Maximum", 10.0), ("SampleCount", 5.0),
     ("p50", 3.0), ("p90", 10.0), ("p99", 10.0), ("p20", 1.0), ("p40", 2.0), ("p99.9", 10.0)],
)  # fmt: skip
def test_statistics_of_one_period(name: str, expected: float) -> None:
    # nearest rank: p50 of 5 values is the 3rd smallest (ceil(2.5)), p20 the 1st, p40 the 2nd
    assert statistic(VALUES, name) == expected


def test_a_period_without_values_has_no_datapoint_and_unknown_statistics_are_refused() -> None:
    assert statistic([], "Sum") is None and statistic([], "p99") is None
    with pytest.raises(ValueError, match="unknown statistic"):
        statistic(VALUES, "Median")


def test_the_burn_rate_expression_judges_only_windows_with_enough_requests() -> None:
    burn = "IF(requests >= 50, (errors / requests) / 0.001, 0)"
    series: dict[str, list[float | None]] = {"errors": [2.0, 1.0, None, 0.0], "requests": [100.0, 10.0, 80.0, 0.0]}
    # 2/100/0.001 = 20; 10 requests is too few (0); a missing input is a missing result; 0 requests: 0
    assert expression(burn, series) == [pytest.approx(20.0), 0.0, None, 0.0]


def test_lists_division_by_zero_and_fill() -> None:
    series: dict[str, list[float | None]] = {"a": [1.0, None], "b": [3.0, 2.0], "zero": [0.0, 0.0]}
    assert expression("SUM([a, b])", series) == [4.0, 2.0]  # SUM skips the missing value
    assert expression("100 * a / MAX([zero, 1])", series) == [100.0, None]
    assert expression("a / zero", series) == [None, None]  # no value, as CloudWatch
    assert expression("FILL(a, 0) + b", series) == [4.0, 2.0]
    with pytest.raises(ValueError, match="unsupported"):
        expression("__import__('os')", series)
    with pytest.raises(ValueError, match="unknown metric id"):
        expression("c + 1", series)


@pytest.mark.parametrize(
    ("datapoints", "treat", "expected"),
    [
        ([3, 0, 3, None, 3], "missing", "ALARM"),  # 3 of the 4 present breach
        ([3, 0, 0, None, 3], "missing", "OK"),  # 2 breach: fewer than 3
        ([3, 0, 0, None, 3], "breaching", "ALARM"),  # the missing one breaches too: 3
        ([3, None, None, None, None], "notBreaching", "OK"),
        ([3, None, None, None, None], "breaching", "ALARM"),
        ([None] * 5, "missing", "INSUFFICIENT_DATA"),
        ([None] * 5, "notBreaching", "OK"),
        ([None] * 5, "breaching", "ALARM"),
    ],
)
def test_m_of_n_with_each_missing_data_treatment(datapoints: list[float | None], treat: str, expected: str) -> None:
    values = [None if v is None else float(v) for v in datapoints]
    state = alarm_state(
        values,
        threshold=2,
        comparison="GreaterThanThreshold",
        datapoints_to_alarm=3,
        treat_missing=treat,  # type: ignore[arg-type]
    )
    assert state == expected


def test_ignore_keeps_the_state_when_nothing_came_in_and_comparisons_are_exact() -> None:
    empty: list[float | None] = [None, None, None]
    kept = alarm_state(
        empty,
        threshold=0,
        comparison="GreaterThanThreshold",
        datapoints_to_alarm=1,
        treat_missing="ignore",
        previous="ALARM",
    )
    assert kept == "ALARM"
    at_threshold = [5.0]
    assert alarm_state(at_threshold, threshold=5, comparison="GreaterThanThreshold", datapoints_to_alarm=1) == "OK"
    assert (
        alarm_state(at_threshold, threshold=5, comparison="GreaterThanOrEqualToThreshold", datapoints_to_alarm=1)
        == "ALARM"
    )
    assert alarm_state([1.0], threshold=5, comparison="LessThanThreshold", datapoints_to_alarm=1) == "ALARM"


def test_composite_rules() -> None:
    rule = 'ALARM("slo-burn-1h") AND ALARM("slo-burn-5m")'
    assert composite_state(rule, {"slo-burn-1h": "ALARM", "slo-burn-5m": "ALARM"}) == "ALARM"
    assert composite_state(rule, {"slo-burn-1h": "ALARM", "slo-burn-5m": "OK"}) == "OK"
    assert composite_state(rule, {"slo-burn-1h": "ALARM"}) == "OK"  # unknown is INSUFFICIENT_DATA
    other = "NOT OK(a) OR (INSUFFICIENT_DATA(b) AND TRUE)"
    assert composite_state(other, {"a": "ALARM", "b": "OK"}) == "ALARM"
    assert composite_state(other, {"a": "OK", "b": "OK"}) == "OK"
    assert composite_state(other, {"a": "OK"}) == "ALARM"


def test_every_expression_and_rule_in_the_templates_and_the_dashboard_is_understood() -> None:
    expressions, rules = [], []
    for path in [*TEMPLATES.glob("*.yaml"), *(TEMPLATES / "alarms").glob("*.yaml")]:
        template = load_template(path)
        for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values():
            expressions += [m["Expression"] for m in alarm["Properties"].get("Metrics", []) if "Expression" in m]
        for composite in resources_of_type(template, "AWS::CloudWatch::CompositeAlarm").values():
            rules.append(str(composite["Properties"]["AlarmRule"]["Fn::Sub"]))
    body = json.loads((ROOT / "dashboards" / "operations.json").read_text())
    for widget in body["widgets"]:
        expressions += [m["expression"] for m in widget.get("properties", {}).get("metrics", []) if isinstance(m, dict)]
    assert len(expressions) >= 10 and len(rules) == 2
    for text in expressions:
        ids = set(re.findall(r"\b([a-z][A-Za-z0-9]*)\b", text))
        inputs: dict[str, list[float | None]] = {name: [1.0, None] for name in ids}
        assert len(expression(text, inputs)) == 2, text
    for rule in rules:
        names = re.findall(r'ALARM\("([^"]+)"\)', rule)
        assert composite_state(rule, dict.fromkeys(names, "ALARM")) == "ALARM"
