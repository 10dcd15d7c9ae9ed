"""A record of every AWS API call a function makes, for the least-privilege test.

When the local runtime is asked to (`APPOINTMENTS_AWS_CALL_LOG` in its environment), each worker
registers a `before-parameter-build` hook (once per API call, before retries, with the call's own
parameters) on the services' botocore session (services/common/aws.py) and boto3's default
session, after the handler module is imported and before any client exists (the services create
theirs lazily). Every call then appends one JSON line:
the function, its stage, the service, the operation and the parameters that name resources (table,
index, transaction items, bucket and key, queue). tests/policy/ maps these to IAM actions and
resources and compares them with the function's role in its template.

Tests also call handlers in their own process (`invoke_handler` in tests/integration/conftest.py).
Those calls are recorded the same way, as the function whose handler runs, inside `calling(…)`;
the test's own calls around them (seeding, reading back) are not the function's and are left out.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from weakref import WeakSet

RESOURCE_PARAMETERS = ("TableName", "TableArn", "ExportArn", "IndexName", "Bucket", "Key", "QueueUrl")


def _resources(params: dict[str, Any]) -> dict[str, Any]:
    named: dict[str, Any] = {key: params[key] for key in RESOURCE_PARAMETERS if key in params}
    if "TransactItems" in params:  # a transaction is authorized item by item
        named["TransactItems"] = [
            {kind: {"TableName": item[kind].get("TableName")} for kind in item} for item in params["TransactItems"]
        ]
    if "RequestItems" in params:  # batch operations name their tables as keys
        named["RequestItems"] = sorted(params["RequestItems"])
        partitions = {  # a BatchGetItem's partitions: `dynamodb:LeadingKeys` holds each of them
            str(key["PK"]["S"])
            for request in params["RequestItems"].values()
            if isinstance(request, dict)
            for key in request.get("Keys", [])
            if isinstance(key, dict) and isinstance(key.get("PK"), dict) and "S" in key["PK"]
        }
        if partitions:
            named["PartitionKeys"] = sorted(partitions)
    if "Entries" in params:  # PutEvents is authorized on each entry's bus
        named["EventBusNames"] = sorted({str(entry.get("EventBusName", "default")) for entry in params["Entries"]})
    bound = re.match(r"\s*PK\s*=\s*(:\w+)", str(params.get("KeyConditionExpression", "")))
    if bound and bound.group(1) in params.get("ExpressionAttributeValues", {}):  # a Query's partition
        named["PartitionKey"] = params["ExpressionAttributeValues"][bound.group(1)].get("S")
    item = params.get("Item")
    if isinstance(item, dict) and isinstance(item.get("PK"), dict):  # a PutItem's partition
        named["PartitionKey"] = item["PK"].get("S")
    if "KeyId" in params:  # KMS: the key (or its alias; a Decrypt may name none: its ciphertext does)
        named["KeyId"] = params["KeyId"]
    if "EncryptionContext" in params:  # what a grant's condition on it is checked against
        named["EncryptionContext"] = params["EncryptionContext"]
    if "GroupName" in params and "Name" in params:  # a schedule, and the role it runs as (iam:PassRole)
        named["Schedule"] = f"{params['GroupName']}/{params['Name']}"
        if "RoleArn" in params.get("Target", {}):
            named["PassedRole"] = params["Target"]["RoleArn"]
    return named


# (function, stage) while a handler runs in a test's own process: see `calling`.
_calling: ContextVar[tuple[str, str] | None] = ContextVar("calling", default=None)
_recording_sessions: WeakSet[Any] = WeakSet()  # the sessions' event emitters already hooked, each once


def record_calls(path: str, *, in_process: bool = False) -> None:
    """Append every later AWS call of this process to `path` (one JSON object per line): a worker's
    as its function's; with `in_process`, only those made inside `calling(…)`, as that function's."""
    import boto3  # only when recording: the function's own imports decide its cold start

    from services.common.aws_session import session as services_session

    worker = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""), os.environ.get("STAGE", "")

    def note(model: Any, params: dict[str, Any], **_: Any) -> None:
        who = _calling.get() if in_process else worker
        if who is None:
            return
        function, stage = who
        line = {
            "function": function,
            "stage": stage,
            "service": model.service_model.service_id,
            "operation": model.name,
            "resources": _resources(params),
        }
        with open(path, "a", encoding="utf-8") as log:  # O_APPEND: whole lines from many workers
            log.write(json.dumps(line) + "\n")

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    # The services' clients come from their own botocore session; the audit's backup and tools use
    # boto3's default one.
    for events in (services_session().get_component("event_emitter"), boto3.DEFAULT_SESSION.events):
        if events not in _recording_sessions:
            _recording_sessions.add(events)
            events.register("before-parameter-build", note)


@contextmanager
def calling(function: str, stage: str) -> Iterator[None]:
    """Record the AWS calls made in this block as `function`'s (a handler run in a test's process),
    when the run records calls at all (`APPOINTMENTS_AWS_CALL_LOG`)."""
    path = os.environ.get("APPOINTMENTS_AWS_CALL_LOG")
    if path:
        record_calls(path, in_process=True)
    token = _calling.set((function, stage))
    try:
        yield
    finally:
        _calling.reset(token)
