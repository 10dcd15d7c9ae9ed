"""The local EventBridge: the templates' rules, read as CloudFormation resolves them, with what the
emulation would run wrongly refused when loaded (a target AWS could not invoke without its permission,
or one Lambda would retry); a throttled delivery retried within the target's RetryPolicy, then
dead-lettered or dropped, with the rule's AWS/Events metrics; and the emulator's PutEvents: AWS's
refusals of a call, injected entry failures answered in place, what was accepted in its journal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.emulator.event_bus import EventBusTap
from local.eventbridge import rules as event_rules
from local.eventbridge.rules import EventRules, RuleSpec, TargetSpec, UnsupportedRuleError, load_rules, target_event
from local.lambda_runtime.function_runtime import Invocation, Throttled
from local.lambda_runtime.functions import load_functions
from tests.unit.test_scheduler import PARAMETERS

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


def test_the_waitlist_rule_is_read_from_the_booking_template() -> None:
    (rule,) = load_rules(PARAMETERS, load_functions(PARAMETERS))
    assert (rule.name, rule.bus) == ("appointments-test-waitlist", "appointments-test")
    (target,) = rule.targets
    assert (target.function, target.max_retries, target.max_age_seconds, target.dead_letter_arn) == (
        "WaitlistFunction",
        2,
        300,
        None,
    )
    assert rule.matches(EVENT)
    assert not rule.matches({**EVENT, "detail-type": "booking.created"})
    assert not rule.matches({**EVENT, "source": "someone.else"})


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
    functions = load_functions(PARAMETERS)
    monkeypatch.setattr(event_rules, "resolved_resources", without(kind, change))
    with pytest.raises(UnsupportedRuleError, match=refusal):
        load_rules(PARAMETERS, functions)


class Runtime:
    """A function that is throttled `throttles` times, then runs (failing when told to)."""

    def __init__(self, throttles: int, fails: bool = False) -> None:
        self.throttles, self.fails = throttles, fails
        self.calls: list[tuple[Any, str | None]] = []

    def invoke(self, event: Any, *, trace_id: str | None = None) -> Invocation:
        self.calls.append((event, trace_id))
        if len(self.calls) <= self.throttles:
            raise Throttled("F")
        return Invocation("r", error={"errorType": "Boom"} if self.fails else None)


class Queue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        return {"QueueUrl": f"http://sqs/{QueueName}"}

    def send_message(self, **message: Any) -> None:
        self.sent.append(message)


def deliver(runtime: Runtime, target: TargetSpec, now: float = 0.0) -> tuple[EventRules, Queue, list[str]]:
    queue, metrics = Queue(), []
    rule = RuleSpec(
        "appointments-test-waitlist",
        "appointments-test",
        load_rules(PARAMETERS, load_functions(PARAMETERS))[0].pattern,
        (target,),
    )
    rules = EventRules(
        [rule],
        {"F": runtime},  # type: ignore[dict-item]
        "http://unused",
        queue,
        lambda: now,
        on_metric=lambda name, _: metrics.append(name),
        backoff_seconds=0.001,
    )
    rules._deliver(rule, target, EVENT, "Root=1-abc;Parent=def;Sampled=1")
    return rules, queue, metrics


def test_a_throttled_delivery_is_retried_and_reaches_the_function_with_the_changes_trace() -> None:
    runtime = Runtime(throttles=2)
    rules, queue, metrics = deliver(runtime, TargetSpec("arn:rule", "F", 2, 300, None))
    assert len(runtime.calls) == 3 and runtime.calls[-1] == (EVENT, "Root=1-abc;Parent=def;Sampled=1")
    assert (rules.delivered, rules.dropped, queue.sent, metrics) == (1, 0, [], ["Invocations"])


def test_a_function_error_is_lambdas_and_not_retried_by_eventbridge() -> None:
    runtime = Runtime(throttles=0, fails=True)
    rules, _, metrics = deliver(runtime, TargetSpec("arn:rule", "F", 2, 300, None))
    assert len(runtime.calls) == 1 and (rules.delivered, rules.function_errors, metrics) == (1, 1, ["Invocations"])


def test_past_its_retries_an_event_goes_to_the_targets_dead_letter_queue_or_is_dropped() -> None:
    dlq = "arn:aws:local:us-east-1:123456789012:appointments-test-rule-dlq"
    runtime = Runtime(throttles=99)
    rules, queue, metrics = deliver(runtime, TargetSpec("arn:rule", "F", 2, 300, dlq))
    assert len(runtime.calls) == 3 and rules.dead_lettered == 1
    (sent,) = queue.sent
    assert sent["QueueUrl"] == "http://sqs/appointments-test-rule-dlq" and json.loads(sent["MessageBody"]) == EVENT
    assert sent["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "MaxRetriesExceeded"
    assert sent["MessageAttributes"]["RULE_ARN"]["StringValue"] == "arn:rule"
    assert metrics == ["FailedInvocations", "DeadLetterInvocations"]
    rules, queue, metrics = deliver(Runtime(throttles=99), TargetSpec("arn:rule", "F", 0, 300, None))
    assert (rules.dropped, queue.sent, metrics) == (1, [], ["FailedInvocations"])


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
