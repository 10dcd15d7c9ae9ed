"""The audit path under attack and under faults, each on a data stack of its own fed by the event
source mapping: S3 refusing writes, a malformed record and a consumer that dies mid-batch leave a complete trail
with nothing in it twice and the poison's range in the dead-letter queue; tampering with the archive is
caught and pointed at."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from local.cloudformation.provision import DataStack, deploy_data_stack, deploy_queues
from local.cognito.user_pool import auth_parameters
from local.emulator.server import EmulatorProcess
from local.lambda_runtime.event_source_mapping import EventSourceMapping, MappingSettings
from local.lambda_runtime.functions import load_functions
from local.lambda_runtime.service import LambdaService
from local.stack import aws_client
from services.audit.adapters.dynamodb_trail import DynamoDBAuditReader
from services.audit.verify import verify_trail
from services.availability import handler as availability
from services.booking import handler as booking
from services.common.aws import dynamodb_client, s3_client
from services.common.settings import load_settings
from tests.integration.conftest import LAMBDA_TRACE
from tests.integration.test_audit_events import A_DAY, a_monday_ahead, live_a_day

# botocore tries a request 1 + 3 times (services/common/aws.py): four refusals fail the record.
FAULTS: dict[str, Any] = {"slowDownFor": "/Service/", "slowDownTimes": 4, "crashAfterPuts": 4}


@dataclass
class AuditPipeline:
    """A data stack, its DLQ, and the event source mapping feeding it to one audit consumer."""

    data: DataStack
    runner: EventSourceMapping
    dead_letters: str
    clients: dict[str, Any]

    def verify(self) -> Any:
        return verify_trail(
            self.clients["dynamodb"], self.clients["s3"], self.data.audit_table_name, self.data.audit_bucket_name
        )


@pytest.fixture
def audit_pipeline(
    emulator: EmulatorProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., AuditPipeline]]:
    """Makes a pipeline for a stage of its own, and points this process's handlers at its table."""
    made: list[tuple[EventSourceMapping, LambdaService]] = []
    cached = (load_settings, dynamodb_client, s3_client, availability.availability, booking.store, booking.bookings)

    def make(stage: str, handler: str = "services.audit.handler.lambda_handler", **env: str) -> AuditPipeline:
        clients = {name: aws_client(name, emulator.endpoint) for name in ("dynamodb", "s3", "sqs", "dynamodbstreams")}
        data = deploy_data_stack(clients["dynamodb"], clients["s3"], stage=stage)
        parameters = {"Stage": stage, **data.as_parameters(), **auth_parameters(), "DependenciesLayerArn": "local"}
        queues = deploy_queues(clients["sqs"], "audit.yaml", parameters)
        spec = load_functions(parameters)["AuditFunction"]
        spec = replace(spec, handler=handler, environment={**spec.environment, **env})
        lambdas = LambdaService.create({"AuditFunction": spec}, emulator.endpoint, tmp_path / "logs")
        runner = EventSourceMapping(
            clients["dynamodbstreams"],
            clients["sqs"],
            data.table_stream_arn,
            lambdas.functions["AuditFunction"],
            MappingSettings.from_template(),  # the deployed mapping's retries, bisection and batch size
            queues["AuditDeadLetterQueue"],
            poll_seconds=0.05,
        )
        made.append((runner, lambdas))
        for name, value in {
            "AWS_ENDPOINT_URL": emulator.endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "STAGE": stage,
            "TABLE_NAME": data.table_name,
            "AUDIT_TABLE_NAME": data.audit_table_name,
            "POWERTOOLS_SERVICE_NAME": stage,
            "POWERTOOLS_METRICS_NAMESPACE": "Appointments",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "STAFF_ISSUER": auth_parameters()["StaffIssuer"],
            "ALLOWED_ORIGINS": "",
            "_X_AMZN_TRACE_ID": f"Root={LAMBDA_TRACE};Parent=0123456789abcdef;Sampled=1",
        }.items():
            monkeypatch.setenv(name, value)
        for factory in cached:
            factory.cache_clear()
        return AuditPipeline(data, runner, queues["AuditDeadLetterQueue"], clients)

    yield make
    for runner, lambdas in made:
        runner.stop()
        lambdas.shutdown()
    for factory in cached:
        factory.cache_clear()


def test_after_faults_and_retries_the_trail_is_complete_once_and_verifies(
    audit_pipeline: Callable[..., AuditPipeline], tmp_path: Path
) -> None:
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "plan.json").write_text(json.dumps(FAULTS))
    pipeline = audit_pipeline("faults", "tests.fixtures.faulty_audit.lambda_handler", FAULTS_DIR=str(faults))
    dynamodb, table = pipeline.clients["dynamodb"], pipeline.data.table_name

    def poison() -> None:
        # A "booking" no service would write (no bookingId): the consumer fails on it every time.
        item = {"PK": {"S": "BOOKING#poison"}, "SK": {"S": "BOOKING"}, "entityType": {"S": "Booking"}}
        dynamodb.put_item(TableName=table, Item=item)

    # Given a day of changes with a poison record in the middle, already in the stream
    live_a_day(a_monday_ahead(), between=poison)

    # When the mapping delivers the stream to a consumer that S3 refuses and that dies mid-batch
    pipeline.runner.start()
    assert pipeline.runner.wait_caught_up(timeout=120)

    # Then the faults did happen
    assert (faults / "crashed").exists(), "the consumer died mid-batch once"
    refused = [int(p.read_text()) for p in faults.glob("refused-*")]
    assert refused and all(count > FAULTS["slowDownTimes"] for count in refused), "S3 refused, then accepted"
    # and every change is in the history once, in stream order
    history = sorted(
        DynamoDBAuditReader(dynamodb, pipeline.data.audit_table_name).all_history(), key=lambda e: int(e.sequence)
    )
    assert [(e.entityType, e.action) for e in history] == A_DAY
    assert len({e.eventId for e in history}) == len(history)
    # and the archive holds the same events, once each, with every chain intact
    result = pipeline.verify()
    assert result.intact, result.summary()
    assert (result.records, result.history_items) == (len(A_DAY), len(A_DAY))
    # and the failed batch's range, from the poison record on, is in the dead-letter queue, as Lambda
    # sends it once retries run out: one message with the range's coordinates. (The records after the
    # poison were handled in every attempt, the consumer reporting only the poison; the history above
    # is complete.)
    sqs = pipeline.clients["sqs"]
    messages = sqs.receive_message(QueueUrl=pipeline.dead_letters, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    message = json.loads(messages[0]["Body"])
    info = message["DDBStreamBatchInfo"]
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["batchSize"] == pipeline.runner.dead_lettered >= 1
    # The range spans the records the mapping's filter discarded between those it delivered: they
    # are in the stream, not in the batch (a redrive reads them back and the consumer ignores them).
    assert int(info["endSequenceNumber"]) - int(info["startSequenceNumber"]) >= info["batchSize"] - 1
    assert stream_record_at(pipeline, info["startSequenceNumber"])["dynamodb"]["Keys"]["PK"]["S"] == "BOOKING#poison"


def test_tampering_with_the_archive_is_caught_and_pointed_at(audit_pipeline: Callable[..., AuditPipeline]) -> None:
    # Given a verified archive
    pipeline = audit_pipeline("tamper")
    _, bid = live_a_day(a_monday_ahead())
    pipeline.runner.start()
    assert pipeline.runner.wait_caught_up(timeout=60)
    assert pipeline.verify().intact
    s3, bucket = pipeline.clients["s3"], pipeline.data.audit_bucket_name
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="audit/")["Contents"]]
    booking_keys = {json.loads(read(s3, bucket, key))["chainIndex"]: key for key in keys if "/Booking/" in key}

    # When someone with write access rewrites who moved the booking
    rescheduled = booking_keys[2]
    forged = read(s3, bucket, rescheduled).replace(b'"actor":"cust-a"', b'"actor":"dr-a"')
    s3.put_object(Bucket=bucket, Key=rescheduled, Body=gzip.compress(forged))

    # Then verification fails, and its first break is that record
    result = pipeline.verify()
    assert not result.intact
    first = result.first_break
    assert first is not None
    assert (first.entityType, first.entityId, first.chainIndex, first.where) == ("Booking", bid, 2, rescheduled)
    problems = {b.problem for b in result.breaks if b.chainIndex == 2}
    assert "the content does not match its hash: the record was altered" in problems
    assert any("disagree on actor" in p for p in problems)

    # and removing the booking's last record is caught as well
    s3.delete_object(Bucket=bucket, Key=booking_keys[3])
    breaks = [str(b) for b in pipeline.verify().breaks]
    assert f"Booking ? #0 ({booking_keys[3]}): the object was deleted (its latest version is a delete marker)" in breaks
    assert any(b.startswith(f"Booking {bid} #3 (history): ") and "not in the archive" in b for b in breaks)

    # and so is removing it from both homes, every version of the object and the history item alike:
    # only the chain's head still counts it
    versions = s3.list_object_versions(Bucket=bucket, Prefix=booking_keys[3])
    for version in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]:
        s3.delete_object(
            Bucket=bucket, Key=booking_keys[3], VersionId=version["VersionId"], BypassGovernanceRetention=True
        )
    dynamodb = pipeline.clients["dynamodb"]
    history = dynamodb.query(TableName=pipeline.data.audit_table_name, KeyConditionExpression="PK = :pk AND begins_with(SK, :h)",
                             ExpressionAttributeValues={":pk": {"S": f"BOOKING#{bid}"}, ":h": {"S": "HISTORY#"}},
                             ConsistentRead=True)["Items"]  # fmt: skip
    last = max(history, key=lambda item: int(item["chainIndex"]["N"]))
    dynamodb.delete_item(TableName=pipeline.data.audit_table_name, Key={"PK": last["PK"], "SK": last["SK"]})
    breaks = [str(b) for b in pipeline.verify().breaks]
    removed = [b for b in breaks if b.startswith(f"Booking {bid} #3 ") or "#0 (" in b]
    assert removed == [
        f"Booking {bid} #3 (chain head): the chain's head counts 3 links (the history ends at #2): "
        "its last events were removed"
    ], breaks


def read(s3: Any, bucket: str, key: str) -> bytes:
    return gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def stream_record_at(pipeline: AuditPipeline, sequence: str) -> dict[str, Any]:
    streams = pipeline.clients["dynamodbstreams"]
    arn = pipeline.data.table_stream_arn
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=sequence
    )["ShardIterator"]
    return dict(streams.get_records(ShardIterator=iterator, Limit=1)["Records"][0])
