"""The local stack's clock: `/_local/clock` moves the whole stack's now, and what happens days later
happens without waiting for it. A stack of its own, since its clock only moves forward."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from local.stack import LocalStack, StackConfig, aws_client
from services.common import keys
from tests.integration.conftest import call, token

pytestmark = pytest.mark.slow

DAY = 24 * 3600


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    running = LocalStack(StackConfig(port=0, state_dir=tmp_path_factory.mktemp("clock"), echo=None, seed=False))
    running.start()
    yield running
    running.stop()


def advance(stack: LocalStack, seconds: float) -> dict[str, Any]:
    status, _, body = call(stack, "POST", "/_local/clock", body={"advanceSeconds": seconds})
    assert status == 200, body
    return dict(body)


def test_the_clock_starts_at_the_machines_time_and_never_goes_back(stack: LocalStack) -> None:
    status, _, state = call(stack, "GET", "/_local/clock")
    assert status == 200 and state["offsetSeconds"] == 0
    assert abs(datetime.fromisoformat(state["now"]).timestamp() - time.time()) < 5
    for refused in ({"advanceSeconds": 0}, {"advanceSeconds": -60}, {"advanceSeconds": "1"}, {}):
        status, headers, problem = call(stack, "POST", "/_local/clock", body=refused)
        assert (status, headers["Content-Type"], problem["code"]) == (
            400,
            "application/problem+json",
            "VALIDATION_FAILED",
        )
        assert problem["errors"][0]["field"] == "body.advanceSeconds"
    assert call(stack, "GET", "/_local/clock")[2]["offsetSeconds"] == 0


def test_after_three_days_searches_tokens_metrics_and_expiry_follow_the_clock(stack: LocalStack) -> None:
    assert stack.data is not None and stack.metrics is not None and stack.emulator is not None
    owner = token(stack, "clock-owner", ["providers"])
    provider = call(stack, "POST", "/providers", token=owner, body={"name": "Always Open", "timeZone": "UTC"})[2]
    pid = provider["providerId"]
    every_day = {day: [{"start": "00:00", "end": "24:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=owner, body={"weekly": every_day})[0] == 200
    service = call(
        stack,
        "POST",
        f"/providers/{pid}/services",
        token=owner,
        body={"name": "Visit", "durationMinutes": 30, "minNoticeMinutes": 0},
    )[2]
    customer = token(stack, "clock-customer", ["customers"])  # minted at the machine's time, valid 1 hour
    # A booking made with an Idempotency-Key leaves a record that expires (TTL) 24 hours later.
    real_now = datetime.now(UTC)
    first = slots(stack, customer, pid, service["serviceId"], real_now, days=1)[0]
    booked = call(stack, "POST", "/bookings", token=customer, headers={"Idempotency-Key": "clock-1"},
                  body={"providerId": pid, "serviceId": service["serviceId"], "start": first["start"]})  # fmt: skip
    assert booked[0] == 201, booked
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    remembered = {"PK": {"S": "IDEMPOTENCY#clock-customer#clock-1"}, "SK": {"S": "IDEMPOTENCY"}}
    assert "Item" in dynamodb.get_item(TableName=stack.data.table_name, Key=remembered)
    mapping = stack.event_source_mapping
    assert mapping is not None and mapping.wait_caught_up()
    history_before = count_history(dynamodb, stack.data.audit_table_name)
    # and one more change, still on its way to the audit consumer when the clock moves
    second = {"name": "Second visit", "durationMinutes": 45}
    assert call(stack, "POST", f"/providers/{pid}/services", token=owner, body=second)[0] == 201

    # When the clock moves three days forward
    discarded = mapping.filtered_out
    moved = advance(stack, 3 * DAY)
    advanced_at = time.monotonic()
    assert moved["offsetSeconds"] == 3 * DAY and stack.clock.offset == 3 * DAY
    clock_now = datetime.fromisoformat(moved["now"])
    assert abs((clock_now - real_now).total_seconds() - 3 * DAY) < 60

    # Then the idempotency record, 24 hours old now, is deleted by TTL within 10 s, as DynamoDB does,
    # with a REMOVE record on the stream saying DynamoDB did it
    while "Item" in dynamodb.get_item(TableName=stack.data.table_name, Key=remembered):
        assert time.monotonic() < advanced_at + 10, "the expired item is still there 10 s after the clock passed it"
        time.sleep(0.25)
    removal = stream_record(stack, remembered)
    assert removal["eventName"] == "REMOVE"
    assert removal["userIdentity"] == {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
    # and the audit mapping's filter discarded it (no removal is an audit event: decision 0022), while
    # the change made just before the move was delivered, not dead-lettered as three days old: one new
    # history event, the service's
    assert mapping.wait_caught_up()
    assert mapping.filtered_out > discarded and mapping.dead_lettered == 0
    assert count_history(dynamodb, stack.data.audit_table_name) == history_before + 1

    # Then a token minted before has expired, and one minted now is valid at the new time
    status, _, problem = call(stack, "GET", "/me", token=customer)
    assert (status, problem["detail"]) == (401, "The incoming token has expired")
    after = call(stack, "POST", "/_local/token", body={"sub": "clock-customer", "groups": ["customers"]})[2]["token"]
    assert call(stack, "GET", "/me", token=after)[0] == 200

    # and a search over the six days from the machine's now starts at the stack's now
    found = slots(stack, after, pid, service["serviceId"], real_now, days=6)
    assert found and datetime.fromisoformat(found[0]["start"]) >= clock_now - timedelta(minutes=1)
    assert datetime.fromisoformat(found[0]["start"]) < clock_now + timedelta(hours=1)

    # and the metrics of what happens now are stamped in the stack's time, the functions' EMF too
    moved_now = stack.clock.now()
    assert metric_sum(stack, "AWS/ApiGateway", "Count", moved_now) >= 3
    assert metric_sum(stack, "Appointments", "SlotSearch", moved_now) >= 1
    # so once their minute is a full period (a minute more on the clock), the latency alarm's
    # window, which ends at the stack's now, reads them: nothing else happened three days ahead
    advance(stack, 61)
    assert stack.alarms is not None
    latency = stack.alarms.window("appointments-local-api-latency")
    assert len(latency) == 5 and [value for value in latency if value is not None]
    assert stack.alarms.window("appointments-local-api-latency", now=time.time()) != latency


def slots(stack: LocalStack, who: str, pid: str, sid: str, start: datetime, days: int) -> list[dict[str, Any]]:
    window = f"from={quote(start.isoformat())}&to={quote((start + timedelta(days=days)).isoformat())}"
    status, _, body = call(stack, "GET", f"/providers/{pid}/slots?serviceId={sid}&{window}", token=who)
    assert status == 200, body
    return list(body["slots"])


def metric_sum(stack: LocalStack, namespace: str, name: str, end: float) -> float:
    assert stack.metrics is not None
    total = 0.0
    for metric in stack.metrics.metrics():
        if (metric.namespace, metric.name) == (namespace, name):
            for _, value in stack.metrics.datapoints(metric, "Sum", 60, end - 300, end + 60):
                total += value or 0.0
    return total


def count_history(dynamodb: Any, table: str) -> int:
    items = dynamodb.scan(TableName=table, FilterExpression="begins_with(SK, :h)",
                          ExpressionAttributeValues={":h": {"S": "HISTORY#"}})["Items"]  # fmt: skip
    return len(items)


def stream_record(stack: LocalStack, key: dict[str, Any]) -> dict[str, Any]:
    """The newest stream record of `key`, as the streams API answers it."""
    assert stack.emulator is not None and stack.data is not None
    streams = aws_client("dynamodbstreams", stack.emulator.endpoint)
    shard = streams.describe_stream(StreamArn=stack.data.table_stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=stack.data.table_stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    found: list[dict[str, Any]] = []
    while True:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        found += [r for r in page["Records"] if r["dynamodb"]["Keys"] == key]
        if not page["Records"]:
            break
        iterator = page["NextShardIterator"]
    assert found, f"no stream record of {key}"
    return dict(found[-1])


def stack_token(stack: LocalStack, sub: str, groups: list[str]) -> str:
    """A token valid at the stack's time (the local mint), whatever the clock has done."""
    return str(call(stack, "POST", "/_local/token", body={"sub": sub, "groups": groups})[2]["token"])


def always_open(stack: LocalStack, owner: str, name: str) -> tuple[str, str]:
    """A provider open all day every day in UTC, with a 30-minute visit bookable at once: (its id, the visit's)."""
    pid = call(stack, "POST", "/providers", token=owner, body={"name": name, "timeZone": "UTC"})[2]["providerId"]
    every_day = {day: [{"start": "00:00", "end": "24:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=owner, body={"weekly": every_day})[0] == 200
    visit = {"name": "Visit", "durationMinutes": 30, "slotStepMinutes": 30, "minNoticeMinutes": 0}
    return pid, str(call(stack, "POST", f"/providers/{pid}/services", token=owner, body=visit)[2]["serviceId"])


def test_six_days_on_the_provider_and_admins_change_past_bookings_and_the_customer_may_not(
    stack: LocalStack,
) -> None:
    assert stack.data is not None and stack.emulator is not None
    owner, admin = stack_token(stack, "late-owner", ["providers"]), stack_token(stack, "late-admin", ["admins"])
    customer = stack_token(stack, "late-customer", ["customers"])
    pid, sid = always_open(stack, owner, "Late Life")
    # Given three bookings of today, and the clock moved six days on: their busy blocks expire
    # (TTL) two days after their day, so by now they are gone from the table
    now = datetime.fromtimestamp(stack.clock.now(), UTC)
    starts = [s["start"] for s in slots(stack, customer, pid, sid, now, days=1)[:3]]  # 30 apart: no overlap
    made = []
    for start in starts:
        status, _, booking = call(stack, "POST", "/bookings", token=customer,
                                  body={"providerId": pid, "serviceId": sid, "start": start})  # fmt: skip
        assert status == 201, booking
        made.append(booking["bookingId"])
    first = datetime.fromisoformat(starts[0])
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    busy_block = keys.busy_block_key(pid, keys.busy_blocks(first, first + timedelta(minutes=30))[0])
    assert "Item" in dynamodb.get_item(TableName=stack.data.table_name, Key=busy_block, ConsistentRead=True)
    advance(stack, 6 * DAY)
    deadline = time.monotonic() + 15
    while "Item" in dynamodb.get_item(TableName=stack.data.table_name, Key=busy_block, ConsistentRead=True):
        assert time.monotonic() < deadline, "the past day's busy block outlived its TTL"
        time.sleep(0.25)
    owner, admin = stack_token(stack, "late-owner", ["providers"]), stack_token(stack, "late-admin", ["admins"])
    customer = stack_token(stack, "late-customer", ["customers"])
    no_show, cancelled, moved = made

    # Then the owner marks a no-show, the customer may no longer cancel (422 with the reason), an
    # admin may, and the owner moves the third to next week: no 503 anywhere
    status, _, body = call(stack, "POST", f"/bookings/{no_show}/no-show", token=owner)
    assert (status, body.get("status")) == (200, "NO_SHOW"), body
    status, _, problem = call(stack, "POST", f"/bookings/{cancelled}/cancel", token=customer, body={})
    assert (status, problem["code"], problem["reason"]) == (422, "ALREADY_STARTED", "ALREADY_STARTED"), problem
    status, _, problem = call(stack, "POST", f"/bookings/{moved}/reschedule", token=customer,
                              body={"start": starts[2]})  # fmt: skip
    assert (status, problem["code"]) == (422, "ALREADY_STARTED"), problem
    status, _, body = call(stack, "POST", f"/bookings/{cancelled}/cancel", token=admin, body={"reason": "cleanup"})
    assert (status, body.get("status")) == (200, "CANCELLED"), body
    later = datetime.fromtimestamp(stack.clock.now(), UTC) + timedelta(days=1)
    new_start = slots(stack, owner, pid, sid, later, days=1)[0]["start"]
    status, _, body = call(stack, "POST", f"/bookings/{moved}/reschedule", token=owner, body={"start": new_start})
    assert (status, body.get("start")) == (200, new_start), body
    # and no change wrote the expired block again (an item without its time to live would never go)
    assert "Item" not in dynamodb.get_item(TableName=stack.data.table_name, Key=busy_block, ConsistentRead=True)


def test_a_day_on_a_past_bookings_ended_day_no_longer_speaks_for_it(stack: LocalStack) -> None:
    # A day after its day, a booking's busy blocks have ended but not yet expired: a change to the
    # booking leaves it alone, so it must no longer be read as the booking (a no-show is not moved)
    owner, admin = stack_token(stack, "ended-owner", ["providers"]), stack_token(stack, "ended-admin", ["admins"])
    customer = stack_token(stack, "ended-customer", ["customers"])
    pid, sid = always_open(stack, owner, "Ended")
    start = slots(stack, customer, pid, sid, datetime.fromtimestamp(stack.clock.now(), UTC), days=1)[0]["start"]
    booking = call(
        stack, "POST", "/bookings", token=customer, body={"providerId": pid, "serviceId": sid, "start": start}
    )
    assert booking[0] == 201, booking
    bid = booking[2]["bookingId"]
    advance(stack, DAY + 3600)
    owner, admin = stack_token(stack, "ended-owner", ["providers"]), stack_token(stack, "ended-admin", ["admins"])
    assert call(stack, "POST", f"/bookings/{bid}/no-show", token=owner)[0] == 200
    later = datetime.fromtimestamp(stack.clock.now(), UTC) + timedelta(days=1)
    new_start = slots(stack, admin, pid, sid, later, days=1)[0]["start"]
    status, _, problem = call(stack, "POST", f"/bookings/{bid}/reschedule", token=admin, body={"start": new_start})
    assert (status, problem["code"]) == (409, "INVALID_STATE"), problem  # not 503: the span is not the booking
