"""The stream → audit consumer path on the local stack: exactly once, in order, poison to the DLQ."""

from __future__ import annotations

import time
from typing import Any

from local.stack import LocalStack, aws_client
from local.streams import stream_event
from tests.integration.conftest import call, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots

TABLE = "appointments-local"


def history(dynamodb: Any, partition: str) -> list[dict[str, Any]]:
    items = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :history)",
        ExpressionAttributeValues={":pk": {"S": partition}, ":history": {"S": "HISTORY#"}},
        ConsistentRead=True,
    )["Items"]
    return [dict(item) for item in items]


def eventually(check: Any, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_a_bookings_changes_reach_its_history_once_and_in_order(stack: LocalStack) -> None:
    assert stack.emulator is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(stack, "audit-owner", "Audit Clinic", weekly, [{"name": "V", "durationMinutes": 30}])
    who = token(stack, "audit-customer", ["customers"])
    day = future_day(2)
    booking = book(stack, who, pid, sid, slots(stack, pid, sid, day)[0]["start"])[2]
    path = f"/bookings/{booking['bookingId']}"
    call(stack, "POST", f"{path}/reschedule", token=who, body={"start": slots(stack, pid, sid, day)[-1]["start"]})
    call(stack, "POST", f"{path}/cancel", token=who, body={"reason": "changed my mind"})
    items = eventually(
        lambda: (found := history(dynamodb, f"BOOKING#{booking['bookingId']}")) and len(found) >= 3 and found
    )
    actions = [item["action"]["S"] for item in items]
    assert actions == ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED"]
    assert all(item["actor"]["S"] == "audit-customer" and item["traceId"]["S"] for item in items)


def test_a_redelivered_record_makes_no_second_event(stack: LocalStack) -> None:
    assert stack.emulator is not None and stack.lambdas is not None and stack.data is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    streams = aws_client("dynamodbstreams", stack.emulator.endpoint)
    arn = stack.data.table_stream_arn
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    records = [dict(r) for r in streams.get_records(ShardIterator=iterator, Limit=50)["Records"]]
    provider_insert = next(
        r for r in records if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["SK"]["S"] == "CONFIG#PROFILE"
    )
    partition = provider_insert["dynamodb"]["Keys"]["PK"]["S"]
    before = eventually(lambda: history(dynamodb, partition))
    consumer = stack.lambdas.functions["AuditFunction"]
    for _ in range(2):  # the same record, delivered again, twice
        answer = consumer.invoke(stream_event([provider_insert], arn))
        assert not answer.failed and answer.payload == {"batchItemFailures": []}
    assert history(dynamodb, partition) == before


def test_a_poison_record_goes_to_the_dlq_and_blocks_nothing(stack: LocalStack) -> None:
    assert stack.emulator is not None and stack.stream_runner is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    sqs = aws_client("sqs", stack.emulator.endpoint)
    queue = sqs.get_queue_url(QueueName="appointments-local-audit-dlq")["QueueUrl"]
    # A "booking" no service would write (no bookingId): the consumer cannot map it, every time.
    dynamodb.put_item(
        TableName=TABLE, Item={"PK": {"S": "BOOKING#poison"}, "SK": {"S": "BOOKING"}, "entityType": {"S": "Booking"}}
    )
    # and a real change right behind it
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, _ = make_provider(stack, "after-poison", "After Poison", weekly, [])
    messages = eventually(lambda: sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []), 60)
    assert messages, "the poison record reached the dead-letter queue after its retries"
    assert '"RetryAttemptsExhausted"' in messages[0]["Body"] and '"DDBStreamBatchInfo"' in messages[0]["Body"]
    assert eventually(lambda: history(dynamodb, f"PROVIDER#{pid}")), "the change after it was still recorded"


def test_history_and_the_audit_query_show_each_caller_what_it_may_see(stack: LocalStack) -> None:
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(
        stack, "history-owner", "History Clinic", weekly, [{"name": "V", "durationMinutes": 30}]
    )
    lena, max_ = token(stack, "lena", ["customers"]), token(stack, "max", ["customers"])
    booking = book(stack, lena, pid, sid, slots(stack, pid, sid, future_day(3))[0]["start"])[2]
    call(stack, "POST", f"/bookings/{booking['bookingId']}/cancel", token=lena, body={"reason": "travel"})
    path = f"/bookings/{booking['bookingId']}/history"

    def lenas_history() -> list[dict[str, Any]]:
        status, _, page = call(stack, "GET", path, token=lena)
        assert status == 200, page
        return list(page["items"]) if len(page["items"]) >= 2 else []

    items = eventually(lenas_history)
    assert [(i["action"], i["actor"]) for i in items] == [("BOOKING_CREATED", "lena"), ("BOOKING_CANCELLED", "lena")]
    assert items[1]["changes"]["status"] == {"before": "CONFIRMED", "after": "CANCELLED"}
    assert items[1]["traceId"].startswith("1-") and items[1]["requestId"]
    assert call(stack, "GET", path, token=max_)[0] == 404  # another customer: no such booking
    assert call(stack, "GET", path, token=token(stack, "history-owner", ["providers"]))[0] == 200
    assert call(stack, "GET", path, token=token(stack, "oncall", ["ops"]))[0] == 200
    # the cross-entity query is for ops and admins only
    query = f"/audit/events?entityType=Booking&entityId={booking['bookingId']}"
    status, _, problem = call(stack, "GET", query, token=lena)
    assert (status, problem["code"]) == (403, "FORBIDDEN")
    status, _, page = call(stack, "GET", query, token=token(stack, "oncall", ["ops"]))
    assert status == 200 and [i["action"] for i in page["items"]] == ["BOOKING_CREATED", "BOOKING_CANCELLED"]
    status, _, services = call(
        stack, "GET", f"/audit/events?entityType=Service&entityId={sid}", token=token(stack, "root", ["admins"])
    )
    assert status == 200 and [(i["action"], i["actor"]) for i in services["items"]] == [
        ("SERVICE_CREATED", "history-owner")
    ]
    assert call(stack, "GET", "/audit/events", token=token(stack, "oncall", ["ops"]))[0] == 400  # which type?
