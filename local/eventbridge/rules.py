"""The templates' `AWS::Events::Rule`s, delivering what the buses accepted to their Lambda targets.

The emulator keeps a journal of every event a bus accepted (local/emulator/event_bus.py); this reads
it and does what EventBridge does with each event, as far as the stack's rules use it:

- the event, as targets receive it: `{version: "0", id, detail-type, source, account, time, region,
  resources, detail}`, matched against each enabled rule of its bus with the event-pattern syntax
  Lambda's filters share (local/lambda_runtime/event_filtering.py: the same matcher, the same
  refusals of what it does not implement);
- each matching target invoked asynchronously, with the change's trace header (X-Ray continues the
  trace of the request that made the change);
- an invocation refused for concurrency (throttled) retried with backoff, within the target's
  `RetryPolicy` (`MaximumRetryAttempts`, 185 by default; `MaximumEventAgeInSeconds`, 86400 by
  default, on the stack's clock); then sent to its `DeadLetterConfig` queue, or dropped without one;
- the rule's AWS/Events metrics: `Invocations` (handed to Lambda, whatever the function then does:
  its errors are Lambda's `Errors`), `FailedInvocations` (given up on), `DeadLetterInvocations`.

Refused when loaded, so a template that needs more fails the stack's start instead of running
differently here: schedule rules, a target that is no function of the stack, `Input`,
`InputPath` or `InputTransformer`, a function without an `AWS::Lambda::Permission` letting
`events.amazonaws.com` invoke it from that rule (AWS would not invoke it either), and a target
function without an `EventInvokeConfig` turning Lambda's own retries of a failed invocation off:
Lambda would retry it twice, and this emulation does not.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.templates import TEMPLATES
from local.account import ACCOUNT_ID, REGION
from local.cloudformation.resolver import local_arn
from local.lambda_runtime.event_filtering import EventFilter
from local.lambda_runtime.function_runtime import FunctionRuntime, Throttled
from local.lambda_runtime.functions import SERVICE_TEMPLATES, FunctionSpec, resolved_resources


class UnsupportedRuleError(ValueError):
    """A rule this emulation would run wrongly: refused at load, never silently skipped."""


@dataclass(frozen=True)
class TargetSpec:
    rule_arn: str
    function: str  # the target function's logical id
    max_retries: int
    max_age_seconds: int
    dead_letter_arn: str | None


@dataclass(frozen=True)
class RuleSpec:
    name: str
    bus: str
    pattern: EventFilter
    targets: tuple[TargetSpec, ...]

    def matches(self, event: dict[str, Any]) -> bool:
        return self.pattern.keeps(event)


def load_rules(
    parameters: dict[str, str],
    functions: dict[str, FunctionSpec],
    templates: Path = TEMPLATES,
    service_templates: tuple[str, ...] = SERVICE_TEMPLATES,
) -> list[RuleSpec]:
    """The templates' enabled rules on their buses, checked against what this emulation does."""
    rules = resolved_resources("AWS::Events::Rule", parameters, templates, service_templates)
    permissions = resolved_resources("AWS::Lambda::Permission", parameters, templates, service_templates)
    configs = resolved_resources("AWS::Lambda::EventInvokeConfig", parameters, templates, service_templates)
    by_arn = {local_arn(spec.name): spec for spec in functions.values()}
    invokable = {
        (str(p["FunctionName"]), str(p.get("SourceArn")))
        for p in permissions.values()
        if p.get("Principal") == "events.amazonaws.com" and p.get("Action") == "lambda:InvokeFunction"
    }
    unretried = {
        str(c["FunctionName"]).rsplit(":", 1)[-1]
        for c in configs.values()
        if int(c.get("MaximumRetryAttempts", 2)) == 0 and c.get("Qualifier") == "$LATEST"
    }
    found = []
    for logical_id, properties in rules.items():
        if "ScheduleExpression" in properties:
            raise UnsupportedRuleError(f"{logical_id}: schedule rules are not emulated (use EventBridge Scheduler)")
        if properties.get("State", "ENABLED") != "ENABLED":
            continue
        rule_arn = local_arn(str(properties.get("Name", logical_id)))
        targets = []
        for target in properties.get("Targets", []):
            spec = by_arn.get(str(target["Arn"]))
            if spec is None:
                raise UnsupportedRuleError(f"{logical_id}: target {target.get('Id')} is no function of the stack")
            if {"Input", "InputPath", "InputTransformer"} & set(target):
                raise UnsupportedRuleError(f"{logical_id}: a target's Input, InputPath or InputTransformer")
            if (str(target["Arn"]), rule_arn) not in invokable:
                raise UnsupportedRuleError(
                    f"{logical_id}: no AWS::Lambda::Permission lets events.amazonaws.com invoke {spec.logical_id} "
                    "from this rule, so EventBridge could not"
                )
            if spec.name not in unretried:
                raise UnsupportedRuleError(
                    f"{logical_id}: Lambda would retry a failed invocation of {spec.logical_id} twice; give it an "
                    "EventInvokeConfig with MaximumRetryAttempts 0, as emulated"
                )
            policy = target.get("RetryPolicy", {})
            targets.append(
                TargetSpec(
                    rule_arn=rule_arn,
                    function=spec.logical_id,
                    max_retries=int(policy.get("MaximumRetryAttempts", 185)),
                    max_age_seconds=int(policy.get("MaximumEventAgeInSeconds", 86_400)),
                    dead_letter_arn=target.get("DeadLetterConfig", {}).get("Arn"),
                )
            )
        pattern = EventFilter.from_criteria({"Filters": [{"Pattern": json.dumps(properties["EventPattern"])}]})
        assert pattern is not None
        bus = str(properties.get("EventBusName", "default")).rsplit("/", 1)[-1]
        found.append(RuleSpec(str(properties.get("Name", logical_id)), bus, pattern, tuple(targets)))
    return found


def target_event(entry: dict[str, Any]) -> dict[str, Any]:
    """A journal entry as EventBridge hands it to rules and targets."""
    return {
        "version": "0",
        "id": entry["eventId"],
        "detail-type": entry["detailType"],
        "source": entry["source"],
        "account": ACCOUNT_ID,
        "time": entry["time"],
        "region": REGION,
        "resources": entry["resources"],
        "detail": json.loads(entry["detail"] or "{}"),
    }


class EventRules:
    """Reads the emulator's journal on a thread of its own and delivers each event to its rules' targets."""

    def __init__(
        self,
        rules: list[RuleSpec],
        functions: dict[str, FunctionRuntime],
        emulator_endpoint: str,
        sqs: Any,
        now: Callable[[], float],
        poll_seconds: float = 0.1,
        on_metric: Callable[[str, RuleSpec], None] | None = None,
        backoff_seconds: float = 0.1,
    ) -> None:
        self.rules, self.functions, self.endpoint, self.sqs = rules, functions, emulator_endpoint, sqs
        self._now, self.poll_seconds = now, poll_seconds
        self._on_metric = on_metric  # (AWS/Events metric name, rule): one count each
        self.backoff_seconds = backoff_seconds  # the first retry's wait; it doubles, up to 5 s
        self.delivered = 0  # handed to the function (Invocations)
        self.function_errors = 0  # of those, the function failed: Lambda does not retry (EventInvokeConfig)
        self.dead_lettered = 0
        self.dropped = 0  # retries or age exhausted, and no dead-letter queue
        self._lock = threading.Lock()
        self._after = 0
        self._caught_up = threading.Condition()
        self._read_up_to = 0.0  # when the last read that found nothing new started
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="eventbridge-target")
        self._thread = threading.Thread(target=self._run, name="eventbridge-rules", daemon=True)

    def start(self) -> EventRules:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def journal(self, after: int = 0) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_events?after={after}", timeout=10) as answer:
            journal: dict[str, Any] = json.load(answer)
        return journal

    def _run(self) -> None:
        while not self._stopping.is_set():
            asked_at = time.monotonic()
            try:
                entries = self.journal(self._after)["events"]
            except OSError:
                entries = []  # the emulator is stopping with the stack
            for entry in entries:
                self._after = entry["sequence"]
                event = target_event(entry)
                for rule in self.rules:
                    if rule.bus == entry["eventBusName"] and rule.matches(event):
                        for target in rule.targets:
                            self._pool.submit(self._deliver, rule, target, event, entry.get("traceHeader"))
            if not entries:
                with self._caught_up:
                    self._read_up_to = asked_at
                    self._caught_up.notify_all()
                self._stopping.wait(self.poll_seconds)

    def wait_caught_up(self, timeout: float = 30.0) -> bool:
        """Wait until every event accepted before this call has been handed to its targets' invokers."""
        asked_at = time.monotonic()
        with self._caught_up:
            return self._caught_up.wait_for(lambda: self._read_up_to >= asked_at, timeout)

    def _deliver(self, rule: RuleSpec, target: TargetSpec, event: dict[str, Any], trace_header: str | None) -> None:
        accepted_at = self._now()
        attempt = 0
        while not self._stopping.is_set():
            try:
                invocation = self.functions[target.function].invoke(event, trace_id=trace_header)
            except Throttled:
                attempt += 1
                too_old = self._now() - accepted_at > target.max_age_seconds
                if attempt > target.max_retries or too_old:
                    self._give_up(rule, target, event, "MaxRetriesExceeded" if not too_old else "MaxEventAgeExceeded")
                    return
                self._stopping.wait(min(5.0, self.backoff_seconds * 2 ** (attempt - 1)))  # exponential, as EventBridge
                continue
            with self._lock:
                self.delivered += 1
                self.function_errors += invocation.failed
            self._metric("Invocations", rule)
            return

    def _metric(self, name: str, rule: RuleSpec) -> None:
        if self._on_metric is not None:
            self._on_metric(name, rule)

    def _give_up(self, rule: RuleSpec, target: TargetSpec, event: dict[str, Any], code: str) -> None:
        """What EventBridge does with an event it could not deliver: to the target's DLQ, with why."""
        self._metric("FailedInvocations", rule)
        with self._lock:
            if target.dead_letter_arn is None:
                self.dropped += 1
                return
            self.dead_lettered += 1
        self._metric("DeadLetterInvocations", rule)
        queue_name = target.dead_letter_arn.rsplit(":", 1)[-1]
        url = self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self.sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(event),
            MessageAttributes={
                "ERROR_CODE": {"DataType": "String", "StringValue": code},
                "RULE_ARN": {"DataType": "String", "StringValue": target.rule_arn},
            },
        )
