"""Redrive the audit consumer's dead letters: `make audit-redrive`, or `python -m services.audit.redrive`.

A DLQ message of the stream mapping says where a failed batch was (shard, first and last sequence
number), not what it held. While the stream still has those records (24 hours), this reads them back
(`GetShardIterator` at the first sequence number, `GetRecords` up to the last) and gives them to the
audit function as the event Lambda would have sent (`Invoke`), so they are recorded by the same code,
with its own role, once: a record already in the trail is recognised as such. A message whose
whole range was recorded is deleted; one whose records the stream no longer has, or that failed
again, stays, and is reported. Runs with the caller's credentials.

    python -m services.audit.redrive --local-stack http://127.0.0.1:3000       # the stack `make run` runs
    python -m services.audit.redrive --queue-url URL --function NAME            # a deployed stage

The domain events' publisher reads the same stream with a mapping of the same kind, so its dead
letters are redriven the same way (`--consumer publisher` locally; its queue and function deployed):
`make events-redrive`. It puts a redriven range's events again under their ids (decision 0027).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from msgspec import Struct, field

from services.audit.verify import local_stack_status

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sqs import SQSClient


class RangeGone(Exception):
    """The stream no longer holds (all of) a dead-lettered range: past its 24 hours."""


class Redrive(Struct):
    redriven: list[str] = field(default_factory=list)  # ranges recorded, their messages deleted
    gone: list[str] = field(default_factory=list)  # ranges the stream no longer has
    failed: list[str] = field(default_factory=list)  # ranges the consumer failed again

    def summary(self) -> str:
        return (
            f"{len(self.redriven)} range(s) redriven, {len(self.failed)} failed again, "
            f"{len(self.gone)} no longer in the stream"
        )


def redrive(
    sqs: SQSClient, streams: DynamoDBStreamsClient, functions: LambdaClient, queue: str, function: str
) -> Redrive:
    """Every dead-lettered range in `queue`, read from the stream and given to `function`."""
    done = Redrive()
    seen: set[str] = set()
    while True:
        # A long poll: a short one samples only some of the queue's servers and may answer none.
        messages = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=2
        ).get("Messages", [])
        fresh = [message for message in messages if message["MessageId"] not in seen]
        if not fresh:
            return done
        for message in fresh:
            seen.add(message["MessageId"])
            info = json.loads(message["Body"])["DDBStreamBatchInfo"]
            where = f"{info['shardId']} {info['startSequenceNumber']}..{info['endSequenceNumber']}"
            try:
                records = read_range(streams, info)
            except RangeGone:
                done.gone.append(where)
                continue
            answer = functions.invoke(FunctionName=function, Payload=json.dumps({"Records": records}).encode())
            result = json.loads(answer["Payload"].read() or b"{}")
            if answer.get("FunctionError") or (result or {}).get("batchItemFailures"):
                done.failed.append(where)
                continue
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            done.redriven.append(where)


def read_range(streams: DynamoDBStreamsClient, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The records from `startSequenceNumber` to `endSequenceNumber` of the shard, as Lambda's event
    carries them; `RangeGone` when the stream no longer has the first one or misses any."""
    first, last = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=info["streamArn"],
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=info["startSequenceNumber"],
        ).get("ShardIterator")
    except ClientError as error:
        if error.response["Error"]["Code"] in {"TrimmedDataAccessException", "ResourceNotFoundException"}:
            raise RangeGone() from error
        raise
    records: list[dict[str, Any]] = []
    empty_reads = 0
    while iterator and empty_reads < 5:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        iterator = page.get("NextShardIterator")
        empty_reads = 0 if page["Records"] else empty_reads + 1
        for record in page["Records"]:
            sequence = int(record["dynamodb"]["SequenceNumber"])
            if sequence > last:
                return _checked(records, first, info)
            records.append(_as_lambda_delivers(dict(record), info["streamArn"]))
    return _checked(records, first, info)


def _checked(records: list[dict[str, Any]], first: int, info: dict[str, Any]) -> list[dict[str, Any]]:
    if not records or int(records[0]["dynamodb"]["SequenceNumber"]) != first:
        raise RangeGone()
    if info.get("batchSize") and len(records) < int(info["batchSize"]):
        raise RangeGone()  # some of the range has been trimmed away
    return records


def _as_lambda_delivers(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A `GetRecords` record as Lambda's stream event holds it: with its stream's ARN, and times as
    epoch seconds rather than the SDK's datetimes."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "dynamodb": dynamodb, "eventSourceARN": stream_arn}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="audit-redrive", description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--local-stack", metavar="URL", help="the local stack's URL (make run)")
    target.add_argument("--queue-url", help="the audit consumer's dead-letter queue (a deployed stage)")
    parser.add_argument("--function", help="the audit function's name (with --queue-url)")
    parser.add_argument(
        "--consumer", choices=["audit", "publisher"], default="audit", help="whose dead letters (with --local-stack)"
    )
    arguments = parser.parse_args(argv)
    options: dict[str, Any] = {}
    lambda_options: dict[str, Any] = {}
    if arguments.local_stack:
        status = local_stack_status(arguments.local_stack)
        if arguments.consumer == "publisher":
            queue, function = status["events"]["publisherDeadLetterQueue"], f"appointments-{status['stage']}-publisher"
        else:
            queue, function = status["auditDeadLetterQueue"], status["auditFunction"]
        local = {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}
        options = {"endpoint_url": status["emulator"], **local}
        lambda_options = {"endpoint_url": arguments.local_stack, **local}
    elif arguments.function:
        queue, function = arguments.queue_url, arguments.function
    else:
        parser.error("--queue-url needs --function")
    # The function may run up to its 60 s timeout: wait longer than that, and never send a range twice
    # because an answer was slow (the SDK's default read timeout is 60 s, with retries).
    patient = Config(read_timeout=90, retries={"max_attempts": 1})
    result = redrive(
        boto3.client("sqs", **options),
        boto3.client("dynamodbstreams", **options),
        boto3.client("lambda", config=patient, **(lambda_options or options)),
        queue,
        function,
    )
    print(f"{queue}: {result.summary()}")
    for gone in result.gone:
        print(f"  no longer in the stream (lost to the trail; see docs/runbooks/audit-failures.md): {gone}")
    for failed in result.failed:
        print(f"  failed again, left in the queue: {failed}")
    return 0 if not (result.gone or result.failed) else 1


if __name__ == "__main__":
    sys.exit(main())
