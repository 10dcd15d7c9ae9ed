"""Least privilege, proven from what the functions actually do.

While the suite runs, every Lambda worker of every local stack records each AWS API call its
function makes (botocore's `before-parameter-build` hook, local/lambda_runtime/aws_calls.py), and so
does every handler an integration test calls in its own process (`invoke_handler`, as its function,
on stage `inproc`). Not recorded: tests/unit/, whose handlers reach no AWS service (sockets are
refused there), and the benchmarks, which `make test` runs apart. This module runs last
(`make test` puts tests/policy/ at the end): it maps each call to the IAM action and resource ARN
AWS would authorize, then holds each function's role in its template to two rules:

- every call is allowed by a statement of the role (else the function would fail in AWS);
- every (action, resource) a statement grants was used by some call, unless AWS itself uses it
  with the function's role (logs, X-Ray, the stream mapping), listed below with the reason.

And no statement grants `*` resources except for X-Ray, which has no resource-level permissions.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.account import ACCOUNT_ID, REGION
from local.cloudformation.resolver import local_arn, resolver_for

# Each function (by its name's last part) and its template: the role its `Role` names is the one held here.
FUNCTIONS = {
    "availability": ("availability.yaml", "AvailabilityFunction"),
    "booking": ("booking.yaml", "BookingFunction"),
    "audit": ("audit.yaml", "AuditFunction"),
    "waitlist": ("booking.yaml", "WaitlistFunction"),
    "publisher": ("booking.yaml", "PublisherFunction"),
    "webhooks": ("booking.yaml", "WebhookFunction"),
    "notifications": ("booking.yaml", "NotificationFunction"),
    "backup": ("audit.yaml", "BackupFunction"),
}

# (service id, operation) → the IAM action AWS checks. Transactions are checked item by item.
ACTIONS = {
    ("DynamoDB", "GetItem"): "dynamodb:GetItem",
    ("DynamoDB", "PutItem"): "dynamodb:PutItem",
    ("DynamoDB", "UpdateItem"): "dynamodb:UpdateItem",
    ("DynamoDB", "DeleteItem"): "dynamodb:DeleteItem",
    ("DynamoDB", "Query"): "dynamodb:Query",
    ("DynamoDB", "Scan"): "dynamodb:Scan",
    ("DynamoDB", "DescribeTable"): "dynamodb:DescribeTable",
    ("DynamoDB", "BatchGetItem"): "dynamodb:BatchGetItem",
    ("DynamoDB", "BatchWriteItem"): "dynamodb:BatchWriteItem",
    ("DynamoDB", "ExportTableToPointInTime"): "dynamodb:ExportTableToPointInTime",
    ("DynamoDB", "DescribeExport"): "dynamodb:DescribeExport",
    ("DynamoDB", "ListExports"): "dynamodb:ListExports",
    ("S3", "PutObject"): "s3:PutObject",
    ("S3", "GetObject"): "s3:GetObject",
    ("S3", "HeadObject"): "s3:GetObject",
    ("SQS", "SendMessage"): "sqs:SendMessage",
    ("EventBridge", "PutEvents"): "events:PutEvents",
    ("KMS", "Encrypt"): "kms:Encrypt",
    ("KMS", "Decrypt"): "kms:Decrypt",
    ("Scheduler", "CreateSchedule"): "scheduler:CreateSchedule",
    ("Scheduler", "DeleteSchedule"): "scheduler:DeleteSchedule",
}
TRANSACTION_ITEMS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
# Grants AWS uses on the function's behalf, with the function's role: never seen as the code's calls.
USED_BY_AWS = {
    "logs:CreateLogStream": "Lambda writes the function's log streams with its role",
    "logs:PutLogEvents": "Lambda writes the function's log events with its role",
    "xray:PutTraceSegments": "Lambda's X-Ray daemon sends the function's spans with its role (active tracing)",
    "xray:PutTelemetryRecords": "Lambda's X-Ray daemon reports its telemetry with the function's role",
    "dynamodb:DescribeStream": "the event source mapping reads the table's stream with the function's role",
    "dynamodb:GetRecords": "the event source mapping reads the table's stream with the function's role",
    "dynamodb:GetShardIterator": "the event source mapping reads the table's stream with the function's role",
    "dynamodb:ListStreams": "the event source mapping reads the table's stream with the function's role",
    "sqs:SendMessage": "the event source mapping's on-failure destination sends with the function's role",
}
# ... and, for one function only, what DynamoDB does as it: an export's objects are written with the
# permissions of whoever asked for it (decision 0032).
USED_BY_AWS_FOR = {
    ("backup", "s3:PutObject"): "DynamoDB writes the export's objects with the caller's permissions",
    ("backup", "s3:AbortMultipartUpload"): "DynamoDB uploads large export files in parts, as the caller",
    ("backup", "s3:PutObjectAcl"): "DynamoDB's export documentation asks for it (the bucket enforces its owner)",
}
# The single-valued condition keys the roles may use, each set by context_of from the calls.
CONDITION_KEYS = {"kms:EncryptionContext:webhookId", "kms:EncryptionContext:calendlyProviderId", "iam:PassedToService"}
# Actions without resource-level permissions: the only ones allowed on "*".
RESOURCELESS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "dynamodb:ListExports"}


@dataclass(frozen=True)
class Grant:
    """One (action, resource) of one statement of a role: the unit that must be used. Its place in
    the template identifies it whatever the stage; `resource` is resolved for one stage."""

    template: str
    policy: str
    statement: int
    action: str
    place: int  # the resource's index in the statement
    resource: str = ""
    # `ForAllValues:StringLike` `dynamodb:LeadingKeys`: the partition keys the grant is limited to
    leading_keys: tuple[str, ...] = ()
    # single-valued conditions: (operator, key, values), e.g. StringLike kms:EncryptionContext:webhookId
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @property
    def key(self) -> tuple[str, str, int, str, int]:
        return (self.template, self.policy, self.statement, self.action, self.place)


def arn_matches(pattern: str, value: str) -> bool:
    """IAM's matching of resources: case-sensitive, `*` any run of characters, `?` any one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def leading_keys(call: dict[str, Any]) -> list[str | None]:
    """Every partition key a call names: a batch's each (`dynamodb:LeadingKeys` holds all of them),
    else the one of `leading_key`."""
    batch = call["resources"].get("PartitionKeys") if call["service"] == "DynamoDB" else None
    return list(batch) if batch else [leading_key(call)]


def leading_key(call: dict[str, Any]) -> str | None:
    """The partition key a single-item DynamoDB call or a Query of the table names (what
    `dynamodb:LeadingKeys` is about)."""
    if call["service"] != "DynamoDB":
        return None
    key = call["resources"].get("Key")
    if isinstance(key, dict) and "PK" in key:
        return str(key["PK"]["S"])
    partition = call["resources"].get("PartitionKey")
    return str(partition) if partition and "IndexName" not in call["resources"] else None


def key_arn(key_id: str) -> str:
    """A KMS key as this test names it: by the alias the functions use (IAM authorizes a call naming
    an alias against the key it points to; role_grants names that key the same way)."""
    return f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{key_id}"


def context_of(call: dict[str, Any], action: str) -> dict[str, str]:
    """The condition keys a call sets for `action`, that the roles' conditions may name."""
    named = call["resources"]
    found = {f"kms:EncryptionContext:{k}": str(v) for k, v in (named.get("EncryptionContext") or {}).items()}
    if action == "iam:PassRole" and call["service"] == "Scheduler":
        found["iam:PassedToService"] = "scheduler.amazonaws.com"
    return found


def required(call: dict[str, Any]) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs AWS authorizes for one recorded call."""
    service, operation, named = call["service"], call["operation"], call["resources"]
    if service == "Scheduler":  # a schedule, and the role it is given to run as
        schedule = [
            (ACTIONS[(service, operation)], f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/{named['Schedule']}")
        ]
        return schedule + ([("iam:PassRole", str(named["PassedRole"]))] if "PassedRole" in named else [])
    if service == "KMS":  # a Decrypt naming no key opens with the one its ciphertext names: the stage's
        key = named.get("KeyId", f"alias/appointments-{call['stage']}-webhooks")
        return [(ACTIONS[(service, operation)], key_arn(str(key)))]
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/"
    if operation in {"TransactWriteItems", "TransactGetItems"}:
        return [
            (TRANSACTION_ITEMS[kind], table + item[kind]["TableName"])
            for item in named["TransactItems"]
            for kind in item
        ]
    action = ACTIONS.get((service, operation))
    assert action is not None, f"map {service} {operation} to its IAM action in ACTIONS"
    if operation == "ListExports":  # names no resource (the Service Authorization Reference)
        return [(action, "*")]
    if operation == "DescribeExport":
        return [(action, str(named["ExportArn"]))]
    if "TableArn" in named:
        return [(action, str(named["TableArn"]))]
    if service == "DynamoDB" and "RequestItems" in named:
        return [(action, table + name) for name in named["RequestItems"]]
    if service == "DynamoDB":
        index = f"/index/{named['IndexName']}" if "IndexName" in named else ""
        return [(action, table + named["TableName"] + index)]
    if service == "S3":
        return [(action, f"arn:aws:s3:::{named['Bucket']}" + (f"/{named['Key']}" if "Key" in named else ""))]
    if service == "SQS":
        name = str(named["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
        return [(action, f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}")]
    if service == "EventBridge":  # a bus named by its name or its ARN
        buses = [str(bus).rsplit("/", 1)[-1] for bus in named["EventBusNames"]]
        return [(action, f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{bus}") for bus in buses]
    raise AssertionError(f"no resource mapping for {service}")


def role_grants(service: str, stage: str, extra: dict[str, str] | None = None) -> list[Grant]:
    """The function's role, resolved for `stage` (and `extra` parameters) as CloudFormation would: its
    grants with their statements."""
    template_name, function = FUNCTIONS[service]
    path = TEMPLATES / template_name
    template = load_template(path)
    table = f"appointments-{stage}"
    bucket = f"appointments-audit-{stage}-{ACCOUNT_ID}-{REGION}"
    parameters = {
        "Stage": stage,
        "TableName": table,
        "TableArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table}",
        "TableStreamArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table}/stream/2026-01-01T00:00:00.000",
        "AuditTableName": f"{table}-audit",
        "AuditTableArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table}-audit",
        "AuditBucketName": bucket,
        "AuditBucketArn": f"arn:aws:s3:::{bucket}",
        "BackupBucketName": f"appointments-bak-{stage}-{ACCOUNT_ID}-{REGION}",
        "BackupBucketArn": f"arn:aws:s3:::appointments-bak-{stage}-{ACCOUNT_ID}-{REGION}",
        "DependenciesLayerArn": "layer",
        "StaffIssuer": f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_staff",
        **(extra or {}),
    }
    own = {k: v for k, v in parameters.items() if k in template.get("Parameters", {})}
    own_resolver = resolver_for(template, own)
    names = {
        logical_id: str(own_resolver.resolve(resource["Properties"].get(key)))
        for logical_id, resource in template["Resources"].items()
        for key in ("LogGroupName", "QueueName", "Name")
        if key in resource.get("Properties", {})
        and resource["Type"]
        in {"AWS::Logs::LogGroup", "AWS::SQS::Queue", "AWS::Events::EventBus", "AWS::Scheduler::ScheduleGroup"}
    }
    arn_of = {
        "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:",
        "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:",
        "AWS::Events::EventBus": f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/",
    }
    attributes = {
        f"{logical_id}.Arn": arn_of[template["Resources"][logical_id]["Type"]] + name
        for logical_id, name in names.items()
        if template["Resources"][logical_id]["Type"] in arn_of
    }
    # A key by its alias (key_arn); a role as the local stack names it, which is what the calls pass.
    for alias in resources_of_type(template, "AWS::KMS::Alias").values():
        target = alias["Properties"]["TargetKeyId"]["Ref"]
        attributes[f"{target}.Arn"] = key_arn(str(own_resolver.resolve(alias["Properties"]["AliasName"])))
    for role_id in resources_of_type(template, "AWS::IAM::Role"):
        attributes[f"{role_id}.Arn"] = local_arn(f"local-{role_id}")
    resolver = resolver_for(template, own, resources=names, attributes=attributes)
    role_id = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]
    assert role["Type"] == "AWS::IAM::Role"
    others = [
        f
        for f, r in resources_of_type(template, "AWS::Lambda::Function").items()
        if f != function and r["Properties"]["Role"]["Fn::GetAtt"][0] == role_id
    ]
    assert not others, f"{path.name}: one role per function, but {role_id} is also {others}'"
    # Only inline policies are read here, so no grant may come from anywhere else.
    assert "ManagedPolicyArns" not in role["Properties"], f"{path.name}: managed policies are not checked"
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
        assert not resources_of_type(template, kind), f"{path.name}: {kind} is not checked"
    grants = []
    for policy in resolver.resolve(role["Properties"]["Policies"]):
        for number, statement in enumerate(policy["PolicyDocument"]["Statement"]):
            assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            condition = statement.get("Condition", {})
            # The conditions the roles use, checked against the calls' keys; any other is refused
            # here rather than ignored (a condition this test skipped could deny what it passed).
            assert set(condition) <= {"ForAllValues:StringLike", "StringLike", "StringEquals"}, condition
            limited = condition.get("ForAllValues:StringLike", {})
            assert set(limited) <= {"dynamodb:LeadingKeys"}, limited
            keys = tuple(limited.get("dynamodb:LeadingKeys", ()))
            single = tuple(
                (operator, name, tuple(values) if isinstance(values, list) else (str(values),))
                for operator in ("StringLike", "StringEquals")
                for name, values in condition.get(operator, {}).items()
            )
            assert all(name in CONDITION_KEYS for _, name, _ in single), single
            for action in actions:
                for place, resource in enumerate(resources):
                    grants.append(
                        Grant(
                            f"{path.name} {role_id}",
                            policy["PolicyName"],
                            number,
                            action,
                            place,
                            resource,
                            keys,
                            single,
                        )
                    )
    return grants


def _holds(conditions: tuple[tuple[str, str, tuple[str, ...]], ...], context: dict[str, str]) -> bool:
    """Every condition met by the call's context (a key the call does not set meets none)."""
    return all(
        name in context
        and any((arn_matches(v, context[name]) if operator == "StringLike" else v == context[name]) for v in values)
        for operator, name, values in conditions
    )


def allowed(
    action: str, arn: str, grants: list[Grant], key: str | None = None, context: dict[str, str] | None = None
) -> list[Grant]:
    """The grants that allow `action` on `arn` (actions match case-insensitively, as IAM's do), for a
    call naming the partition key `key` (a grant limited to some keys allows no call naming none) and
    setting the condition keys `context`."""
    return [
        g
        for g in grants
        if g.action.lower() == action.lower()
        and arn_matches(g.resource, arn)
        and (not g.leading_keys or (key is not None and any(arn_matches(k, key) for k in g.leading_keys)))
        and _holds(g.conditions, context or {})
    ]


def recorded_calls() -> list[dict[str, Any]]:
    path = Path(os.environ.get("APPOINTMENTS_AWS_CALL_LOG", ""))
    if not path.is_file():
        pytest.fail("no AWS calls were recorded: this test runs after the whole suite (make test)")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_grant_limited_to_leading_keys_allows_only_calls_on_those_partitions() -> None:
    grant = Grant("t", "p", 0, "dynamodb:DeleteItem", 0, "arn:table", ("EXPIRING#*",))
    assert allowed("dynamodb:DeleteItem", "arn:table", [grant], "EXPIRING#2026-12-01T09") == [grant]
    assert allowed("dynamodb:DeleteItem", "arn:table", [grant], "BOOKING#bkg_1") == []
    assert allowed("dynamodb:DeleteItem", "arn:table", [grant], None) == []


def test_a_conditioned_grant_allows_only_calls_that_meet_it() -> None:
    grant = Grant(
        "t", "p", 0, "kms:Decrypt", 0, "arn:key", (), (("StringLike", "kms:EncryptionContext:webhookId", ("wh_*",)),)
    )
    assert allowed("kms:Decrypt", "arn:key", [grant], None, {"kms:EncryptionContext:webhookId": "wh_1"}) == [grant]
    assert allowed("kms:Decrypt", "arn:key", [grant], None, {"kms:EncryptionContext:webhookId": "fd_1"}) == []
    assert allowed("kms:Decrypt", "arn:key", [grant], None, {}) == []
    # A secret bound by another context key (a provider's Calendly key) is not opened by this grant.
    assert allowed("kms:Decrypt", "arn:key", [grant], None, {"kms:EncryptionContext:calendlyProviderId": "prv_1"}) == []


def test_arn_matching_follows_iam() -> None:
    assert arn_matches("arn:aws:s3:::bucket/audit/*", "arn:aws:s3:::bucket/audit/dt=2026-11-25/a.gz")
    assert not arn_matches("arn:aws:s3:::bucket/audit/*", "arn:aws:s3:::bucket/other/a")
    assert not arn_matches("arn:aws:dynamodb:r:1:table/t", "arn:aws:dynamodb:r:1:table/t/index/GSI1")
    assert arn_matches("arn:aws:dynamodb:r:1:table/t/index/GSI?", "arn:aws:dynamodb:r:1:table/t/index/GSI2")


def test_only_the_audit_role_can_write_the_trail() -> None:
    """The trail (history items, chain heads) is in the audit table: the services it records have no
    grant there at all, and the audit role only reads the shared table. Holds whatever was recorded."""
    trail = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/appointments-policy-audit"
    shared = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/appointments-policy"
    writes = [
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "PartiQLInsert",
        "PartiQLUpdate",
        "PartiQLDelete",
    ]
    for service in ("booking", "availability", "waitlist", "publisher", "webhooks", "notifications"):
        grants = role_grants(service, "policy")
        table_grants = [g for g in grants if g.action.startswith("dynamodb:")]
        reach = [g for g in table_grants if any(arn_matches(g.resource, a) for a in (trail, f"{trail}/index/GSI1"))]
        assert reach == [], f"{service} may act on the audit table: {reach}"
        assert table_grants, f"{service}: no table grants found (the check above would hold for nothing)"
    # and the audit table the roles are resolved with is the one the root stack wires to the audit stack only
    root = load_template(TEMPLATES / "root.yaml")["Resources"]
    wired = root["Audit"]["Properties"]["Parameters"]["AuditTableArn"]
    assert wired == {"Fn::GetAtt": ["Data", "Outputs.AuditTableArn"]}
    for stack in ("Booking", "Availability"):
        assert not any("AuditTable" in name for name in root[stack]["Properties"]["Parameters"]), stack
    audit = role_grants("audit", "policy")
    assert all(allowed(f"dynamodb:{write}", trail, audit) for write in ("PutItem", "UpdateItem"))
    assert [g for write in writes for g in allowed(f"dynamodb:{write}", shared, audit)] == []


def test_the_backup_role_exports_both_tables_writes_only_exports_and_reads_no_item() -> None:
    """Decision 0032: the backup function asks DynamoDB for exports; it can read or change no item of
    either table, and reach the backup bucket only to have an export written under `exports/`."""
    grants = role_grants("backup", "policy")
    tables = [f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/appointments-policy{suffix}" for suffix in ("", "-audit")]
    for table in tables:
        assert allowed("dynamodb:ExportTableToPointInTime", table, grants), table
        assert allowed("dynamodb:DescribeExport", f"{table}/export/01764460800000-0a1b2c3d", grants), table
        for action in ("GetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem"):
            assert not allowed(f"dynamodb:{action}", table, grants), (action, table)
    assert not allowed("dynamodb:ExportTableToPointInTime", f"{tables[0]}-other", grants)
    bucket = f"arn:aws:s3:::appointments-bak-policy-{ACCOUNT_ID}-{REGION}"
    assert allowed("s3:PutObject", f"{bucket}/exports/appointments-policy/AWSDynamoDB/x/data/y.json.gz", grants)
    assert not allowed("s3:PutObject", f"{bucket}/elsewhere", grants)
    s3 = sorted({g.action for g in grants if g.action.startswith("s3:")})
    assert s3 == ["s3:AbortMultipartUpload", "s3:PutObject", "s3:PutObjectAcl"], s3  # nothing read, nothing deleted
    assert {g.action for g in grants if g.resource == "*"} == RESOURCELESS
    # and no other function may export, or write to the backup bucket
    for service in FUNCTIONS.keys() - {"backup"}:
        others = role_grants(service, "policy")
        assert not [g for g in others if g.action == "dynamodb:ExportTableToPointInTime"], service
        assert not [g for g in others if "appointments-bak-" in g.resource], service


def test_every_call_is_granted_and_every_grant_is_used() -> None:
    calls = recorded_calls()
    by_function: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in calls:
        by_function[call["function"].rsplit("-", 1)[1]].append(call)
    assert set(by_function) == set(FUNCTIONS), f"calls recorded from {sorted(by_function)}"
    in_process = {call["function"].rsplit("-", 1)[1] for call in calls if call["stage"] == "inproc"}
    assert in_process == set(FUNCTIONS), f"handlers run in the tests' own process recorded only {sorted(in_process)}"

    denied: list[str] = []
    used: set[tuple[str, str, int, str, int]] = set()
    for service, service_calls in sorted(by_function.items()):
        assert len(service_calls) >= 20, f"{service}: only {len(service_calls)} calls recorded"
        for stage in sorted({call["stage"] for call in service_calls}):
            grants = role_grants(service, stage)
            for call in (c for c in service_calls if c["stage"] == stage):
                for action, arn in required(call):
                    for key in leading_keys(call):
                        granting = allowed(action, arn, grants, key, context_of(call, action))
                        used.update(g.key for g in granting)
                        if not granting:
                            denied.append(f"{service} ({stage}): {action} on {arn} ({key or 'no partition'})")
    assert not denied, "calls the role does not allow:\n" + "\n".join(sorted(set(denied)))

    unused = [
        f"{grant.template} {grant.policy}: {grant.action} on {grant.resource}"
        for service in FUNCTIONS
        for grant in role_grants(service, "local")
        if grant.key not in used and grant.action not in USED_BY_AWS and (service, grant.action) not in USED_BY_AWS_FOR
    ]
    assert not unused, "grants no call used (remove them, or say in USED_BY_AWS why AWS needs them):\n" + "\n".join(
        unused
    )


@pytest.mark.parametrize("service", sorted(FUNCTIONS))
def test_only_actions_without_resource_level_permissions_are_granted_on_every_resource(service: str) -> None:
    everything = [g for g in role_grants(service, "local") if g.resource == "*"]
    assert everything and all(g.action in RESOURCELESS for g in everything), everything


def test_whatsapp_is_granted_on_the_stages_number_only_and_not_at_all_without_one() -> None:
    """The local stack has no number to call, so no recorded call uses this grant: it is held here."""
    number = "phone-number-id-0123456789abcdef0123456789abcdef"
    send = "social-messaging:SendWhatsAppMessage"
    granted = [g for g in role_grants("notifications", "policy", {"WhatsAppPhoneNumberId": number}) if g.action == send]
    arn = f"arn:aws:social-messaging:{REGION}:{ACCOUNT_ID}:phone-number-id/{number}"
    assert [g.resource for g in granted] == [arn]
    assert not [g for g in role_grants("notifications", "policy") if g.action == send]
    for service in FUNCTIONS:
        if service != "notifications":
            assert not [
                g for g in role_grants(service, "policy", {"WhatsAppPhoneNumberId": number}) if g.action == send
            ]
