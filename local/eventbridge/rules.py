"""The templates' `AWS::Events::Rule`s, delivering what the buses accepted to their Lambda targets.

The emulator keeps a journal of every event a bus accepted (local/emulator/event_bus.py); this reads
it and does what EventBridge does with each event, as far as the stack's rules use it:

- the event, as targets receive it: `{version: "0", id, detail-type, source, account, time, region,
  resources, detail}`, matched against each enabled rule of its bus with the event-pattern syntax
  Lambda's filters share (local/lambda_runtime/event_filtering.py: the same matcher, the same
  refusals of what it does not implement);
- each matching target invoked asynchronously, with the change's trace header (X-Ray continues the
  trace of the request that made the change): EventBridge hands the event to Lambda's queue for
  asynchronous invocations, which counts as delivered (the rule's `AWS/Events` `Invocations`);
- from there on it is Lambda's: an invocation throttled for concurrency is retried with backoff
  until the event is older than the function's `EventInvokeConfig` `MaximumEventAgeInSeconds`
  (6 hours by default), then dropped, as is one whose function failed (its retries are off: below);
  each drop is Lambda's `AWS/Lambda` `AsyncEventsDropped` for the function.

A target's `RetryPolicy` and `DeadLetterConfig` are EventBridge's for failing to hand an event to
Lambda (Lambda unavailable, no permission): nothing here can fail that way, so they are read but
never used.

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
from local.lambda_runtime.functions import SERVICE_TEMPLATES, FunctionSpec, resolved_resources, unretried_async


class UnsupportedRuleError(ValueError):
    """A rule this emulation would run wrongly: refused at load, never silently skipped."""


@dataclass(frozen=True)
class TargetSpec:
    rule_arn: str
    function: str  # the target function's logical id
    max_event_age_seconds: int  # the function's EventInvokeConfig: how long Lambda's queue keeps trying


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
    by_arn = {local_arn(spec.name): spec for spec in functions.values()}
    invokable = {
        (str(p["FunctionName"]), str(p.get("SourceArn")))
        for p in permissions.values()
        if p.get("Principal") == "events.amazonaws.com" and p.get("Action") == "lambda:InvokeFunction"
    }
    unretried = unretried_async(parameters, templates, service_templates)
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
            targets.append(TargetSpec(rule_arn, spec.logical_id, unretried[spec.name]))
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
        now: Callable[[], float],
        poll_seconds: float = 0.1,
        on_metric: Callable[[str, str, dict[str, str]], None] | None = None,
        backoff_seconds: float = 0.1,
    ) -> None:
        self.rules, self.functions, self.endpoint = rules, functions, emulator_endpoint
        self._now, self.poll_seconds = now, poll_seconds
        self._on_metric = on_metric  # (namespace, metric name, dimensions): one count each
        self.backoff_seconds = backoff_seconds  # the first retry's wait; it doubles, up to 5 s
        self.delivered = 0  # handed to Lambda (the rule's Invocations)
        self.invoked = 0  # of those, run by the function
        self.function_errors = 0  # of those, the function failed: Lambda does not retry (EventInvokeConfig)
        self.dropped = 0  # Lambda's AsyncEventsDropped: throttled past the event's age, or failed
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
        """Hand the event to Lambda (delivered, for EventBridge), then do what Lambda's asynchronous
        queue does with it: retry throttles until the event is too old, then drop it."""
        with self._lock:
            self.delivered += 1
        self._metric("AWS/Events", "Invocations", {"EventBusName": rule.bus, "RuleName": rule.name})
        queued_at = self._now()
        attempt = 0
        while not self._stopping.is_set():
            try:
                invocation = self.functions[target.function].invoke(event, trace_id=trace_header)
            except Throttled:
                attempt += 1
                if self._now() - queued_at > target.max_event_age_seconds:
                    self._drop(target)
                    return
                self._stopping.wait(min(5.0, self.backoff_seconds * 2 ** (attempt - 1)))
                continue
            with self._lock:
                self.invoked += 1
                self.function_errors += invocation.failed
            if invocation.failed:  # MaximumRetryAttempts 0: Lambda drops it
                self._drop(target)
            return

    def _drop(self, target: TargetSpec) -> None:
        with self._lock:
            self.dropped += 1
        name = self.functions[target.function].spec.name
        self._metric("AWS/Lambda", "AsyncEventsDropped", {"FunctionName": name})

    def _metric(self, namespace: str, name: str, dimensions: dict[str, str]) -> None:
        if self._on_metric is not None:
            self._on_metric(namespace, name, dimensions)
