"""The alarms of the CloudFormation templates, evaluated on the local stack's metrics.

moto stores alarms but never evaluates them. Here every `AWS::CloudWatch::Alarm` and
`AWS::CloudWatch::CompositeAlarm` of the stage's templates (the nested function alarms once per
service) is resolved as CloudFormation would resolve it. Each evaluation takes the last
`EvaluationPeriods` full periods of its metric, or its metric math, from the `MetricStore` and applies
`DatapointsToAlarm`, the threshold and `TreatMissingData` (`metric_math.py`). Composite alarms
then follow their rules. A state change is kept in the alarm's history and written to
`logs/alarms.log` as the JSON message CloudWatch publishes to the alarm's SNS topic.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.account import ACCOUNT_ID, REGION
from local.cloudformation.resolver import local_arn, physical_names, resolver_for
from local.cloudwatch.metric_math import Datapoint, State, alarm_state, composite_state, expression
from local.cloudwatch.metric_store import MetricId, MetricStore

ALARM_TEMPLATES = ("data.yaml", "availability.yaml", "booking.yaml", "audit.yaml", "monitoring.yaml")


@dataclass
class Alarm:
    name: str
    properties: dict[str, Any]
    composite: bool = False
    state: State = "INSUFFICIENT_DATA"
    reason: str = "Unchecked: initial alarm creation"
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def actions(self) -> list[str]:
        return [str(action) for action in self.properties.get("AlarmActions", [])]


def load_alarms(parameters: dict[str, str], templates: Path = TEMPLATES) -> list[Alarm]:
    """Every alarm of the stage's templates, resolved with `parameters` (Stage, the data stack's outputs)."""
    alarms: list[Alarm] = []
    for name in ALARM_TEMPLATES:
        alarms += _alarms_of(templates / name, parameters, templates)
    return alarms


def _alarms_of(path: Path, parameters: dict[str, str], templates: Path) -> list[Alarm]:
    template = load_template(path)
    own = {k: v for k, v in parameters.items() if k in template.get("Parameters", {})}
    names = physical_names(template, resolver_for(template, own))
    topics = resources_of_type(template, "AWS::SNS::Topic")
    names |= {logical_id: f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{names[logical_id]}" for logical_id in topics}
    attributes = {f"{logical_id}.Arn": local_arn(name) for logical_id, name in names.items()}
    attributes |= {f"{logical_id}.QueueName": name for logical_id, name in names.items()}
    resolver = resolver_for(template, own, resources=names, attributes=attributes)
    found = [
        Alarm(str(properties["AlarmName"]), properties)
        for properties in (
            resolver.resolve(r["Properties"]) for r in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        )
    ]
    found += [
        Alarm(str(properties["AlarmName"]), properties, composite=True)
        for properties in (
            resolver.resolve(r["Properties"])
            for r in resources_of_type(template, "AWS::CloudWatch::CompositeAlarm").values()
        )
    ]
    for nested in resources_of_type(template, "AWS::CloudFormation::Stack").values():
        nested_parameters = {k: str(v) for k, v in resolver.resolve(nested["Properties"]["Parameters"]).items()}
        found += _alarms_of(templates / nested["Properties"]["TemplateURL"], nested_parameters, templates)
    return found


class AlarmEvaluator:
    """Evaluates every alarm each `interval` seconds on a background thread (and on demand)."""

    def __init__(
        self,
        alarms: list[Alarm],
        metrics: MetricStore,
        log_path: Path,
        interval: float = 10.0,
        samplers: list[Callable[[], None]] | None = None,
        time_scale: float = 1.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.alarms = {alarm.name: alarm for alarm in alarms}
        self._now = now  # the stack's clock: evaluation windows end at its now
        # > 1 compresses time for drills: with 60, an alarm's one-minute period lasts one second here.
        self.time_scale = time_scale
        self.samplers = samplers or []  # gauges read before each evaluation (e.g. the DLQ's depth)
        self.errors: list[str] = []  # the last failures of the background evaluation, for the status
        self.metrics, self.interval = metrics, interval
        self._log = log_path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alarm-evaluator", daemon=True)

    def start(self) -> AlarmEvaluator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._log.close()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.evaluate()
            except Exception as error:  # one bad evaluation must not stop the alarms for good
                self.errors.append(f"{type(error).__name__}: {error}")
                del self.errors[:-20]

    def evaluate(self, now: float | None = None) -> dict[str, State]:
        """Evaluate every alarm once, metric alarms first, then composites; answer the states."""
        now = self._now() if now is None else now
        for sample in self.samplers:
            sample()
        with self._lock:
            for alarm in self._ordered():
                if alarm.composite:
                    states = {name: other.state for name, other in self.alarms.items()}
                    rule = str(alarm.properties["AlarmRule"])
                    self._set(alarm, composite_state(rule, states), f"{rule} evaluated", now)
                else:
                    datapoints = self._datapoints(alarm.properties, now)
                    state = alarm_state(
                        datapoints,
                        threshold=float(alarm.properties["Threshold"]),
                        comparison=str(alarm.properties["ComparisonOperator"]),
                        datapoints_to_alarm=int(
                            alarm.properties.get("DatapointsToAlarm", alarm.properties["EvaluationPeriods"])
                        ),
                        treat_missing=alarm.properties.get("TreatMissingData", "missing"),
                        previous=alarm.state,
                    )
                    shown = ["-" if value is None else f"{value:g}" for value in datapoints]
                    self._set(alarm, state, f"datapoints (oldest first) [{', '.join(shown)}]", now)
            return {name: alarm.state for name, alarm in self.alarms.items()}

    def _ordered(self) -> Iterator[Alarm]:
        yield from (alarm for alarm in self.alarms.values() if not alarm.composite)
        yield from (alarm for alarm in self.alarms.values() if alarm.composite)

    def window(self, name: str, now: float | None = None) -> list[Datapoint]:
        """The datapoints (or metric-math values) the alarm's evaluation at `now` reads, oldest first:
        its last `EvaluationPeriods` full periods before the stack's now."""
        return self._datapoints(self.alarms[name].properties, self._now() if now is None else now)

    def _datapoints(self, properties: dict[str, Any], now: float) -> list[Datapoint]:
        """The alarm's last `EvaluationPeriods` full periods, oldest first."""
        count = int(properties["EvaluationPeriods"])
        if "Metrics" not in properties:
            stat = str(properties.get("ExtendedStatistic") or properties["Statistic"])
            return self._series(properties, stat, int(properties["Period"]), count, now)
        series: dict[str, list[Datapoint]] = {}
        result: str | None = None
        for query in properties["Metrics"]:
            if "MetricStat" in query:
                stat = query["MetricStat"]
                series[query["Id"]] = self._series(stat["Metric"], stat["Stat"], int(stat["Period"]), count, now)
            if query.get("ReturnData", True) and "Expression" in query:
                result = str(query["Expression"])
        if result is None:
            (only,) = series.values()
            return only
        return expression(result, series)

    def _series(self, metric: dict[str, Any], stat: str, period: int, count: int, now: float) -> list[Datapoint]:
        period = max(1, round(period / self.time_scale))
        dimensions = {str(d["Name"]): str(d["Value"]) for d in metric.get("Dimensions", [])}
        metric_id = MetricId.of(str(metric["Namespace"]), str(metric["MetricName"]), dimensions)
        end = now // period * period  # only full periods count
        return [value for _, value in self.metrics.datapoints(metric_id, stat, period, end - count * period, end)]

    def _set(self, alarm: Alarm, state: State, reason: str, now: float) -> None:
        if state == alarm.state:
            return
        at = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        change = {"timestamp": at, "oldState": alarm.state, "newState": state, "reason": reason}
        alarm.history.append(change)
        message = {
            "AlarmName": alarm.name,
            "AlarmDescription": alarm.properties.get("AlarmDescription"),
            "NewStateValue": state,
            "NewStateReason": reason,
            "StateChangeTime": at,
            "OldStateValue": alarm.state,
            "Region": REGION,
            "TopicArns": alarm.actions,  # where SNS would deliver it
        }
        alarm.state, alarm.reason = state, reason
        self._log.write(json.dumps(message) + "\n")
        self._log.flush()

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "name": a.name,
                    "state": a.state,
                    "reason": a.reason,
                    "composite": a.composite,
                    "history": a.history[-20:],
                }
                for a in sorted(self.alarms.values(), key=lambda a: a.name)
            ]
