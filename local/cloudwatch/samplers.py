"""Metrics AWS services publish to CloudWatch on their own, sampled from the local stand-ins.

In AWS, SQS publishes its queues' depth and DynamoDB its throttles, system errors and consumed
capacity without anyone asking. Locally the alarm evaluator calls these samplers before each
evaluation: the dead-letter queue's visible messages come from the emulator's SQS, and DynamoDB's
figures from the emulator's own counts (the faults it injected, `local/emulator/faults.py`, and the
units it metered, `local/emulator/capacity.py`), each turned into the datapoints since the last look.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from local.cloudwatch.metric_store import READS, MetricStore


class ServiceSamplers:
    """The samplers of one stack. The stack stops its alarm evaluator, which calls them, before the
    emulator they read, and the evaluator records a sampler's failure rather than raise it."""

    def __init__(self, metrics: MetricStore, emulator_endpoint: str, now: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self._now = now
        self.emulator_endpoint = emulator_endpoint
        self._faults_seen: dict[str, int] = {}
        self._capacity_seen: dict[str, dict[str, float]] = {}

    def queue_depth(self, sqs: Any, url: str) -> None:
        """What CloudWatch samples for SQS: the queue's visible messages."""
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        visible = float(attributes["Attributes"]["ApproximateNumberOfMessages"])
        name = url.rsplit("/", 1)[-1]
        self.metrics.put("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": name}, visible, self._now())

    def injected_faults(self) -> None:
        """DynamoDB's own throttle and error metrics for the faults the emulator injected since the last look."""
        with urllib.request.urlopen(f"{self.emulator_endpoint}/_faults", timeout=10) as answer:
            injected: dict[str, int] = json.load(answer)["injected"]
        now = self._now()
        for key, total in injected.items():
            kind, table, operation = key.split(" ", 2)
            new = total - self._faults_seen.get(key, 0)
            self._faults_seen[key] = total
            if new <= 0 or kind not in {"Throttle", "SystemError"}:
                continue
            if kind == "Throttle":
                name = "ReadThrottleEvents" if operation in READS else "WriteThrottleEvents"
            else:
                name = "SystemErrors"
            self.metrics.put("AWS/DynamoDB", name, {"TableName": table}, new, now)

    def consumed_capacity(self) -> None:
        """DynamoDB's ConsumedRead/WriteCapacityUnits for what the tables served since the last look."""
        with urllib.request.urlopen(f"{self.emulator_endpoint}/_capacity?totals", timeout=10) as answer:
            totals: dict[str, dict[str, float]] = json.load(answer)["totals"]
        now = self._now()
        for table, units in totals.items():
            seen = self._capacity_seen.setdefault(table, {"read": 0.0, "write": 0.0})
            for kind, name in (("read", "ConsumedReadCapacityUnits"), ("write", "ConsumedWriteCapacityUnits")):
                new = units[kind] - seen[kind]
                seen[kind] = units[kind]
                if new > 0:
                    self.metrics.put("AWS/DynamoDB", name, {"TableName": table}, new, now)
