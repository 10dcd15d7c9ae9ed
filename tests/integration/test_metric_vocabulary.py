"""One vocabulary from code to dashboard, proven: the functions' code paths are run in-process and
their EMF documents captured; then every metric in an alarm or on the dashboard is one the code
emits (with the same dimensions) or an AWS service metric, every emitted metric is charted, every
alarm has its runbook, and the dashboard is valid and inside CloudWatch's limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import time_machine
from aws_lambda_powertools.metrics.provider import cold_start

from deploy.templates import TEMPLATES, load_template, render_template, resources_of_type
from local.account import ACCOUNT_ID, REGION
from local.cloudformation.resolver import local_arn
from local.emulator import table_exports
from local.lambda_runtime.stream_records import stream_event
from services.audit import backup_handler
from services.audit import handler as audit
from services.availability import handler as availability
from services.booking import handler as booking
from services.booking import notification_handler, publisher_handler, waitlist_handler, webhook_handler
from services.booking.domain.notifications import Outcome, Sent
from services.booking.domain.ports import Stale
from services.common.aws import events_client, kms_client, s3_client, scheduler_client
from services.common.observability import Metric
from services.common.settings import load_settings
from tests import emf
from tests.conftest import ROOT, FakeLambdaContext
from tests.integration.conftest import invoke_handler, run_handler
from tests.integration.test_audit_events import a_monday_ahead, live_a_day, stream_records
from tests.integration.test_booking_round_trips import _LittleTimeLeft, a_bookable_slot
from tests.integration.test_metrics import a_started_booking
from tests.integration.test_webhooks_delivered import receiving

DASHBOARD = ROOT / "dashboards" / "operations.json"
RUNBOOKS = ROOT / "docs" / "runbooks"
TEMPLATE_FILES = sorted([*TEMPLATES.glob("*.yaml"), *(TEMPLATES / "alarms").glob("*.yaml")])
Signature = tuple[str, str, frozenset[str]]  # namespace, metric name, dimension names


def alarms() -> dict[str, dict[str, Any]]:
    """Every alarm (metric and composite) of every template, by logical id."""
    found: dict[str, dict[str, Any]] = {}
    for path in TEMPLATE_FILES:
        template = load_template(path)
        for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
            for logical_id, resource in resources_of_type(template, kind).items():
                found[f"{path.name}:{logical_id}"] = resource["Properties"]
    return found


def alarm_names() -> set[str]:
    """Every alarm's name as deployed (`${Stage}` left in), the nested function alarms once per service."""
    services = [
        stack["Properties"]["Parameters"]["Service"]
        for path in TEMPLATE_FILES
        for stack in resources_of_type(load_template(path), "AWS::CloudFormation::Stack").values()
        if stack["Properties"]["TemplateURL"] == "alarms/function.yaml"
    ]
    assert sorted(services) == [
        "audit",
        "availability",
        "booking",
        "notifications",
        "publisher",
        "waitlist",
        "webhooks",
    ]
    names: set[str] = set()
    for properties in alarms().values():
        name = str(properties["AlarmName"]["Fn::Sub"])
        names |= {name.replace("${Service}", service) for service in services} if "${Service}" in name else {name}
    return names


def alarm_metrics() -> set[Signature]:
    signatures: set[Signature] = set()
    for properties in alarms().values():
        stats = [properties] if "MetricName" in properties else []
        stats += [m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m]
        for stat in stats:
            names = frozenset(d["Name"] for d in stat.get("Dimensions", []))
            signatures.add((stat["Namespace"], stat["MetricName"], names))
    return signatures


def dashboard_metrics(body: dict[str, Any]) -> set[Signature]:
    """Metric arrays of the dashboard's widgets, with CloudWatch's "." shorthand resolved."""
    signatures: set[Signature] = set()
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            if isinstance(row, dict):  # a metric-math expression
                continue
            fields = [field for field in row if not isinstance(field, dict)]
            namespace, name, rest = fields[0], fields[1], fields[2:]
            signatures.add((namespace, name, frozenset(rest[0::2])))
    return signatures


@pytest.fixture
def emitted(
    inproc: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[dict[str, Any]]:
    """The EMF documents of one pass over every metric-emitting path, in-process."""
    bucket = f"appointments-audit-inproc-{ACCOUNT_ID}-{REGION}"  # the template's name for stage inproc
    monkeypatch.setenv("AUDIT_BUCKET_NAME", bucket)
    for cached in (s3_client, audit.trail, audit.archive, audit.customer_keys):
        cached.cache_clear()
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    cold_start.reset_cold_start_flag()  # the next invocation is this container's first

    # availability: a slot search, a refusal (customers may not set hours), a validation failure
    pid, sid, (first, second, third) = a_bookable_slot()
    window = f"from={first.replace('+', '%2B')}&to={second.replace('+', '%2B')}"
    assert (
        invoke_handler(availability, "GET", f"/providers/{pid}/slots?serviceId={sid}&{window}", None, "c", "customers")[
            0
        ]
        == 200
    )
    assert invoke_handler(availability, "PUT", f"/providers/{pid}/schedule", {"weekly": {}}, "c", "customers")[0] == 403
    assert invoke_handler(availability, "POST", "/providers", {"name": ""})[0] == 400
    # booking: every outcome
    body = {"providerId": pid, "serviceId": sid, "start": first}
    key = {"Idempotency-Key": "vocabulary-1"}
    status, created = invoke_handler(booking, "POST", "/bookings", body, "cust", "customers", headers=key)
    assert status == 201
    assert invoke_handler(booking, "POST", "/bookings", body, "cust", "customers", headers=key)[0] == 201
    assert invoke_handler(booking, "POST", "/bookings", body, "other", "customers")[0] == 409
    assert (
        invoke_handler(booking, "POST", "/bookings", {**body, "start": "2020-01-01T00:00:00Z"}, "c", "customers")[0]
        == 422
    )
    path = f"/bookings/{created['bookingId']}"
    assert invoke_handler(booking, "POST", f"{path}/reschedule", {"start": second}, "cust", "customers")[0] == 200
    assert invoke_handler(booking, "POST", f"{path}/no-show")[0] == 422  # not yet started: refused, not counted
    assert invoke_handler(booking, "POST", f"{path}/cancel", {}, "cust", "customers")[0] == 200
    # holds: one booked by its customer, one released
    status, held = invoke_handler(booking, "POST", "/holds", {**body, "start": second}, "holder", "customers")
    assert status == 201, held
    booked = {**body, "start": second, "holdId": held["holdId"]}
    assert invoke_handler(booking, "POST", "/bookings", booked, "holder", "customers")[0] == 201
    status, held = invoke_handler(booking, "POST", "/holds", body, "holder", "customers")
    assert status == 201, held
    assert invoke_handler(booking, "DELETE", f"/holds/{held['holdId']}", None, "holder", "customers")[0] == 204
    assert invoke_handler(booking, "POST", f"/bookings/{a_started_booking(inproc, pid, sid)}/no-show")[0] == 200
    with monkeypatch.context() as patch:
        patch.setattr(type(booking.bookings().store), "claim", lambda *_args, **_kwargs: Stale())
        event = _booking_event({**body, "start": first})
        assert run_handler(booking, event, _LittleTimeLeft())["statusCode"] == 503
    # waitlist: an entry joins a full window, its time frees, the sweep offers it, and a day later
    # finds the offer lapsed
    status, blocker = invoke_handler(booking, "POST", "/bookings", {**body, "start": first}, "blocker", "customers")
    assert status == 201, blocker
    end = (datetime.fromisoformat(first) + timedelta(minutes=30)).isoformat()
    line = {"providerId": pid, "serviceId": sid, "from": first, "to": end}
    assert invoke_handler(booking, "POST", "/waitlist", line, "waiter", "customers")[0] == 201
    path = f"/bookings/{blocker['bookingId']}/cancel"
    assert invoke_handler(booking, "POST", path, {}, "blocker", "customers")[0] == 200
    sweep = {"sweep": "waitlist"}
    assert run_handler(waitlist_handler, sweep, FakeLambdaContext()) == {"lines": 1, "offered": 1}
    with time_machine.travel(datetime.now(UTC) + timedelta(days=1)):
        assert run_handler(waitlist_handler, sweep, FakeLambdaContext()) == {"lines": 1, "offered": 0}
    # audit: the stream of all of that, plus a day with a no-show-free history and one poison record
    live_a_day(a_monday_ahead())
    records = stream_records(inproc, "appointments-inproc")
    poison = {
        **records[0],
        "eventName": "INSERT",
        "dynamodb": {**records[0]["dynamodb"], "NewImage": {"entityType": {"S": "Booking"}}},
    }
    answer = run_handler(audit, stream_event([*records, poison], "arn:stream"), FakeLambdaContext())
    assert len(answer["batchItemFailures"]) == 1
    # publisher: the same stream as domain events, the bus refusing one entry once (put again)
    monkeypatch.setenv("EVENT_BUS_NAME", "appointments-inproc")
    events_client.cache_clear()
    publisher_handler.bus.cache_clear()
    boto3.client("events", region_name=REGION).create_event_bus(Name="appointments-inproc")
    client = publisher_handler.bus().client
    put_events, refusals = client.put_events, [1]

    def refusing_the_first_entry_once(**request: Any) -> Any:
        if not refusals:
            return put_events(**request)
        refusals.pop()
        accepted = put_events(Entries=request["Entries"][1:])["Entries"]
        return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}, *accepted]}

    monkeypatch.setattr(client, "put_events", refusing_the_first_entry_once)
    answer = run_handler(publisher_handler, stream_event(records, "arn:stream"), FakeLambdaContext())
    assert answer == {"batchItemFailures": []} and not refusals
    events_client.cache_clear()
    publisher_handler.bus.cache_clear()
    webhooks(pid, monkeypatch, busy_at=second)
    notifications(pid, sid, third, monkeypatch, tmp_path)
    backups(monkeypatch)
    return emf.documents(capsys.readouterr().out.splitlines())


def backups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backups: the hourly run starts the day's export of both tables, then one that DynamoDB refuses
    (point-in-time recovery off) is counted failed, and the age is measured both times."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    arns = {
        name: dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
        for name in ("appointments-inproc", "appointments-inproc-audit")
    }
    bucket = f"appointments-bak-inproc-{ACCOUNT_ID}-{REGION}"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    for name, value in {
        "TABLE_ARN": arns["appointments-inproc"],
        "AUDIT_TABLE_ARN": arns["appointments-inproc-audit"],
        "BACKUP_BUCKET_NAME": bucket,
    }.items():
        monkeypatch.setenv(name, value)
    for method in ("export_table_to_point_in_time", "describe_export", "list_exports"):  # AWS's, not moto's
        monkeypatch.setattr(table_exports.DynamoHandler, method, getattr(table_exports, method))
    for factory in (load_settings, backup_handler.settings, backup_handler.exports):
        factory.cache_clear()
    answer = run_handler(backup_handler, {"backup": "hourly"}, FakeLambdaContext())
    assert len(answer["started"]) == 2 and answer["failed"] == 0, answer
    monkeypatch.setattr(table_exports, "REGISTRY", table_exports.Registry())  # no export yet today
    dynamodb.update_continuous_backups(
        TableName="appointments-inproc-audit",
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False},
    )
    answer = run_handler(backup_handler, {"backup": "hourly"}, FakeLambdaContext())
    assert len(answer["started"]) == 1, answer  # the audit table's was refused
    for factory in (backup_handler.settings, backup_handler.exports):
        factory.cache_clear()


def webhooks(provider_id: str, monkeypatch: pytest.MonkeyPatch, busy_at: str) -> None:
    """Webhooks: one receiver answers 500 then 200 (a retry), another 410 (disabled, failed). Then
    Calendly, on the same key: a forged delivery, and a genuine one for a time booked here (a conflict)."""
    stage = "appointments-inproc"
    for name, value in {
        "WEBHOOK_KEY_ID": f"alias/{stage}-webhooks",
        "WEBHOOK_RETRY_GROUP": f"{stage}-webhooks",
        "WEBHOOK_RETRY_ROLE_ARN": local_arn("local-WebhookSchedulerRole"),
        "WEBHOOK_DISPATCHER_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{stage}-webhooks",
        "REMINDER_GROUP": f"{stage}-reminders",  # the booking function's settings name them all
        "REMINDER_ROLE_ARN": local_arn("local-ReminderSchedulerRole"),
        "NOTIFICATIONS_FUNCTION_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{stage}-notifications",
        "WEBHOOK_LOOPBACK": "true",
    }.items():
        monkeypatch.setenv(name, value)
    cached = (load_settings, kms_client, scheduler_client, booking.webhooks, booking.delivery_log, booking.calendly)
    for factory in (*cached, webhook_handler.dispatcher):
        factory.cache_clear()
    kms = boto3.client("kms", region_name=REGION)
    kms.create_alias(AliasName=f"alias/{stage}-webhooks", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name=f"{stage}-webhooks")
    with receiving() as receivers:
        receivers.scripts |= {"retried": [(500, 0.0)], "gone": [(410, 0.0)]}
        made = {}
        for name in ("retried", "gone"):
            body = {"url": receivers.url(name), "events": ["booking.created"], "providerId": provider_id}
            status, made[name] = invoke_handler(booking, "POST", "/webhooks", body, "admin", "admins")
            assert status == 201, made[name]
        detail = {
            "id": "evt_vocabulary",
            "type": "booking.created",
            "timestamp": "2026-12-01T09:00:00Z",
            "schemaVersion": 1,
            "data": {"providerId": provider_id, "bookingId": "bkg_vocabulary", "version": 1},
        }
        event = {"source": "appointments", "detail-type": "booking.created", "detail": detail}
        assert run_handler(webhook_handler, event, FakeLambdaContext()) == {"deliveries": 2}
        retry = {"webhookId": made["retried"]["webhookId"], "deliveryId": "msg_20261201090000_vocabulary", "attempt": 2}
        answer = run_handler(webhook_handler, {"webhookAttempt": retry}, FakeLambdaContext())
        assert answer == {"attempted": True, "outcome": "DELIVERED"}
        assert [len(receivers.got(name)) for name in ("retried", "gone")] == [2, 1]
    calendly(provider_id, busy_at)
    for factory in (*cached, webhook_handler.dispatcher):
        factory.cache_clear()


def notifications(provider_id: str, service_id: str, start: str, monkeypatch: pytest.MonkeyPatch, outbox: Path) -> None:
    """WhatsApp: a confirmation sent, one skipped for want of consent, one failed, a reminder sent."""
    stage = "appointments-inproc"
    for name, value in {
        "REMINDER_GROUP": f"{stage}-reminders",
        "REMINDER_ROLE_ARN": local_arn("local-ReminderSchedulerRole"),
        "NOTIFICATIONS_FUNCTION_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{stage}-notifications",
        "WHATSAPP_OUTBOX": str(outbox / "outbox.ndjson"),
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name=f"{stage}-reminders")
    for factory in (load_settings, scheduler_client, notification_handler.notifier, booking.contacts):
        factory.cache_clear()
    contact = {"whatsapp": "+4915112345678", "optIn": True}
    assert invoke_handler(booking, "PUT", "/me/contact", contact, "texted", "customers")[0] == 200
    made = []
    for who in ("texted", "silent"):
        body = {"providerId": provider_id, "serviceId": service_id, "start": start}
        status, answer = invoke_handler(booking, "POST", "/bookings", body, who, "customers")
        if status == 409:  # the silent customer's try at the same time: a second service's is not needed
            continue
        assert status == 201, answer
        made.append(answer)
    (texted,) = made
    data = {
        "bookingId": texted["bookingId"],
        "customerId": "texted",
        "version": 1,
        "start": texted["start"],
        "status": "CONFIRMED",
    }
    event = {"source": "appointments", "detail-type": "booking.created", "detail": {"data": data}}
    assert run_handler(notification_handler, event, FakeLambdaContext())["outcome"] == "SENT"
    reminder = {"reminder": {"bookingId": texted["bookingId"], "version": 1}}
    assert run_handler(notification_handler, reminder, FakeLambdaContext())["outcome"] == "SENT"
    assert invoke_handler(booking, "PUT", "/me/contact", {"optIn": False}, "texted", "customers")[0] == 200
    moved = {**event, "detail-type": "booking.cancelled", "detail": {"data": {**data, "status": "CANCELLED"}}}
    assert run_handler(notification_handler, moved, FakeLambdaContext())["outcome"] == "SKIPPED"
    assert invoke_handler(booking, "PUT", "/me/contact", contact, "texted", "customers")[0] == 200
    channel = notification_handler.notifier(FakeLambdaContext().invoked_function_arn).channel
    monkeypatch.setattr(channel, "send", lambda _message: Sent(Outcome.FAILED, error="refused: ValidationException"))
    noshow = {**event, "detail-type": "booking.rescheduled", "detail": {"data": {**data, "version": 1}}}
    assert run_handler(notification_handler, noshow, FakeLambdaContext())["outcome"] == "FAILED"
    for factory in (load_settings, scheduler_client, notification_handler.notifier):
        factory.cache_clear()


def calendly(provider_id: str, busy_at: str) -> None:
    key = "vocabulary-calendly-signing-key"
    path = f"/providers/{provider_id}/integrations/calendly"
    assert invoke_handler(booking, "PUT", path, {"signingKey": key}, "admin", "admins")[0] == 200
    start = datetime.fromisoformat(busy_at)
    scheduled = {"uri": "https://api.calendly.com/scheduled_events/V", "start_time": start.isoformat()}
    scheduled["end_time"] = (start + timedelta(minutes=30)).isoformat()
    body = {
        "event": "invitee.created",
        "payload": {"uri": "https://api.calendly.com/i/V", "scheduled_event": scheduled},
    }
    raw, stamp = json.dumps(body).encode(), str(int(time.time()))
    signature = hmac.new(key.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    delivery = f"/integrations/calendly/{provider_id}"
    forged = {"Calendly-Webhook-Signature": f"t={stamp},v1={'0' * 64}"}
    assert invoke_handler(booking, "POST", delivery, body, headers=forged)[0] == 401
    genuine = {"Calendly-Webhook-Signature": f"t={stamp},v1={signature}"}
    status, answer = invoke_handler(booking, "POST", delivery, body, headers=genuine)
    assert status == 200 and answer["status"] == "CONFLICT", answer


def _booking_event(body: dict[str, Any]) -> dict[str, Any]:
    from local.apigateway.api import ApiDefinition
    from local.apigateway.http_messages import HttpRequest
    from local.apigateway.proxy_integration import build_event

    route, parameters = ApiDefinition.load().find("POST", "/bookings") or pytest.fail("no route")
    request = HttpRequest("POST", "/bookings", [("Content-Type", "application/json")], json.dumps(body).encode())
    claims = {"sub": "cust", "cognito:groups": "customers"}
    return build_event(request, route, parameters, request_id="r", stage="inproc", claims=claims, trace="Root=1-a-b")


def test_every_metric_is_emitted_valid_charted_and_every_charted_or_alarmed_metric_exists(
    emitted: list[dict[str, Any]],
) -> None:
    for document in emitted:
        assert emf.problems(document) == [], document
    emitted_signatures = {
        (directive["Namespace"], metric["Name"], frozenset(names))
        for document in emitted
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
        for names in directive["Dimensions"]
    }
    names = {name for _, name, _ in emitted_signatures}
    # the code emits exactly its vocabulary (plus Powertools' ColdStart), in one namespace
    assert names == {m.value for m in Metric} | {"ColdStart"}
    assert {namespace for namespace, _, _ in emitted_signatures} == {"Appointments"}
    body = json.loads(DASHBOARD.read_text())
    charted = dashboard_metrics(body)
    watched = charted | alarm_metrics()
    # every metric of ours on the dashboard or in an alarm is emitted, with the same dimensions;
    # the rest are AWS service metrics
    for signature in watched:
        namespace = signature[0]
        assert namespace.startswith("AWS/") or signature in emitted_signatures, signature
    # and everything emitted is on the dashboard
    assert not {s for s in emitted_signatures if s not in charted}, "emitted but not charted"


def test_every_alarm_says_impact_and_first_checks_and_links_its_runbook() -> None:
    found = alarms()
    # 4 per function (nested, once), 2 table, 3 audit, 1 waitlist, 2 publisher, 1 webhooks, 1 Calendly,
    # 1 notifications, 1 backups, 2 API, 4 SLO windows, 2 composites
    assert len(found) == 24
    for name, properties in found.items():
        description = properties["AlarmDescription"]
        text = description["Fn::Sub"] if isinstance(description, dict) else description
        assert len(text) <= 1024, name
        match = re.search(r"Runbook: \$\{RunbookBaseUrl\}/([a-z0-9-]+\.md)$", text.strip())
        assert match, f"{name} has no runbook link"
        assert (RUNBOOKS / match.group(1)).is_file(), f"{name}: docs/runbooks/{match.group(1)} is missing"
        if "notifies nothing itself" not in text:  # the single-window SLO alarms feed composites
            assert "Impact:" in text and "First checks:" in text, name
            assert "AlarmActions" in properties, f"{name} notifies no one"
    # every runbook belongs to an alarm
    linked = {re.findall(r"/([a-z0-9-]+\.md)", str(p["AlarmDescription"]))[0] for p in found.values()}
    assert {p.name for p in RUNBOOKS.glob("*.md")} - {"README.md"} == linked


def test_the_dashboard_is_valid_inside_limits_and_renders_into_its_template() -> None:
    body = json.loads(DASHBOARD.read_text())
    assert 0 < len(body["widgets"]) <= 500
    for widget in body["widgets"]:
        assert widget["type"] in {"metric", "text", "log", "alarm"}
        assert 1 <= widget["width"] <= 24 and widget["x"] + widget["width"] <= 24
        assert 1 <= widget["height"] <= 1000
        properties = widget["properties"]
        if widget["type"] == "metric":
            assert 0 < len(properties["metrics"]) <= 500 and properties["region"] == "${AWS::Region}"
            ids = [
                row[-1].get("id")
                for row in properties["metrics"]
                if isinstance(row, list) and isinstance(row[-1], dict)
            ]
            ids += [row.get("id") for row in properties["metrics"] if isinstance(row, dict)]
            for row in properties["metrics"]:
                if isinstance(row, dict):  # every name an expression uses is defined in the widget
                    assert set(re.findall(r"\b([a-z][A-Za-z0-9]*)\b(?!\()", row["expression"])) <= set(ids) | {
                        "IF",
                        "MAX",
                    }
        if widget["type"] == "alarm":  # every alarm that notifies is on the status widget
            charted = {arn.rsplit(":alarm:", 1)[1] for arn in properties["alarms"]}
            assert charted == {name for name in alarm_names() if "slo-burn-" not in name}
    # the placeholder in monitoring.yaml becomes the body, as an Fn::Sub CloudFormation accepts
    rendered = render_template(TEMPLATES / "monitoring.yaml")
    assert "{{" not in rendered and len(rendered.encode()) < 1_000_000
    path = Path(TEMPLATES / ".rendered-monitoring.yaml")
    try:
        path.write_text(rendered)
        template = load_template(path)
    finally:
        path.unlink()
    (dashboard,) = resources_of_type(template, "AWS::CloudWatch::Dashboard").values()
    assert json.loads(dashboard["Properties"]["DashboardBody"]["Fn::Sub"]) == body


def test_the_dashboards_per_route_signals_cover_exactly_the_apis_routes() -> None:
    from local.apigateway.api import ApiDefinition

    body = json.loads(DASHBOARD.read_text())
    charted = set()
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            fields = [field for field in row if not isinstance(field, dict)] if isinstance(row, list) else []
            if fields[:1] == ["AWS/ApiGateway"] and "Resource" in fields:
                dimensions = dict(zip(fields[2::2], fields[3::2], strict=True))
                charted.add((dimensions["Method"], dimensions["Resource"]))
    routes = {(route.method, route.resource) for route in ApiDefinition.load().routes if route.function}
    assert charted == routes
