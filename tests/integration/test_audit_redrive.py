"""`make audit-redrive`: dead-lettered stream ranges read back from the stream and recorded, once."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from local.stack import LocalStack, aws_client
from services.audit import redrive
from services.audit.verify import verify_trail
from tests.integration.conftest import call, eventually, token
from tests.integration.test_audit_trail import AUDIT_TABLE, history


def faults(stack: LocalStack, plan: dict[str, Any]) -> None:
    status, _, body = call(stack, "PUT", "/_local/faults", body=plan)
    assert status == 200, body


def test_a_dead_lettered_change_is_redriven_into_the_trail_once(stack: LocalStack) -> None:
    assert stack.emulator is not None and stack.data is not None and stack.event_source_mapping is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    sqs = aws_client("sqs", stack.emulator.endpoint)
    queue = sqs.get_queue_url(QueueName="appointments-local-audit-dlq")["QueueUrl"]
    owner = token(stack, "redrive-owner", ["providers"])
    assert stack.event_source_mapping.wait_caught_up()  # what came before is recorded, not caught up in this
    before = stack.event_source_mapping.dead_lettered
    # Given a change whose every archive write fails until the retries give up: its range is dead-lettered
    faults(stack, {"archiveError": 1.0})
    try:
        status, _, provider = call(
            stack, "POST", "/providers", token=owner, body={"name": "Redriven", "timeZone": "UTC"}
        )
        assert status == 201, provider
        assert eventually(lambda: stack.event_source_mapping.dead_lettered > before, 90), "nothing was dead-lettered"
    finally:
        faults(stack, {})
    partition = f"PROVIDER#{provider['providerId']}"
    archived_first = history(dynamodb, partition)  # the history item may be there; its archive is not

    # When the cause is gone and the dead letters are redriven
    with urllib.request.urlopen(f"{stack.url}/_local/status", timeout=10) as answer:
        status = json.load(answer)
    assert status["auditFunction"] == "appointments-local-audit"
    functions = aws_client("lambda", stack.url)  # the local stack's Lambda Invoke API
    streams = aws_client("dynamodbstreams", stack.emulator.endpoint)
    result = redrive.redrive(sqs, streams, functions, queue, status["auditFunction"])

    # Then its change is in the history once, archived, the chain intact, and its message gone
    assert result.redriven, result
    events = history(dynamodb, partition)
    assert [e["action"]["S"] for e in events] == ["PROVIDER_CREATED"] and len(archived_first) <= 1
    left = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    infos = [json.loads(message["Body"])["DDBStreamBatchInfo"] for message in left]
    ranges = {f"{i['shardId']} {i['startSequenceNumber']}..{i['endSequenceNumber']}" for i in infos}
    assert not ranges & set(result.redriven)
    assert verify_trail(
        dynamodb, aws_client("s3", stack.emulator.endpoint), AUDIT_TABLE, stack.data.audit_bucket_name
    ).intact
    # and a second redrive finds nothing of it to do
    again = redrive.redrive(sqs, streams, functions, queue, status["auditFunction"])
    assert not again.redriven
