"""The local EventBridge: the templates' rules, read as CloudFormation resolves them, with what the
emulation would run wrongly refused when loaded (a target AWS could not invoke without its permission,
or one Lambda would retry); an event handed to Lambda's asynchronous queue, which retries throttles
until the function's maximum event age and drops what it gives up on (AsyncEventsDropped); and the
emulator's PutEvents: AWS's refusals of a call, injected entry failures answered in place, what was
accepted in its journal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.emulator.event_bus import EventBusTap
from local.eventbridge import rules as event_rules
from local.eventbridge.rules import EventRules, RuleSpec, TargetSpec, UnsupportedRuleError, load_rules, target_event
from local.lambda_runtime import functions as function_specs
from local.lambda_runtime.function_runtime import Invocation, Throttled
from local.lambda_runtime.functions import load_functions
from tests.unit.test_scheduler import PARAMETERS

FUNCTIONS = load_functions(PARAMETERS)  # read once: each read parses every service template
EVENT = target_event(
    {
        "eventId": "e-1",
        "detailType": "booking.cancelled",
        "source": "appointments",
        "time": "2026-12-01T09:00:00Z",
        "resources": [],
        "detail": json.dumps({"id": "evt_1", "data": {"providerId": "prv_1"}}),
    }
)


def waitlist_rule() -> RuleSpec:
    (rule,) = [rule for rule in load_rules(PARAMETERS, FUNCTIONS) if rule.name.endswith("-waitlist")]
    return rule


def test_the_templates_rules_are_read_from_the_booking_template() -> None:
    rules = {rule.name: rule for rule in load_rules(PARAMETERS, FUNCTIONS)}
    assert set(rules) == {"appointments-test-waitlist", "appointments-test-webhooks", "appointments-test-notifications"}
    rule = rules["appointments-test-waitlist"]
    assert rule.bus == "appointments-test"
    (target,) = rule.targets
    # Lambda's queue keeps trying a throttled event as long as the function's EventInvokeConfig says
    assert (target.function, target.max_event_age_seconds) == ("WaitlistFunction", 60)
    assert rule.matches(EVENT)
    assert not rule.matches({**EVENT, "detail-type": "booking.created"})
    assert not rule.matches({**EVENT, "source": "someone.else"})
    # the webhook dispatcher hears every domain event, and nothing else
    webhooks = rules["appointments-test-webhooks"]
    assert [(t.function, t.max_event_age_seconds) for t in webhooks.targets] == [("WebhookFunction", 3600)]
    assert webhooks.matches({**EVENT, "detail-type": "booking.created"})
    assert not webhooks.matches({**EVENT, "source": "someone.else"})
    # the notifications function hears the booking events a customer is told of (and those that end a
    # booking, to drop its reminder), and nothing else
    notifications = rules["appointments-test-notifications"]
    assert [(t.function, t.max_event_age_seconds) for t in notifications.targets] == [("NotificationFunction", 3600)]
    for told in ("booking.created", "booking.approved", "booking.rescheduled", "booking.cancelled", "booking.declined"):
        assert notifications.matches({**EVENT, "detail-type": told}), told
    for other in ("hold.created", "waitlist.offered", "schedule.changed"):
        assert not notifications.matches({**EVENT, "detail-type": other}), other


def without(kind: str, change: Any = None) -> Any:
    """`resolved_resources` as the loader calls it, with one kind of resource removed or changed."""
    real = event_rules.resolved_resources

    def resolved(resource_type: str, *args: Any) -> dict[str, Any]:
        found = real(resource_type, *args)
        if resource_type != kind:
            return found
        return change(found) if change else {}

    return resolved


def changed_target(**fields: Any) -> Any:
    def change(found: dict[str, Any]) -> dict[str, Any]:
        rule = found["WaitlistRule"]
        return {"WaitlistRule": {**rule, "Targets": [{**rule["Targets"][0], **fields}]}}

    return change


@pytest.mark.parametrize(
    ("kind", "change", "refusal"),
    [
        # AWS invokes a function from a rule only with a resource policy naming that rule
        ("AWS::Lambda::Permission", None, "AWS::Lambda::Permission"),
        (
            "AWS::Lambda::Permission",
            lambda found: {k: {**v, "SourceArn": "arn:aws:events:::rule/another"} for k, v in found.items()},
            "from this rule",
        ),
        # Lambda would retry a failed asynchronous invocation twice; the emulation does not
        ("AWS::Lambda::EventInvokeConfig", None, "MaximumRetryAttempts 0"),
        ("AWS::Events::Rule", changed_target(InputTransformer={"InputTemplate": "{}"}), "InputTransformer"),
        ("AWS::Events::Rule", changed_target(Arn="arn:aws:sqs:us-east-1:123456789012:q"), "no function"),
        (
            "AWS::Events::Rule",
            lambda found: {"R": {**found["WaitlistRule"], "ScheduleExpression": "rate(1 minute)"}},
            "schedule rules",
        ),
    ],
)
def test_what_the_emulation_would_run_wrongly_is_refused_when_loaded(
    monkeypatch: pytest.MonkeyPatch, kind: str, change: Any, refusal: str
) -> None:
    changed = without(kind, change)
    monkeypatch.setattr(event_rules, "resolved_resources", changed)
    monkeypatch.setattr(function_specs, "resolved_resources", changed)  # the EventInvokeConfigs are read there
    with pytest.raises(UnsupportedRuleError, match=refusal):
        load_rules(PARAMETERS, FUNCTIONS)


class Runtime:
    """A function that is throttled `throttles` times, then runs (failing when told to)."""

    spec = type("Spec", (), {"name": "appointments-test-waitlist"})()

    def __init__(self, throttles: int, fails: bool = False) -> None:
        self.throttles, self.fails = throttles, fails
        self.calls: list[tuple[Any, str | None]] = []

    def invoke(self, event: Any, *, trace_id: str | None = None) -> Invocation:
        self.calls.append((event, trace_id))
        if len(self.calls) <= self.throttles:
            raise Throttled("F")
        return Invocation("r", error={"errorType": "Boom"} if self.fails else None)


class Clock:
    """The stack's clock, moved a second by each look (a throttled retry takes time)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def deliver(runtime: Runtime, max_age: int = 60) -> tuple[EventRules, list[tuple[str, str, dict[str, str]]]]:
    metrics: list[tuple[str, str, dict[str, str]]] = []
    loaded = waitlist_rule()
    target = TargetSpec("arn:rule", "F", max_age)
    rule = RuleSpec(loaded.name, loaded.bus, loaded.pattern, (target,))
    rules = EventRules(
        [rule],
        {"F": runtime},  # type: ignore[dict-item]
        "http://unused",
        Clock(),
        on_metric=lambda *metric: metrics.append(metric),
        backoff_seconds=0.0001,
    )
    rules._deliver(rule, target, EVENT, "Root=1-abc;Parent=def")
    return rules, metrics


INVOCATIONS = (
    "AWS/Events",
    "Invocations",
    {"EventBusName": "appointments-test", "RuleName": "appointments-test-waitlist"},
)
DROPPED = ("AWS/Lambda", "AsyncEventsDropped", {"FunctionName": "appointments-test-waitlist"})


def test_a_throttled_event_is_retried_by_lambdas_queue_and_reaches_the_function_with_the_changes_trace() -> None:
    runtime = Runtime(throttles=2)
    rules, metrics = deliver(runtime)
    assert len(runtime.calls) == 3 and runtime.calls[-1] == (EVENT, "Root=1-abc;Parent=def")
    assert (rules.delivered, rules.invoked, rules.dropped, metrics) == (1, 1, 0, [INVOCATIONS])


def test_an_event_throttled_past_the_functions_maximum_event_age_is_dropped_by_lambda() -> None:
    runtime = Runtime(throttles=10_000)
    rules, metrics = deliver(runtime, max_age=5)
    # delivered for EventBridge (handed to Lambda), dropped by Lambda once older than 5 s
    assert 3 <= len(runtime.calls) <= 6 and (rules.delivered, rules.invoked, rules.dropped) == (1, 0, 1)
    assert metrics == [INVOCATIONS, DROPPED]


def test_a_function_error_is_dropped_by_lambda_which_does_not_retry_it() -> None:
    runtime = Runtime(throttles=0, fails=True)
    rules, metrics = deliver(runtime)
    assert len(runtime.calls) == 1 and (rules.invoked, rules.function_errors, rules.dropped) == (1, 1, 1)
    assert metrics == [INVOCATIONS, DROPPED]


# -- the emulator's PutEvents ------------------------------------------------------------------------


class Moto:
    """moto's answer to PutEvents: every entry accepted, with an id."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        self.requests.append(request)
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1")])
        ids = [{"EventId": f"id-{entry['Detail']}"} for entry in request["Entries"]]
        return [json.dumps({"FailedEntryCount": 0, "Entries": ids}).encode()]


def put_events(tap: EventBusTap, entries: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    from local.emulator.faults import Replay

    body = json.dumps({"Entries": entries}).encode()
    environ = {
        "HTTP_X_AMZ_TARGET": "AWSEvents.PutEvents",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": Replay(body),
        "PATH_INFO": "/",
    }
    answer: dict[str, str] = {}
    payload = b"".join(tap(environ, lambda status, _headers: answer.update(status=status)))
    return answer["status"], json.loads(payload)


def entry(number: int, size: int = 0) -> dict[str, Any]:
    return {"Source": "appointments", "DetailType": "t", "Detail": str(number) + "x" * size, "EventBusName": "b"}


def test_putevents_refuses_more_than_ten_entries_or_256_kb_in_a_call() -> None:
    moto = Moto()
    tap = EventBusTap(moto)
    status, answer = put_events(tap, [entry(n) for n in range(11)])
    assert status.startswith("400") and answer["__type"] == "ValidationException"
    status, answer = put_events(tap, [entry(1, 140_000), entry(2, 140_000)])
    assert status.startswith("400") and "over the limit" in answer["message"]
    assert moto.requests == []


def test_injected_failures_are_answered_in_place_and_only_accepted_entries_are_journaled() -> None:
    moto = Moto()
    tap = EventBusTap(moto, seed=7)
    tap.failure_share = 0.5
    status, answer = put_events(tap, [entry(n) for n in range(10)])
    assert status.startswith("200")
    failed = [n for n, result in enumerate(answer["Entries"]) if "ErrorCode" in result]
    assert 0 < len(failed) < 10 and answer["FailedEntryCount"] == len(failed) == tap.injected
    assert all(answer["Entries"][n] == {"EventId": f"id-{n}"} for n in range(10) if n not in failed)
    (forwarded,) = moto.requests
    assert [e["Detail"] for e in forwarded["Entries"]] == [str(n) for n in range(10) if n not in failed]
    environ = {"PATH_INFO": "/_events", "QUERY_STRING": "after=0"}
    journal = json.loads(b"".join(tap(environ, lambda *_: None)))
    assert [e["detail"] for e in journal["events"]] == [str(n) for n in range(10) if n not in failed]
    assert [e["sequence"] for e in journal["events"]] == list(range(1, 11 - len(failed)))
