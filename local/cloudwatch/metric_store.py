"""The local stack's CloudWatch metrics: what CloudWatch would hold for the same traffic.

- The functions' EMF lines become datapoints, as CloudWatch Logs extracts them in AWS: one value per
  metric and dimension set of each document, at the document's timestamp.
- The runtime's invocations become AWS/Lambda `Invocations`, `Errors` and `Duration` (and
  `LambdaInsights` `init_duration` on cold starts), by `FunctionName`.
- The gateway's requests become AWS/ApiGateway `Count`, `4XXError`, `5XXError`, `Latency` and
  `IntegrationLatency`, by `ApiName` and `Stage` and, like detailed metrics, also by `Resource` and
  `Method`.
- The functions' DynamoDB client spans (at the local X-Ray daemon) become AWS/DynamoDB
  `SuccessfulRequestLatency` (by `TableName` and `Operation`), `ReadThrottleEvents` /
  `WriteThrottleEvents`, `SystemErrors` and `ConditionalCheckFailedRequests` (by `TableName`): the
  table as its clients saw it.
- Throttled invocations, concurrency, the stream's iterator age and the DLQ's depth come from the
  runtime, the event source mapping and a sampler (`put`).

`datapoints` answers a statistic per period, as GetMetricData would (`metric_math.py` computes
the statistics).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local.cloudwatch.metric_math import Datapoint, statistic

if TYPE_CHECKING:
    from local.lambda_runtime.function_runtime import Invocation
    from local.lambda_runtime.functions import FunctionSpec

Dimensions = tuple[tuple[str, str], ...]
KEEP_SECONDS = 24 * 3600  # a laptop's day of datapoints
MAX_DATAPOINTS = 100_800  # what one GetMetricData call returns at most
THROTTLING = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "GetRecords"}


@dataclass(frozen=True)
class MetricId:
    namespace: str
    name: str
    dimensions: Dimensions

    @classmethod
    def of(cls, namespace: str, name: str, dimensions: Mapping[str, str]) -> MetricId:
        return cls(namespace, name, tuple(sorted(dimensions.items())))


class MetricStore:
    def __init__(self, api_name: str, stage: str, now: Callable[[], float] = time.time) -> None:
        self.api_name, self.stage = api_name, stage
        self._now = now  # the stack's clock: what the stack itself records is stamped in its time
        self._values: dict[MetricId, list[tuple[float, float]]] = defaultdict(list)
        self._lock = threading.Lock()

    def put(self, namespace: str, name: str, dimensions: Mapping[str, str], value: float, at: float) -> None:
        with self._lock:
            series = self._values[MetricId.of(namespace, name, dimensions)]
            series.append((at, float(value)))
            while series and series[0][0] < at - KEEP_SECONDS:
                series.pop(0)

    def metrics(self) -> list[MetricId]:
        with self._lock:
            return sorted(self._values, key=lambda m: (m.namespace, m.name, m.dimensions))

    def datapoints(
        self, metric: MetricId, stat: str, period: int, start: float, end: float
    ) -> list[tuple[float, Datapoint]]:
        """One value of `stat` per `period` seconds from `start` (aligned to the period) to `end`."""
        first = int(start // period * period)
        buckets: dict[int, list[float]] = defaultdict(list)
        with self._lock:
            for at, value in self._values.get(metric, []):
                if first <= at < end:
                    buckets[int((at - first) // period)].append(value)
        count = max(1, int((end - first + period - 1) // period))
        if count > MAX_DATAPOINTS:
            raise ValueError(f"{count} datapoints asked for; at most {MAX_DATAPOINTS}")
        return [(first + i * period, statistic(buckets.get(i, []), stat)) for i in range(count)]

    # --- what feeds it -------------------------------------------------------------------------

    def add_log_line(self, line: str) -> None:
        """A function's log line: an EMF document becomes datapoints; anything else is ignored."""
        if '"_aws"' not in line:
            return
        try:
            document = json.loads(line)
        except ValueError:
            return
        if isinstance(document, dict) and isinstance(document.get("_aws"), dict):
            self.add_emf(document)

    def add_emf(self, document: Mapping[str, Any]) -> None:
        metadata = document["_aws"]
        at = float(metadata.get("Timestamp", self._now() * 1000)) / 1000
        for directive in metadata.get("CloudWatchMetrics", []):
            for dimension_set in directive.get("Dimensions", [[]]):
                dimensions = {name: str(document[name]) for name in dimension_set if name in document}
                for metric in directive.get("Metrics", []):
                    raw = document.get(metric["Name"])
                    for value in raw if isinstance(raw, list) else [raw]:
                        if isinstance(value, int | float):
                            self.put(directive["Namespace"], metric["Name"], dimensions, value, at)

    def on_invocation(self, spec: FunctionSpec, invocation: Invocation) -> None:
        """The AWS/Lambda metrics of one invocation."""
        now = self._now()
        function = {"FunctionName": spec.name}
        self.put("AWS/Lambda", "Invocations", function, 1, now)
        self.put("AWS/Lambda", "Errors", function, 1 if invocation.failed else 0, now)
        report = invocation.report
        if report is not None:
            self.put("AWS/Lambda", "Duration", function, report.duration_ms, now)
            if report.init_duration_ms is not None:
                self.put("LambdaInsights", "init_duration", {"function_name": spec.name}, report.init_duration_ms, now)

    def on_start(self, spec: FunctionSpec, running: int) -> None:
        """An invocation starting (`running` executions now) or throttled (`running` 0)."""
        function = {"FunctionName": spec.name}
        if running == 0:
            self.put("AWS/Lambda", "Throttles", function, 1, self._now())
        else:
            self.put("AWS/Lambda", "ConcurrentExecutions", function, running, self._now())

    def on_request(self, record: Mapping[str, Any]) -> None:
        """The AWS/ApiGateway metrics of one request, from its access-log record."""
        now = self._now()
        stage = {"ApiName": self.api_name, "Stage": self.stage}
        scopes = [stage]
        if record.get("resourcePath", "-") != "-":
            scopes.append({**stage, "Resource": record["resourcePath"], "Method": record["httpMethod"]})
        status = int(record["status"])
        for dimensions in scopes:
            self.put("AWS/ApiGateway", "Count", dimensions, 1, now)
            self.put("AWS/ApiGateway", "4XXError", dimensions, 1 if 400 <= status < 500 else 0, now)
            self.put("AWS/ApiGateway", "5XXError", dimensions, 1 if status >= 500 else 0, now)
            self.put("AWS/ApiGateway", "Latency", dimensions, float(record["responseLatency"]), now)
            if record.get("integrationLatency") is not None:
                self.put("AWS/ApiGateway", "IntegrationLatency", dimensions, float(record["integrationLatency"]), now)

    def on_span(self, document: Mapping[str, Any]) -> None:
        """The AWS/DynamoDB metrics of one DynamoDB call, from its client span."""
        aws = document.get("aws") or {}
        if document.get("namespace") != "aws" or document.get("name") != "DynamoDB" or not aws.get("table_name"):
            return
        at = float(document.get("end_time", self._now()))
        table, operation = str(aws["table_name"]).split(",")[0], str(aws.get("operation", ""))
        status = int(((document.get("http") or {}).get("response") or {}).get("status", 200))
        code = str(((document.get("metadata") or {}).get("otel") or {}).get("attributes", {}).get("aws.error_code", ""))
        by_table = {"TableName": table}
        if status < 400:
            latency = (at - float(document.get("start_time", at))) * 1000
            self.put("AWS/DynamoDB", "SuccessfulRequestLatency", {**by_table, "Operation": operation}, latency, at)
        elif code in THROTTLING:
            kind = "ReadThrottleEvents" if operation in READS else "WriteThrottleEvents"
            self.put("AWS/DynamoDB", kind, by_table, 1, at)
        elif status >= 500:
            self.put("AWS/DynamoDB", "SystemErrors", by_table, 1, at)
        if code in {"ConditionalCheckFailedException", "TransactionCanceledException"}:
            self.put("AWS/DynamoDB", "ConditionalCheckFailedRequests", by_table, 1, at)
