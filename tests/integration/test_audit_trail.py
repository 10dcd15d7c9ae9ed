"""The stream → audit consumer path on the local stack: exactly once, in order, poison to the DLQ."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest

from local.lambda_runtime.stream_records import stream_event
from local.stack import LocalStack, aws_client
from services.audit import verify
from services.audit.verify import verify_trail
from tests.integration.conftest import call, eventually, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots

AUDIT_TABLE = "appointments-local-audit"  # where the audit function alone keeps the trail


def history(dynamodb: Any, partition: str) -> list[dict[str, Any]]:
    items = dynamodb.query(
        TableName=AUDIT_TABLE,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :history)",
        ExpressionAttributeValues={":pk": {"S": partition}, ":history": {"S": "HISTORY#"}},
        ConsistentRead=True,
    )["Items"]
    return [dict(item) for item in items]


def audit_events(stack: LocalStack, query: str, expected: int = 1) -> list[tuple[str, str | None]]:
    """The trail by type, read again until it shows `expected` events: it is read from an index."""

    def read() -> list[tuple[str, str | None]]:
        items = every_page(stack, f"/audit/events?{query}", token(stack, "oncall", ["ops"]))
        return [(item["action"], item["actor"]) for item in items]

    return eventually(lambda: len(events := read()) >= expected and events) or read()


def test_a_scripted_scenario_shows_every_change_once_in_order_with_its_actor(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.event_source_mapping is not None
    # Given a provider whose owner changes the schedule and whose admin adds a service
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(stack, "audit-owner", "Audit Clinic", weekly, [{"name": "V", "durationMinutes": 30}])
    owner, admin = token(stack, "audit-owner", ["providers"]), token(stack, "audit-admin", ["admins"])
    later = {day: [{"start": "08:00", "end": "18:00"}] for day in WEEKDAYS}
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=owner, body={"weekly": later})[0] == 200
    status, _, added = call(
        stack, "POST", f"/providers/{pid}/services", token=admin, body={"name": "Long", "durationMinutes": 60}
    )
    assert status == 201, added
    # and a customer who books, reschedules and cancels
    who = token(stack, "audit-customer", ["customers"])
    day = future_day(2)
    booking = book(stack, who, pid, sid, slots(stack, pid, sid, day)[0]["start"])[2]
    path = f"/bookings/{booking['bookingId']}"
    call(stack, "POST", f"{path}/reschedule", token=who, body={"start": slots(stack, pid, sid, day)[-1]["start"]})
    call(stack, "POST", f"{path}/cancel", token=who, body={"reason": "changed my mind"})

    # When the stream has been consumed
    assert stack.event_source_mapping.wait_caught_up()

    # Then the booking's history shows each change once, in order, by whom
    status, _, page = call(stack, "GET", f"{path}/history", token=who)
    assert status == 200, page
    assert [(i["action"], i["actor"]) for i in page["items"]] == [
        ("BOOKING_CREATED", "audit-customer"),
        ("BOOKING_RESCHEDULED", "audit-customer"),
        ("BOOKING_CANCELLED", "audit-customer"),
    ]
    assert all(i["traceId"] and i["requestId"] for i in page["items"])
    assert len({i["eventId"] for i in page["items"]}) == 3
    # and the provider's changes are in the trail the same way
    assert audit_events(stack, f"entityType=Schedule&entityId={pid}", 2) == [("SCHEDULE_UPDATED", "audit-owner")] * 2
    assert audit_events(stack, f"entityType=Service&entityId={added['serviceId']}") == [
        ("SERVICE_CREATED", "audit-admin")
    ]
    assert audit_events(stack, f"entityType=Provider&entityId={pid}") == [("PROVIDER_CREATED", "audit-owner")]
    # and `make audit-verify` finds the archive whole
    assert verify.main(["--local-stack", stack.url]) == 0
    assert " intact: " in capsys.readouterr().out


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
    assert stack.emulator is not None and stack.event_source_mapping is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    sqs = aws_client("sqs", stack.emulator.endpoint)
    queue = sqs.get_queue_url(QueueName="appointments-local-audit-dlq")["QueueUrl"]
    # A "booking" no service would write (no bookingId): the consumer cannot map it, every time.
    dynamodb.put_item(
        TableName="appointments-local",
        Item={"PK": {"S": "BOOKING#poison"}, "SK": {"S": "BOOKING"}, "entityType": {"S": "Booking"}},
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
    # the provider owner's subject is for admins and ops, as on GET /providers
    assert all("providerOwner" not in item["changes"] for item in items)
    as_ops = call(stack, "GET", path, token=token(stack, "oncall", ["ops"]))[2]["items"]
    assert as_ops[0]["changes"]["providerOwner"]["after"] == "history-owner"
    assert items[1]["traceId"].startswith("1-") and items[1]["requestId"]
    assert call(stack, "GET", path, token=max_)[0] == 404  # another customer: no such booking
    assert call(stack, "GET", path, token=token(stack, "history-owner", ["providers"]))[0] == 200
    assert call(stack, "GET", path, token=token(stack, "oncall", ["ops"]))[0] == 200
    # the cross-entity query is for ops and admins only
    query = f"/audit/events?entityType=Booking&entityId={booking['bookingId']}"
    status, _, problem = call(stack, "GET", query, token=lena)
    assert (status, problem["code"]) == (403, "FORBIDDEN")
    oncall = token(stack, "oncall", ["ops"])

    def by_type() -> list[str]:  # an index, eventually consistent as DynamoDB keeps them
        items = every_page(stack, query, oncall)
        return [i["action"] for i in items] if len(items) >= 2 else []

    assert eventually(by_type) == ["BOOKING_CREATED", "BOOKING_CANCELLED"]
    services = every_page(stack, f"/audit/events?entityType=Service&entityId={sid}", token(stack, "root", ["admins"]))
    assert [(i["action"], i["actor"]) for i in services] == [("SERVICE_CREATED", "history-owner")]
    assert call(stack, "GET", "/audit/events", token=token(stack, "oncall", ["ops"]))[0] == 400  # which type?


def every_page(stack: LocalStack, query: str, who: str) -> list[dict[str, Any]]:
    """Every event the query names, page after page: `entityId` filters a page of the type's events,
    so a page may hold none of them and still have a next one (DynamoDB's filters read, then drop)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        status, _, page = call(stack, "GET", query + (f"&cursor={quote(cursor)}" if cursor else ""), token=who)
        assert status == 200, page
        items += page["items"]
        cursor = page.get("nextCursor")
        if not cursor:
            return items


def booking_changes_in_stream(stack: LocalStack, booking_ids: set[str]) -> int:
    """Business changes of these bookings as the stream itself has them, counted without the consumer's
    mapping: the booking item's INSERT, and each MODIFY that changes its status."""
    assert stack.emulator is not None and stack.data is not None
    streams = aws_client("dynamodbstreams", stack.emulator.endpoint)
    arn = stack.data.table_stream_arn
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    changes = 0
    while True:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        for record in page["Records"]:
            image = record["dynamodb"].get("NewImage", {})
            if image.get("bookingId", {}).get("S") not in booking_ids or image["entityType"]["S"] != "Booking":
                continue
            old = record["dynamodb"].get("OldImage", {})
            changes += record["eventName"] == "INSERT" or old.get("status") != image.get("status")
        if not page["Records"]:
            return changes
        iterator = page["NextShardIterator"]


def test_under_load_every_business_change_becomes_exactly_one_audit_event(stack: LocalStack) -> None:
    assert stack.event_source_mapping is not None and stack.emulator is not None and stack.data is not None
    # Given six providers with plenty of slots (spread out so that the load is on the trail, not on
    # one provider's day: that contention is the booking service's, tested in test_booking_api)
    weekly = {day: [{"start": "08:00", "end": "20:00"}] for day in WEEKDAYS}
    service = {"name": "Quick", "durationMinutes": 15, "slotStepMinutes": 15}
    clinics = [make_provider(stack, f"load-owner-{k}", f"Load Clinic {k}", weekly, [service]) for k in range(6)]
    offered = [[slot["start"] for slot in slots(stack, pid, sid, future_day(5))] for pid, (sid,) in clinics]
    customers = [token(stack, f"load-{n}", ["customers"]) for n in range(60)]

    # When 40 customers book at once, then 20 more book while the first 20 cancel
    def book_one(n: int) -> str:
        pid, (sid,) = clinics[n % 6]
        status, _, created = book(stack, customers[n], pid, sid, offered[n % 6][n // 6])
        assert status == 201, created
        return str(created["bookingId"])

    def cancel_one(n: int, booking_id: str) -> None:
        status, _, body = call(stack, "POST", f"/bookings/{booking_id}/cancel", token=customers[n], body={})
        assert status == 200, body

    with ThreadPoolExecutor(12) as pool:
        first = list(pool.map(book_one, range(40)))
        cancels = [pool.submit(cancel_one, n, first[n]) for n in range(20)]
        second = list(pool.map(book_one, range(40, 60)))
        for cancel in cancels:
            cancel.result()
    booked = set(first + second)
    assert stack.event_source_mapping.wait_caught_up()

    # Then the trail has one event per business change in the stream: 60 created + 20 cancelled
    in_stream = booking_changes_in_stream(stack, booked)
    assert in_stream == 80
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    events = [item for booking_id in booked for item in history(dynamodb, f"BOOKING#{booking_id}")]
    assert len(events) == in_stream
    assert len({item["eventId"]["S"] for item in events}) == in_stream
    assert sorted(item["action"]["S"] for item in events).count("BOOKING_CANCELLED") == 20
    # and the archive agrees, every chain intact
    result = verify_trail(
        dynamodb, aws_client("s3", stack.emulator.endpoint), stack.data.audit_table_name, stack.data.audit_bucket_name
    )
    assert result.intact, result.summary()
    assert result.records >= in_stream
